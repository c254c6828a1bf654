//! Whether mDNS can work here: [`Health`], computed from the interfaces that
//! are up and the UDP 5353 sockets this process holds, and the `/proc`
//! forensics that name who else holds port 5353 when we could not open it.
//!
//! The checks block (they read `/proc` and the interface list): callers run
//! them on tokio's blocking pool, never on the runtime. It must not name
//! `mdns_sd` and knows nothing of peers.

/// The UDP port of mDNS.
const MDNS_PORT: u16 = 5353;

/// How well discovery can work here, right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Advertising and browsing on at least one network interface.
    Working,
    /// Running, but limited, and why: no network interface is up besides
    /// loopback (only this machine's peers can be found), or only one of
    /// IPv4 and IPv6 works. Changes when interfaces come and go.
    Limited(String),
}

impl Health {
    /// The limitation, if any.
    pub fn limitation(&self) -> Option<&str> {
        match self {
            Self::Working => None,
            Self::Limited(why) => Some(why),
        }
    }
}

/// How well mDNS can work with the sockets the daemon holds and the
/// interfaces that are up (limited to `interfaces` when not empty).
///
/// Blocking: reads `/proc` (see [`sockets`]) and the interface list; run
/// it off the async runtime.
pub(super) fn health(interfaces: &[String]) -> Health {
    let sockets = sockets::mdns();
    let up: Vec<if_addrs::Interface> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.is_oper_up() && !i.is_p2p())
        // Loopback counts only when asked for by name.
        .filter(|i| {
            if interfaces.is_empty() {
                !i.is_loopback()
            } else {
                interfaces.contains(&i.name)
            }
        })
        .collect();
    let has_v4 = up.iter().any(|i| i.ip().is_ipv4());
    let has_v6 = up.iter().any(|i| i.ip().is_ipv6());
    if !has_v4 && !has_v6 {
        return Health::Limited(if interfaces.is_empty() {
            "mDNS: no network (only loopback is up)".to_owned()
        } else {
            format!(
                "mDNS: {} not up",
                interfaces.join(", ").replace(|c: char| c.is_control(), "?")
            )
        });
    }
    match (has_v4 && sockets.v4, has_v6 && sockets.v6) {
        (true, true) => Health::Working,
        (true, false) if !has_v6 => Health::Working,
        (false, true) if !has_v4 => Health::Working,
        (true, false) => Health::Limited(format!(
            "mDNS over IPv4 only: {}",
            sockets.why_not(Some(false))
        )),
        (false, true) => Health::Limited(format!(
            "mDNS over IPv6 only: {}",
            sockets.why_not(Some(true))
        )),
        (false, false) => Health::Limited(format!(
            "mDNS: no network it can use ({})",
            sockets.why_not(None)
        )),
    }
}

/// Why mDNS cannot work at all: `None` while this process holds a UDP 5353
/// socket of either family; otherwise the reason, naming the program that
/// holds the port when we may see it (`UDP port 5353 is held by avahi-daemon
/// (pid 612)`). Call once the daemon has opened its sockets.
///
/// Blocking: reads `/proc`; run it off the async runtime.
pub(super) fn port_unusable() -> Option<String> {
    let sockets = sockets::mdns();
    (!sockets.v4 && !sockets.v6).then(|| sockets.why_not(None))
}

/// Which UDP 5353 sockets this process holds, and who else holds the port:
/// read from `/proc` on Linux (elsewhere both are assumed held).
mod sockets {
    use std::collections::HashSet;
    use std::fs;

    use super::MDNS_PORT;

    /// The mDNS sockets of this process.
    pub(super) struct Sockets {
        /// An IPv4 socket on 5353.
        pub v4: bool,
        /// An IPv6 socket on 5353.
        pub v6: bool,
        /// Sockets of other processes on 5353 (socket inodes), IPv4 then IPv6.
        others: Vec<(bool, u64)>,
    }

    impl Sockets {
        /// Why we hold no 5353 socket (of one family: `Some(true)` IPv4,
        /// `Some(false)` IPv6; `None` either).
        pub(super) fn why_not(&self, v4: Option<bool>) -> String {
            let family = match v4 {
                Some(true) => " (IPv4)",
                Some(false) => " (IPv6)",
                None => "",
            };
            if self.others.is_empty() {
                return format!("cannot open UDP port {MDNS_PORT}{family}");
            }
            // A holder of the same family first; a dual-stack IPv6 socket
            // blocks IPv4 too.
            let mut others: Vec<&(bool, u64)> = self.others.iter().collect();
            others.sort_by_key(|(is_v4, _)| v4.is_some_and(|v4| v4 != *is_v4));
            match others.iter().find_map(|(_, inode)| owner_of(*inode)) {
                Some(who) => format!("UDP port {MDNS_PORT}{family} is held by {who}"),
                None => format!("UDP port {MDNS_PORT}{family} is held by another program"),
            }
        }
    }

    /// Looks at this process's sockets. Call once the daemon has started.
    /// Without a readable `/proc` (not Linux, or not mounted), both are
    /// assumed held: no check is better than a false alarm.
    pub(super) fn mdns() -> Sockets {
        let unknown = Sockets {
            v4: true,
            v6: true,
            others: Vec::new(),
        };
        if !cfg!(target_os = "linux") || fs::metadata("/proc/net/udp").is_err() {
            return unknown;
        }
        let Some(own) = own_sockets() else {
            return unknown;
        };
        let mut sockets = Sockets {
            v4: false,
            v6: false,
            others: Vec::new(),
        };
        for (table, v4) in [("/proc/net/udp", true), ("/proc/net/udp6", false)] {
            for inode in bound_to(table, MDNS_PORT) {
                if own.contains(&inode) {
                    if v4 {
                        sockets.v4 = true;
                    } else {
                        sockets.v6 = true;
                    }
                } else {
                    sockets.others.push((v4, inode));
                }
            }
        }
        sockets
    }

    /// Inodes of the sockets in `/proc/net/udp{,6}` bound to local `port`.
    fn bound_to(table: &str, port: u16) -> Vec<u64> {
        let text = fs::read_to_string(table).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let local_port = fields.get(1)?.rsplit_once(':')?.1;
                (u16::from_str_radix(local_port, 16).ok()? == port)
                    .then(|| fields.get(9)?.parse().ok())
                    .flatten()
            })
            .collect()
    }

    /// The socket inode behind a `/proc/PID/fd/N` link (`socket:[1234]`).
    fn socket_inode(link: &std::path::Path) -> Option<u64> {
        let target = fs::read_link(link).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    }

    fn own_sockets() -> Option<HashSet<u64>> {
        let fds = fs::read_dir("/proc/self/fd").ok()?;
        Some(
            fds.flatten()
                .filter_map(|e| socket_inode(&e.path()))
                .collect(),
        )
    }

    /// `name (pid N)` of a process holding socket `inode`, if we may look.
    fn owner_of(inode: u64) -> Option<String> {
        for proc in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = proc
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = fs::read_dir(proc.path().join("fd")) else {
                continue;
            };
            if fds
                .flatten()
                .any(|fd| socket_inode(&fd.path()) == Some(inode))
            {
                let comm = fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
                // A process may name itself anything: no control characters.
                let comm: String = comm
                    .trim()
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                return Some(format!("{comm} (pid {pid})"));
            }
        }
        None
    }
}
