//! The avatar proxy: the web pages show remote images only through `/media/proxy`, so a visitor's
//! browser talks to this relay alone (no request to any author's server, which would tell it who reads
//! what) and the pages can keep `img-src 'self'`.
//!
//! It is not an open proxy: the relay signs every address it puts in a page (HMAC-SHA256 under a key
//! derived from the relay's private key) and fetches only signed addresses, under the relay's address
//! policy ([`crate::federation::net`]), with a size cap and a timeout. What comes back is served only
//! when its first bytes are those of a raster image format (PNG, JPEG, GIF, WebP, AVIF) — never SVG
//! or anything a browser could run — with the sniffed type, `nosniff`, and a sandboxing CSP. Images (for
//! hours) and failures (for minutes) are cached in memory (moka, weighed by size), and concurrent
//! requests for one address share one fetch.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use sha2::{Digest, Sha256};

use crate::federation::net::Http;
use crate::httpsig::PrivateKey;
use crate::{Error, Result};

/// The path images are served under.
pub const PATH: &str = "/media/proxy";

/// How long a fetched image is served from memory before it is fetched again.
const TTL: Duration = Duration::from_secs(6 * 3600);

/// How long a refusal (fetch failed, too large, not an image) is remembered: a passing failure of the
/// author's server hides an avatar for minutes, not hours.
const REFUSAL_TTL: Duration = Duration::from_secs(600);

/// Longest address the proxy signs; avatars have short URLs, and the query string stays bounded.
const MAX_URL_LEN: usize = 2048;

/// What one fetch produced.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// An image of this sniffed media type.
    Image {
        /// `image/png` and the like, from the bytes.
        content_type: &'static str,
        /// The file.
        body: Bytes,
    },
    /// Not served: fetch failed, too large, or not an image (the reason is logged, not shown).
    Refused(String),
}

/// Images live [`TTL`], refusals [`REFUSAL_TTL`].
struct Lifetimes;

impl moka::Expiry<String, Arc<Fetched>> for Lifetimes {
    fn expire_after_create(
        &self,
        _url: &String,
        fetched: &Arc<Fetched>,
        _at: std::time::Instant,
    ) -> Option<Duration> {
        Some(fetched.lifetime())
    }
}

impl Fetched {
    fn lifetime(&self) -> Duration {
        match self {
            Fetched::Image { .. } => TTL,
            Fetched::Refused(_) => REFUSAL_TTL,
        }
    }

    fn weight(&self) -> u32 {
        let len = match self {
            Fetched::Image { body, .. } => body.len(),
            Fetched::Refused(reason) => reason.len(),
        };
        u32::try_from(len + 64).unwrap_or(u32::MAX)
    }
}

/// The proxy: signing key, fetch limits, and the cache.
pub struct MediaProxy {
    key: hmac::Key,
    http: Http,
    max_bytes: usize,
    cache: moka::future::Cache<String, Arc<Fetched>>,
}

/// The media type of an image from its first bytes, for the formats the proxy serves.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && matches!(&bytes[8..12], b"avif" | b"avis")
    {
        Some("image/avif")
    } else {
        None
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl MediaProxy {
    /// A proxy whose signing key derives from the relay key (stable across restarts, secret as the
    /// relay key is), fetching with `http`.
    pub fn new(
        relay_key: &PrivateKey,
        http: Http,
        max_bytes: usize,
        cache_bytes: u64,
    ) -> Result<MediaProxy> {
        let mut seed = Sha256::new();
        seed.update(b"plaza media proxy v1\0");
        seed.update(relay_key.to_pkcs8_pem()?.as_bytes());
        Ok(Self::with_secret(
            &seed.finalize(),
            http,
            max_bytes,
            cache_bytes,
        ))
    }

    /// A proxy with an explicit signing secret.
    pub fn with_secret(secret: &[u8], http: Http, max_bytes: usize, cache_bytes: u64) -> Self {
        MediaProxy {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            http,
            max_bytes,
            cache: moka::future::Cache::builder()
                .max_capacity(cache_bytes)
                .weigher(|_: &String, v: &Arc<Fetched>| v.weight())
                .expire_after(Lifetimes)
                .build(),
        }
    }

    /// The signature of `url`, hex.
    fn sign(&self, url: &str) -> String {
        hex(hmac::sign(&self.key, url.as_bytes()).as_ref())
    }

    /// The relay-local address that serves `url`'s image, or `None` for an address that is not an
    /// absolute http(s) URL (nothing is shown then).
    pub fn link(&self, url: &str) -> Option<String> {
        if url.len() > MAX_URL_LEN {
            return None;
        }
        let parsed = url::Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return None;
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("url", parsed.as_str())
            .append_pair("sig", &self.sign(parsed.as_str()))
            .finish();
        Some(format!("{PATH}?{query}"))
    }

    /// Checks that `sig` is the relay's signature of `url` (constant time).
    pub fn verify(&self, url: &str, sig: &str) -> Result<()> {
        let bad = || Error::BadRequest("the image address is not one this relay signed".into());
        let sig = unhex(sig).ok_or_else(bad)?;
        hmac::verify(&self.key, url.as_bytes(), &sig).map_err(|_| bad())
    }

    /// The image at a signed `url`, from the cache or fetched once for all concurrent askers.
    pub async fn get(&self, url: &str, sig: &str) -> Result<Arc<Fetched>> {
        self.verify(url, sig)?;
        let fetched = self
            .cache
            .get_with(url.to_owned(), async {
                let fetched = match self.http.get_image(url, self.max_bytes).await {
                    Ok(body) => match sniff_image(&body) {
                        Some(content_type) => Fetched::Image {
                            content_type,
                            body: Bytes::from(body),
                        },
                        None => Fetched::Refused("not a raster image".into()),
                    },
                    Err(e) => Fetched::Refused(e.to_string()),
                };
                if let Fetched::Refused(reason) = &fetched {
                    tracing::debug!(%url, %reason, "media proxy refused an image");
                }
                Arc::new(fetched)
            })
            .await;
        Ok(fetched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::net::{AddressPolicy, HttpSettings};

    fn http(allow_private: bool) -> Http {
        Http::new(HttpSettings {
            key: Arc::new(PrivateKey::generate().expect("key")),
            key_id: "https://relay.example/actor#main-key".into(),
            policy: AddressPolicy { allow_private },
            max_fetch_bytes: 1 << 20,
            fetch_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(5),
            user_agent: "plaza-test".into(),
        })
        .expect("http")
    }

    fn proxy(allow_private: bool, max_bytes: usize) -> MediaProxy {
        MediaProxy::with_secret(b"secret", http(allow_private), max_bytes, 1 << 20)
    }

    #[test]
    fn sniffs_raster_images_only() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"\0\0\0\x1cftypavif"), Some("image/avif"));
        assert_eq!(
            sniff_image(b"<svg xmlns=\"http://www.w3.org/2000/svg\">"),
            None
        );
        assert_eq!(sniff_image(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff_image(b""), None);
    }

    #[test]
    fn refusals_are_forgotten_sooner_than_images() {
        let image = Fetched::Image {
            content_type: "image/png",
            body: Bytes::from_static(b"x"),
        };
        let refused = Fetched::Refused("HTTP 503".into());
        assert_eq!(image.lifetime(), TTL);
        assert_eq!(refused.lifetime(), REFUSAL_TTL);
        assert!(REFUSAL_TTL < TTL);
    }

    #[test]
    fn links_are_signed_and_only_signed_links_pass() {
        let p = proxy(false, 1024);
        let link = p.link("https://files.example/avatar.png").expect("link");
        let parsed = url::Url::parse(&format!("https://relay.example{link}")).unwrap();
        let pairs: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs["url"], "https://files.example/avatar.png");
        p.verify(&pairs["url"], &pairs["sig"])
            .expect("own signature verifies");
        assert!(
            p.verify("https://files.example/other.png", &pairs["sig"])
                .is_err()
        );
        assert!(p.verify(&pairs["url"], "zz").is_err());
        let other = MediaProxy::with_secret(b"another", http(false), 1024, 1 << 20);
        assert!(other.verify(&pairs["url"], &pairs["sig"]).is_err());
        assert_eq!(p.link("javascript:alert(1)"), None);
        assert_eq!(p.link("data:image/png;base64,AAAA"), None);
        assert_eq!(p.link("/relative.png"), None);
    }

    #[tokio::test]
    async fn an_unsigned_address_is_refused_before_any_fetch() {
        let p = proxy(true, 1024);
        let err = p.get("http://127.0.0.1:9/x.png", "00").await.unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err}");
    }

    #[tokio::test]
    async fn private_addresses_follow_the_relay_policy() {
        let p = proxy(false, 1024);
        let url = "http://127.0.0.1:9/x.png";
        let link = p.link(url).expect("link");
        let sig = link.rsplit("sig=").next().unwrap().to_string();
        match &*p.get(url, &sig).await.expect("answer") {
            Fetched::Refused(reason) => assert!(reason.contains("refusing"), "{reason}"),
            other => panic!("fetched {other:?}"),
        }
    }

    /// Serves `body` on a loopback port; returns its URL.
    async fn serve(body: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            axum::Router::new().route("/img", axum::routing::get(move || async move { body }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/img")
    }

    async fn fetch(p: &MediaProxy, url: &str) -> Arc<Fetched> {
        let sig = p.sign(url);
        p.get(url, &sig).await.expect("answer")
    }

    #[tokio::test]
    async fn serves_images_refuses_the_rest_and_caps_the_size() {
        let png = serve(b"\x89PNG\r\n\x1a\n0123456789").await;
        let html = serve(b"<html><script>alert(1)</script></html>").await;
        let big = serve(&[0xFF; 4096]).await;
        let p = proxy(true, 1024);
        match &*fetch(&p, &png).await {
            Fetched::Image { content_type, body } => {
                assert_eq!(*content_type, "image/png");
                assert_eq!(body.len(), 18);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&*fetch(&p, &html).await, Fetched::Refused(r) if r.contains("not a raster"))
        );
        assert!(matches!(&*fetch(&p, &big).await, Fetched::Refused(r) if r.contains("larger")));
    }
}
