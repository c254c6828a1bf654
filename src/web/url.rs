//! The address a phone's browser opens: `http://ADDR:PORT/#t=TOKEN`, ADDR
//! the IPv4 address of the network interface the phone is likely on (the
//! first one that is up and is neither loopback nor a container bridge, a
//! virtual machine's network or a VPN tunnel), and the same by name,
//! `http://HOST.local:PORT/#t=TOKEN`, where mDNS runs. The token travels in
//! the fragment: a browser never sends it in a request, so it reaches no log.
//!
//! [`choose`] and [`WebAddress::new`] are plain data; [`interfaces`] reads
//! the interface list (one `getifaddrs`, no network traffic) and [`current`]
//! also the data directory's token.

use std::net::Ipv4Addr;
use std::path::Path;

/// One IPv4 address of one of this machine's network interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// The interface's name (`wlan0`, `eth0`, `docker0`).
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Up (operationally): a cable plugged in, a Wi-Fi joined.
    pub up: bool,
    /// A point-to-point link: a VPN tunnel or a modem, never the LAN.
    pub p2p: bool,
}

/// Interface names of container bridges, virtual machines' networks and
/// VPN tunnels: a phone on the Wi-Fi cannot reach their addresses.
const VIRTUAL_PREFIXES: &[&str] = &[
    "docker",
    "br-",
    "veth",
    "virbr",
    "vboxnet",
    "vmnet",
    "lxcbr",
    "lxdbr",
    "incusbr",
    "podman",
    "cni",
    "flannel",
    "cali",
    "kube",
    "tun",
    "tap",
    "wg",
    "tailscale",
    "zt",
    "utun",
    "ppp",
    "ipsec",
    "nordlynx",
    "proton",
    "vti",
    "gre",
    "ipip",
    "sit",
    "awdl",
    "llw",
    "anpi",
    "bridge",
];

/// Where a phone can open the chat page: an address for the QR code and
/// the others worth trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The interface and address the URL uses.
    pub best: Option<(String, Ipv4Addr)>,
    /// Every other address of an interface that is up (not loopback),
    /// best first, with its interface.
    pub others: Vec<(String, Ipv4Addr)>,
}

/// How likely a phone on the LAN reaches `iface` (lower is likelier), or
/// `None` when it cannot at all (loopback, down).
fn rank(iface: &Iface) -> Option<u8> {
    if !iface.up || iface.ip.is_loopback() || iface.ip.is_unspecified() {
        return None;
    }
    let name = iface.name.to_ascii_lowercase();
    let virtual_net = iface.p2p || VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p));
    Some(match (virtual_net, iface.ip.is_link_local()) {
        (false, false) => 0,
        // 169.254.x.x: no DHCP answered; a phone on that link could still.
        (false, true) => 1,
        (true, _) => 2,
    })
}

/// Picks the address for the URL from `ifaces` (in the system's order),
/// limited to the interfaces in `only` when it is not empty (what
/// `--interface` limits mDNS to): the first of the likeliest kind.
pub fn choose(ifaces: &[Iface], only: &[String]) -> Choice {
    let mut candidates: Vec<(u8, &Iface)> = ifaces
        .iter()
        .filter(|i| only.is_empty() || only.contains(&i.name))
        .filter_map(|i| rank(i).map(|r| (r, i)))
        .collect();
    // Stable: the system's order within a rank.
    candidates.sort_by_key(|(r, _)| *r);
    let mut all = candidates.into_iter().map(|(_, i)| (i.name.clone(), i.ip));
    let best = all.next();
    let mut others: Vec<(String, Ipv4Addr)> = Vec::new();
    for (name, ip) in all {
        if best.as_ref().is_none_or(|(_, b)| *b != ip) && !others.iter().any(|(_, o)| *o == ip) {
            others.push((name, ip));
        }
    }
    Choice { best, others }
}

/// The addresses of the chat page, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAddress {
    /// `http://ADDR:PORT/#t=TOKEN`: what the QR code holds.
    pub url: String,
    /// `http://HOST.local:PORT/#t=TOKEN`, when mDNS answers for that name.
    pub local: Option<String>,
    /// The machine's other addresses a phone might be on, `ADDR (IFACE)`.
    pub others: Vec<String>,
    /// Why a phone may not reach `url` (no network besides loopback).
    pub warning: Option<String>,
}

impl WebAddress {
    /// The addresses for `choice`, `port` and `token`; `host` is the mDNS
    /// name (`laptop.local`), `None` without mDNS.
    pub fn new(choice: &Choice, port: u16, token: &str, host: Option<&str>) -> Self {
        let (ip, warning) = match &choice.best {
            Some((_, ip)) => (*ip, None),
            None => (
                Ipv4Addr::LOCALHOST,
                Some("no network besides loopback: only this machine can open it".to_owned()),
            ),
        };
        Self {
            url: url(&ip.to_string(), port, token),
            local: host.map(|h| url(h.trim_end_matches('.'), port, token)),
            others: choice
                .others
                .iter()
                .map(|(name, ip)| format!("{ip} ({name})"))
                .collect(),
            warning,
        }
    }
}

/// `http://HOST:PORT/#t=TOKEN`.
pub fn url(host: &str, port: u16, token: &str) -> String {
    format!("http://{host}:{port}/#t={token}")
}

/// This machine's IPv4 addresses, in the system's order. No interface
/// list (an error) is no address.
pub fn interfaces() -> Vec<Iface> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(ref a) => Some(Iface {
                ip: a.ip,
                up: i.is_oper_up(),
                p2p: i.is_p2p(),
                name: i.name,
            }),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect()
}

/// The chat page's address now: this machine's interfaces (limited to
/// `only`), `port`, and the data directory `dir`'s token, made on first
/// use, or a new one when `new_token` (every address shown before stops
/// working).
pub fn current(
    dir: &Path,
    new_token: bool,
    port: u16,
    only: &[String],
    host: Option<&str>,
) -> anyhow::Result<WebAddress> {
    let token = if new_token {
        super::token::rotate(dir)?
    } else {
        super::token::load_or_create(dir)?
    };
    let choice = choose(&interfaces(), only);
    Ok(WebAddress::new(&choice, port, &token, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, ip: &str) -> Iface {
        Iface {
            name: name.into(),
            ip: ip.parse().unwrap(),
            up: true,
            p2p: false,
        }
    }

    fn best(choice: &Choice) -> Option<(&str, String)> {
        choice
            .best
            .as_ref()
            .map(|(n, ip)| (n.as_str(), ip.to_string()))
    }

    #[test]
    fn the_lan_interface_wins_over_loopback_containers_and_vpns() {
        let mut tunnel = iface("corp0", "10.8.0.2");
        tunnel.p2p = true;
        let ifaces = [
            iface("lo", "127.0.0.1"),
            iface("docker0", "172.17.0.1"),
            iface("br-3f2a9c", "172.18.0.1"),
            iface("veth12ab", "169.254.3.3"),
            iface("virbr0", "192.168.122.1"),
            iface("wg0", "10.9.0.1"),
            iface("tailscale0", "100.101.102.103"),
            iface("tun0", "10.10.0.1"),
            tunnel,
            iface("wlp2s0", "192.168.1.20"),
            iface("enp3s0", "192.168.50.7"),
        ];
        let choice = choose(&ifaces, &[]);
        assert_eq!(best(&choice), Some(("wlp2s0", "192.168.1.20".into())));
        let others: Vec<&str> = choice.others.iter().map(|(n, _)| n.as_str()).collect();
        // The other real interface first, then the virtual ones in order.
        assert_eq!(
            others,
            [
                "enp3s0",
                "docker0",
                "br-3f2a9c",
                "veth12ab",
                "virbr0",
                "wg0",
                "tailscale0",
                "tun0",
                "corp0"
            ]
        );
    }

    #[test]
    fn the_first_real_interface_in_the_systems_order_wins() {
        let ifaces = [iface("eth1", "10.0.0.5"), iface("eth0", "10.0.1.5")];
        assert_eq!(
            best(&choose(&ifaces, &[])),
            Some(("eth1", "10.0.0.5".into()))
        );
    }

    #[test]
    fn an_interface_that_is_down_is_not_used() {
        let mut down = iface("eth0", "192.168.1.20");
        down.up = false;
        let choice = choose(&[down, iface("wlan0", "192.168.1.21")], &[]);
        assert_eq!(best(&choice), Some(("wlan0", "192.168.1.21".into())));
        assert!(choice.others.is_empty(), "{choice:?}");
    }

    #[test]
    fn a_link_local_address_comes_after_a_real_one() {
        let ifaces = [iface("eth0", "169.254.10.1"), iface("wlan0", "10.1.2.3")];
        let choice = choose(&ifaces, &[]);
        assert_eq!(best(&choice), Some(("wlan0", "10.1.2.3".into())));
        assert_eq!(
            choice.others,
            [("eth0".into(), "169.254.10.1".parse().unwrap())]
        );
    }

    #[test]
    fn only_a_vpn_is_still_an_address() {
        let choice = choose(&[iface("lo", "127.0.0.1"), iface("wg0", "10.9.0.2")], &[]);
        assert_eq!(best(&choice), Some(("wg0", "10.9.0.2".into())));
    }

    #[test]
    fn interface_limits_the_choice() {
        let ifaces = [iface("eth0", "10.0.0.5"), iface("wlan0", "192.168.1.9")];
        let choice = choose(&ifaces, &["wlan0".into()]);
        assert_eq!(best(&choice), Some(("wlan0", "192.168.1.9".into())));
        assert!(choice.others.is_empty());
        let none = choose(&ifaces, &["eth9".into()]);
        assert_eq!(none.best, None);
    }

    #[test]
    fn the_url_carries_the_token_in_the_fragment_and_the_local_name() {
        let choice = choose(
            &[
                iface("wlan0", "192.168.1.20"),
                iface("docker0", "172.17.0.1"),
            ],
            &[],
        );
        let token = "0123456789abcdef0123456789abcdef";
        let address = WebAddress::new(&choice, 7342, token, Some("laptop.local"));
        assert_eq!(
            address.url,
            "http://192.168.1.20:7342/#t=0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            address.local.as_deref(),
            Some("http://laptop.local:7342/#t=0123456789abcdef0123456789abcdef")
        );
        assert_eq!(address.others, ["172.17.0.1 (docker0)"]);
        assert_eq!(address.warning, None);
        // An mDNS name written with its final dot is the same name.
        let dotted = WebAddress::new(&choice, 80, token, Some("laptop.local."));
        assert_eq!(
            dotted.local.as_deref(),
            Some("http://laptop.local:80/#t=0123456789abcdef0123456789abcdef")
        );
        assert_eq!(WebAddress::new(&choice, 80, token, None).local, None);
    }

    #[test]
    fn without_a_network_the_url_is_loopback_and_says_so() {
        let address = WebAddress::new(&choose(&[iface("lo", "127.0.0.1")], &[]), 7342, "ab", None);
        assert_eq!(address.url, "http://127.0.0.1:7342/#t=ab");
        assert!(
            address.warning.as_deref().unwrap().contains("loopback"),
            "{address:?}"
        );
    }

    #[test]
    fn current_uses_the_data_directorys_token_and_a_new_one_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let first = current(dir.path(), false, 7342, &[], None).unwrap();
        let token = super::super::token::load_or_create(dir.path()).unwrap();
        assert!(
            first.url.ends_with(&format!(":7342/#t={token}")),
            "{first:?}"
        );
        assert_eq!(current(dir.path(), false, 7342, &[], None).unwrap(), first);
        let rotated = current(dir.path(), true, 7342, &[], None).unwrap();
        let token = super::super::token::load_or_create(dir.path()).unwrap();
        assert_ne!(rotated.url, first.url);
        assert!(rotated.url.ends_with(&format!("#t={token}")), "{rotated:?}");
    }
}
