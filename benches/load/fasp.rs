//! The `--fasp` phase of the load benchmark: FASP `data_sharing` figures. One simulated FASP-enabled
//! server registers the relay and activates `data_sharing` (its answers signed as Mastodon signs them),
//! one origin instance serves the announced posts and their indexable author; then
//! 1. announcements accepted per second from that one server (one URI each, 16 in flight, the
//!    per-server request budget off so the endpoint's own cost shows; its default is 10/s, burst 50);
//! 2. fetch→searchable: one announcement at a time, each naming a post with a word of its own, timed
//!    from the 204 until the search API finds the word (queue, signed GET of post and author, consent,
//!    the index commit every `index_commit_ms`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plaza::fasp::keys::SigningKey;
use plaza::fasp::signing::{sign, sign_response, unix_secs};
use plaza::httpsig::content_digest_header;
use serde_json::{Value, json};

use super::{PUBLIC, RelayProcess, next_loopback, percentile, probe_word, until_searchable};

const TOKEN: &str = "fasp-bench";
/// Post numbers of this phase (probe words of their own, apart from the other phases').
const FIRST_POST: u64 = 9_000_000;

#[derive(Clone)]
struct Server {
    base: String,
    key: Arc<SigningKey>,
    /// The serverId Plaza sent at registration.
    server_id: Arc<Mutex<String>>,
    /// Ids handed out for subscriptions: (category, subscriptionType, id).
    subscriptions: Arc<Mutex<Vec<(String, String, String)>>>,
}

async fn serve(app: Router) -> String {
    let addr = SocketAddr::new(next_loopback(), 0);
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// An answer signed as Mastodon signs them.
fn signed(key: &SigningKey, status: u16, body: Value) -> Response {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let digest = content_digest_header(&bytes);
    let sig = sign_response(key, "server", status, &digest, SystemTime::now()).expect("sign");
    let mut response = (StatusCode::from_u16(status).expect("status"), bytes).into_response();
    let headers = response.headers_mut();
    headers.insert("content-digest", digest.parse().expect("digest"));
    for (name, value) in sig.into_headers().expect("headers") {
        headers.insert(name, value);
    }
    response
}

async fn fasp_server() -> Server {
    // The base is only known once bound: the handlers read it from the state, filled in below.
    let key = Arc::new(SigningKey::generate().expect("key"));
    let state = Server {
        base: String::new(),
        key,
        server_id: Arc::default(),
        subscriptions: Arc::default(),
    };
    let base_cell: Arc<Mutex<String>> = Arc::default();
    let (cell, s) = (base_cell.clone(), state.clone());
    let app = Router::new()
        .route(
            "/.well-known/nodeinfo",
            get({
                let cell = cell.clone();
                move || async move {
                    let base = cell.lock().unwrap().clone();
                    axum::Json(json!({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                        "href": format!("{base}/nodeinfo/2.0")}]}))
                }
            }),
        )
        .route(
            "/nodeinfo/2.0",
            get(move || async move {
                let base = cell.lock().unwrap().clone();
                axum::Json(json!({"version": "2.0", "software": {"name": "mastodon", "version": "4.5.0"},
                    "protocols": ["activitypub"], "usage": {"users": {"total": 1}}, "openRegistrations": false,
                    "metadata": {"faspBaseUrl": format!("{base}/api/fasp")}}))
            }),
        )
        .route("/api/fasp/registration", post(register))
        .fallback(data_sharing)
        .with_state(s);
    let base = serve(app).await;
    *base_cell.lock().unwrap() = base.clone();
    Server { base, ..state }
}

async fn register(State(s): State<Server>, body: axum::Json<Value>) -> axum::Json<Value> {
    *s.server_id.lock().unwrap() = body["serverId"].as_str().unwrap_or_default().to_string();
    axum::Json(json!({"faspId": 1, "publicKey": s.key.public_key_base64(),
        "registrationCompletionUri": "http://example.invalid/done"}))
}

async fn data_sharing(
    State(s): State<Server>,
    method: Method,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut subs = s.subscriptions.lock().unwrap();
    let id = (subs.len() + 1).to_string();
    match (
        method.as_str(),
        uri.path().trim_start_matches("/api/fasp/data_sharing/v0/"),
    ) {
        ("POST", "event_subscriptions") => {
            subs.push((
                request["category"].as_str().unwrap_or_default().into(),
                request["subscriptionType"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                id.clone(),
            ));
            signed(&s.key, 201, json!({"subscription": {"id": id}}))
        }
        ("POST", "backfill_requests") => {
            subs.push(("backfill".into(), String::new(), id.clone()));
            signed(&s.key, 201, json!({"backfillRequest": {"id": id}}))
        }
        _ => signed(&s.key, 204, Value::Null),
    }
}

/// The origin: an indexable author and a public post per number, each with its probe word.
async fn origin() -> String {
    let cell: Arc<Mutex<String>> = Arc::default();
    let c = cell.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let base = c.lock().unwrap().clone();
        async move {
            let author = format!("{base}/users/baker");
            let doc = if uri.path() == "/users/baker" {
                json!({"id": author, "type": "Person", "preferredUsername": "baker", "name": "Baker",
                    "indexable": true, "discoverable": true, "inbox": format!("{author}/inbox")})
            } else if let Some(n) = uri.path().strip_prefix("/notes/").and_then(|n| n.parse::<u64>().ok()) {
                let published = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                json!({"id": format!("{base}/notes/{n}"), "type": "Note", "attributedTo": author,
                    "content": format!("<p>shared {}</p>", probe_word(n)), "published": published,
                    "to": [PUBLIC], "cc": []})
            } else {
                return StatusCode::NOT_FOUND.into_response();
            };
            ([("content-type", "application/activity+json")], doc.to_string()).into_response()
        }
    });
    let base = serve(app).await;
    *cell.lock().unwrap() = base.clone();
    base
}

/// POSTs one signed announcement of `uris`; the status.
async fn announce(
    client: &reqwest::Client,
    relay: &str,
    server: &Server,
    sub: &str,
    uris: &[String],
) -> StatusCode {
    let url = format!("{relay}/fasp/data_sharing/v0/announcements");
    let body = json!({"source": {"subscription": {"id": sub}}, "category": "content",
        "eventType": "new", "objectUris": uris});
    signed_post(client, server, &url, body.to_string().into_bytes()).await
}

/// POSTs `body` to `url` signed as the server signs its FASP requests; the status.
async fn signed_post(
    client: &reqwest::Client,
    server: &Server,
    url: &str,
    body: Vec<u8>,
) -> StatusCode {
    let digest = content_digest_header(&body);
    let server_id = server.server_id.lock().unwrap().clone();
    let sig = sign(
        &server.key,
        &[
            ("@method", "POST"),
            ("@target-uri", url),
            ("content-digest", &digest),
        ],
        unix_secs(SystemTime::now()),
        &server_id,
    )
    .expect("sign");
    let mut headers = HeaderMap::new();
    headers.insert("content-digest", digest.parse().expect("digest"));
    headers.insert("content-type", "application/json".parse().expect("type"));
    for (name, value) in sig.into_headers().expect("headers") {
        headers.insert(name, value);
    }
    client
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// Runs the phase and prints its figures.
pub async fn run(announcements: usize, samples: usize) {
    let relay = RelayProcess::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_FASP_RATE_PER_SERVER", "0"),
        ("PLAZA_FASP_SHARE_QUEUE_PER_SERVER", "10000000"),
        ("PLAZA_FASP_CONTINUATION_INTERVAL_MS", "3600000"),
    ])
    .await;
    let origin = origin().await;
    let server = fasp_server().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let registered = client
        .post(format!("{}/api/v1/admin/fasp/registrations", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({"server": server.base}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::CREATED, "registration");
    let url = format!("{}/fasp/capabilities/data_sharing/0/activation", relay.base);
    assert_eq!(
        signed_post(&client, &server, &url, Vec::new()).await,
        StatusCode::NO_CONTENT,
        "activation"
    );
    let started = Instant::now();
    let sub = loop {
        let found = server
            .subscriptions
            .lock()
            .unwrap()
            .iter()
            .find(|(c, t, _)| c == "content" && t == "lifecycle")
            .map(|(_, _, id)| id.clone());
        if let Some(id) = found {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no subscription"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // 1. Accepted per second, 16 in flight.
    let next = Arc::new(std::sync::atomic::AtomicU64::new(FIRST_POST));
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, relay, server, sub, origin, next, accepted) = (
            client.clone(),
            relay.base.clone(),
            server.clone(),
            sub.clone(),
            origin.clone(),
            next.clone(),
            accepted.clone(),
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= FIRST_POST + announcements as u64 {
                    return;
                }
                let uri = format!("{origin}/notes/{n}");
                if announce(&client, &relay, &server, &sub, &[uri]).await == StatusCode::NO_CONTENT
                {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = start.elapsed().as_secs_f64();
    let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
    let rate = accepted as f64 / secs;
    // Let the worker drain what phase 1 queued before timing single announcements.
    let last = FIRST_POST + announcements as u64 - 1;
    let drained = until_searchable(
        client.clone(),
        relay.base.clone(),
        last,
        Instant::now(),
        true,
    )
    .await;

    // 2. Fetch→searchable, one at a time.
    let mut latencies = Vec::new();
    for k in 0..samples as u64 {
        let n = FIRST_POST + announcements as u64 + k;
        let uri = format!("{origin}/notes/{n}");
        let status = announce(&client, &relay.base, &server, &sub, &[uri]).await;
        let at = Instant::now();
        assert_eq!(status, StatusCode::NO_CONTENT, "announcement {n}");
        if let Some(ms) = until_searchable(client.clone(), relay.base.clone(), n, at, true).await {
            latencies.push(ms);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!();
    println!("| FASP data_sharing figure | value |");
    println!("|---|---|");
    println!(
        "| announcements accepted/s, one server, 1 URI each, 16 in flight ({accepted} of {announcements}) | {rate:.0}/s |"
    );
    println!(
        "| queue of phase 1 drained into the index (last post searchable) | {} |",
        drained
            .map(|ms| format!("{:.1} s after the last 204", ms / 1000.0))
            .unwrap_or_else(|| "not within 30 s".into())
    );
    println!(
        "| fetch→searchable, one announcement at a time ({} of {samples} found) | p50 {:.0} ms, p99 {:.0} ms |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}
