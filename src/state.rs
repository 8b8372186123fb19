//! The relay's shared state: the services built from the configuration and held in one [`AppState`]
//! that handlers, the inbox path and the admin operations borrow. It knows nothing of routes or of the
//! server; [`crate::app`] wires it to them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use plaza_index::Index;

use crate::ap::outgoing;
use crate::cluster::{Cluster, Settings as ClusterSettings, node_id};
use crate::config::Config;
use crate::discovery::indexer::{Indexer, Settings as IndexerSettings};
use crate::discovery::{IndexSink, index_sink};
use crate::federation::delivery::{Backoff, Engine};
use crate::federation::instance_actor::InstanceActors;
use crate::federation::key_fetch_limit::KeyFetchFailures;
use crate::federation::keyfile;
use crate::federation::net::{AddressPolicy, Http, HttpSettings};
use crate::federation::ratelimit::InboxLimiter;
use crate::federation::resolver::{Resolver, Settings as ResolverSettings};
use crate::federation::schemes::SignatureSchemes;
use crate::httpsig::PrivateKey;
use crate::moderation::curation::Curation;
use crate::moderation::policy::POLICY_SETTING;
use crate::moderation::tokens::AdminTokens;
use crate::store::Store;
use crate::topics::Topics;
use crate::topics::admission::TopicSettings;
use crate::web::client_ip::TrustedProxies;
use crate::web::ip_limit::ClientLimiter;
use crate::web::media_proxy::MediaProxy;
use crate::web::observability::InboundCounters;
use crate::web::search::{Search, Searched};
use crate::web::server;
use crate::{Error, Result};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "plaza.db";

/// The store `config` names: PostgreSQL at `database_url`, else SQLite in `data_dir` (created when
/// missing). Its schema is brought up to date on the way.
pub async fn open_store(config: &Config) -> Result<Store> {
    if config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        Store::open(&config.data_dir.join(DB_FILE))
    } else {
        Store::connect(&config.database_url).await
    }
}

/// Everything the handlers need, shared behind an `Arc`.
pub struct AppState {
    /// The configuration the relay runs with.
    pub config: Config,
    /// Public base URL without trailing slash.
    pub base: String,
    /// The relay's host (and port) as in `acct:relay@HOST`.
    pub host: String,
    /// `BASE/actor`.
    pub relay_actor_id: String,
    /// The relay key.
    pub key: Arc<PrivateKey>,
    /// The relay actor document, rendered once.
    pub actor_document: Bytes,
    /// The store.
    pub store: Store,
    /// The signing HTTP client.
    pub http: Http,
    /// Key and actor resolution.
    pub resolver: Resolver,
    /// The delivery engine.
    pub engine: Arc<Engine>,
    /// Per-instance inbox limits.
    pub limiter: InboxLimiter,
    /// Failed signature key fetches per client address.
    pub key_fetch_failures: KeyFetchFailures,
    /// Whether a subscribing actor is its instance's own actor.
    pub instance_actors: InstanceActors,
    /// When the relay started.
    pub started: Instant,
    /// Blocks, subscription policy and known software, in force.
    pub curation: Curation,
    /// The admin tokens and their names.
    pub admin_tokens: AdminTokens,
    /// Per-client-IP limits on the public read endpoints.
    pub client_limiter: Arc<ClientLimiter>,
    /// Inbox requests by outcome, for the metrics.
    pub inbound: InboundCounters,
    /// Open connections per client IP (the cap, and the count of refusals for `/metrics`).
    pub connections: server::PerIpConnections,
    /// The discovery indexer, when the index is enabled; [`crate::app::run`] starts it.
    pub indexer: Option<Arc<Indexer>>,
    /// The discovery index, when `index_enabled`: opened at `DATA_DIR/index`.
    pub index: Option<Arc<plaza_index::Index>>,
    /// The web pages' avatar proxy.
    pub media_proxy: MediaProxy,
    /// How searches run and fare (time limit, latency histogram, outcomes, account ids handed out).
    pub search: Search,
    /// The FASP provider: registered servers, their activations and budgets.
    pub fasp: crate::fasp::Fasp,
    /// Topic feeds: the topics in force and their followers' delivery workers.
    pub topics: Arc<Topics>,
    /// This node among the others sharing the database (alone on SQLite).
    pub cluster: Arc<Cluster>,
}

impl AppState {
    /// Creates the data directory, opens the store, loads or generates the key (the data directory's,
    /// or the database's on PostgreSQL) and starts a delivery worker for every subscriber.
    pub async fn build(config: Config) -> Result<Arc<AppState>> {
        let index = if config.index_enabled {
            Some(index_sink::open(&config)?)
        } else {
            None
        };
        let sink = index.clone().map(|i| i as Arc<dyn IndexSink>);
        Self::build_with_indexes(config, sink, index).await
    }

    /// [`AppState::build`] with the index the indexer feeds (`None`: no indexer).
    pub async fn build_with_index(
        config: Config,
        index: Option<Arc<dyn IndexSink>>,
    ) -> Result<Arc<AppState>> {
        Self::build_with_indexes(config, index, None).await
    }

    /// [`AppState::build`] with the sink the indexer feeds and the index the search APIs read (the
    /// same index in a running relay; `None` turns the feed or the searches off).
    pub async fn build_with_indexes(
        config: Config,
        index: Option<Arc<dyn IndexSink>>,
        search_index: Option<Arc<plaza_index::Index>>,
    ) -> Result<Arc<AppState>> {
        let base = config.base_url()?;
        let host = config.public_host()?;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| Error::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let store = open_store(&config).await?;
        let key = Arc::new(keyfile::load_for(&store, &data_dir).await?);
        let relay_actor_id = format!("{base}/actor");
        let http = Http::new(HttpSettings {
            key: key.clone(),
            key_id: format!("{relay_actor_id}#main-key"),
            policy: AddressPolicy {
                allow_private: config.allow_private_networks,
            },
            max_fetch_bytes: config.max_fetch_bytes,
            fetch_timeout: config.fetch_timeout(),
            delivery_timeout: config.delivery_timeout(),
            user_agent: format!("Plaza/{} (+{base})", env!("CARGO_PKG_VERSION")),
        })?
        .with_schemes(SignatureSchemes::load(store.clone(), config.outbound_signature).await?)
        .with_fetches_per_host(config.max_fetches_per_host as usize);
        let resolver = Resolver::new(
            Arc::new(http.clone()),
            ResolverSettings {
                ttl: Duration::from_secs(config.key_cache_secs.max(1)),
                cache_bytes: config.resolver_cache_bytes,
                fetches_per_minute: config.key_fetches_per_host_per_minute,
                ..ResolverSettings::default()
            },
        );
        let cluster_settings = ClusterSettings {
            node_id: if config.node_id.is_empty() {
                node_id::load_or_create(&config.data_dir)?
            } else {
                config.node_id.clone()
            },
            address: config.listen.clone(),
            roles: if config.index_enabled {
                vec!["index"]
            } else {
                Vec::new()
            },
            lease: Duration::from_secs(config.lease_secs),
        };
        let cluster = if store.is_postgres() {
            Cluster::shared(cluster_settings, store.clone())
        } else {
            Cluster::solo(cluster_settings)
        };
        let engine = Engine::new(
            store.clone(),
            http.clone(),
            Backoff {
                initial: Duration::from_millis(config.retry_initial_ms),
                max: Duration::from_secs(config.retry_max_secs.max(1)),
            },
            cluster.ownership().clone(),
        );
        let actor_document = Bytes::from(
            outgoing::relay_actor(
                &base,
                key.public_key_pem(),
                &config.relay_name,
                &config.relay_summary,
            )
            .to_string(),
        );
        let subscribers = store.subscribers().await?;
        tracing::info!(
            subscribers = subscribers.len(),
            head = store.tail().head(),
            "store opened"
        );
        for subscriber in subscribers {
            engine.start(subscriber);
        }
        let topics = Topics::start(
            store.clone(),
            engine.clone(),
            &base,
            TopicSettings::from_config(&config),
        )
        .await?;
        let instance_actors = InstanceActors::new(http.clone());
        let key_fetch_failures = KeyFetchFailures::new(config.key_fetch_failures_per_ip_per_minute);
        let max_connections_per_ip = config.max_connections_per_ip;
        let limiter = InboxLimiter::new(
            config.inbound_rate_per_instance,
            config.inbound_burst_per_instance,
        );
        for (instance, limit) in store.limits().await? {
            limiter.set_override(&instance, Some(limit));
        }
        let policy = policy_in_force(&store, &config).await?;
        let software = store
            .instances()
            .await?
            .into_iter()
            .filter_map(|(authority, info)| Some((authority, info.software?)));
        let curation = Curation::new(store.blocks().await?, policy, software);
        let admin_tokens = AdminTokens::new(&config.admin_token, &config.admin_tokens)?;
        let client_limiter = Arc::new(
            ClientLimiter::new(
                config.client_ip_rate,
                config.client_ip_burst,
                TrustedProxies::parse(&config.trusted_proxies)?,
            )
            .with_media(config.client_ip_media_rate, config.client_ip_media_burst),
        );
        let indexer = match index {
            Some(sink) => Some(
                Indexer::new(
                    store.clone(),
                    http.clone(),
                    sink,
                    IndexerSettings {
                        node: (!cluster.is_solo()).then(|| cluster.node_id().to_string()),
                        ..IndexerSettings::from_config(&config)
                    },
                )
                .await?,
            ),
            None => None,
        };
        if let Some(indexer) = &indexer {
            indexer.carry_for(topics.clone());
        }
        let media_proxy = MediaProxy::new(
            &key,
            http.clone(),
            config.media_proxy_max_bytes,
            config.media_proxy_cache_bytes,
        )?;
        let fasp = crate::fasp::Fasp::new(store.clone(), &config).await?;
        Ok(Arc::new(AppState {
            config,
            base,
            host,
            relay_actor_id,
            key,
            actor_document,
            store,
            http,
            resolver,
            engine,
            limiter,
            key_fetch_failures,
            instance_actors,
            started: Instant::now(),
            curation,
            admin_tokens,
            client_limiter,
            inbound: InboundCounters::default(),
            connections: server::PerIpConnections::new(max_connections_per_ip),
            indexer,
            index: search_index,
            media_proxy,
            search: Search::default(),
            fasp,
            topics,
            cluster,
        }))
    }

    /// How far the slowest of this node's delivery workers is behind the log's head, in entries (by
    /// the cursors as last persisted, at most a second old).
    pub fn delivery_lag(&self) -> u64 {
        let head = self.store.tail().head();
        self.engine
            .running()
            .iter()
            .filter_map(|a| self.store.subscriber(a))
            .map(|s| head.saturating_sub(s.cursor))
            .max()
            .unwrap_or(0)
    }

    /// What `/healthz/node` answers: this node's id, its leases, its lag and the nodes it sees.
    pub fn node_health(&self) -> serde_json::Value {
        use crate::cluster::lease;
        let cluster = &self.cluster;
        let (counts, jobs): ([(&str, u64); 3], Vec<String>) = if cluster.is_solo() {
            // Alone, everything is this node's: its workers and every job.
            let mut jobs = vec![lease::PRUNE.to_string(), lease::SHARING.to_string()];
            if self.indexer.is_some() {
                jobs.push(lease::FASP_SHARES.to_string());
            }
            (
                [
                    ("subscriber", self.engine.worker_count() as u64),
                    ("topic_inbox", self.topics.delivery.worker_count() as u64),
                    ("job", jobs.len() as u64),
                ],
                jobs,
            )
        } else {
            let jobs = cluster
                .held()
                .into_iter()
                .filter(|n| n.starts_with("job:"))
                .collect();
            (cluster.held_by_kind(), jobs)
        };
        let leases: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(kind, n)| (kind.to_string(), (*n).into()))
            .collect();
        serde_json::json!({
            "node": cluster.node_id(),
            "backend": if self.store.is_postgres() { "postgres" } else { "sqlite" },
            "alone": cluster.is_solo(),
            "leases": leases,
            "jobs": jobs,
            "delivery_workers": self.engine.worker_count(),
            "lag": self.delivery_lag(),
            "nodes": cluster.live_nodes().iter().map(|n| n.node_id.clone()).collect::<Vec<_>>(),
        })
    }

    /// Reads the moderation rules again into memory (another node changed them): blocks, the
    /// subscription policy and per-instance limits.
    pub async fn reload_moderation(&self) -> Result<()> {
        let blocks = self.store.blocks().await?;
        let policy = policy_in_force(&self.store, &self.config).await?;
        self.curation.replace(blocks, policy);
        self.limiter.replace_overrides(self.store.limits().await?);
        Ok(())
    }
}

/// The subscription policy in force: the one saved through the admin API (that choice outlives
/// restarts), else the configuration's.
async fn policy_in_force(
    store: &Store,
    config: &Config,
) -> Result<crate::moderation::policy::PolicySettings> {
    match store.setting(POLICY_SETTING).await? {
        Some(saved) => serde_json::from_value(saved)
            .map_err(|e| Error::Config(format!("saved subscription policy: {e}"))),
        None => config.policy_settings(),
    }
}

impl AppState {
    /// Ends an instance's subscription (its own Undo, or an admin) and stops its deliveries; false
    /// when it was not subscribed.
    pub async fn end_subscription(&self, instance: &str) -> Result<bool> {
        let removed = self.store.unsubscribe(instance).await?;
        self.engine.stop(instance);
        Ok(removed)
    }
}

impl AppState {
    /// Runs `work` on the relay's index through its search gateway ([`Search::run`]).
    pub async fn search_index<T, F>(&self, work: F) -> Result<T>
    where
        T: Searched + Send + 'static,
        F: FnOnce(&Index) -> plaza_index::Result<T> + Send + 'static,
    {
        self.search.run(self.index.as_ref(), work).await
    }
}
