//! The client address a call's failed authentications are counted against: the TCP peer, or,
//! when the peer is a trusted proxy (`--trusted-proxies`, e.g. HAProxy or the standalone
//! gateway), the last address of its `x-forwarded-for`. Calls from the in-process REST gateway
//! have no TCP peer: the gateway sets `x-forwarded-for` itself, from its own peer, replacing
//! whatever the client sent.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

/// The header (and gRPC metadata) carrying the client address.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `x-forwarded-for` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpAddr]>);

impl TrustedProxies {
    /// Trusts `proxies`.
    pub fn new(proxies: &[IpAddr]) -> Self {
        TrustedProxies(proxies.into())
    }

    /// The client behind `peer` (`None`: the call came in process, from our own gateway).
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded = || {
            headers
                .get(FORWARDED_FOR)?
                .to_str()
                .ok()?
                .rsplit(',')
                .next()?
                .trim()
                .parse()
                .ok()
        };
        match peer {
            None => forwarded(),
            Some(ip) if self.0.contains(&ip) => forwarded().or(Some(ip)),
            Some(ip) => Some(ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_peers_name_the_client() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let mut headers = HeaderMap::new();
        headers.insert(
            FORWARDED_FOR,
            "10.9.9.9, 203.0.113.7".parse().expect("value"),
        );
        let trusted = TrustedProxies::new(&[ip("127.0.0.1")]);
        assert_eq!(
            trusted.client(Some(ip("127.0.0.1")), &headers),
            Some(ip("203.0.113.7")),
            "a trusted proxy's last hop"
        );
        assert_eq!(
            trusted.client(Some(ip("198.51.100.1")), &headers),
            Some(ip("198.51.100.1")),
            "anyone else cannot claim another address"
        );
        assert_eq!(trusted.client(None, &headers), Some(ip("203.0.113.7")));
        assert_eq!(
            trusted.client(Some(ip("127.0.0.1")), &HeaderMap::new()),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            TrustedProxies::default().client(None, &HeaderMap::new()),
            None
        );
    }
}
