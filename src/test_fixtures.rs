//! Test access to the shared fixtures (`../shared/fixtures` from the project root): real payloads,
//! actors and signature vectors from other projects' test suites.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// The fixture directory (a sibling of the crate).
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/");

/// The raw bytes of one fixture.
pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// One fixture as text.
pub fn text(name: &str) -> String {
    String::from_utf8(bytes(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// One fixture parsed as JSON.
pub fn json(name: &str) -> Value {
    serde_json::from_slice(&bytes(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Every `*.json` fixture that parses as JSON, with its file name, sorted by name.
pub fn all_json() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(DIR).unwrap_or_else(|e| panic!("fixture dir {DIR}: {e}"));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes(&name)) {
            out.push((name, v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A vector's `{"name": "value", …}` headers object as a header map.
pub fn headers_from(v: &Value) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, val) in v.as_object().expect("headers") {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(val.as_str().expect("value")).expect("value"),
        );
    }
    h
}

/// The relay's signing HTTP client as tests use it: a fresh key, loopback allowed, short timeouts.
pub fn http() -> crate::federation::net::Http {
    use crate::federation::net::{AddressPolicy, Http, HttpSettings};
    use std::time::Duration;
    Http::new(HttpSettings {
        key: std::sync::Arc::new(crate::httpsig::PrivateKey::generate().expect("key")),
        key_id: "http://relay.test/actor#main-key".into(),
        policy: AddressPolicy {
            allow_private: true,
        },
        max_fetch_bytes: 1 << 16,
        fetch_timeout: Duration::from_secs(2),
        delivery_timeout: Duration::from_secs(2),
        user_agent: "Plaza/test".into(),
    })
    .expect("http client")
}

/// A delivery engine on `store` as tests use it: the test HTTP client, retries 5 to 20 ms apart, one node.
pub fn engine(store: &crate::store::Store) -> std::sync::Arc<crate::federation::delivery::Engine> {
    use crate::federation::delivery::{Backoff, Engine};
    use std::time::Duration;
    Engine::new(
        store.clone(),
        http(),
        Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        crate::cluster::ownership::Ownership::alone(),
    )
}

/// Topic settings offering every kind, ten topics at most, no tag blocked.
pub fn topic_settings() -> crate::topics::admission::TopicSettings {
    crate::topics::admission::TopicSettings {
        max_topics: 10,
        kinds: crate::topics::TopicKind::ALL.to_vec(),
        blocked_tags: Vec::new(),
    }
}

/// Stores a follow of `topic` by the instance whose inbox is `inbox` (Mastodon's relay protocol).
pub async fn follow_topic(store: &crate::store::Store, topic: &crate::topics::Topic, inbox: &str) {
    let follower = crate::store::topics::TopicFollower {
        actor_id: format!("{inbox}#actor"),
        inbox: inbox.to_owned(),
        style: crate::store::Style::Mastodon,
        follow_id: format!("{inbox}#follow"),
        authority: crate::ap::authority_of(inbox).unwrap_or_default(),
    };
    store
        .follow_topic(topic, follower, 100, 100)
        .await
        .expect("follow");
}

/// An inbox on loopback answering `status(n)` to its n-th request (0-based) after `pause(n)`; its
/// URL and the count of requests so far.
pub async fn paced_inbox(
    status: fn(usize) -> u16,
    pause: fn(usize) -> std::time::Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(pause(n)).await;
            axum::http::StatusCode::from_u16(status(n)).expect("status")
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/inbox"), count)
}

/// Waits until `check` holds, failing the test after ten seconds.
pub async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
