//! Where webhooks may go. An endpoint's URL must be `https` with a host name or a public address;
//! at delivery, the name is resolved by [`PublicResolver`], which drops loopback, private,
//! link-local (cloud metadata included), shared, multicast and reserved addresses, so a name that
//! resolves (or is later re-pointed) to an internal address gets nothing. `--webhook-allow-
//! insecure-targets` lifts both checks (tests, local development).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Whether an address is off limits for deliveries.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (fc00::/7)
                || (s[0] & 0xffc0) == 0xfe80 // link-local (fe80::/10)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64: an IPv4 address in disguise
                || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, the metadata address included
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Checks an endpoint's URL: what is wrong with it, if anything.
pub fn check_url(url: &str, allow_insecure: bool) -> Result<url::Url, &'static str> {
    if url.len() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    let parsed = url::Url::parse(url).map_err(|_| "must be an absolute URL")?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        _ => return Err("must be an https URL"),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials");
    }
    if parsed.fragment().is_some() {
        return Err("must not have a fragment");
    }
    let host = match parsed.host() {
        None => return Err("must name a host"),
        Some(host) => host,
    };
    if !allow_insecure {
        let literal = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err("must not point at this machine or a private network");
                }
                None
            }
        };
        if literal.is_some_and(forbidden) {
            return Err("must not point at this machine or a private network");
        }
    }
    Ok(parsed)
}

/// The delivery client's resolver: the system's answers without the forbidden addresses; an
/// error when none is left.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| !forbidden(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(forbidden(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!forbidden(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn urls_must_be_https_to_a_public_host() {
        assert!(check_url("https://hooks.example.com/partners", false).is_ok());
        assert!(check_url("https://93.184.216.34/x", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://localhost/x",
            "https://api.localhost./x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.8:8443/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "/relative",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(
            check_url("http://127.0.0.1:9000/hook", true).is_ok(),
            "allowed for tests"
        );
        assert!(check_url(&format!("https://a.example/{}", "x".repeat(2100)), false).is_err());
    }
}
