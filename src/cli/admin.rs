//! `plaza admin …`: the admin API from the command line. Each subcommand is one call to a running
//! relay's `/api/v1/admin/` (URL from `--url`, `PLAZA_ADMIN_URL` or the configuration's listen address;
//! token from `--token`, `PLAZA_ADMIN_TOKEN` or the configuration), printed as a table or, with
//! `--json`, as the API's JSON.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

/// Options shared by every admin subcommand.
#[derive(Args)]
pub struct AdminArgs {
    /// Base URL of the relay (default: the address the configuration listens on).
    #[arg(long, env = "PLAZA_ADMIN_URL", global = true, value_name = "URL")]
    url: Option<String>,
    /// Admin token (default: admin_token from the configuration or PLAZA_ADMIN_TOKEN).
    #[arg(long, global = true, hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// List the subscribers with their software, lag and delivery state.
    Subscribers,
    /// List the Follows waiting for approval, with the instances' NodeInfo.
    Pending,
    /// Approve a pending Follow (the instance gets the Accept).
    Approve { instance: String },
    /// Reject a pending Follow (the instance gets a Reject).
    Reject { instance: String },
    /// End a subscription; its domain is blocked too unless --no-block.
    Remove {
        instance: String,
        /// Only end the subscription; the instance may follow again.
        #[arg(long)]
        no_block: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Block a domain (and its subdomains) or, with --software, a NodeInfo software name.
    Block {
        target: String,
        #[arg(long)]
        software: bool,
        /// suspend, silence or noop (Mastodon's severities).
        #[arg(long, default_value = "suspend")]
        severity: String,
        #[arg(long)]
        reason: Option<String>,
        /// Ask the discovery index to purge the instance's posts and profiles.
        #[arg(long)]
        purge: bool,
    },
    /// Lift a block.
    Unblock {
        target: String,
        #[arg(long)]
        software: bool,
    },
    /// List the blocks.
    Blocks,
    /// Import a Mastodon domain-block CSV.
    ImportBlocks { file: PathBuf },
    /// Export the domain blocks as a Mastodon CSV (to FILE, or standard output).
    ExportBlocks { file: Option<PathBuf> },
    /// Show the inbound limits, or give one instance its own (--set) or the default back (--clear).
    Limits {
        #[arg(long, value_name = "INSTANCE", requires = "rate")]
        set: Option<String>,
        /// Requests per second (0: unlimited).
        #[arg(long)]
        rate: Option<u32>,
        #[arg(long)]
        burst: Option<u32>,
        #[arg(long, value_name = "INSTANCE", conflicts_with = "set")]
        clear: Option<String>,
    },
    /// Show the subscription policy, or set it (open, approval, allowlist).
    Policy {
        policy: Option<String>,
        /// The allowlist, comma-separated (replaces the current one).
        #[arg(long, value_delimiter = ',')]
        allow: Option<Vec<String>>,
    },
    /// Subscribers by state, log, deliveries, blocks, uptime.
    Stats,
    /// The most recent admin actions.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// FASP: register the relay as a discovery provider with fediverse servers, list, remove, and
    /// decide the sign-ups waiting for approval.
    #[command(subcommand)]
    Fasp(FaspCommand),
    /// Topic feeds: list every topic with its followers; add, redefine or remove the searches the
    /// admins curate (`/topics/search/SLUG`); decide the topic follows waiting for approval.
    #[command(subcommand)]
    Topics(TopicsCommand),
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// List the topics (hashtags, languages, instances, curated searches) with their followers and
    /// the posts each carried.
    List,
    /// Add a curated search topic, or redefine the one with this slug (its followers and key stay).
    Add {
        /// 1 to 64 lowercase letters, digits and '-': the topic is `/topics/search/SLUG`.
        slug: String,
        /// The search, in Plaza's query language (e.g. 'type:organization #coop OR #cooperative');
        /// it may start with '-'.
        #[arg(long, allow_hyphen_values = true)]
        query: String,
        /// Its name for people.
        #[arg(long)]
        name: String,
    },
    /// Remove a curated search topic: its followers stop receiving it at once.
    Remove { slug: String },
    /// List the Follows of topics waiting for approval (the approval policy: instances not admitted
    /// yet).
    Pending,
    /// Approve a waiting Follow: the topic accepts it and starts carrying posts to the follower.
    Approve {
        /// The topic: tag/coop, language/es, instance/HOST or search/SLUG.
        topic: String,
        /// The follower's actor id (as `pending` lists it).
        actor: String,
    },
    /// Reject a waiting Follow: the topic sends a Reject.
    Reject {
        /// The topic: tag/coop, language/es, instance/HOST or search/SLUG.
        topic: String,
        /// The follower's actor id (as `pending` lists it).
        actor: String,
    },
}

#[derive(Subcommand)]
enum FaspCommand {
    /// Register with the server at URL (it must publish faspBaseUrl in its NodeInfo); prints the key
    /// fingerprint its admin must see before accepting.
    Register {
        #[arg(value_name = "URL")]
        server: String,
    },
    /// List the registrations.
    List,
    /// Remove a registration by server id: that server's requests are refused from now on.
    Remove { server_id: String },
    /// List the sign-ups from the /fasp form waiting for approval.
    Pending,
    /// Approve a waiting sign-up: registers with that server and prints the fingerprint.
    Approve {
        #[arg(value_name = "URL")]
        server: String,
    },
    /// Reject a waiting sign-up: it leaves the list, the server is not contacted.
    Reject {
        #[arg(value_name = "URL")]
        server: String,
    },
}

/// What the admin is told after the relay registered with a FASP server.
fn registered_text(v: &Value) -> String {
    format!(
        "registered with {}\nserver id:   {}\nfingerprint: {}\ncomplete at: {}\n\
         The server's admin must see the same fingerprint before accepting.",
        cell(v, "server", Show::Plain),
        cell(v, "serverId", Show::Plain),
        cell(v, "fingerprint", Show::Plain),
        cell(v, "registrationCompletionUri", Show::Plain),
    )
}

/// Runs one admin subcommand against the relay.
pub async fn run(config: &plaza::config::Config, args: AdminArgs) -> anyhow::Result<()> {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => super::local_base(config)?,
    };
    let token = args
        .token
        .clone()
        .unwrap_or_else(|| config.admin_token.clone());
    if token.is_empty() {
        bail!("no admin token: pass --token or set PLAZA_ADMIN_TOKEN");
    }
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: format!("{base}/api/v1/admin"),
        token,
    };
    let json_out = args.json;
    let (value, table): (Value, Option<String>) = match args.command {
        AdminCommand::Subscribers => {
            let v = api.call(Method::GET, "/subscribers", None).await?;
            let t = table(&v["subscribers"], &SUBSCRIBER_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::Pending => {
            let v = api.call(Method::GET, "/pending", None).await?;
            let t = table(&v["pending"], &PENDING_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::Approve { instance } => {
            let path = format!("/pending/{instance}/approve");
            (
                api.call(Method::POST, &path, None).await?,
                Some(format!("approved {instance}")),
            )
        }
        AdminCommand::Reject { instance } => {
            let path = format!("/pending/{instance}/reject");
            (
                api.call(Method::POST, &path, None).await?,
                Some(format!("rejected {instance}")),
            )
        }
        AdminCommand::Remove {
            instance,
            no_block,
            reason,
        } => {
            let mut url = reqwest::Url::parse(&format!("{}/subscribers/{instance}", api.base))?;
            url.query_pairs_mut()
                .append_pair("block", if no_block { "false" } else { "true" })
                .append_pair("reason", reason.as_deref().unwrap_or(""));
            let v = api.send(Method::DELETE, url, None).await?;
            let done = if no_block {
                "removed"
            } else {
                "removed and blocked"
            };
            (v, Some(format!("{done} {instance}")))
        }
        AdminCommand::Block {
            target,
            software,
            severity,
            reason,
            purge,
        } => {
            let body = json!({
                "domain": target,
                "kind": if software { "software" } else { "domain" },
                "severity": severity,
                "reason": reason.unwrap_or_default(),
                "purge": purge,
            });
            let v = api.call(Method::POST, "/blocks", Some(body)).await?;
            let ended = v["ended"].as_array().map_or(0, |e| e.len());
            (
                v,
                Some(format!("blocked {target}; subscriptions ended: {ended}")),
            )
        }
        AdminCommand::Unblock { target, software } => {
            let kind = if software { "software" } else { "domain" };
            let path = format!("/blocks/{target}?kind={kind}");
            (
                api.call(Method::DELETE, &path, None).await?,
                Some(format!("unblocked {target}")),
            )
        }
        AdminCommand::Blocks => {
            let v = api.call(Method::GET, "/blocks", None).await?;
            let t = table(&v["blocks"], &BLOCK_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::ImportBlocks { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let v = api.import(text).await?;
            let summary = format!(
                "imported {} blocks, skipped {} rows",
                v["imported"],
                v["skipped"].as_array().map_or(0, |s| s.len())
            );
            (v, Some(summary))
        }
        AdminCommand::ExportBlocks { file } => {
            let csv = api.export().await?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &csv)
                        .with_context(|| format!("writing {}", path.display()))?;
                    (
                        json!({ "written": path }),
                        Some(format!("wrote {}", path.display())),
                    )
                }
                None => {
                    print!("{csv}");
                    return Ok(());
                }
            }
        }
        AdminCommand::Limits {
            set,
            rate,
            burst,
            clear,
        } => {
            let v = match (set, clear) {
                (Some(instance), _) => {
                    let body = json!({ "rate": rate, "burst": burst });
                    api.call(Method::PUT, &format!("/limits/{instance}"), Some(body))
                        .await?
                }
                (None, Some(instance)) => {
                    api.call(Method::DELETE, &format!("/limits/{instance}"), None)
                        .await?
                }
                (None, None) => api.call(Method::GET, "/limits", None).await?,
            };
            let t = match v.get("overrides") {
                Some(overrides) => format!(
                    "default: {} per second, burst {}\n{}",
                    v["default"]["rate"],
                    v["default"]["burst"],
                    table(overrides, &LIMIT_COLUMNS)
                ),
                None => v.to_string(),
            };
            (v, Some(t))
        }
        AdminCommand::Policy { policy, allow } => {
            let v = match policy {
                Some(policy) => {
                    let body = json!({ "policy": policy, "allowlist": allow });
                    api.call(Method::PUT, "/policy", Some(body)).await?
                }
                None => api.call(Method::GET, "/policy", None).await?,
            };
            let t = format!(
                "policy: {}\nallowlist: {}",
                v["policy"].as_str().unwrap_or("?"),
                v["allowlist"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            );
            (v, Some(t))
        }
        AdminCommand::Stats => {
            let v = api.call(Method::GET, "/stats", None).await?;
            let t = stats_text(&v);
            (v, Some(t))
        }
        AdminCommand::Fasp(FaspCommand::Register { server }) => {
            let v = api
                .call(
                    Method::POST,
                    "/fasp/registrations",
                    Some(json!({ "server": server })),
                )
                .await?;
            let t = registered_text(&v);
            (v, Some(t))
        }
        AdminCommand::Fasp(FaspCommand::Pending) => {
            let v = api.call(Method::GET, "/fasp/signups", None).await?;
            let t = table(&v["signups"], &FASP_SIGNUP_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::Fasp(FaspCommand::Approve { server }) => {
            let v = api
                .call(
                    Method::POST,
                    "/fasp/signups/approve",
                    Some(json!({ "server": server })),
                )
                .await?;
            let t = registered_text(&v);
            (v, Some(t))
        }
        AdminCommand::Fasp(FaspCommand::Reject { server }) => {
            let v = api
                .call(
                    Method::POST,
                    "/fasp/signups/reject",
                    Some(json!({ "server": server })),
                )
                .await?;
            let t = format!(
                "rejected the FASP sign-up of {}",
                cell(&v, "rejected", Show::Plain)
            );
            (v, Some(t))
        }
        AdminCommand::Fasp(FaspCommand::List) => {
            let v = api.call(Method::GET, "/fasp/registrations", None).await?;
            let t = table(&v["registrations"], &FASP_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::Fasp(FaspCommand::Remove { server_id }) => {
            let path = format!("/fasp/registrations/{server_id}");
            (
                api.call(Method::DELETE, &path, None).await?,
                Some(format!("removed FASP registration {server_id}")),
            )
        }
        AdminCommand::Topics(TopicsCommand::List) => {
            let v = api.call(Method::GET, "/topics", None).await?;
            let t = table(&v["topics"], &TOPIC_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::Topics(TopicsCommand::Add { slug, query, name }) => {
            let body = json!({ "slug": slug, "name": name, "query": query });
            let v = api.call(Method::POST, "/topics", Some(body)).await?;
            let t = format!(
                "curated topic {}: {}\nquery: {}\nactor: {}",
                cell(&v, "slug", Show::Plain),
                cell(&v, "name", Show::Plain),
                cell(&v, "query", Show::Plain),
                cell(&v, "actor", Show::Plain),
            );
            (v, Some(t))
        }
        AdminCommand::Topics(TopicsCommand::Pending) => {
            let v = api.call(Method::GET, "/topics/pending", None).await?;
            let t = table(&v["pending"], &TOPIC_PENDING_COLUMNS);
            (v, Some(t))
        }
        AdminCommand::Topics(TopicsCommand::Approve { topic, actor }) => {
            let body = json!({ "topic": topic, "actor": actor });
            let v = api
                .call(Method::POST, "/topics/pending/approve", Some(body))
                .await?;
            let t = format!(
                "approved {actor}'s follow of {topic}: {}",
                cell(&v["approved"], "outcome", Show::Plain)
            );
            (v, Some(t))
        }
        AdminCommand::Topics(TopicsCommand::Reject { topic, actor }) => {
            let body = json!({ "topic": topic, "actor": actor });
            let v = api
                .call(Method::POST, "/topics/pending/reject", Some(body))
                .await?;
            (v, Some(format!("rejected {actor}'s follow of {topic}")))
        }
        AdminCommand::Topics(TopicsCommand::Remove { slug }) => {
            let mut url = reqwest::Url::parse(&api.base)?;
            url.path_segments_mut()
                .map_err(|()| anyhow::anyhow!("{} cannot take a path", api.base))?
                .extend(["topics", "search", &slug]);
            (
                api.send(Method::DELETE, url, None).await?,
                Some(format!("removed curated topic {slug}")),
            )
        }
        AdminCommand::Audit { limit } => {
            let v = api
                .call(Method::GET, &format!("/audit?limit={limit}"), None)
                .await?;
            let t = table(&v["audit"], &AUDIT_COLUMNS);
            (v, Some(t))
        }
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if let Some(text) = table {
        println!("{}", text.trim_end());
    }
    Ok(())
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))?;
        self.send(method, url, body).await
    }

    async fn send(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .request(method, url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{url} does not answer"))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let reason = value["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            bail!("the relay answered {status}: {reason}");
        }
        Ok(value)
    }

    async fn import(&self, csv: String) -> anyhow::Result<Value> {
        let url = format!("{}/blocks/import", self.base);
        let response = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "text/csv")
            .body(csv)
            .send()
            .await
            .with_context(|| format!("{url} does not answer"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("the relay answered {status}: {}", value["error"]);
        }
        Ok(value)
    }

    async fn export(&self) -> anyhow::Result<String> {
        let url = format!("{}/blocks/export", self.base);
        let response = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("{url} does not answer"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("the relay answered {status}: {text}");
        }
        Ok(text)
    }
}

/// How a column's value is shown.
#[derive(Clone, Copy)]
enum Show {
    Plain,
    /// Unix seconds as a date.
    Time,
}

type Column = (&'static str, &'static str, Show);

const SUBSCRIBER_COLUMNS: [Column; 9] = [
    ("INSTANCE", "instance", Show::Plain),
    ("PROTOCOL", "protocol", Show::Plain),
    ("SOFTWARE", "software", Show::Plain),
    ("SINCE", "subscribed_at", Show::Time),
    ("LAST INBOUND", "last_inbound", Show::Time),
    ("BEHIND", "behind", Show::Plain),
    ("LAST DELIVERY", "last_delivered", Show::Time),
    ("FAILURES", "consecutive_failures", Show::Plain),
    ("STATE", "state", Show::Plain),
];
const PENDING_COLUMNS: [Column; 5] = [
    ("INSTANCE", "authority", Show::Plain),
    ("PROTOCOL", "protocol", Show::Plain),
    ("SOFTWARE", "nodeinfo.software", Show::Plain),
    ("VERSION", "nodeinfo.version", Show::Plain),
    ("SINCE", "created_at", Show::Time),
];
const BLOCK_COLUMNS: [Column; 6] = [
    ("KIND", "kind", Show::Plain),
    ("TARGET", "domain", Show::Plain),
    ("SEVERITY", "severity", Show::Plain),
    ("PURGE", "purge", Show::Plain),
    ("SINCE", "created_at", Show::Time),
    ("REASON", "reason", Show::Plain),
];
const LIMIT_COLUMNS: [Column; 3] = [
    ("INSTANCE", "instance", Show::Plain),
    ("RATE", "rate", Show::Plain),
    ("BURST", "burst", Show::Plain),
];
const FASP_COLUMNS: [Column; 5] = [
    ("SERVER", "server", Show::Plain),
    ("SERVER ID", "serverId", Show::Plain),
    ("FASP ID", "faspId", Show::Plain),
    ("FINGERPRINT", "fingerprint", Show::Plain),
    ("SINCE", "createdAt", Show::Time),
];
const FASP_SIGNUP_COLUMNS: [Column; 2] = [
    ("SERVER", "server", Show::Plain),
    ("SINCE", "requestedAt", Show::Time),
];
const TOPIC_PENDING_COLUMNS: [Column; 4] = [
    ("TOPIC", "topic", Show::Plain),
    ("FOLLOWER", "actor", Show::Plain),
    ("INSTANCE", "instance", Show::Plain),
    ("SINCE", "requested_at", Show::Time),
];
const TOPIC_COLUMNS: [Column; 6] = [
    ("KIND", "kind", Show::Plain),
    ("NAME", "name", Show::Plain),
    ("FOLLOWERS", "followers", Show::Plain),
    ("CARRIED", "carried", Show::Plain),
    ("TITLE", "title", Show::Plain),
    ("QUERY", "query", Show::Plain),
];
const AUDIT_COLUMNS: [Column; 5] = [
    ("WHEN", "at", Show::Time),
    ("ADMIN", "admin", Show::Plain),
    ("ACTION", "action", Show::Plain),
    ("TARGET", "target", Show::Plain),
    ("DETAIL", "detail", Show::Plain),
];

fn cell(row: &Value, key: &str, show: Show) -> String {
    let value = key.split('.').fold(row, |v, k| &v[k]);
    match (value, show) {
        (Value::Null, _) => "-".into(),
        (Value::String(s), _) if s.is_empty() => "-".into(),
        (Value::String(s), _) => s.clone(),
        (Value::Number(n), Show::Time) => n
            .as_u64()
            .map(|secs| {
                httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
                )
            })
            .unwrap_or_else(|| n.to_string()),
        (other, _) => other.to_string(),
    }
}

/// Aligned columns with a header line.
fn table(rows: &Value, columns: &[Column]) -> String {
    let rows = rows.as_array().cloned().unwrap_or_default();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(_, key, show)| cell(row, key, *show))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (title, _, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let mut out: Vec<String> = values
            .into_iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        if let Some(last) = out.last_mut() {
            *last = last.trim_end().to_string();
        }
        out.join("  ")
    };
    let mut out = vec![line(columns.iter().map(|c| c.0.to_string()).collect())];
    out.extend(cells.into_iter().map(line));
    if rows.is_empty() {
        out.push("(none)".into());
    }
    out.join("\n")
}

fn stats_text(v: &Value) -> String {
    format!(
        "subscribers: {} active, {} unreachable, {} pending\n\
         log: head {}, {} entries, {} behind in total\n\
         deliveries: {} delivered, {} retried, {} refused\n\
         blocks: {} domains, {} software\n\
         policy: {}\n\
         uptime: {} s",
        v["subscribers"]["active"],
        v["subscribers"]["unreachable"],
        v["subscribers"]["pending"],
        v["log"]["head"],
        v["log"]["entries"],
        v["log"]["behind_total"],
        v["deliveries"]["delivered"],
        v["deliveries"]["retried"],
        v["deliveries"]["refused"],
        v["blocks"]["domain"],
        v["blocks"]["software"],
        v["policy"]["policy"].as_str().unwrap_or("?"),
        v["uptime_secs"],
    )
}
