//! Address ordering: which of a peer's advertised addresses to dial first.
//! Owns [`Net`] (one of this host's networks), reading them from the
//! interface list ([`local_nets`]) and [`sort_addrs`]. Knows nothing of mDNS
//! and must not name `mdns_sd`; apart from [`local_nets`] it is pure.

use std::net::{IpAddr, SocketAddr};

/// One of our own networks: an address and its prefix length.
#[derive(Debug, Clone, Copy)]
pub(super) struct Net {
    pub(super) ip: IpAddr,
    pub(super) prefix: u8,
}

impl Net {
    /// Whether `ip` is on this network (same family, same prefix).
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.ip, ip) {
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

/// The networks of this host's interfaces that are up.
///
/// One `getifaddrs` call (a netlink dump: no disk, no waiting on the
/// network), cheap enough to run on the runtime once per resolution.
pub(super) fn local_nets() -> Vec<Net> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.is_oper_up() && !i.is_loopback())
        .map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) => Net {
                ip: IpAddr::V4(a.ip),
                prefix: a.prefixlen.min(32),
            },
            if_addrs::IfAddr::V6(a) => Net {
                ip: IpAddr::V6(a.ip),
                prefix: a.prefixlen.min(128),
            },
        })
        .collect()
}

/// Dial order: addresses on one of our networks first (a link-local IPv6
/// address, scoped to an interface, always is), IPv4 before IPv6, loopback
/// last. An address on no network of ours (the peer's other interface, or a
/// bogus one) is only tried after those.
pub(super) fn sort_addrs(addrs: &mut Vec<SocketAddr>, nets: &[Net]) {
    let on_our_network = |a: &SocketAddr| match a {
        SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => v6.scope_id() != 0,
        other => nets.iter().any(|n| n.contains(other.ip())),
    };
    addrs.sort_by_key(|a| {
        (
            a.ip().is_loopback(),
            !on_our_network(a),
            matches!(a.ip(), IpAddr::V6(_)),
            *a,
        )
    });
    addrs.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn addresses_sort_ours_first_ipv4_first_loopback_last() {
        let mut list = addrs(&[
            "127.0.0.1:1",
            "192.0.2.7:1",
            "[fe80::1%2]:1",
            "10.0.0.2:1",
            "[2001:db8::1]:1",
            "10.0.0.2:1",
        ]);
        let nets = [Net {
            ip: "10.0.0.1".parse().unwrap(),
            prefix: 24,
        }];
        sort_addrs(&mut list, &nets);
        let order: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "10.0.0.2:1",
                "[fe80::1%2]:1",
                "192.0.2.7:1",
                "[2001:db8::1]:1",
                "127.0.0.1:1"
            ]
        );
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net = Net {
            ip: "10.77.0.1".parse().unwrap(),
            prefix: 24,
        };
        assert!(net.contains("10.77.0.200".parse().unwrap()));
        assert!(!net.contains("10.77.1.2".parse().unwrap()));
        assert!(!net.contains("fe80::1".parse().unwrap()));
        let any = Net {
            ip: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(any.contains("203.0.113.9".parse().unwrap()));
        let v6 = Net {
            ip: "2001:db8::1".parse().unwrap(),
            prefix: 64,
        };
        assert!(v6.contains("2001:db8::ffff".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    }
}
