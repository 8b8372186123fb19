//! The authority (host and port) of an IRI.
//!
//! The relay groups subscribers, rate limits, blocks and "never deliver back to the origin" by instance, and an
//! instance is the authority of its ids. One function computes it so every part of the relay compares hosts
//! the same way: lowercase host, `:port` only when the port is explicit and not the scheme's default.

use url::Url;

/// The lowercased `host[:port]` of an absolute IRI, the port only when explicit and not the scheme default.
///
/// `None` for anything without a host (relative references, `urn:`, garbage). IPv6 hosts keep their brackets.
pub fn authority_of(iri: &str) -> Option<String> {
    let url = Url::parse(iri).ok()?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())?
        .to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Whether two IRIs have the same authority (both must have one).
pub fn same_authority(a: &str, b: &str) -> bool {
    matches!((authority_of(a), authority_of(b)), (Some(x), Some(y)) if x == y)
}

/// Whether `iri` is an id the relay may accept or send: an absolute `https:` URL with a host (`http:` too
/// when `allow_http`, i.e. when private networks are allowed for local testing). Anything else — relative
/// references, `javascript:`, `data:`, `urn:`, text with spaces — is not something a receiver can fetch.
pub fn is_web_iri(iri: &str, allow_http: bool) -> bool {
    let Ok(url) = Url::parse(iri) else {
        return false;
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => allow_http,
        _ => false,
    };
    scheme_ok && url.host_str().is_some_and(|h| !h.is_empty())
}

/// The IRI without its `#fragment` (a key id `https://h/actor#main-key` gives the document to fetch).
pub fn strip_fragment(iri: &str) -> &str {
    iri.split_once('#').map_or(iri, |(doc, _)| doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_forms() {
        assert_eq!(
            authority_of("https://Example.COM/users/a").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            authority_of("https://example.com:443/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            authority_of("http://example.com:80/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            authority_of("https://example.com:8443/x").as_deref(),
            Some("example.com:8443")
        );
        assert_eq!(
            authority_of("http://localhost:8080/users/admin").as_deref(),
            Some("localhost:8080")
        );
        assert_eq!(
            authority_of("https://[::1]:3000/inbox").as_deref(),
            Some("[::1]:3000")
        );
        assert_eq!(
            authority_of("https://user:pw@Host.example/x").as_deref(),
            Some("host.example")
        );
        assert_eq!(authority_of("/relative/path"), None);
        assert_eq!(authority_of("urn:uuid:0a2b"), None);
        assert_eq!(authority_of("not a url"), None);
        assert_eq!(authority_of(""), None);
    }

    #[test]
    fn web_iris_are_absolute_https_urls() {
        assert!(is_web_iri("https://a.example/users/alice", false));
        assert!(is_web_iri("https://a.example:8443/x#frag", false));
        assert!(!is_web_iri("http://a.example/x", false));
        assert!(is_web_iri("http://a.example/x", true));
        for bad in [
            "not a url",
            "javascript:alert(1)",
            "data:text/html,hi",
            "urn:uuid:0a2b",
            "/relative",
            "",
            "ftp://a.example/x",
        ] {
            assert!(!is_web_iri(bad, true), "{bad:?} accepted");
        }
    }

    #[test]
    fn same_authority_and_fragments() {
        assert!(same_authority(
            "https://a.example/x",
            "https://A.example:443/y#z"
        ));
        assert!(!same_authority(
            "https://a.example/x",
            "https://a.example:8443/x"
        ));
        assert!(!same_authority("nope", "nope"));
        assert_eq!(
            strip_fragment("https://h/actor#main-key"),
            "https://h/actor"
        );
        assert_eq!(
            strip_fragment("https://h/users/x/main-key"),
            "https://h/users/x/main-key"
        );
    }
}
