//! Which client a request comes from, for per-IP limits and logs: the socket's peer address, unless
//! that peer is a configured trusted reverse proxy; then the last address in `X-Forwarded-For` that is
//! not itself a trusted proxy (the leftmost entries are whatever the client chose to send, so only what
//! the trusted proxies appended counts).

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::{Error, Result};

/// One address range (`10.0.0.0/8`, `::1/128`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    network: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(text: &str) -> Result<Range> {
        let bad = || {
            Error::Config(format!(
                "trusted_proxies: {text:?} is not an address or CIDR range"
            ))
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Range { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<Range>,
}

impl TrustedProxies {
    /// Parses the `trusted_proxies` setting.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies> {
        Ok(TrustedProxies {
            ranges: entries
                .iter()
                .filter(|e| !e.trim().is_empty())
                .map(|e| Range::parse(e))
                .collect::<Result<_>>()?,
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            proxies.client_ip(stranger, &headers("203.0.113.7")),
            stranger,
            "an untrusted peer cannot name another client"
        );
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(proxies.client_ip(proxy, &headers("203.0.113.7")), client);
        assert_eq!(
            proxies.client_ip(proxy, &headers("1.2.3.4, 203.0.113.7, 10.9.9.9")),
            client,
            "the spoofable leftmost entry is not believed"
        );
        assert_eq!(proxies.client_ip(proxy, &HeaderMap::new()), proxy);
        assert_eq!(
            proxies.client_ip("::1".parse().unwrap(), &headers("garbage")),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            proxies.client_ip("::ffff:10.0.0.1".parse().unwrap(), &headers("203.0.113.7")),
            client
        );
    }

    #[test]
    fn ranges_parse_strictly() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
        let all = TrustedProxies::parse(&["0.0.0.0/0".into()]).unwrap();
        assert!(all.trusts("8.8.8.8".parse().unwrap()));
    }
}
