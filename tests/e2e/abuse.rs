//! End-to-end: what an attacker can do to the relay's HTTP surface before any signature is verified —
//! replayed and revived signatures, oversized headers, trickled headers, connection floods.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::*;

/// POSTs `body` to the relay's inbox with exactly these headers, `Host` included (a replay keeps it).
async fn post_with_host(
    relay: &Relay,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().post(relay.inbox()).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("post");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_for_another_host_or_revived_by_unsigned_expires_is_refused() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    a.subscribe(&relay).await;

    // A Create alice signed for other.example (a server she really posted to), replayed here.
    let create = a.public_create("replayed");
    let body = serde_json::to_vec(&create).unwrap();
    let headers = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        "https://other.example/inbox",
        &body,
        SystemTime::now(),
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "Host" && v == "other.example")
    );
    let (status, reason) = post_with_host(&relay, headers, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}");
    assert!(reason.contains("not to this relay"), "{reason}");

    // A three-hour-old signature with `expires` appended outside what was signed.
    let create = a.public_create("revived");
    let body = serde_json::to_vec(&create).unwrap();
    let three_hours_ago = SystemTime::now() - Duration::from_secs(3 * 3600);
    let mut headers = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        &relay.inbox(),
        &body,
        three_hours_ago,
    );
    let in_an_hour = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    for (name, value) in &mut headers {
        if name == "Signature" {
            value.push_str(&format!(",expires=\"{in_an_hour}\""));
        }
    }
    let (status, reason) = post_raw(&relay.base, headers, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}");
    assert!(reason.contains("out of window"), "{reason}");

    // The same instance, signing properly, still gets through.
    let (status, reason) = a.post_as_user(&a.public_create("fine")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reason}");
}

/// Sends one request over a raw socket (`Connection: close`) and returns what the relay answered
/// (empty if it closed without answering): the header section first, the body only if no answer
/// came within 500 ms. A relay that refuses on the headers answers and closes while a client may
/// still be writing; an HTTP client library then reports a broken pipe, not the answer (CI saw it).
async fn raw_exchange(relay: &Relay, headers: Vec<(String, String)>, body: Vec<u8>) -> String {
    let mut head = format!("POST /inbox HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", relay.port);
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = TcpStream::connect(("127.0.0.1", relay.port))
        .await
        .expect("connect");
    let mut answer = Vec::new();
    // An error writing means the relay stopped reading: its answer is what counts.
    if stream.write_all(head.as_bytes()).await.is_ok() {
        // A relay that refuses on the headers alone answers before the body; sending the body
        // then would leave unread bytes at its close, and the reset could discard its answer.
        let mut buf = [0u8; 8192];
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return String::new(),
            Err(_) => {
                let _ = stream.write_all(&body).await;
            }
        }
    }
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    assert!(
        read.await.is_ok(),
        "the relay neither answered nor closed the connection"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_signature_headers_are_refused_cheaply() {
    let relay = Relay::start().await;
    let a = Instance::start(Flavor::Mastodon, &relay).await;
    let body = vec![b'x'; 1_000_000];
    let good = signed_post_headers(
        Flavor::Mastodon,
        &a.user_keys,
        &a.user_key_id(),
        &relay.inbox(),
        &body,
        SystemTime::now(),
    );
    // ~40 KB of SHA-256 entries over a 1 MB body (each used to hash the whole body).
    let digest = good
        .iter()
        .find(|(n, _)| n == "Digest")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut headers = good.clone();
    for (name, value) in &mut headers {
        if name == "Digest" {
            *value = vec![digest.as_str(); 800].join(",");
        }
    }
    let answer = raw_exchange(&relay, headers, body.clone()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("over the limit of 8192"), "{answer}");

    // A 430 KB Signature header does not even reach the parser: the header section is capped.
    let mut headers = good;
    for (name, value) in &mut headers {
        if name == "Signature" {
            value.push_str(&format!(",x=\"{}\"", "a".repeat(430 * 1024)));
        }
    }
    let answer = raw_exchange(&relay, headers, body).await;
    // Either the 431 arrives, or the relay's close reset the connection before it could be read:
    // refused unparsed either way.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    let health = reqwest::get(format!("{}/healthz", relay.base))
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK, "the relay still serves");
}

/// Whether the server closed `stream`: a read returns end of file or an error.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_trickling_headers_is_closed() {
    let relay = Relay::start_with(&[("PLAZA_HEADER_READ_TIMEOUT_MS", "300")]).await;
    let mut stream = TcpStream::connect(("127.0.0.1", relay.port)).await.unwrap();
    stream
        .write_all(format!("POST /inbox HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", relay.port).as_bytes())
        .await
        .unwrap();
    // One header line every 100 ms, never the end of the header section.
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < PATIENCE,
            "the relay kept a trickling connection open"
        );
        if stream.write_all(b"X-Slow: 1\r\n").await.is_err() || closed_by_server(&mut stream).await
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The relay itself is fine.
    let health = reqwest::get(format!("{}/healthz", relay.base))
        .await
        .unwrap();
    assert!(health.status().is_success());
}

/// A connection from `ip` to the relay.
async fn connect_from(ip: Ipv4Addr, relay: &Relay) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
    socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), relay.port))
        .await
        .unwrap()
}

/// Whether `stream` gets an answer to `GET /healthz` (keeping the connection open).
async fn healthz_on(stream: &mut TcpStream, relay: &Relay) -> bool {
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        relay.port
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_capped() {
    let relay = Relay::start_with(&[
        ("PLAZA_MAX_CONNECTIONS_PER_IP", "3"),
        ("PLAZA_HEADER_READ_TIMEOUT_MS", "60000"),
    ])
    .await;
    // An address no other test uses, so the count is this test's alone.
    let ip = Ipv4Addr::new(127, 0, 100, 1);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(ip, &relay).await;
        assert!(healthz_on(&mut stream, &relay).await, "within the cap");
        open.push(stream);
    }
    let mut fourth = connect_from(ip, &relay).await;
    let start = std::time::Instant::now();
    while !closed_by_server(&mut fourth).await {
        assert!(start.elapsed() < PATIENCE, "the 4th connection stayed open");
    }
    // Another address is not affected.
    let mut other = connect_from(Ipv4Addr::new(127, 0, 100, 2), &relay).await;
    assert!(healthz_on(&mut other, &relay).await);
    // Once one closes, the address may connect again.
    drop(open.pop());
    let start = std::time::Instant::now();
    loop {
        let mut again = connect_from(ip, &relay).await;
        if healthz_on(&mut again, &relay).await {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the freed place was not reusable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The ones kept open still work.
    for stream in &mut open {
        assert!(healthz_on(stream, &relay).await);
    }
    // Refusals are counted for the operator.
    let metrics = relay.metrics().await;
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plaza_connections_refused_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("plaza_connections_refused_total");
    assert!(refused >= 1, "{metrics}");
}

/// POSTs a signed `body` to the relay's inbox from the local address `from`.
async fn post_from(
    from: IpAddr,
    relay: &Relay,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> StatusCode {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .expect("client");
    let mut request = client.post(relay.inbox()).body(body);
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("host") {
            request = request.header(name, value);
        }
    }
    request.send().await.expect("post").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_spend_another_hosts_key_fetch_allowance() {
    let relay = Relay::start_with(&[
        ("PLAZA_KEY_FETCHES_PER_HOST_PER_MINUTE", "10"),
        ("PLAZA_KEY_FETCH_FAILURES_PER_IP_PER_MINUTE", "3"),
    ])
    .await;
    let m = Instance::start(Flavor::Mastodon, &relay).await;
    m.subscribe(&relay).await;
    // From an address of its own, a stranger signs posts by made-up actors of m with made-up keys.
    let stranger = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 201));
    let keys = Keys::generate();
    let mut statuses = Vec::new();
    for n in 0..20 {
        let ghost = format!("{}/users/ghost{n}", m.base);
        let mut create = m.public_create("spending m's allowance");
        create["actor"] = ghost.clone().into();
        let body = serde_json::to_vec(&create).unwrap();
        let headers = signed_post_headers(
            Flavor::Mastodon,
            &keys,
            &format!("{ghost}#main-key"),
            &relay.inbox(),
            &body,
            SystemTime::now(),
        );
        statuses.push(post_from(stranger, &relay, headers, body).await.as_u16());
    }
    assert_eq!(statuses[..3], [401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let ghost_fetches: usize = (0..20)
        .map(|n| m.fetches_of(&format!("/users/ghost{n}")))
        .sum();
    assert_eq!(ghost_fetches, 3, "only the stranger's allowance was spent");
    assert!(
        relay
            .metrics()
            .await
            .contains("plaza_rate_limited_total{limit=\"key_fetch_failures_ip\"} 17")
    );
    // m's own new key still resolves: its host allowance is left.
    let (status, body) = m.post_as_user(&m.public_create("mine")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
