//! The keep-alive HTTP/1.1 connection a delivery worker keeps to its subscriber's inbox.
//!
//! Every delivery to one subscriber goes to the same inbox, one request at a time, so each worker owns
//! one connection and writes its requests itself ([`crate::federation::http1`]), signed with a
//! [`CavageTemplate`] of its inbox. Compared with a pooled client this skips, per request, the pool
//! lookup, a separate connection task to wake, the request's header map, and the client's redirect,
//! retry and timeout layers: the relay's CPU goes to the one signature a delivery needs. Measured with
//! `cargo bench --bench load`; see docs/performance.md.
//!
//! The network rules are those of [`Http`]: the address policy on the URL and on every resolved address,
//! a connect timeout and a timeout on the whole delivery, TLS verified against the platform's roots,
//! response bodies read up to a cap (and the connection dropped past it). A connection the receiver
//! closed (or answered unasked) while idle for more than [`CHECK_AFTER_IDLE`] is noticed before use; a
//! request that fails on a reused connection is tried once more on a fresh one, since keep-alive
//! connections may be closed by the other side at any moment (a duplicate is harmless: receivers
//! deduplicate by activity id).
//!
//! A connection left unused for [`IDLE_CLOSE`] is closed by the worker waiting on the log (see
//! [`InboxClient::close_if_idle`]): a kept connection holds its socket, its read and write buffers (a
//! few KB) and the kernel's socket buffers, and most receivers end idle connections soon after anyway
//! (nginx's default keep-alive timeout is 75 s), leaving the relay holding a half-closed socket until
//! its next use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

use crate::federation::http1::{Answer, Connection};
use crate::federation::net::{ACTIVITY_JSON, Http, Outcome, classify, knock_again, resolve};
use crate::httpsig::{self, CavageTemplate, PrivateKey, Scheme};

/// How long establishing a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Response bodies are read (so the connection can be reused) up to this size, then the connection is
/// dropped instead. Inboxes answer 202 with an empty or tiny body.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// A kept connection unused this long is closed (see the module documentation): shorter than the
/// keep-alive timeout receivers commonly set (nginx: 75 s), so a connection the receiver would have
/// ended is not held, while a relay with posts flowing keeps every connection it uses.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// A byte stream the connection runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Io for T {}

/// A kept connection unused longer than this is checked for a close (or an unasked answer) by the
/// receiver before it carries a request; one in steady use is not (the check costs a system call).
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Signed POSTs to one inbox over one reused connection.
pub struct InboxClient {
    http: Http,
    inbox: Url,
    /// Why the address policy forbids this inbox, if it does (checked once: the URL never changes).
    forbidden: Option<String>,
    /// The `Host` header: the authority the signature covers.
    host: HeaderValue,
    /// The request target in origin form (`/inbox?…`).
    target: String,
    /// The signature scheme this inbox's host accepts, as known when the client was made or learnt
    /// since by a double knock: read on every delivery without touching shared state.
    scheme: Scheme,
    conn: Option<Conn>,
    /// The key requests are signed with and its id, when not the relay's own (a topic actor's).
    signer: Option<(Arc<PrivateKey>, Arc<str>)>,
    /// What every draft-cavage signature of a request to this inbox shares, for the key id in use.
    cavage: Option<CavageTemplate>,
}

impl Http {
    /// A client that delivers to `inbox` over a connection of its own.
    pub fn inbox_client(&self, inbox: &str) -> crate::Result<InboxClient> {
        InboxClient::new(self.clone(), inbox)
    }
}

impl InboxClient {
    /// A client for `inbox`; connects on the first delivery.
    pub fn new(http: Http, inbox: &str) -> crate::Result<InboxClient> {
        let unusable = |why: String| crate::Error::BadRequest(format!("inbox {inbox}: {why}"));
        let inbox = Url::parse(inbox).map_err(|e| unusable(e.to_string()))?;
        let host = HeaderValue::from_str(&httpsig::authority(&inbox)?)
            .map_err(|_| unusable("host is not a valid header".into()))?;
        let target = httpsig::request_target(&inbox);
        let forbidden = http.policy().check_url(&inbox).err().map(|e| e.to_string());
        let scheme = http.schemes().for_host(host.to_str().unwrap_or_default());
        Ok(InboxClient {
            http,
            inbox,
            forbidden,
            host,
            target,
            scheme,
            conn: None,
            signer: None,
            cavage: None,
        })
    }

    /// Signs the next deliveries with `key`, published at `key_id`, instead of the relay's key (a topic
    /// delivers as its own actor). Cheap when it is the key in use already.
    pub fn sign_as(&mut self, key: &Arc<PrivateKey>, key_id: &Arc<str>) {
        let same = self
            .signer
            .as_ref()
            .is_some_and(|(k, id)| Arc::ptr_eq(k, key) && id == key_id);
        if !same {
            self.signer = Some((key.clone(), key_id.clone()));
        }
    }

    /// Delivers `body` with a signed POST. `digest` is the body's `Digest` header value, computed once
    /// per activity rather than once per recipient.
    pub async fn deliver(&mut self, body: Bytes, digest: &str) -> Outcome {
        if let Some(reason) = &self.forbidden {
            return Outcome::Refused(reason.clone());
        }
        let timeout = self.http.delivery_timeout();
        match tokio::time::timeout(timeout, self.attempt(body, digest)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.conn = None;
                Outcome::Retry(format!("no answer within {} s", timeout.as_secs()))
            }
        }
    }

    /// Sends signed with the host's scheme; an answer of 401 or 400 (a receiver that cannot read that
    /// scheme, or accepts only the other) gets the same request once more signed with the other
    /// scheme, which becomes this host's scheme when it is accepted.
    async fn attempt(&mut self, body: Bytes, digest: &str) -> Outcome {
        let scheme = self.scheme;
        let status = match self.send(scheme, &body, digest).await {
            Ok(status) => status,
            Err(outcome) => return outcome,
        };
        if !knock_again(status) {
            return classify(status);
        }
        let other = scheme.other();
        match self.send(other, &body, digest).await {
            Ok(second) if second.is_success() => {
                tracing::info!(inbox = %self.inbox, refused = scheme.as_str(), accepted = other.as_str(), "receiver takes the other signature scheme");
                self.scheme = other;
                let host = self.host.to_str().unwrap_or_default().to_owned();
                self.http.schemes().remember(&host, other).await;
                Outcome::Delivered
            }
            _ => classify(status),
        }
    }

    /// Connects first when there is no kept connection, then signs (an inbox that is down costs a
    /// refused connection, not an RSA signature, on every retry), then sends. A failure on a kept
    /// connection is tried once more on a new one.
    async fn send(
        &mut self,
        scheme: Scheme,
        body: &[u8],
        digest: &str,
    ) -> Result<StatusCode, Outcome> {
        let kept = self.conn.take().and_then(|mut conn| {
            let fit = conn.used.elapsed() < CHECK_AFTER_IDLE || conn.http.usable_after_idle();
            fit.then_some(conn)
        });
        let (mut conn, kept) = match kept {
            Some(conn) => (conn, true),
            None => match self.connect().await {
                Ok(conn) => (conn, false),
                Err(reason) => return Err(Outcome::Retry(reason)),
            },
        };
        let signed = match self.sign(scheme, digest) {
            Ok(headers) => headers,
            Err(e) => return Err(Outcome::Refused(format!("signing: {e}"))),
        };
        let mut answer = self.exchange(&mut conn, &signed, body).await;
        if let (Err(reason), true) = (&answer, kept) {
            tracing::debug!(inbox = %self.inbox, %reason, "kept connection failed; reconnecting");
            conn = match self.connect().await {
                Ok(conn) => conn,
                Err(reason) => return Err(Outcome::Retry(reason)),
            };
            answer = self.exchange(&mut conn, &signed, body).await;
        }
        match answer {
            // An answer, even 5xx or 429, leaves a connection fit for the next attempt.
            Ok(answer) => Ok(self.keep(conn, answer)),
            Err(reason) => Err(Outcome::Retry(reason)),
        }
    }

    /// POSTs `body` with the `signed` headers on `conn`.
    async fn exchange(
        &self,
        conn: &mut Conn,
        signed: &[(HeaderName, HeaderValue)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let fields = [
            (&header::HOST, &self.host),
            (&header::USER_AGENT, self.http.user_agent()),
        ];
        let signed = signed.iter().map(|(name, value)| (name, value));
        conn.http
            .post(
                &self.target,
                fields.into_iter().chain(signed),
                body,
                MAX_RESPONSE_BODY,
            )
            .await
    }

    /// The signature headers of a POST of a body with `digest` to the inbox, signed with `scheme` by
    /// the key in use.
    fn sign(
        &mut self,
        scheme: Scheme,
        digest: &str,
    ) -> crate::Result<Vec<(HeaderName, HeaderValue)>> {
        let (key, key_id) = match &self.signer {
            Some((key, key_id)) => (&**key, &**key_id),
            None => (self.http.key(), self.http.key_id()),
        };
        let now = SystemTime::now();
        match scheme {
            Scheme::Cavage => {
                let template = match &mut self.cavage {
                    Some(template) if template.key_id() == key_id => template,
                    slot => slot.insert(CavageTemplate::new(
                        key_id,
                        &Method::POST,
                        &self.inbox,
                        Some(ACTIVITY_JSON),
                    )?),
                };
                template.sign(key, Some(digest), now)
            }
            Scheme::Rfc9421 => httpsig::sign_request_as(
                scheme,
                key,
                key_id,
                &Method::POST,
                &self.inbox,
                Some(ACTIVITY_JSON),
                Some(digest),
                now,
            ),
        }
    }

    fn keep(&mut self, mut conn: Conn, Answer { status, reusable }: Answer) -> StatusCode {
        if reusable {
            conn.used = tokio::time::Instant::now();
            self.conn = Some(conn);
        }
        status
    }

    /// When the kept connection will have been unused for [`IDLE_CLOSE`]; `None` without one.
    pub fn idle_deadline(&self) -> Option<tokio::time::Instant> {
        self.conn.as_ref().map(|conn| conn.used + IDLE_CLOSE)
    }

    /// Closes the kept connection when it has been unused for [`IDLE_CLOSE`] or more (the next
    /// delivery connects again); true when it did.
    pub fn close_if_idle(&mut self) -> bool {
        let idle = self
            .idle_deadline()
            .is_some_and(|deadline| deadline <= tokio::time::Instant::now());
        if idle {
            self.conn = None;
        }
        idle
    }

    async fn connect(&self) -> Result<Conn, String> {
        let connecting = async {
            let tcp = self.connect_tcp().await?;
            let io: Box<dyn Io> = if self.inbox.scheme() == "https" {
                let name = self.inbox.host_str().unwrap_or_default().to_owned();
                let name = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|e| format!("TLS server name: {e}"))?;
                let tls = self
                    .http
                    .tls()
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                Box::new(tls)
            } else {
                Box::new(tcp)
            };
            Ok(Conn {
                http: Connection::new(io),
                used: tokio::time::Instant::now(),
            })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })
    }

    /// Connects to the first address that answers, of those the address policy allows.
    async fn connect_tcp(&self) -> Result<TcpStream, String> {
        let host = self.inbox.host().ok_or("inbox URL has no host")?;
        let port = self
            .inbox
            .port_or_known_default()
            .ok_or("inbox URL has no port")?;
        let addrs: Vec<SocketAddr> = resolve(self.http.policy(), host, port)
            .await
            .map_err(|e| e.to_string())?;
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    // Requests are written whole; waiting for more data (Nagle) only adds latency.
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }
}

/// Sleeps until `deadline`; never returns without one (a worker selects on it next to the log).
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One kept HTTP/1.1 connection.
struct Conn {
    http: Connection<Box<dyn Io>>,
    /// When the last answer on it was read.
    used: tokio::time::Instant,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::federation::net::{AddressPolicy, HttpSettings};
    use crate::httpsig::{PrivateKey, PublicKey, SignedRequest, digest_header};
    use axum::http::HeaderMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn key() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        KEY.get_or_init(|| Arc::new(PrivateKey::generate().expect("key")))
            .clone()
    }

    /// A signing client for tests (also used by other modules' tests).
    pub(crate) fn http(allow_private: bool, delivery_timeout: Duration) -> Http {
        Http::new(HttpSettings {
            key: key(),
            key_id: "https://relay.example/actor#main-key".into(),
            policy: AddressPolicy { allow_private },
            max_fetch_bytes: 1 << 20,
            fetch_timeout: Duration::from_secs(5),
            delivery_timeout,
            user_agent: "Plaza/test".into(),
        })
        .expect("http")
    }

    /// What the test receiver does after reading request number `n` (0-based) on a connection.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Answer with this status and keep the connection open.
        Keep(u16),
        /// Answer, then close the connection without saying so (as an idle timeout would).
        CloseSilently(u16),
        /// Answer with `Connection: close`.
        Close(u16),
        /// Answer with a body this long.
        Body(usize),
        /// Never answer.
        Hang,
    }

    /// A request as the test receiver read it.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    struct Receiver {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<Received>>>,
    }

    /// A raw HTTP/1.1 receiver on loopback, answering by `answer(request number)`.
    async fn receiver(answer: fn(usize) -> Answer) -> Receiver {
        receiver_by(Arc::new(move |n, _: &Received| answer(n))).await
    }

    type Answering = Arc<dyn Fn(usize, &Received) -> Answer + Send + Sync>;

    /// A raw HTTP/1.1 receiver on loopback, answering by `answer(request number, request)`.
    async fn receiver_by(answer: Answering) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (conns, reqs) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                let (reqs, answer) = (reqs.clone(), answer.clone());
                tokio::spawn(async move {
                    while let Some(received) = read_request(&mut stream).await {
                        let answer = {
                            let mut all = reqs.lock().expect("lock");
                            let answer = answer(all.len(), &received);
                            all.push(received);
                            answer
                        };
                        let (status, extra, body, close) = match answer {
                            Answer::Keep(s) => (s, "", 0, false),
                            Answer::CloseSilently(s) => (s, "", 0, true),
                            Answer::Close(s) => (s, "connection: close\r\n", 0, true),
                            Answer::Body(len) => (202, "", len, false),
                            Answer::Hang => {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                return;
                            }
                        };
                        let head =
                            format!("HTTP/1.1 {status} X\r\n{extra}content-length: {body}\r\n\r\n");
                        let mut out = head.into_bytes();
                        out.resize(out.len() + body, b'x');
                        if stream.write_all(&out).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            connections,
            requests,
        }
    }

    async fn read_request(stream: &mut TcpStream) -> Option<Received> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..end].to_vec()).ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = buf[end..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Received { head, body })
    }

    fn client(http: Http, addr: SocketAddr) -> InboxClient {
        http.inbox_client(&format!("http://{addr}/inbox"))
            .expect("client")
    }

    const BODY: &[u8] = br#"{"type":"Announce","id":"https://relay.example/activities/1"}"#;

    async fn deliver(client: &mut InboxClient) -> Outcome {
        client
            .deliver(Bytes::from_static(BODY), &digest_header(BODY))
            .await
    }

    /// Checks a received request as a Mastodon inbox would: signature over the listed headers with
    /// the relay's public key, digest of the body, clock window.
    fn verify(received: &Received, authority: &str) {
        let mut headers = HeaderMap::new();
        let mut lines = received.head.lines();
        let request_line = lines.next().expect("request line");
        assert_eq!(request_line, "POST /inbox HTTP/1.1");
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').expect("header");
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value.trim()).expect("value"),
            );
        }
        assert_eq!(headers["host"], authority);
        assert_eq!(headers["content-type"], ACTIVITY_JSON);
        assert_eq!(headers["user-agent"], "Plaza/test");
        let request = SignedRequest {
            method: &Method::POST,
            path_and_query: "/inbox",
            authority,
            scheme: "http",
            headers: &headers,
            body: &received.body,
        };
        let claim = httpsig::extract_claim(&request, SystemTime::now()).expect("claim");
        assert_eq!(claim.key_id, "https://relay.example/actor#main-key");
        let public = PublicKey::from_pem(key().public_key_pem()).expect("public key");
        claim.verify(&public).expect("signature verifies");
        assert_eq!(received.body, BODY);
    }

    #[tokio::test]
    async fn deliveries_share_one_connection_and_each_is_signed() {
        let rx = receiver(|_| Answer::Keep(202)).await;
        let mut client = client(http(true, Duration::from_secs(5)), rx.addr);
        for _ in 0..3 {
            assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        }
        assert_eq!(rx.connections.load(Ordering::SeqCst), 1);
        let requests = rx.requests.lock().expect("lock");
        assert_eq!(requests.len(), 3);
        for r in requests.iter() {
            verify(r, &rx.addr.to_string());
        }
    }

    fn is_rfc9421(received: &Received) -> bool {
        received
            .head
            .to_ascii_lowercase()
            .contains("\r\nsignature-input:")
    }

    #[tokio::test]
    async fn a_host_refusing_cavage_gets_rfc9421_once_and_then_always() {
        // Accepts only RFC 9421, as a receiver that retired draft-cavage would.
        let rx = receiver_by(Arc::new(|_, r: &Received| {
            Answer::Keep(if is_rfc9421(r) { 202 } else { 401 })
        }))
        .await;
        let http = http(true, Duration::from_secs(5));
        let mut first = client(http.clone(), rx.addr);
        assert_eq!(deliver(&mut first).await, Outcome::Delivered);
        assert_eq!(deliver(&mut first).await, Outcome::Delivered);
        {
            let requests = rx.requests.lock().expect("lock");
            let kinds: Vec<bool> = requests.iter().map(is_rfc9421).collect();
            assert_eq!(
                kinds,
                vec![false, true, true],
                "one double knock, then RFC 9421 only"
            );
            verify(&requests[1], &rx.addr.to_string());
        }
        assert_eq!(
            http.schemes().for_host(&rx.addr.to_string()),
            Scheme::Rfc9421
        );
        // A new worker for the same host starts with what was learnt.
        let mut again = client(http, rx.addr);
        assert_eq!(deliver(&mut again).await, Outcome::Delivered);
        assert_eq!(rx.requests.lock().expect("lock").len(), 4);
        assert_eq!(rx.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_host_refusing_rfc9421_gets_cavage() {
        let rx = receiver_by(Arc::new(|_, r: &Received| {
            Answer::Keep(if is_rfc9421(r) { 400 } else { 202 })
        }))
        .await;
        let http = http(true, Duration::from_secs(5)).with_schemes(
            crate::federation::schemes::SignatureSchemes::in_memory(
                crate::config::OutboundSignature::Rfc9421,
            ),
        );
        let mut client = client(http.clone(), rx.addr);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        let requests = rx.requests.lock().expect("lock");
        let kinds: Vec<bool> = requests.iter().map(is_rfc9421).collect();
        assert_eq!(kinds, vec![true, false, false]);
        verify(&requests[1], &rx.addr.to_string());
        assert_eq!(
            http.schemes().for_host(&rx.addr.to_string()),
            Scheme::Cavage
        );
    }

    #[tokio::test]
    async fn a_host_refusing_both_is_denied_and_keeps_its_scheme() {
        let rx = receiver(|_| Answer::Keep(401)).await;
        let http = http(true, Duration::from_secs(5));
        let mut client = client(http.clone(), rx.addr);
        assert!(matches!(deliver(&mut client).await, Outcome::Denied(r) if r.contains("401")));
        assert_eq!(rx.requests.lock().expect("lock").len(), 2);
        assert_eq!(
            http.schemes().for_host(&rx.addr.to_string()),
            Scheme::Cavage
        );
    }

    #[tokio::test]
    async fn a_connection_the_receiver_closed_is_replaced_without_a_failure() {
        let rx = receiver(|_| Answer::CloseSilently(202)).await;
        let mut client = client(http(true, Duration::from_secs(5)), rx.addr);
        for _ in 0..3 {
            // Give the close time to arrive, as between two deliveries minutes apart.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        }
        assert_eq!(rx.connections.load(Ordering::SeqCst), 3);
        assert_eq!(rx.requests.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn a_connection_idle_for_long_is_closed_and_the_next_delivery_reconnects() {
        let rx = receiver(|_| Answer::Keep(202)).await;
        let mut client = client(http(true, Duration::from_secs(5)), rx.addr);
        assert_eq!(client.idle_deadline(), None, "no connection yet");
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        let deadline = client.idle_deadline().expect("a kept connection");
        assert!(deadline > tokio::time::Instant::now() + IDLE_CLOSE - Duration::from_secs(5));
        assert!(!client.close_if_idle(), "used just now");
        // As if unused for IDLE_CLOSE.
        if let Some(conn) = client.conn.as_mut() {
            conn.used -= IDLE_CLOSE;
        }
        assert!(client.close_if_idle());
        assert_eq!(client.idle_deadline(), None);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(rx.connections.load(Ordering::SeqCst), 2);
        assert_eq!(rx.requests.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let rx = receiver(|_| Answer::Close(200)).await;
        let mut client = client(http(true, Duration::from_secs(5)), rx.addr);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(rx.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn statuses_map_to_outcomes_and_the_connection_survives_them() {
        let rx = receiver(|n| Answer::Keep([503, 410, 429, 202][n % 4])).await;
        let mut client = client(http(true, Duration::from_secs(5)), rx.addr);
        assert!(matches!(deliver(&mut client).await, Outcome::Retry(r) if r.contains("503")));
        assert!(matches!(deliver(&mut client).await, Outcome::Refused(r) if r.contains("410")));
        assert!(matches!(deliver(&mut client).await, Outcome::Retry(r) if r.contains("429")));
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(rx.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_large_answer_is_not_read_to_the_end() {
        let rx = receiver(|_| Answer::Body(MAX_RESPONSE_BODY * 2)).await;
        let mut client = client(http(true, Duration::from_secs(5)), rx.addr);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        assert_eq!(rx.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_answer_is_a_timeout_to_retry() {
        let rx = receiver(|_| Answer::Hang).await;
        let mut client = client(http(true, Duration::from_millis(300)), rx.addr);
        let started = std::time::Instant::now();
        assert!(matches!(deliver(&mut client).await, Outcome::Retry(r) if r.contains("no answer")));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_later() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let mut client = client(http(true, Duration::from_secs(5)), port);
        assert!(matches!(deliver(&mut client).await, Outcome::Retry(_)));
    }

    #[tokio::test]
    async fn loopback_inboxes_are_refused_by_default() {
        let rx = receiver(|_| Answer::Keep(202)).await;
        let mut client = client(http(false, Duration::from_secs(5)), rx.addr);
        assert!(matches!(deliver(&mut client).await, Outcome::Refused(_)));
        assert_eq!(rx.connections.load(Ordering::SeqCst), 0);
    }

    /// A certificate authority and a certificate for `localhost` signed by it.
    fn certificates() -> (
        rustls::pki_types::CertificateDer<'static>,
        rustls::ServerConfig,
    ) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
            .expect("ca");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server config");
        (ca.der().clone(), server)
    }

    fn trusting(root: Option<rustls::pki_types::CertificateDer<'static>>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(root) = root {
            roots.add(root).expect("root");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    #[tokio::test]
    async fn https_inboxes_get_verified_tls() {
        let (root, server) = certificates();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 8192];
                    let mut request = Vec::new();
                    while !request.ends_with(BODY) {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock().expect("lock").push(request);
                    let _ = tls
                        .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    let _ = tls.flush().await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                });
            }
        });
        let inbox = format!("https://localhost:{port}/inbox");

        let trusted = http(true, Duration::from_secs(5)).with_tls(trusting(Some(root)));
        let mut client = trusted.inbox_client(&inbox).expect("client");
        assert_eq!(deliver(&mut client).await, Outcome::Delivered);
        let first = received.lock().expect("lock")[0].clone();
        let text = String::from_utf8_lossy(&first);
        assert!(text.starts_with("POST /inbox HTTP/1.1\r\n"), "{text}");
        assert!(
            text.contains(&format!("host: localhost:{port}\r\n")),
            "{text}"
        );

        let untrusting = http(true, Duration::from_secs(5)).with_tls(trusting(None));
        let mut client = untrusting.inbox_client(&inbox).expect("client");
        assert!(matches!(deliver(&mut client).await, Outcome::Retry(r) if r.contains("TLS")));
        assert_eq!(received.lock().expect("lock").len(), 1);
    }
}
