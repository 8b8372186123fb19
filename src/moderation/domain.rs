//! Domain names as the admins write them and as instances are known: normalising a rule
//! (`Example.COM.` → `example.com`) and asking whether a rule covers an instance, subdomains included
//! (`example.com` covers `social.example.com`, never `badexample.com`).

use std::net::IpAddr;

use crate::{Error, Result};

/// The host of an instance authority (`host` or `host:port`, IPv6 in brackets), lower case.
pub fn host_of(authority: &str) -> String {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Normalises a domain rule as an admin typed it: lower case, no trailing dot, no scheme, path or
/// port; refuses what cannot be a host name or an IP address.
pub fn normalize(rule: &str) -> Result<String> {
    let trimmed = rule.trim();
    let without_scheme = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let authority = without_scheme.split('/').next().unwrap_or_default();
    let host = host_of(authority);
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid_name || host.parse::<IpAddr>().is_ok() {
        Ok(host)
    } else {
        Err(Error::BadRequest(format!(
            "{rule:?} is not a domain name or an IP address"
        )))
    }
}

/// Whether the (normalised) `rule` covers `host`: the same name, or a subdomain of it. An IP address
/// only covers itself.
pub fn covers(rule: &str, host: &str) -> bool {
    if rule == host {
        return true;
    }
    if host.parse::<IpAddr>().is_ok() {
        return false;
    }
    host.len() > rule.len()
        && host.ends_with(rule)
        && host.as_bytes()[host.len() - rule.len() - 1] == b'.'
}

/// The suffixes of `host` a rule could be written as, longest first (`a.b.c` → `a.b.c`, `b.c`, `c`);
/// an IP address only as itself.
pub fn candidates(host: &str) -> Vec<&str> {
    if host.parse::<IpAddr>().is_ok() {
        return vec![host];
    }
    let mut out = vec![host];
    let mut rest = host;
    while let Some((_, tail)) = rest.split_once('.') {
        out.push(tail);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_authorities() {
        assert_eq!(host_of("Social.Example.com:8443"), "social.example.com");
        assert_eq!(host_of("example.com."), "example.com");
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("127.0.0.5:4000"), "127.0.0.5");
    }

    #[test]
    fn rules_are_normalised_or_refused() {
        assert_eq!(normalize(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalize("https://spam.example/about").unwrap(),
            "spam.example"
        );
        assert_eq!(normalize("127.0.0.9").unwrap(), "127.0.0.9");
        for bad in ["", "exa mple.com", "a..b", "*.example.com", "ex*le.com"] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_rule_covers_its_subdomains_only() {
        assert!(covers("example.com", "example.com"));
        assert!(covers("example.com", "social.example.com"));
        assert!(covers("example.com", "a.b.example.com"));
        assert!(!covers("example.com", "badexample.com"));
        assert!(!covers("social.example.com", "example.com"));
        assert!(
            !covers("0.0.5", "127.0.0.5"),
            "IP addresses have no subdomains"
        );
        assert_eq!(
            candidates("a.b.example.com"),
            vec!["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        assert_eq!(candidates("127.0.0.5"), vec!["127.0.0.5"]);
    }
}
