//! Outgoing HTTP: the one reqwest client the relay uses to fetch documents and deliver activities.
//!
//! Everything that leaves the relay passes here, so the network rules live in one place: every request
//! is signed with the relay key (secure-mode instances answer 401 to unsigned GETs), every request has a
//! timeout, every response body is read up to a size cap, and no request reaches a loopback, private or
//! link-local address — neither by literal IP nor through DNS (the resolver filters the answers, which
//! also defeats DNS rebinding) — unless `allow_private_networks` is set.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, Method, header};
use serde_json::Value;
use url::Url;

use crate::config::OutboundSignature;
use crate::federation::host_slots::{HostSlots, Slot};
use crate::federation::schemes::SignatureSchemes;
use crate::httpsig::{self, PrivateKey, Scheme};
use crate::{Error, Result};

/// Fetches in flight per remote host unless configured otherwise (`max_fetches_per_host`).
pub const DEFAULT_FETCHES_PER_HOST: usize = 4;

/// How long the fetch client keeps an idle connection to a host.
const FETCH_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The media type ActivityPub documents are sent and requested with.
pub const ACTIVITY_JSON: &str = "application/activity+json";

/// What the relay accepts when it fetches a document.
const ACCEPT: &str = "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// Whether an address is one the relay may contact on the open internet.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_public_ip(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link local
                || (seg[0] & 0xffc0) == 0xfec0 // site local (deprecated, still routed inside sites)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)) // documentation
        }
    }
}

/// The IPv4 address an IPv6 address carries and is routed to: IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` (RFC 6052) and 6to4 `2002:AABB:CCDD::/48`
/// (RFC 3056). Such an address is only as public as the IPv4 address inside it.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let seg = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d)
    };
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    match seg {
        // `::` and `::1` are the unspecified and loopback addresses, not IPv4-compatible ones.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// The rule for which URLs the relay may contact.
#[derive(Debug, Clone, Copy)]
pub struct AddressPolicy {
    /// Allow http:// and non-public addresses (local testing).
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Checks scheme and literal-IP hosts; names are checked when resolved (see [`GuardedResolver`]).
    pub fn check_url(&self, url: &Url) -> Result<()> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            other => return Err(Error::ForbiddenAddress(format!("{url} (scheme {other})"))),
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) if !self.allow_private && is_local_name(d) => {
                return Err(Error::ForbiddenAddress(url.to_string()));
            }
            Some(url::Host::Domain(_)) => None,
            None => return Err(Error::BadRequest(format!("{url} has no host"))),
        };
        match literal {
            Some(ip) if !self.allow_private && !is_public_ip(ip) => {
                Err(Error::ForbiddenAddress(url.to_string()))
            }
            _ => Ok(()),
        }
    }
}

fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.ends_with(".local")
        || h.ends_with(".internal")
}

/// DNS resolution that drops non-public answers unless the policy allows them.
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(policy, url::Host::Domain(&host), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` the policy lets the relay contact. A literal IP is returned as it is (the
/// policy checks those on the URL, [`AddressPolicy::check_url`]); a name is looked up and its
/// non-public answers are dropped unless private networks are allowed.
pub async fn resolve(
    policy: AddressPolicy,
    host: url::Host<&str>,
    port: u16,
) -> std::io::Result<Vec<SocketAddr>> {
    let name = match host {
        url::Host::Ipv4(ip) => return Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        url::Host::Ipv6(ip) => return Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        url::Host::Domain(name) => name,
    };
    let allowed: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await?
        .filter(|a| policy.allow_private || is_public_ip(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(std::io::Error::other(format!(
            "{name} resolves only to private or loopback addresses"
        )));
    }
    Ok(allowed)
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver accepted it (2xx).
    Delivered,
    /// Try again later: network error, timeout, 408, 429 or 5xx.
    Retry(String),
    /// The receiver refused it for good (other 4xx, redirects, forbidden address); do not retry.
    Refused(String),
    /// The receiver denied it (401, 403), which may pass: it may be refetching the relay's key, or
    /// checking it against a stale copy. Retried a few times with backoff, then skipped.
    Denied(String),
}

/// The relay's signing HTTP client: signed GETs here, signed POSTs through the
/// [`crate::federation::inbox_client::InboxClient`]s made from it.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    key: Arc<PrivateKey>,
    key_id: Arc<str>,
    policy: AddressPolicy,
    max_fetch_bytes: usize,
    fetch_timeout: Duration,
    delivery_timeout: Duration,
    user_agent: HeaderValue,
    tls: tokio_rustls::TlsConnector,
    schemes: Arc<SignatureSchemes>,
    slots: Arc<HostSlots>,
}

/// Settings for [`Http::new`].
pub struct HttpSettings {
    /// The relay key and its id (`PUBLIC_URL/actor#main-key`).
    pub key: Arc<PrivateKey>,
    /// The keyId published on the relay actor.
    pub key_id: String,
    /// Which addresses may be contacted.
    pub policy: AddressPolicy,
    /// Cap on fetched bodies.
    pub max_fetch_bytes: usize,
    /// Timeout of one fetch.
    pub fetch_timeout: Duration,
    /// Timeout of one delivery.
    pub delivery_timeout: Duration,
    /// Sent as User-Agent (Mastodon logs it; some servers block empty agents).
    pub user_agent: String,
}

impl Http {
    /// Builds the client.
    pub fn new(s: HttpSettings) -> Result<Http> {
        let user_agent = HeaderValue::from_str(&s.user_agent)
            .map_err(|_| Error::Config(format!("user agent {:?}", s.user_agent)))?;
        let client = reqwest::Client::builder()
            .user_agent(user_agent.clone())
            .connect_timeout(Duration::from_secs(5))
            // Fetches to one host come together (an instance's actor, key and NodeInfo when it
            // subscribes; a key when its first post arrives) and then rarely: an idle connection is
            // kept long enough to serve the rest of such a group, not the 90 s default, which cost
            // about 40 KB per subscribed instance (docs/performance.md, memory per subscriber).
            .pool_idle_timeout(FETCH_IDLE_TIMEOUT)
            .pool_max_idle_per_host(16)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: s.policy }))
            .build()
            .map_err(|e| Error::Crypto(format!("http client: {e}")))?;
        Ok(Http {
            client,
            key: s.key,
            key_id: s.key_id.into(),
            policy: s.policy,
            max_fetch_bytes: s.max_fetch_bytes,
            fetch_timeout: s.fetch_timeout,
            delivery_timeout: s.delivery_timeout,
            user_agent,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls_config()?)),
            schemes: SignatureSchemes::in_memory(OutboundSignature::Cavage),
            slots: Arc::new(HostSlots::new(DEFAULT_FETCHES_PER_HOST)),
        })
    }

    /// The same client signing by `schemes` (the relay's persisted memory of what each host accepts)
    /// instead of a fresh in-memory one that starts every host with draft-cavage.
    pub fn with_schemes(mut self, schemes: Arc<SignatureSchemes>) -> Http {
        self.schemes = schemes;
        self
    }

    /// Which signature scheme each receiving host accepts.
    pub fn schemes(&self) -> &Arc<SignatureSchemes> {
        &self.schemes
    }

    /// The same client with at most `n` fetches in flight per remote host.
    pub fn with_fetches_per_host(mut self, n: usize) -> Http {
        self.slots = Arc::new(HostSlots::new(n));
        self
    }

    /// Which addresses this client may contact.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// The relay key requests are signed with, and its id.
    pub(crate) fn key(&self) -> &PrivateKey {
        &self.key
    }

    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(crate) fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }

    pub(crate) fn user_agent(&self) -> &HeaderValue {
        &self.user_agent
    }

    pub(crate) fn tls(&self) -> &tokio_rustls::TlsConnector {
        &self.tls
    }

    /// The same client trusting other TLS roots (tests run their own certificate authority).
    #[cfg(test)]
    pub(crate) fn with_tls(mut self, config: rustls::ClientConfig) -> Http {
        self.tls = tokio_rustls::TlsConnector::from(Arc::new(config));
        self
    }

    /// What every outbound request passes first: the URL parses, the address policy allows it, and
    /// the host has a free slot within the fetch timeout (held until the returned guard drops).
    async fn admit(&self, url: &str) -> Result<(Url, Slot)> {
        let parsed = Url::parse(url).map_err(|e| Error::fetch(url, format!("bad URL: {e}")))?;
        self.policy.check_url(&parsed)?;
        let slot = self
            .slots
            .acquire(parsed.host_str().unwrap_or_default(), self.fetch_timeout)
            .await
            .ok_or_else(|| Error::fetch(url, "too many fetches from this host in flight"))?;
        Ok((parsed, slot))
    }

    /// Fetches an ActivityPub document with a signed GET; follows no redirects (a document must live at
    /// its id), reads at most `max_fetch_bytes`.
    ///
    /// Signed with the scheme the host is known to accept; a 401 or 400 is asked once more with the
    /// other scheme, which is remembered for the host when it works.
    pub async fn get_json(&self, url: &str) -> Result<Value> {
        let (parsed, _slot) = self.admit(url).await?;
        let host = httpsig::authority(&parsed)?;
        let scheme = self.schemes.for_host(&host);
        let mut response = self.signed_get(&parsed, scheme).await?;
        if knock_again(response.status()) {
            let second = self.signed_get(&parsed, scheme.other()).await?;
            if second.status().is_success() {
                self.schemes.remember(&host, scheme.other()).await;
                response = second;
            }
        }
        let status = response.status();
        if !status.is_success() {
            return Err(Error::fetch(url, format!("HTTP {status}")));
        }
        let body = read_capped(&mut response, self.max_fetch_bytes, url, "document").await?;
        serde_json::from_slice(&body).map_err(|e| Error::fetch(url, format!("not JSON: {e}")))
    }
}

impl Http {
    /// Sends one GET of `url` signed with `scheme`.
    async fn signed_get(&self, url: &Url, scheme: Scheme) -> Result<reqwest::Response> {
        let mut request = self
            .client
            .get(url.clone())
            .timeout(self.fetch_timeout)
            .header(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        for (name, value) in httpsig::sign_request_as(
            scheme,
            &self.key,
            &self.key_id,
            &Method::GET,
            url,
            None,
            None,
            SystemTime::now(),
        )? {
            request = request.header(name, value);
        }
        request
            .send()
            .await
            .map_err(|e| Error::fetch(url.as_str(), describe(&e)))
    }
}

/// Whether an answer may mean "not this signature scheme": then the same request is tried once with the
/// other one. Servers answer a signature they cannot read with 401 (Mastodon) or 400.
pub(crate) fn knock_again(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::BAD_REQUEST
}

impl Http {
    /// Fetches an image for the avatar proxy: an unsigned GET (media servers serve files to anyone)
    /// under the same address policy, per-host bound and timeout as every fetch, following no redirects, reading at most
    /// `max_bytes`. What the body is, the caller decides by sniffing it, not by the sender's word.
    pub async fn get_image(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>> {
        let (parsed, _slot) = self.admit(url).await?;
        let mut response = self
            .client
            .get(parsed)
            .timeout(self.fetch_timeout)
            .header(header::ACCEPT, HeaderValue::from_static("image/*"))
            .send()
            .await
            .map_err(|e| Error::fetch(url, describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::fetch(url, format!("HTTP {status}")));
        }
        read_capped(&mut response, max_bytes, url, "image").await
    }
}

impl Http {
    /// POSTs a JSON body without a signature (a FASP registration: the server does not know Plaza's key
    /// yet) under the same address policy, per-host bound, timeout and size cap as every fetch,
    /// following no redirects. The status and the answer as JSON (`Null` when it is not JSON).
    pub async fn post_json_unsigned(&self, url: &str, body: &Value) -> Result<(u16, Value)> {
        let body = serde_json::to_vec(body).map_err(|e| Error::fetch(url, e))?;
        let json = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        let (status, _, answer) = self.exchange(Method::POST, url, body, json).await?;
        Ok((
            status,
            serde_json::from_slice(&answer).unwrap_or(Value::Null),
        ))
    }

    /// Sends `method` to `url` with `body` and `headers` (a FASP call signs them itself), under the
    /// same address policy, per-host bound, timeout and size cap as every fetch, following no
    /// redirects, asking for JSON. The status, the answer's header fields and its body.
    pub async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        headers: impl IntoIterator<Item = (header::HeaderName, HeaderValue)>,
    ) -> Result<(u16, header::HeaderMap, Vec<u8>)> {
        let (parsed, _slot) = self.admit(url).await?;
        let mut request = self
            .client
            .request(method, parsed)
            .timeout(self.fetch_timeout)
            .header(header::ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request
            .body(body)
            .send()
            .await
            .map_err(|e| Error::fetch(url, describe(&e)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let answer = read_capped(&mut response, self.max_fetch_bytes, url, "answer").await?;
        Ok((status, headers, answer))
    }
}

/// Reads a response body of at most `max` bytes (refused at once when its announced length is larger);
/// `what` names it in the error.
async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
    url: &str,
    what: &str,
) -> Result<Vec<u8>> {
    let too_large = || Error::fetch(url, format!("{what} larger than {max} bytes"));
    if response
        .content_length()
        .is_some_and(|len| len as usize > max)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::fetch(url, describe(&e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a delivery's answer means delivered, try again, or give up on this one.
pub(crate) fn classify(status: reqwest::StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Outcome::Retry(format!("HTTP {status}"))
    } else if status == reqwest::StatusCode::UNAUTHORIZED
        || status == reqwest::StatusCode::FORBIDDEN
    {
        Outcome::Denied(format!("HTTP {status}"))
    } else {
        Outcome::Refused(format!("HTTP {status}"))
    }
}

/// TLS for deliveries: HTTP/1.1 only, certificates checked against the platform's roots.
fn tls_config() -> Result<rustls::ClientConfig> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A short reason for a transport error, with its causes (reqwest's Display hides them).
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_addresses_are_refused_by_default() {
        let strict = AddressPolicy {
            allow_private: false,
        };
        for url in [
            "http://example.org/inbox",
            "https://127.0.0.1/inbox",
            "https://10.1.2.3/inbox",
            "https://192.168.0.1/inbox",
            "https://[::1]/inbox",
            "https://[fd00::1]/inbox",
            "https://169.254.169.254/latest",
            "https://localhost/inbox",
            "ftp://example.org/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(strict.check_url(&url).is_err(), "{url} should be refused");
        }
        for url in ["https://example.org/inbox", "https://93.184.215.14/inbox"] {
            let url = Url::parse(url).unwrap();
            assert!(strict.check_url(&url).is_ok(), "{url} should be allowed");
        }
    }

    #[test]
    fn ipv6_addresses_carrying_ipv4_are_as_private_as_the_ipv4_inside() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for private in [
            "64:ff9b::7f00:1",    // NAT64 of 127.0.0.1
            "64:ff9b::10.0.0.1",  // NAT64 of 10.0.0.1
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "2002:7f00:1::",      // 6to4 of 127.0.0.1
            "2002:c0a8:101::1",   // 6to4 of 192.168.1.1
            "2002:a00:1:5::9",    // 6to4 of 10.0.0.1
            "::127.0.0.1",        // IPv4-compatible
            "::10.1.2.3",         // IPv4-compatible
            "::ffff:192.168.0.1", // IPv4-mapped
            "fec0::1",            // site local
            "feff:ffff::1",       // site local, top of the range
            "::1",
            "::",
        ] {
            assert!(
                !is_public_ip(ip(private)),
                "{private} must count as private"
            );
        }
        for public in [
            "64:ff9b::5db8:d70e", // NAT64 of 93.184.215.14
            "2002:5db8:d70e::1",  // 6to4 of 93.184.215.14
            "::93.184.215.14",    // IPv4-compatible of a public address
            "2606:4700::1111",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public_ip(ip(public)), "{public} is public");
        }
        let strict = AddressPolicy {
            allow_private: false,
        };
        assert!(
            strict
                .check_url(&Url::parse("https://[64:ff9b::7f00:1]/inbox").unwrap())
                .is_err()
        );
    }

    #[test]
    fn tests_may_allow_loopback() {
        let open = AddressPolicy {
            allow_private: true,
        };
        assert!(
            open.check_url(&Url::parse("http://127.0.0.2:4000/inbox").unwrap())
                .is_ok()
        );
        assert!(
            open.check_url(&Url::parse("ftp://127.0.0.2/").unwrap())
                .is_err()
        );
    }

    #[test]
    fn statuses_are_classified() {
        use reqwest::StatusCode;
        assert_eq!(classify(StatusCode::ACCEPTED), Outcome::Delivered);
        for status in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert!(matches!(classify(status), Outcome::Retry(_)), "{status}");
        }
        for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
            assert!(matches!(classify(status), Outcome::Denied(_)), "{status}");
        }
        for status in [StatusCode::NOT_FOUND, StatusCode::GONE] {
            assert!(matches!(classify(status), Outcome::Refused(_)), "{status}");
        }
    }

    #[tokio::test]
    async fn resolver_filters_loopback_names() {
        use reqwest::dns::Resolve;
        let strict = GuardedResolver {
            policy: AddressPolicy {
                allow_private: false,
            },
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(strict.resolve(name).await.is_err());
        let open = GuardedResolver {
            policy: AddressPolicy {
                allow_private: true,
            },
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
