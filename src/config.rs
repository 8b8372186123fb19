//! Relay configuration: one TOML file (`config/plaza.toml` documents every key) whose keys can each be
//! overridden by an environment variable `PLAZA_<KEY>` (upper case), as container deployments and the
//! end-to-end tests do.
//!
//! Loading is strict: an unknown key or a value that cannot be used stops the relay with a message that
//! names the key, instead of silently running with a default the admin did not mean.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::{Error, Result};

/// The file read when no `--config` is given, relative to the working directory; missing is fine.
pub const DEFAULT_CONFIG_PATH: &str = "config/plaza.toml";

/// Everything the relay can be told. Field names are the TOML keys; see `config/plaza.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Public base URL; every id the relay publishes derives from it.
    pub public_url: String,
    /// Socket address to bind.
    pub listen: String,
    /// Directory holding the store and the relay key.
    pub data_dir: PathBuf,
    /// The store's PostgreSQL database (`postgres://user@host/db`, or a socket directory as
    /// `postgres://user@%2Frun%2Fpostgresql/db`); empty: SQLite in `data_dir`.
    pub database_url: String,
    /// This node's name among the nodes sharing `database_url` (unique per running process); empty:
    /// the host name and a random suffix.
    pub node_id: String,
    /// How long a node's hold on a piece of the work (a subscriber's deliveries, a job) lasts without
    /// renewal, in seconds: a node that dies has its work taken over by the others within it.
    pub lease_secs: u64,
    /// Allow http:// and loopback/private addresses for fetches and deliveries.
    pub allow_private_networks: bool,
    /// Display name of the relay actor.
    pub relay_name: String,
    /// Summary (bio) of the relay actor.
    pub relay_summary: String,
    /// Largest inbox request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest remote document fetched, in bytes.
    pub max_fetch_bytes: usize,
    /// Timeout of a fetch (actor, key, object), in seconds.
    pub fetch_timeout_secs: u64,
    /// Timeout of one delivery POST, in seconds.
    pub delivery_timeout_secs: u64,
    /// First retry delay after a failed delivery, in milliseconds; doubles up to `retry_max_secs`.
    pub retry_initial_ms: u64,
    /// Longest delay between two delivery attempts to a failing host, in seconds.
    pub retry_max_secs: u64,
    /// How long accepted activities are kept for lagging subscribers, in hours.
    pub retention_hours: u64,
    /// How long a fetched public key is trusted before it is fetched again, in seconds.
    pub key_cache_secs: u64,
    /// Memory budget of the key and actor caches together, in bytes (entries are weighed by size).
    pub resolver_cache_bytes: u64,
    /// Key and actor fetches allowed per remote host and minute; 0 turns the limit off.
    pub key_fetches_per_host_per_minute: u32,
    /// Failed signature key fetches allowed per client address and minute, after which that address's
    /// requests fetch no keys until the minute is over; 0 turns the limit off.
    pub key_fetch_failures_per_ip_per_minute: u32,
    /// Inbox requests per second allowed per instance, sustained; 0 turns limiting off.
    pub inbound_rate_per_instance: u32,
    /// Inbox requests an instance may send at once before the sustained rate applies.
    pub inbound_burst_per_instance: u32,
    /// Bearer token for the admin endpoints; empty disables them.
    pub admin_token: String,
    /// Whether the discovery index is fed at all.
    pub index_enabled: bool,
    /// Memory budget of the index writer, in MiB.
    pub index_writer_memory_mb: u64,
    /// Longest time between an indexed change and the commit that makes it searchable, in milliseconds.
    pub index_commit_ms: u64,
    /// Nice value (0 to 19) of the indexer's threads: above 0 the inbox and the deliveries get the
    /// cores first on a busy machine and the index catches up after a burst; 0 runs them alike.
    pub index_nice: i32,
    /// How old a cached author actor may get before it is fetched again (consent re-check), in hours.
    pub actor_refresh_hours: u64,
    /// Posts published longer ago than this are dropped from the index, in days.
    pub index_retention_days: u64,
    /// Whether an instance that leaves (or is removed) has its posts and profiles purged from the index.
    pub purge_on_unsubscribe: bool,
    /// Fetches for the index (posts from their origin, authors, NodeInfo) in flight at once, overall
    /// (per host, `max_fetches_per_host` bounds every fetch of the relay).
    pub index_fetch_concurrency: u32,
    /// How to reach the relay's admin (an email address, a fediverse handle or a URL), shown on /about.
    pub admin_contact: String,
    /// Show since when each instance is subscribed on /instances.
    pub show_subscribed_since: bool,
    /// Largest image the avatar proxy fetches, in bytes.
    pub media_proxy_max_bytes: usize,
    /// Memory budget of the avatar proxy's image cache, in bytes (entries are weighed by size).
    pub media_proxy_cache_bytes: u64,
    /// More admin tokens as `name=token` pairs; the name is what the audit log records.
    pub admin_tokens: Vec<String>,
    /// Who may subscribe: `open`, `approval` or `allowlist` (the admin API can change it at run time).
    pub subscription_policy: String,
    /// Domains (subdomains included) that may subscribe under the `allowlist` policy.
    pub allowlist: Vec<String>,
    /// Requests per second per client IP on the public read endpoints; 0 turns the limit off.
    pub client_ip_rate: u32,
    /// Requests a client IP may make at once before `client_ip_rate` applies.
    pub client_ip_burst: u32,
    /// Avatar fetches (the pages' media proxy) per second per client IP, an allowance apart from
    /// `client_ip_rate` so that a page's avatars all load; 0 turns the limit off.
    pub client_ip_media_rate: u32,
    /// Avatar fetches a client IP may make at once before `client_ip_media_rate` applies.
    pub client_ip_media_burst: u32,
    /// Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Fetches (actors, keys, objects, NodeInfo) in flight to one remote host at most.
    pub max_fetches_per_host: u32,
    /// Time a client has to send a request's headers (and an idle connection its next request), in ms.
    pub header_read_timeout_ms: u64,
    /// Largest request header section accepted, in bytes (431 above it).
    pub max_header_bytes: usize,
    /// Concurrent connections allowed per client IP; 0 turns the cap off.
    pub max_connections_per_ip: usize,
    /// Which signature scheme the relay tries first on a host it has not learnt about yet.
    pub outbound_signature: OutboundSignature,
    /// The FASP provider's contact email (`provider_info.contactEmail`); empty leaves it out.
    pub fasp_contact_email: String,
    /// The FASP provider's fediverse account (`provider_info.fediverseAccount`); empty leaves it out.
    pub fasp_fediverse_account: String,
    /// Requests per second each registered FASP server may make, sustained; 0 turns the limit off.
    pub fasp_rate_per_server: u32,
    /// Requests a registered FASP server may make at once before `fasp_rate_per_server` applies.
    pub fasp_burst_per_server: u32,
    /// Announced URIs each FASP server may have waiting in the share queue; a fuller queue answers 429.
    pub fasp_share_queue_per_server: u64,
    /// `maxCount` of each backfill request Plaza makes when a server activates `data_sharing`.
    pub fasp_backfill_max_count: u32,
    /// Time between two backfill continuations asked of one server, in ms (Plaza's own pace).
    pub fasp_continuation_interval_ms: u64,
    /// Window in which a URI announced again (by any server) is not fetched again, in seconds.
    pub fasp_share_dedup_secs: u64,
    /// Pause before an announced URI whose fetch failed is tried again, in ms (doubled each time).
    pub fasp_share_retry_ms: u64,
    /// Topic actors (hashtags, languages) that may exist at most; each has its own key, so this caps
    /// the keys anyone can make the relay generate. 0 turns topics off.
    pub max_topics: u64,
    /// Followers one topic may have at most (instances and people alike).
    pub max_followers_per_topic: u64,
    /// Topic follows (all topics together) the actors of one instance may have at most.
    pub max_topic_follows_per_instance: u64,
    /// The kinds of topic offered: `tag`, `language`, `instance`, `search`.
    pub topic_kinds: Vec<String>,
    /// Hashtags that are never topics (followed, served or carried).
    pub topic_blocked_tags: Vec<String>,
}

/// The kinds of topic feed (`topic_kinds`), as `crate::topics::TopicKind` names them.
pub const TOPIC_KINDS: [&str; 4] = ["tag", "language", "instance", "search"];

/// The first signature scheme tried on a receiving host (`outbound_signature`). Whatever the first knock,
/// a host answering 401 or 400 gets the same request once more with the other scheme, and the scheme it
/// accepted is remembered for it (across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundSignature {
    /// draft-cavage first: every server accepts it today.
    Cavage,
    /// RFC 9421 first.
    Rfc9421,
    /// The scheme the host itself signed its requests to the relay with, else draft-cavage.
    Auto,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            node_id: String::new(),
            lease_secs: 15,
            allow_private_networks: false,
            relay_name: "Plaza relay".into(),
            relay_summary: "An ActivityPub relay with a discovery index.".into(),
            max_body_bytes: 1024 * 1024,
            max_fetch_bytes: 1024 * 1024,
            fetch_timeout_secs: 10,
            delivery_timeout_secs: 15,
            retry_initial_ms: 1000,
            retry_max_secs: 3600,
            retention_hours: 24 * 7,
            key_cache_secs: 24 * 3600,
            resolver_cache_bytes: 32 * 1024 * 1024,
            key_fetches_per_host_per_minute: 120,
            key_fetch_failures_per_ip_per_minute: 30,
            inbound_rate_per_instance: 100,
            inbound_burst_per_instance: 1000,
            admin_token: String::new(),
            index_enabled: true,
            index_writer_memory_mb: 64,
            index_commit_ms: 1000,
            index_nice: 10,
            actor_refresh_hours: 24,
            index_retention_days: 365,
            purge_on_unsubscribe: true,
            index_fetch_concurrency: 8,
            admin_contact: String::new(),
            show_subscribed_since: true,
            media_proxy_max_bytes: 1024 * 1024,
            media_proxy_cache_bytes: 32 * 1024 * 1024,
            admin_tokens: Vec::new(),
            subscription_policy: "open".into(),
            allowlist: Vec::new(),
            client_ip_rate: 5,
            client_ip_burst: 50,
            client_ip_media_rate: 50,
            client_ip_media_burst: 200,
            trusted_proxies: Vec::new(),
            max_fetches_per_host: 4,
            header_read_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            max_connections_per_ip: 64,
            outbound_signature: OutboundSignature::Cavage,
            fasp_contact_email: String::new(),
            fasp_fediverse_account: String::new(),
            fasp_rate_per_server: 10,
            fasp_burst_per_server: 50,
            fasp_share_queue_per_server: 10_000,
            fasp_backfill_max_count: 1_000,
            fasp_continuation_interval_ms: 10_000,
            fasp_share_dedup_secs: 600,
            fasp_share_retry_ms: 60_000,
            max_topics: 1_000,
            max_followers_per_topic: 10_000,
            max_topic_follows_per_instance: 1_000,
            topic_kinds: TOPIC_KINDS.iter().map(|k| k.to_string()).collect(),
            topic_blocked_tags: Vec::new(),
        }
    }
}

impl Config {
    /// Reads `path` (or [`DEFAULT_CONFIG_PATH`] when `None` and it exists), applies `PLAZA_*` environment
    /// overrides and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(path: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let mut table = match path {
            Some(p) => read_table(p)?,
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                read_table(Path::new(DEFAULT_CONFIG_PATH))?
            }
            None => toml::Table::new(),
        };
        let defaults = defaults_table()?;
        for (name, value) in env {
            let Some(key) = name.strip_prefix("PLAZA_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if let Some(default) = defaults.get(&key) {
                table.insert(key.clone(), env_value(&key, default, value)?);
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        self.base_url()?;
        self.listen_addr()?;
        if !self.database_url.is_empty()
            && !["postgres://", "postgresql://"]
                .iter()
                .any(|scheme| self.database_url.starts_with(scheme))
        {
            return Err(Error::Config(
                "database_url must be a postgres:// URL (or empty for SQLite in data_dir)".into(),
            ));
        }
        if !(2..=600).contains(&self.lease_secs) {
            return Err(Error::Config("lease_secs must be between 2 and 600".into()));
        }
        if !self.node_id.is_empty() && !usable_node_id(&self.node_id) {
            return Err(Error::Config(
                "node_id must be at most 100 characters, without spaces".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::Config("max_body_bytes must be at least 1024".into()));
        }
        if self.header_read_timeout_ms == 0 {
            return Err(Error::Config(
                "header_read_timeout_ms must be positive".into(),
            ));
        }
        if self.max_header_bytes < 4096 {
            return Err(Error::Config(
                "max_header_bytes must be at least 4096".into(),
            ));
        }
        if self.retry_initial_ms == 0 || self.retention_hours == 0 {
            return Err(Error::Config(
                "retry_initial_ms and retention_hours must be positive".into(),
            ));
        }
        if !(0..=19).contains(&self.index_nice) {
            return Err(Error::Config("index_nice must be between 0 and 19".into()));
        }
        if self.index_fetch_concurrency == 0 {
            return Err(Error::Config(
                "index_fetch_concurrency must be positive".into(),
            ));
        }
        if self.index_writer_memory_mb < 15 {
            return Err(Error::Config(
                "index_writer_memory_mb must be at least 15 (the index writer's minimum)".into(),
            ));
        }
        self.moderation_checks()?;
        self.topic_checks()
    }

    /// Topic kinds must be known and blocked tags must be hashtags.
    fn topic_checks(&self) -> Result<()> {
        for kind in &self.topic_kinds {
            if !TOPIC_KINDS.contains(&kind.to_ascii_lowercase().as_str()) {
                return Err(Error::Config(format!(
                    "topic_kinds: {kind:?} is not one of tag, language, instance, search"
                )));
            }
        }
        for tag in &self.topic_blocked_tags {
            if plaza_index::document::normalize_tag(tag).is_none() {
                return Err(Error::Config(format!(
                    "topic_blocked_tags: {tag:?} is not a hashtag"
                )));
            }
        }
        Ok(())
    }

    /// The public base URL without a trailing slash, e.g. `https://relay.example.org`.
    pub fn base_url(&self) -> Result<String> {
        let url = Url::parse(&self.public_url)
            .map_err(|e| Error::Config(format!("public_url {:?}: {e}", self.public_url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Config(format!(
                "public_url {:?} must be an http(s) URL",
                self.public_url
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(
                "public_url must not have a query or fragment".into(),
            ));
        }
        Ok(url.as_str().trim_end_matches('/').to_string())
    }

    /// The relay's own host as it appears in `acct:relay@HOST` (host and non-default port).
    pub fn public_host(&self) -> Result<String> {
        let url = Url::parse(&self.base_url()?).map_err(|e| Error::Config(e.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_string();
        Ok(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    /// The socket address to bind.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.listen.parse().map_err(|e| {
            Error::Config(format!(
                "listen {:?} is not a socket address: {e}",
                self.listen
            ))
        })
    }

    /// The admin and moderation keys, checked as they will be used.
    fn moderation_checks(&self) -> Result<()> {
        crate::moderation::tokens::AdminTokens::new(&self.admin_token, &self.admin_tokens)?;
        self.policy_settings()?;
        crate::web::client_ip::TrustedProxies::parse(&self.trusted_proxies)?;
        if self.max_fetches_per_host == 0 {
            return Err(Error::Config(
                "max_fetches_per_host must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The subscription policy and allowlist as configured.
    pub fn policy_settings(&self) -> Result<crate::moderation::policy::PolicySettings> {
        let policy = crate::moderation::policy::Policy::parse(&self.subscription_policy)
            .map_err(|e| Error::Config(e.to_string()))?;
        crate::moderation::policy::PolicySettings::new(policy, &self.allowlist)
            .map_err(|e| Error::Config(format!("allowlist: {e}")))
    }

    /// Fetch timeout as a [`Duration`].
    pub fn fetch_timeout(&self) -> Duration {
        Duration::from_secs(self.fetch_timeout_secs.max(1))
    }

    /// Where the discovery index lives: `DATA_DIR/index`.
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    /// The index settings of this configuration.
    pub fn index_config(&self) -> plaza_index::IndexConfig {
        plaza_index::IndexConfig {
            writer_memory_bytes: (self.index_writer_memory_mb as usize).saturating_mul(1 << 20),
            commit_interval: Duration::from_millis(self.index_commit_ms.max(1)),
            background_nice: self.index_nice,
            ..plaza_index::IndexConfig::default()
        }
    }

    /// Delivery timeout as a [`Duration`].
    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_secs(self.delivery_timeout_secs.max(1))
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))
}

/// The defaults as a TOML table: the list of keys and the type each one takes.
fn defaults_table() -> Result<toml::Table> {
    toml::Table::try_from(Config::default()).map_err(|e| Error::Config(format!("defaults: {e}")))
}

/// Turns an environment string into the TOML value the key expects, typed like its default.
fn env_value(key: &str, default: &toml::Value, value: &str) -> Result<toml::Value> {
    let bad = |what: &str| {
        Error::Config(format!(
            "PLAZA_{} = {value:?} is not {what}",
            key.to_ascii_uppercase()
        ))
    };
    Ok(match default {
        toml::Value::Boolean(_) => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(bad("true or false")),
        },
        toml::Value::Integer(_) => {
            toml::Value::Integer(value.trim().parse().map_err(|_| bad("a whole number"))?)
        }
        // Lists are written comma-separated in the environment: PLAZA_ALLOWLIST=a.example,b.example
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_string()),
    })
}

/// Whether `id` may name a node (`node_id`, or the one kept in the data directory): 1 to 100
/// characters, no spaces or control characters.
pub fn usable_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_with_env(None, &[]).expect("defaults load");
        assert_eq!(c.base_url().unwrap(), "http://localhost:8080");
        assert_eq!(c.public_host().unwrap(), "localhost:8080");
        assert!(!c.allow_private_networks);
    }

    #[test]
    fn environment_overrides_typed_keys() {
        let c = Config::load_with_env(
            None,
            &env(&[
                ("PLAZA_PUBLIC_URL", "https://relay.example.org/"),
                ("PLAZA_LISTEN", "0.0.0.0:9000"),
                ("PLAZA_ALLOW_PRIVATE_NETWORKS", "true"),
                ("PLAZA_RETRY_INITIAL_MS", "50"),
                ("PLAZA_OUTBOUND_SIGNATURE", "rfc9421"),
                ("PLAZA_UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.base_url().unwrap(), "https://relay.example.org");
        assert_eq!(c.public_host().unwrap(), "relay.example.org");
        assert_eq!(c.listen_addr().unwrap().port(), 9000);
        assert!(c.allow_private_networks);
        assert_eq!(c.retry_initial_ms, 50);
        assert_eq!(c.outbound_signature, OutboundSignature::Rfc9421);
    }

    #[test]
    fn lists_come_comma_separated_from_the_environment() {
        let c = Config::load_with_env(
            None,
            &env(&[
                ("PLAZA_ALLOWLIST", "a.example, b.example,"),
                ("PLAZA_SUBSCRIPTION_POLICY", "allowlist"),
                ("PLAZA_ADMIN_TOKENS", "alice=x1,bob=y2"),
            ]),
        )
        .unwrap();
        assert_eq!(c.allowlist, ["a.example", "b.example"]);
        assert_eq!(c.admin_tokens.len(), 2);
        assert_eq!(
            c.policy_settings().unwrap().allowlist,
            ["a.example", "b.example"]
        );
        for (key, value) in [
            ("PLAZA_SUBSCRIPTION_POLICY", "closed"),
            ("PLAZA_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("PLAZA_ADMIN_TOKENS", "no-name"),
            ("PLAZA_MAX_FETCHES_PER_HOST", "0"),
        ] {
            assert!(
                Config::load_with_env(None, &env(&[(key, value)])).is_err(),
                "{key}={value}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::load_with_env(None, &env(&[("PLAZA_ALLOW_PRIVATE_NETWORKS", "maybe")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("PLAZA_ALLOW_PRIVATE_NETWORKS"),
            "{e}"
        );
        let e = Config::load_with_env(None, &env(&[("PLAZA_LISTEN", "nowhere")])).unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = Config::load_with_env(None, &env(&[("PLAZA_PUBLIC_URL", "ftp://x")])).unwrap_err();
        assert!(e.to_string().contains("public_url"), "{e}");
        let e =
            Config::load_with_env(None, &env(&[("PLAZA_OUTBOUND_SIGNATURE", "rsa")])).unwrap_err();
        assert!(e.to_string().contains("cavage"), "{e}");
    }

    #[test]
    fn shipped_config_file_loads_and_unknown_keys_fail() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/plaza.toml");
        let c = Config::load_with_env(Some(&shipped), &[]).expect("config/plaza.toml loads");
        assert_eq!(c.listen, Config::default().listen);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let e = Config::load_with_env(Some(&bad), &[]).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
    }

    #[test]
    fn index_keys_have_defaults_overrides_and_limits() {
        let c = Config::load_with_env(None, &[]).unwrap();
        assert!(c.index_enabled && c.purge_on_unsubscribe);
        assert_eq!(
            (
                c.index_commit_ms,
                c.actor_refresh_hours,
                c.index_retention_days
            ),
            (1000, 24, 365)
        );
        assert_eq!(c.index_dir(), c.data_dir.join("index"));
        let c = Config::load_with_env(
            None,
            &env(&[
                ("PLAZA_INDEX_ENABLED", "false"),
                ("PLAZA_INDEX_COMMIT_MS", "100"),
            ]),
        )
        .unwrap();
        assert!(!c.index_enabled);
        assert_eq!(c.index_commit_ms, 100);
        assert_eq!(c.index_config().commit_interval, Duration::from_millis(100));
        let e = Config::load_with_env(None, &env(&[("PLAZA_INDEX_FETCH_CONCURRENCY", "0")]))
            .unwrap_err();
        assert!(e.to_string().contains("index_fetch_concurrency"), "{e}");
        let e = Config::load_with_env(None, &env(&[("PLAZA_INDEX_WRITER_MEMORY_MB", "4")]))
            .unwrap_err();
        assert!(e.to_string().contains("index_writer_memory_mb"), "{e}");
    }

    #[test]
    fn connection_limits_are_keys_and_validated() {
        let c = Config::load_with_env(
            None,
            &env(&[
                ("PLAZA_HEADER_READ_TIMEOUT_MS", "250"),
                ("PLAZA_MAX_HEADER_BYTES", "16384"),
                ("PLAZA_MAX_CONNECTIONS_PER_IP", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                c.header_read_timeout_ms,
                c.max_header_bytes,
                c.max_connections_per_ip
            ),
            (250, 16384, 0)
        );
        for (key, value) in [
            ("PLAZA_HEADER_READ_TIMEOUT_MS", "0"),
            ("PLAZA_MAX_HEADER_BYTES", "100"),
        ] {
            let e = Config::load_with_env(None, &env(&[(key, value)])).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&key["PLAZA_".len()..].to_ascii_lowercase()),
                "{e}"
            );
        }
    }
}
