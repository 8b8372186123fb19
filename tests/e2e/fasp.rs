//! Plaza as a FASP discovery provider, end to end: a simulated FASP-enabled Mastodon server on its own
//! loopback address (NodeInfo with `faspBaseUrl`, `/registration`) registers with the real relay
//! through the admin API, then calls the provider endpoints with RFC 9421 Ed25519 signatures made as
//! Mastodon makes them and checks every signed answer with its own Ed25519 (ed25519-dalek):
//! provider_info, activation, account_search with paging, refusals (401, 403, 422, 429), durability
//! across a restart, removal, the `/fasp` page and `plaza admin fasp`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, Verifier as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::*;

const TOKEN: &str = "fasp-admin-token";

/// The simulated Mastodon's FASP side.
pub struct Server {
    pub base: String,
    pub key: ed25519_dalek::SigningKey,
    /// The registration request Plaza sent.
    registration: Arc<Mutex<Option<Value>>>,
    /// What Plaza asked of its data_sharing endpoints.
    pub sharing: Arc<Mutex<Sharing>>,
}

/// Plaza's requests to the simulated server's data_sharing endpoints, each signature checked.
#[derive(Default)]
pub struct Sharing {
    /// Event subscriptions created: (id, body).
    pub subscriptions: Vec<(String, Value)>,
    /// Backfill requests created: (id, body).
    pub backfills: Vec<(String, Value)>,
    /// Subscription ids Plaza cancelled.
    pub unsubscribed: Vec<String>,
    /// Backfill ids Plaza asked a continuation of.
    pub continuations: Vec<String>,
    /// Requests whose signature did not verify, and why.
    pub refused: Vec<String>,
}

impl Sharing {
    /// The id of the subscription for `category`/`kind`.
    pub fn subscription(&self, category: &str, kind: &str) -> String {
        self.subscriptions
            .iter()
            .find(|(_, b)| b["category"] == category && b["subscriptionType"] == kind)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no {category}/{kind} subscription"))
    }

    /// The id of the backfill request for `category`.
    pub fn backfill(&self, category: &str) -> String {
        self.backfills
            .iter()
            .find(|(_, b)| b["category"] == category)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no {category} backfill"))
    }
}

#[derive(Clone)]
struct Shared {
    base: String,
    public_key: String,
    key: ed25519_dalek::SigningKey,
    registration: Arc<Mutex<Option<Value>>>,
    sharing: Arc<Mutex<Sharing>>,
}

impl Server {
    pub async fn start() -> Server {
        let ip = next_loopback();
        let addr = SocketAddr::new(ip, free_port(ip));
        let base = format!("http://{addr}");
        let seed: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let registration = Arc::new(Mutex::new(None));
        let sharing = Arc::new(Mutex::new(Sharing::default()));
        let shared = Shared {
            base: base.clone(),
            public_key: STANDARD.encode(key.verifying_key().as_bytes()),
            key: key.clone(),
            registration: registration.clone(),
            sharing: sharing.clone(),
        };
        let app = Router::new()
            .route("/.well-known/nodeinfo", get(wellknown))
            .route("/nodeinfo/2.0", get(nodeinfo))
            .route("/api/fasp/registration", post(register))
            .fallback(data_sharing)
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            base,
            key,
            registration,
            sharing,
        }
    }

    pub fn registration(&self) -> Value {
        self.registration
            .lock()
            .unwrap()
            .clone()
            .expect("registered")
    }

    /// A request to the relay signed as Mastodon signs FASP requests (label, components, params).
    async fn call(
        &self,
        relay: &Relay,
        method: reqwest::Method,
        path: &str,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
        created_ago: u64,
    ) -> reqwest::Response {
        self.call_with(relay, method, path, key_id, key, created_ago, Vec::new())
            .await
    }

    /// [`Server::call`] with a body.
    #[allow(clippy::too_many_arguments)]
    async fn call_with(
        &self,
        relay: &Relay,
        method: reqwest::Method,
        path: &str,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
        created_ago: u64,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let url = format!("{}/fasp{path}", relay.base);
        let digest = format!("sha-256=:{}:", STANDARD.encode(sha2::Sha256::digest(&body)));
        let created = now() - created_ago;
        let params = format!(
            "(\"@method\" \"@target-uri\" \"content-digest\");created={created};keyid=\"{key_id}\""
        );
        let base = format!(
            "\"@method\": {}\n\"@target-uri\": {url}\n\"content-digest\": {digest}\n\"@signature-params\": {params}",
            method.as_str()
        );
        let signature = STANDARD.encode(key.sign(base.as_bytes()).to_bytes());
        reqwest::Client::new()
            .request(method, &url)
            .header("content-digest", digest)
            .header("signature-input", format!("sig1={params}"))
            .header("signature", format!("sig1=:{signature}:"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("FASP request")
    }

    pub async fn signed(
        &self,
        relay: &Relay,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::Response {
        self.signed_with(relay, method, path, Vec::new()).await
    }

    /// [`Server::signed`] with a body.
    pub async fn signed_with(
        &self,
        relay: &Relay,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let server_id = self.registration()["serverId"]
            .as_str()
            .unwrap()
            .to_string();
        self.call_with(relay, method, path, &server_id, &self.key, 0, body)
            .await
    }

    /// Registers Plaza here through the admin API (bearer `token`): Plaza's public key for this server.
    pub async fn register_with(&self, relay: &Relay, token: &str) -> ed25519_dalek::VerifyingKey {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/admin/fasp/registrations", relay.base))
            .bearer_auth(token)
            .json(&json!({ "server": self.base }))
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), StatusCode::CREATED);
        let public = STANDARD
            .decode(self.registration()["publicKey"].as_str().unwrap())
            .unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap()
    }
}

/// The simulated server's data_sharing endpoints (under `/api/fasp/data_sharing/v0`), as Mastodon
/// answers them: every request's Content-Digest and Ed25519 signature (keyid = the faspId, 42) checked
/// with the key Plaza registered (401 otherwise), every answer signed.
async fn data_sharing(
    State(s): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    let url = format!("{}{}", s.base, path);
    if let Err(reason) = check_plaza_signature(&s, method.as_str(), &url, &headers, &body) {
        s.sharing.lock().unwrap().refused.push(reason);
        return signed_answer(&s.key, 401, Vec::new());
    }
    let Some(rest) = path.strip_prefix("/api/fasp/data_sharing/v0") else {
        return signed_answer(&s.key, 404, Vec::new());
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut sharing = s.sharing.lock().unwrap();
    let next_id = sharing.subscriptions.len() + sharing.backfills.len() + 1;
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (status, answer) = match (method.as_str(), parts.as_slice()) {
        ("POST", ["event_subscriptions"]) => {
            sharing.subscriptions.push((next_id.to_string(), request));
            (
                201,
                json!({ "subscription": { "id": next_id.to_string() } }),
            )
        }
        ("DELETE", ["event_subscriptions", id]) => {
            sharing.unsubscribed.push(id.to_string());
            (204, Value::Null)
        }
        // Backfill ids are numbers, as Mastodon's are.
        ("POST", ["backfill_requests"]) => {
            sharing.backfills.push((next_id.to_string(), request));
            (201, json!({ "backfillRequest": { "id": next_id } }))
        }
        ("POST", ["backfill_requests", id, "continuation"]) => {
            sharing.continuations.push(id.to_string());
            (204, Value::Null)
        }
        _ => (404, Value::Null),
    };
    let bytes = if answer.is_null() {
        Vec::new()
    } else {
        answer.to_string().into_bytes()
    };
    signed_answer(&s.key, status, bytes)
}

/// Checks a request from Plaza: Content-Digest of the body, RFC 9421 Ed25519 over `@method`,
/// `@target-uri` and `content-digest`, keyid 42, with the key Plaza sent at registration.
fn check_plaza_signature(
    s: &Shared,
    method: &str,
    url: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| format!("no {n}"))
    };
    let digest = header("content-digest")?;
    if digest != format!("sha-256=:{}:", STANDARD.encode(sha2::Sha256::digest(body))) {
        return Err("content-digest does not match the body".into());
    }
    let params = header("signature-input")?
        .strip_prefix("sig1=")
        .ok_or("label")?
        .to_string();
    if !params.starts_with("(\"@method\" \"@target-uri\" \"content-digest\");created=")
        || !params.ends_with(";keyid=\"42\"")
    {
        return Err(format!("signature parameters {params}"));
    }
    let signature = header("signature")?;
    let signature = signature
        .strip_prefix("sig1=:")
        .and_then(|v| v.strip_suffix(':'))
        .ok_or("signature")?;
    let signature: [u8; 64] = STANDARD
        .decode(signature)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "signature length")?;
    let public = s
        .registration
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|r| r["publicKey"].as_str().map(str::to_string))
        .ok_or("not registered")?;
    let public: [u8; 32] = STANDARD
        .decode(public)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "key length")?;
    let base = format!(
        "\"@method\": {method}\n\"@target-uri\": {url}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
    );
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|e| e.to_string())?
        .verify(
            base.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|e| format!("signature does not verify: {e}"))
}

/// An answer signed as Mastodon signs them: Content-Digest, Ed25519 over `@status` and `content-digest`.
fn signed_answer(
    key: &ed25519_dalek::SigningKey,
    status: u16,
    body: Vec<u8>,
) -> axum::response::Response {
    let digest = format!("sha-256=:{}:", STANDARD.encode(sha2::Sha256::digest(&body)));
    let params = format!(
        "(\"@status\" \"content-digest\");created={};keyid=\"server\"",
        now()
    );
    let base = format!(
        "\"@status\": {status}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
    );
    let signature = STANDARD.encode(key.sign(base.as_bytes()).to_bytes());
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-digest", digest)
        .header("signature-input", format!("sig1={params}"))
        .header("signature", format!("sig1=:{signature}:"))
        .body(axum::body::Body::from(body))
        .expect("answer")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn wellknown(State(s): State<Shared>) -> axum::Json<Value> {
    axum::Json(json!({ "links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
        "href": format!("{}/nodeinfo/2.0", s.base),
    }]}))
}

async fn nodeinfo(State(s): State<Shared>) -> axum::Json<Value> {
    axum::Json(json!({
        "version": "2.0",
        "software": { "name": "mastodon", "version": "4.5.0" },
        "protocols": ["activitypub"],
        "usage": { "users": { "total": 1 } },
        "openRegistrations": false,
        "metadata": { "nodeName": "FASP test", "faspBaseUrl": format!("{}/api/fasp", s.base) },
    }))
}

/// Mastodon answers the registration with 200 (the spec says 201; Plaza takes both).
async fn register(State(s): State<Shared>, body: axum::Json<Value>) -> axum::Json<Value> {
    *s.registration.lock().unwrap() = Some(body.0);
    axum::Json(json!({
        "faspId": 42,
        "publicKey": s.public_key,
        "registrationCompletionUri": format!("{}/admin/fasp/providers/42/registration/new", s.base),
    }))
}

/// Checks the relay's signed answer as Mastodon does: Content-Digest present and matching the body,
/// an Ed25519 signature over `@status` and `content-digest` with the key Plaza registered. The body.
pub async fn verified(
    response: reqwest::Response,
    plaza_key: &ed25519_dalek::VerifyingKey,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{status}: no {n}"))
            .to_string()
    };
    let digest = header("content-digest");
    assert_eq!(
        digest,
        format!("sha-256=:{}:", STANDARD.encode(sha2::Sha256::digest(&body)))
    );
    let params = header("signature-input")
        .strip_prefix("sig1=")
        .expect("label sig1")
        .to_string();
    assert!(
        params.starts_with("(\"@status\" \"content-digest\");created="),
        "{params}"
    );
    assert!(params.contains("keyid=\"42\""), "{params}");
    let signature = header("signature");
    let signature = signature
        .strip_prefix("sig1=:")
        .and_then(|s| s.strip_suffix(':'))
        .expect("signature");
    let signature: [u8; 64] = STANDARD.decode(signature).unwrap().try_into().unwrap();
    let base = format!(
        "\"@status\": {}\n\"content-digest\": {digest}\n\"@signature-params\": {params}",
        status.as_u16()
    );
    plaza_key
        .verify(
            base.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .expect("Plaza's answer verifies with the key it registered");
    (status, headers, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON answer")
}

/// Two instances, each with a discoverable bakery; both listed in the directory.
async fn bakeries(relay: &Relay) -> Vec<Arc<Instance>> {
    let mut instances = Vec::new();
    for n in 0..2 {
        let instance = Instance::start(Flavor::Mastodon, relay).await;
        instance.set_user_fields(json!({
            "name": format!("Bakery number {n}"),
            "summary": "<p>A sourdough bakery run as a co-op</p>",
            "indexable": true,
            "discoverable": true,
        }));
        instance.subscribe(relay).await;
        let (status, body) = instance
            .post_as_user(&instance.public_create("fresh sourdough today"))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        instances.push(instance);
    }
    let started = std::time::Instant::now();
    loop {
        let (_, dir) =
            get_status_json(format!("{}/api/plaza/v1/directory?q=sourdough", relay.base)).await;
        if dir["profiles"].as_array().is_some_and(|p| p.len() == 2) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "directory never listed both: {dir}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    instances
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mastodon_registers_plaza_and_searches_accounts_with_signed_requests() {
    let mut relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_FASP_CONTACT_EMAIL", "fasp@plaza.example"),
        ("PLAZA_FASP_RATE_PER_SERVER", "1"),
        ("PLAZA_FASP_BURST_PER_SERVER", "40"),
    ])
    .await;
    let instances = bakeries(&relay).await;
    let server = Server::start().await;

    // Registration through the admin API: NodeInfo, then the unsigned POST to /registration.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/fasp/registrations", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "server": server.base }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    let sent = server.registration();
    assert_eq!(sent["name"], "Plaza relay");
    assert_eq!(sent["baseUrl"], format!("{}/fasp", relay.base));
    assert_eq!(registered["serverId"], sent["serverId"]);
    let plaza_public = STANDARD
        .decode(sent["publicKey"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        registered["fingerprint"],
        STANDARD.encode(sha2::Sha256::digest(&plaza_public))
    );
    assert!(
        registered["registrationCompletionUri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/admin/fasp/providers/42/registration/new"))
    );
    let plaza_key =
        ed25519_dalek::VerifyingKey::from_bytes(&plaza_public.try_into().unwrap()).unwrap();
    let list: Value = relay
        .admin(reqwest::Method::GET, "/fasp/registrations", Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["registrations"][0]["serverId"], sent["serverId"]);
    assert!(list["registrations"][0].get("own_private_key").is_none());

    // provider_info lists only what is implemented, with the configured contact.
    let (status, _, body) = verified(
        server
            .signed(&relay, reqwest::Method::GET, "/provider_info")
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let info = json_of(&body);
    assert_eq!(
        info["capabilities"],
        json!([
            { "id": "account_search", "version": "0.1" },
            { "id": "data_sharing", "version": "0.1" },
            { "id": "trends", "version": "0.1" },
            { "id": "follow_recommendation", "version": "0.1" }
        ])
    );
    assert_eq!(info["contactEmail"], "fasp@plaza.example");
    assert_eq!(
        info["privacyPolicy"][0]["url"],
        format!("{}/fasp#privacy", relay.base)
    );

    // Not activated yet: 403, signed.
    let search = "/account_search/v0/search?term=sourdough&limit=1";
    let (status, _, _) = verified(
        server.signed(&relay, reqwest::Method::GET, search).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::POST,
                "/capabilities/account_search/0/activation",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::POST,
                "/capabilities/trends/7/activation",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a version not offered");

    // account_search: actor URIs, one per page, the next page linked.
    let (status, headers, body) = verified(
        server.signed(&relay, reqwest::Method::GET, search).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let first = json_of(&body);
    assert_eq!(first.as_array().map(Vec::len), Some(1), "{first}");
    let link = headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a next link")
        .to_string();
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(url, _)| url.to_string())
        .expect("rel=next");
    let next_path = next
        .strip_prefix(&format!("{}/fasp", relay.base))
        .expect("under the provider base");
    let (status, headers, body) = verified(
        server.signed(&relay, reqwest::Method::GET, next_path).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let second = json_of(&body);
    assert!(headers.get("link").is_none(), "last page");
    let mut found: Vec<String> = [first, second]
        .iter()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    found.sort();
    let mut users: Vec<String> = instances.iter().map(|i| i.user()).collect();
    users.sort();
    assert_eq!(found, users);

    // No term: 422, signed.
    let (status, _, _) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::GET,
                "/account_search/v0/search?limit=3",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Refused before any work: unsigned, a wrong key, an unknown key id, a stale signature.
    let server_id = sent["serverId"].as_str().unwrap().to_string();
    let unsigned = reqwest::get(format!("{}/fasp/provider_info", relay.base))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert!(unsigned.headers().get("content-digest").is_some());
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    for (key_id, key, ago) in [
        (server_id.as_str(), &stranger, 0),
        ("someone-else", &server.key, 0),
        (server_id.as_str(), &server.key, 400),
    ] {
        let r = server
            .call(
                &relay,
                reqwest::Method::GET,
                "/provider_info",
                key_id,
                key,
                ago,
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{key_id} {ago}");
    }

    // The registration and the activation outlive a restart.
    relay.kill_and_restart().await;
    let (status, _, _) = verified(
        server.signed(&relay, reqwest::Method::GET, search).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Over its budget, the server waits: 429 with Retry-After, still signed.
    let mut limited = None;
    for _ in 0..60 {
        let r = server
            .signed(&relay, reqwest::Method::GET, "/provider_info")
            .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let (_, headers, _) = verified(limited.expect("a 429"), &plaza_key).await;
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1);
    assert!(
        relay
            .metrics()
            .await
            .contains("plaza_fasp_requests_total{outcome=\"rate_limited\"}")
    );

    // The page for server admins, and the CLI.
    let page = reqwest::get(format!("{}/fasp", relay.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("fingerprint") && page.contains("account_search"),
        "{page}"
    );
    let out = relay.command(&["admin", "fasp", "list", "--token", TOKEN]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&server_id));

    // Removed: its signed requests are refused at once.
    let removed = relay
        .admin(
            reqwest::Method::DELETE,
            &format!("/fasp/registrations/{server_id}"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let r = server
        .signed(&relay, reqwest::Method::GET, "/provider_info")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A consenting world for follow recommendations: each instance's user (indexable; discoverable or
/// not) posts a public note with `tags`, the `nth` such post. It is searchable when this returns.
async fn poster(relay: &Relay, nth: u64, discoverable: bool, tags: &[&str]) -> Arc<Instance> {
    let instance = Instance::start(Flavor::Mastodon, relay).await;
    instance.set_user_fields(json!({ "indexable": true, "discoverable": discoverable }));
    instance.subscribe(relay).await;
    let mut create = instance.public_create("baking with friends");
    create["object"]["tag"] = tags
        .iter()
        .map(|t| json!({ "type": "Hashtag", "name": format!("#{t}") }))
        .collect();
    let (status, body) = instance.post_as_user(&create).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let started = std::time::Instant::now();
    loop {
        let (_, page) =
            get_status_json(format!("{}/api/plaza/v1/search?q=baking", relay.base)).await;
        if page["total"] == nth {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "never indexed: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    instance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_recommendations_name_discoverable_accounts_on_the_same_hashtags() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let asker = poster(&relay, 1, true, &["sourdough", "coop"]).await;
    let both = poster(&relay, 2, true, &["sourdough", "coop"]).await;
    let one = poster(&relay, 3, true, &["coop"]).await;
    let hidden = poster(&relay, 4, false, &["sourdough", "coop"]).await;
    let unrelated = poster(&relay, 5, true, &["knitting"]).await;
    let server = Server::start().await;
    let plaza_key = server.register_with(&relay, TOKEN).await;
    let path = |uri: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("accountUri", uri)
            .finish();
        format!("/follow_recommendation/v0/accounts?{query}")
    };

    // Not activated yet: 403; then activated.
    let ask = path(&asker.user());
    let (status, _, _) = verified(
        server.signed(&relay, reqwest::Method::GET, &ask).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::POST,
                "/capabilities/follow_recommendation/0/activation",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The account sharing both hashtags first, then the one sharing one; never the asker, the
    // non-discoverable account or the unrelated one.
    let (status, _, body) = verified(
        server.signed(&relay, reqwest::Method::GET, &ask).await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body), json!([both.user(), one.user()]));
    let mentioned = json_of(&body).to_string();
    for absent in [&asker, &hidden, &unrelated] {
        assert!(!mentioned.contains(&absent.user()), "{mentioned}");
    }

    // An account the index knows nothing of: an empty array.
    let (status, _, body) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::GET,
                &path("https://nowhere.example/users/zed"),
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body), json!([]));

    // Without accountUri: 422, signed. Unsigned: 401.
    let (status, _, _) = verified(
        server
            .signed(
                &relay,
                reqwest::Method::GET,
                "/follow_recommendation/v0/accounts?language=en",
            )
            .await,
        &plaza_key,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let unsigned = reqwest::get(format!("{}/fasp{ask}", relay.base))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
}

/// Sends the `/fasp` sign-up form: the status and the page.
async fn sign_up(relay: &Relay, server: &str) -> (StatusCode, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("server", server)
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{}/fasp/signup", relay.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("sign-up form");
    let status = response.status();
    (status, response.text().await.expect("page"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_sign_up_form_registers_at_once_and_refuses_bad_or_blocked_servers() {
    let relay = Relay::start_with(&[("PLAZA_ADMIN_TOKEN", TOKEN)]).await;
    let page = get_text(format!("{}/fasp", relay.base)).await;
    assert!(
        page.contains("Sign-ups are open") && page.contains("action=\"/fasp/signup\""),
        "{page}"
    );
    let server = Server::start().await;
    let (status, page) = sign_up(&relay, &server.base).await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let sent = server.registration();
    let public = STANDARD
        .decode(sent["publicKey"].as_str().unwrap())
        .unwrap();
    let fingerprint = STANDARD.encode(sha2::Sha256::digest(&public));
    assert!(page.contains(&fingerprint), "{page}");
    assert!(
        page.contains("/admin/fasp/providers/42/registration/new"),
        "{page}"
    );
    let list: Value = relay
        .admin(reqwest::Method::GET, "/fasp/registrations", Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["registrations"][0]["serverId"], sent["serverId"]);

    // The same server again, a bad address, none at all: refused with the reason on the page.
    let (status, page) = sign_up(&relay, &server.base).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("already registered"), "{page}");
    let (status, page) = sign_up(&relay, "ftp://social.example").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("must be an http(s) URL"), "{page}");
    let (status, _) = sign_up(&relay, " ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A blocked domain is refused before the relay contacts it.
    let blocked = Server::start().await;
    let host = url::Url::parse(&blocked.base)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/blocks", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "domain": host, "reason": "spam" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (status, page) = sign_up(&relay, &blocked.base).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("blocked"), "{page}");
    assert!(blocked.registration.lock().unwrap().is_none());
}

/// The sign-ups waiting for approval, from the admin API.
async fn waiting(relay: &Relay) -> Value {
    relay
        .admin(reqwest::Method::GET, "/fasp/signups", Some(TOKEN))
        .await
        .json()
        .await
        .expect("sign-up list")
}

/// Approves the sign-up of `server` through the admin API.
async fn approve(relay: &Relay, server: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/admin/fasp/signups/approve", relay.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "server": server }))
        .send()
        .await
        .expect("approve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_approval_sign_ups_wait_until_an_admin_approves_or_rejects_them() {
    let relay = Relay::start_with(&[
        ("PLAZA_ADMIN_TOKEN", TOKEN),
        ("PLAZA_SUBSCRIPTION_POLICY", "approval"),
    ])
    .await;
    let server = Server::start().await;
    let (status, page) = sign_up(&relay, &server.base).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{page}");
    assert!(page.contains("waits for approval"), "{page}");
    assert!(server.registration.lock().unwrap().is_none(), "not yet");
    let pending = waiting(&relay).await;
    assert_eq!(pending["signups"][0]["server"], server.base);
    let out = relay.command(&["admin", "fasp", "pending", "--token", TOKEN]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&server.base));

    // Approved: the relay registers with the server, and the sign-up leaves the list.
    let approved = approve(&relay, &server.base).await;
    assert_eq!(approved.status(), StatusCode::CREATED);
    let approved: Value = approved.json().await.unwrap();
    assert_eq!(approved["serverId"], server.registration()["serverId"]);
    let pending = waiting(&relay).await;
    assert_eq!(pending["signups"], json!([]));

    // Rejected through the CLI: it leaves the list and the server is never contacted.
    let other = Server::start().await;
    let (status, _) = sign_up(&relay, &other.base).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let out = relay.command(&["admin", "fasp", "reject", &other.base, "--token", TOKEN]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pending = waiting(&relay).await;
    assert_eq!(pending["signups"], json!([]));
    assert!(other.registration.lock().unwrap().is_none());
    let again = approve(&relay, &other.base).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}
