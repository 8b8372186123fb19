//! The authority (host and port) of an IRI.
//!
//! The relay groups subscribers, rate limits, blocks and "never deliver back to the origin" by instance, and an
//! instance is the authority of its ids. One function computes it so every part of the relay compares hosts
//! the same way: lowercase host, `:port` only when the port is explicit and not the scheme's default.
//!
//! The inbox asks for several authorities per activity, and a full URL parse (the WHATWG rules: IDNA,
//! IPv4 forms, percent-decoding) was about 4% of the relay's CPU while it took posts in. The usual IRI
//! — `https://` and a plain ASCII domain name, or an IPv4 address as the standard writes it — is read
//! directly ([`plain_authority`]); anything else goes to [`Url`], and both give the same answer (tested
//! against each other).

use url::Url;

/// The lowercased `host[:port]` of an absolute IRI, the port only when explicit and not the scheme default.
///
/// `None` for anything without a host (relative references, `urn:`, garbage). IPv6 hosts keep their brackets.
pub fn authority_of(iri: &str) -> Option<String> {
    match plain_authority(iri) {
        Some((host, port)) => {
            let host = host.to_ascii_lowercase();
            Some(match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        }
        None => parsed_authority(iri),
    }
}

/// The authority of an IRI of the usual form, read without parsing it as a URL: scheme `https://` or
/// `http://` exactly, then a host — a domain name of ASCII letters, digits and hyphens whose labels are
/// not empty, none an IDNA `xn--` label, the last beginning with a letter (so never an IPv4 address in
/// any of its forms), or an IPv4 address in the dotted-quad form the URL standard writes — and an
/// optional port of 1 to 5 digits without a leading zero, up to the first `/`, `?` or `#`. What follows never changes a URL's host. The host as written and the port unless it is
/// the scheme's default; `None` when the IRI is not of that form (not that it has no authority): [`Url`]
/// decides those.
fn plain_authority(iri: &str) -> Option<(&str, Option<u32>)> {
    let (rest, default_port) = if let Some(rest) = iri.strip_prefix("https://") {
        (rest, 443)
    } else if let Some(rest) = iri.strip_prefix("http://") {
        (rest, 80)
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, port) = match rest[..end].split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (&rest[..end], None),
    };
    if !is_plain_domain(host) && !is_dotted_quad(host) {
        return None;
    }
    let Some(port) = port else {
        return Some((host, None));
    };
    if port.is_empty()
        || port.len() > 5
        || port.starts_with('0')
        || !port.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let number: u32 = port.parse().ok()?;
    match number {
        n if n > 65_535 => None,
        n if n == default_port => Some((host, None)),
        n => Some((host, Some(n))),
    }
}

/// ASCII letters, digits and hyphens in non-empty labels, none an IDNA `xn--` label, the last
/// beginning with a letter: a name the URL standard leaves as it is (bar case).
fn is_plain_domain(host: &str) -> bool {
    let mut last = "";
    for label in host.split('.') {
        let plain = !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("xn--"));
        if !plain {
            return false;
        }
        last = label;
    }
    last.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Four decimal numbers of 0 to 255 without leading zeros, joined by dots: the one IPv4 form the URL
/// standard writes back unchanged (hexadecimal, octal, fewer parts or a trailing dot are [`Url`]'s).
fn is_dotted_quad(host: &str) -> bool {
    let mut parts = 0;
    for part in host.split('.') {
        parts += 1;
        let decimal = (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part.len() == 1 || !part.starts_with('0'))
            && part.parse::<u16>().is_ok_and(|n| n <= 255);
        if !decimal || parts > 4 {
            return false;
        }
    }
    parts == 4
}

/// [`authority_of`] by a full URL parse.
fn parsed_authority(iri: &str) -> Option<String> {
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
    if plain_authority(iri).is_some() {
        return allow_http || iri.starts_with("https://");
    }
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

    /// IRIs of every shape the fast path must either read as [`Url`] does or leave to it.
    fn tricky_iris() -> Vec<String> {
        let mut iris: Vec<String> = [
            "https://a.example/users/alice",
            "https://A.Example/x",
            "https://a.example",
            "https://a.example?q=1",
            "https://a.example#frag",
            "https://a.example:443/x",
            "https://a.example:0443/x",
            "https://a.example:80/x",
            "http://a.example:80/x",
            "http://a.example:443/x",
            "https://a.example:8443",
            "https://a.example:65535/x",
            "https://a.example:65536/x",
            "https://a.example:99999/x",
            "https://a.example:123456/x",
            "https://a.example:0/x",
            "https://a.example:/x",
            "https://a.example:x/x",
            "https://a.example:+1/x",
            "https://a.example:1:2/x",
            "https://127.0.0.1:8080/inbox",
            "https://127.1/x",
            "https://0x7f.1/x",
            "https://1.2.3.04/x",
            "http://127.0.1.5:8080/users/a",
            "https://0.0.0.0/x",
            "https://255.255.255.255/x",
            "https://256.1.1.1/x",
            "https://1.2.3.256/x",
            "https://1.2.3.4.5/x",
            "https://1.2.3/x",
            "https://1.2.3.4./x",
            "https://.1.2.3.4/x",
            "https://1..2.3/x",
            "https://01.2.3.4/x",
            "https://1.2.3.00/x",
            "https://1.2.3.0x4/x",
            "https://1.2.3.4a/x",
            "https://1.2.3.-4/x",
            "https://1.2.3.4:80/x",
            "http://1.2.3.4:80/x",
            "https://4294967295/x",
            "https://1.2.3.1000/x",
            "https://a.123/x",
            "https://a.0x1/x",
            "https://a.b1/x",
            "https://1a.example/x",
            "https://xn--nxasmq6b.example/x",
            "https://XN--nxasmq6b.example/x",
            "https://xn--invalid-.example/x",
            "https://a.xn--p1ai/x",
            "https://axn--b.example/x",
            "https://a..example/x",
            "https://.a.example/x",
            "https://a.example./x",
            "https://-a-.example/x",
            "https://a--b.example/x",
            "https://a_b.example/x",
            "https://user:pw@a.example/x",
            "https://a.example@b.example/x",
            "https://a%2eexample/x",
            "https://a.example\\path",
            "https://a.exa\tmple/x",
            "https://a.example /x",
            "https://a.example/x y",
            "https://ex\u{e4}mple.de/x",
            "https://[::1]:3000/inbox",
            "https://localhost/x",
            "http://localhost:8080/users/admin",
            "HTTPS://a.example/x",
            "https:/a.example/x",
            "https:a.example/x",
            "https:///x",
            "https://",
            "http://",
            "ftp://a.example/x",
            "urn:uuid:0a2b",
            "/relative/path",
            "not a url",
            "",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        // Every id and actor of the shared fixtures too.
        let mut stack = vec![std::path::PathBuf::from(crate::test_fixtures::DIR)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    for word in text.split(|c: char| c == '"' || c.is_whitespace()) {
                        if word.starts_with("http") {
                            iris.push(word.to_owned());
                        }
                    }
                }
            }
        }
        iris
    }

    /// Asserts that the fast path and a full URL parse read `iri` alike (its authority, and whether it
    /// is a web IRI with and without `http:`); true when the fast path read it.
    fn assert_same_reading(iri: &str) -> bool {
        assert_eq!(authority_of(iri), parsed_authority(iri), "{iri:?}");
        for allow_http in [false, true] {
            let by_url = Url::parse(iri).is_ok_and(|u| {
                (u.scheme() == "https" || (allow_http && u.scheme() == "http"))
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
            assert_eq!(is_web_iri(iri, allow_http), by_url, "{iri:?}");
        }
        plain_authority(iri).is_some()
    }

    /// A small deterministic generator (xorshift): the same cases every run.
    fn generator(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn the_fast_path_agrees_with_a_full_url_parse() {
        let fast = tricky_iris()
            .iter()
            .filter(|iri| assert_same_reading(iri))
            .count();
        assert!(fast > 20, "the fast path reads the usual IRIs ({fast})");
    }

    #[test]
    fn the_fast_path_agrees_on_generated_authorities() {
        // Authorities drawn from the characters that matter to either reading.
        const CHARS: &[u8] = b"aZx9n0-.:.:1_@%";
        let mut next = generator(0x2545_f491_4f6c_dd1d);
        let mut fast = 0;
        for _ in 0..20_000 {
            let len = 1 + (next() % 12) as usize;
            let authority: String = (0..len)
                .map(|_| CHARS[(next() % CHARS.len() as u64) as usize] as char)
                .collect();
            for scheme in ["https://", "http://"] {
                fast += usize::from(assert_same_reading(&format!("{scheme}{authority}/x")));
            }
        }
        assert!(fast > 2_000, "many took the fast path ({fast})");
    }

    #[test]
    fn the_fast_path_agrees_on_generated_ipv4_hosts() {
        // Digits and dots, with a letter, a hex prefix and a port now and then: the forms where
        // an IPv4 address, a number the standard reads as one, and a refused host lie close.
        const PARTS: &[&str] = &[
            "0",
            "1",
            "9",
            "00",
            "01",
            "10",
            "99",
            "127",
            "255",
            "256",
            "300",
            "999",
            "0x1",
            "1000",
            "",
            "a",
            "4294967295",
        ];
        let mut next = generator(0x9e37_79b9_7f4a_7c15);
        let mut fast = 0;
        for _ in 0..20_000 {
            let count = 1 + (next() % 6) as usize;
            let mut host: Vec<&str> = (0..count)
                .map(|_| PARTS[(next() % PARTS.len() as u64) as usize])
                .collect();
            if next().is_multiple_of(8) {
                host.push("");
            }
            let port = match next() % 4 {
                0 => ":8080",
                1 => ":443",
                _ => "",
            };
            for scheme in ["https://", "http://"] {
                let iri = format!("{scheme}{}{port}/x", host.join("."));
                fast += usize::from(assert_same_reading(&iri));
            }
        }
        assert!(fast > 1_000, "many took the fast path ({fast})");
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
