//! mDNS/DNS-SD: advertising ourselves as `_lantalk._tcp.local.` and browsing
//! for peers. The only module that names `mdns_sd`; everything else sees
//! [`Peer`] and [`PeerEvent`].
//!
//! mdns-sd reports a peer several times (once per interface and address set)
//! and renames on conflicts; this module merges those into one [`Peer`] per
//! peer id and filters out our own advertisement.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use mdns_sd::{
    DaemonEvent, IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::protocol::is_valid_peer_id;

/// The DNS-SD service type lantalk advertises and browses.
pub const SERVICE_TYPE: &str = "_lantalk._tcp.local.";

/// How often to look for new network interfaces and addresses, in seconds.
const IP_CHECK_SECS: u32 = 30;

/// How long a goodbye or a shutdown may take before we stop waiting for it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How long a peer that failed to answer gets to answer a verify query.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Failure to start or drive the mDNS daemon. Callers should carry on without
/// discovery (direct addresses still work) and tell the user.
#[derive(Debug, thiserror::Error)]
#[error("mDNS: {0}")]
pub struct DiscoveryError(String);

impl From<mdns_sd::Error> for DiscoveryError {
    fn from(e: mdns_sd::Error) -> Self {
        Self(e.to_string())
    }
}

/// A lantalk peer found on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// DNS-SD instance name, e.g. `laptop` or, after a conflict, `laptop (2)`.
    pub name: String,
    /// The name the peer's user chose (TXT `nick`); usually equal to `name`.
    pub nick: String,
    /// The peer's mDNS host name, e.g. `laptop.local.`.
    pub host: String,
    /// Addresses to dial, best first: IPv4, then IPv6 (link-local with scope), loopback last.
    pub addrs: Vec<SocketAddr>,
    /// TCP port of the peer's listener.
    pub port: u16,
    /// The peer's id (TXT `id`): 32 lowercase hex characters.
    pub id: String,
    /// Full DNS-SD name, used to verify or identify the advertisement.
    #[serde(skip)]
    pub fullname: String,
}

/// How well a peer matches a name typed by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchRank {
    /// The instance name or the host name matches.
    Exact,
    /// Only the chosen nickname matches (the peer was renamed after a conflict).
    Nick,
}

impl Peer {
    /// Whether `query` names this peer, case-insensitively: `laptop`,
    /// `laptop.local`, `laptop.local.` and `Laptop` all name a peer whose
    /// instance or host is `laptop`; `laptop (2)` and `laptop-2.local` name
    /// the second `laptop` on a network.
    pub fn match_rank(&self, query: &str) -> Option<MatchRank> {
        let q = strip_local(query.trim());
        if self.name.eq_ignore_ascii_case(q) || strip_local(&self.host).eq_ignore_ascii_case(q) {
            Some(MatchRank::Exact)
        } else if self.nick.eq_ignore_ascii_case(q) {
            Some(MatchRank::Nick)
        } else {
            None
        }
    }
}

/// `laptop.local.` / `laptop.local` / `laptop.` → `laptop`.
fn strip_local(name: &str) -> &str {
    let name = name.strip_suffix('.').unwrap_or(name);
    match name.len().checked_sub(".local".len()) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".local") => {
            &name[..cut]
        }
        _ => name,
    }
}

/// A change in the set of peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A peer appeared, or its details (addresses, name, port) changed.
    Up(Peer),
    /// A peer said goodbye or its records expired.
    Down(Peer),
}

/// What to advertise about ourselves.
#[derive(Debug, Clone)]
pub struct Advert {
    /// Display name: instance name and TXT `nick`.
    pub name: String,
    /// Host label, without `.local.`.
    pub host: String,
    /// Our listening port.
    pub port: u16,
    /// Our peer id.
    pub id: String,
}

/// A running mDNS daemon, advertising at most one service.
pub struct Discovery {
    daemon: ServiceDaemon,
    advertised: Option<String>,
}

impl Discovery {
    /// Starts the daemon, limited to `interfaces` when not empty.
    pub fn start(interfaces: &[String]) -> Result<Self, DiscoveryError> {
        for name in interfaces {
            if cfg!(target_os = "linux")
                && !std::path::Path::new("/sys/class/net").join(name).exists()
            {
                return Err(DiscoveryError(format!(
                    "no network interface named {name:?}"
                )));
            }
        }
        let daemon = ServiceDaemon::new()?;
        // mdns-sd re-reads the interface list every 5 s by default, the main
        // source of wake-ups while idle; a new address is picked up within
        // this interval instead.
        daemon.set_ip_check_interval(IP_CHECK_SECS)?;
        if !interfaces.is_empty() {
            daemon.disable_interface(IfKind::All)?;
            let kinds: Vec<IfKind> = interfaces.iter().map(|i| IfKind::Name(i.clone())).collect();
            daemon.enable_interface(kinds)?;
        }
        Ok(Self {
            daemon,
            advertised: None,
        })
    }

    /// Advertises our service (with name probing, so conflicts are resolved).
    /// Returns a receiver of the instance names the daemon renames us to (each once).
    pub fn advertise(&mut self, ad: &Advert) -> Result<mpsc::Receiver<String>, DiscoveryError> {
        let instance = truncate(&ad.name, 63);
        let nick = truncate(&ad.name, 200);
        let txt = [
            ("txtvers", "1"),
            ("proto", "1"),
            ("id", ad.id.as_str()),
            ("nick", nick),
            ("status", "avail"),
        ];
        let host = format!("{}.local.", ad.host);
        let info = ServiceInfo::new(SERVICE_TYPE, instance, &host, "", ad.port, &txt[..])?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_owned();
        let monitor = self.daemon.monitor()?;
        self.daemon.register(info)?;
        self.advertised = Some(fullname.clone());
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            // The daemon reports a rename once per interface: pass each new name on once.
            let mut last = None;
            while let Ok(event) = monitor.recv_async().await {
                let DaemonEvent::NameChange(change) = event else {
                    continue;
                };
                let name = instance_of(&change.new_name);
                if !change.original.eq_ignore_ascii_case(&fullname) || last.as_ref() == Some(&name)
                {
                    continue;
                }
                last = Some(name.clone());
                if tx.send(name).await.is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    /// Withdraws our advertisement (goodbye), e.g. before advertising a new name.
    pub fn unadvertise(&mut self) {
        if let Some(fullname) = self.advertised.take() {
            let _ = self.daemon.unregister(&fullname);
        }
    }

    /// Starts browsing. Peers with `own_id` (our own advertisement) are left out.
    pub fn browse(
        &self,
        own_id: Option<String>,
    ) -> Result<mpsc::Receiver<PeerEvent>, DiscoveryError> {
        let events = self.daemon.browse(SERVICE_TYPE)?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut book = PeerBook::new(own_id);
            while let Ok(event) = events.recv_async().await {
                if let Some(change) = book.apply(event)
                    && tx.send(change).await.is_err()
                {
                    break;
                }
            }
        });
        Ok(rx)
    }

    /// Asks the network whether `peer` is still there; if it does not answer
    /// in a short while its records are dropped and browsers see it leave.
    /// Call this when connecting to a discovered peer failed.
    pub fn verify(&self, peer: &Peer) {
        if let Err(e) = self.daemon.verify(peer.fullname.clone(), VERIFY_TIMEOUT) {
            tracing::debug!("mDNS verify of {} failed: {e}", peer.fullname);
        }
    }

    /// Says goodbye (so peers drop us within about a second) and stops the daemon.
    pub async fn shutdown(mut self) {
        if let Some(fullname) = self.advertised.take()
            && let Ok(done) = self.daemon.unregister(&fullname)
        {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, done.recv_async()).await;
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, done.recv_async()).await;
        }
    }

    /// Browses until a peer matching `query` (see [`Peer::match_rank`]) is
    /// found or `timeout` passes. An exact instance-name or host match ends the
    /// search at once; a match on the nickname only is taken at the deadline.
    pub async fn find(
        &self,
        query: &str,
        timeout: Duration,
    ) -> Result<Option<Peer>, DiscoveryError> {
        let mut events = self.browse(None)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen: HashMap<String, Peer> = HashMap::new();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(PeerEvent::Up(peer)) => {
                        if peer.match_rank(query) == Some(MatchRank::Exact) {
                            return Ok(Some(peer));
                        }
                        seen.insert(peer.id.clone(), peer);
                    }
                    Some(PeerEvent::Down(peer)) => {
                        seen.remove(&peer.id);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let mut candidates: Vec<Peer> = seen
            .into_values()
            .filter(|p| p.match_rank(query).is_some())
            .collect();
        candidates
            .sort_by(|a, b| (a.match_rank(query), &a.name).cmp(&(b.match_rank(query), &b.name)));
        Ok(candidates.into_iter().next())
    }
}

impl Drop for Discovery {
    /// Best effort on paths that did not call [`Discovery::shutdown`]: the
    /// goodbye is queued, but nothing waits for it to go out.
    fn drop(&mut self) {
        if let Some(fullname) = self.advertised.take() {
            let _ = self.daemon.unregister(&fullname);
        }
        let _ = self.daemon.shutdown();
    }
}

/// Merges mdns-sd's events into one entry per peer id.
struct PeerBook {
    own_id: Option<String>,
    by_id: HashMap<String, Peer>,
}

impl PeerBook {
    fn new(own_id: Option<String>) -> Self {
        Self {
            own_id,
            by_id: HashMap::new(),
        }
    }

    fn apply(&mut self, event: ServiceEvent) -> Option<PeerEvent> {
        match event {
            ServiceEvent::ServiceResolved(resolved) => {
                let peer = peer_from_resolved(&resolved)?;
                if self.own_id.as_deref() == Some(peer.id.as_str()) {
                    return None;
                }
                self.merge(peer)
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                let id = self
                    .by_id
                    .values()
                    .find(|p| p.fullname.eq_ignore_ascii_case(&fullname))?
                    .id
                    .clone();
                self.by_id.remove(&id).map(PeerEvent::Down)
            }
            _ => None,
        }
    }

    fn merge(&mut self, mut peer: Peer) -> Option<PeerEvent> {
        if let Some(known) = self.by_id.get(&peer.id) {
            // Same advertisement seen on another interface: keep every address.
            if known.fullname == peer.fullname && known.port == peer.port {
                for addr in &known.addrs {
                    if !peer.addrs.contains(addr) {
                        peer.addrs.push(*addr);
                    }
                }
                sort_addrs(&mut peer.addrs);
            }
            if *known == peer {
                return None;
            }
        }
        self.by_id.insert(peer.id.clone(), peer.clone());
        Some(PeerEvent::Up(peer))
    }
}

/// Our view of one resolved advertisement, or `None` if it is not a usable lantalk peer.
fn peer_from_resolved(r: &ResolvedService) -> Option<Peer> {
    let id = r.get_property_val_str("id")?.to_owned();
    if !is_valid_peer_id(&id) || r.port == 0 {
        return None;
    }
    let name = instance_of(&r.fullname);
    let nick = r
        .get_property_val_str("nick")
        .filter(|n| !n.is_empty())
        .map_or_else(|| name.clone(), str::to_owned);
    let mut addrs: Vec<SocketAddr> = r
        .addresses
        .iter()
        .map(|ip| socket_addr(ip, r.port))
        .collect();
    sort_addrs(&mut addrs);
    Some(Peer {
        name,
        nick,
        host: r.host.clone(),
        addrs,
        port: r.port,
        id,
        fullname: r.fullname.clone(),
    })
}

fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) => {
            let addr = *v6.addr();
            let scope = if addr.is_unicast_link_local() {
                v6.scope_id().index
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

/// Dial order: IPv4 before IPv6, loopback last.
fn sort_addrs(addrs: &mut [SocketAddr]) {
    addrs.sort_by_key(|a| (a.ip().is_loopback(), matches!(a.ip(), IpAddr::V6(_)), *a));
}

/// The instance part of a DNS-SD full name, unescaped:
/// `laptop (2)._lantalk._tcp.local.` → `laptop (2)`.
fn instance_of(fullname: &str) -> String {
    let raw = fullname
        .strip_suffix(SERVICE_TYPE)
        .map_or(fullname, |s| s.strip_suffix('.').unwrap_or(s));
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_unescaped() {
        assert_eq!(instance_of("laptop (2)._lantalk._tcp.local."), "laptop (2)");
        assert_eq!(instance_of("a\\.b._lantalk._tcp.local."), "a.b");
    }

    #[test]
    fn addresses_sort_ipv4_first_loopback_last() {
        let mut addrs: Vec<SocketAddr> = ["127.0.0.1:1", "[fe80::1%2]:1", "10.0.0.2:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        sort_addrs(&mut addrs);
        assert_eq!(addrs[0].to_string(), "10.0.0.2:1");
        assert!(addrs[1].is_ipv6());
        assert!(addrs[2].ip().is_loopback());
    }

    fn peer(name: &str, nick: &str, host: &str) -> Peer {
        Peer {
            name: name.into(),
            nick: nick.into(),
            host: host.into(),
            addrs: vec![],
            port: 7342,
            id: "0".repeat(32),
            fullname: format!("{name}.{SERVICE_TYPE}"),
        }
    }

    #[test]
    fn names_match_case_insensitively_with_or_without_local() {
        let laptop = peer("laptop", "laptop", "laptop.local.");
        for q in [
            "laptop",
            "Laptop",
            "laptop.local",
            "LAPTOP.local.",
            " laptop ",
        ] {
            assert_eq!(laptop.match_rank(q), Some(MatchRank::Exact), "{q}");
        }
        assert_eq!(laptop.match_rank("phone"), None);
        assert_eq!(laptop.match_rank("lap"), None);
        let second = peer("laptop (2)", "laptop", "laptop-2.local.");
        assert_eq!(second.match_rank("laptop (2)"), Some(MatchRank::Exact));
        assert_eq!(second.match_rank("laptop-2.local"), Some(MatchRank::Exact));
        assert_eq!(second.match_rank("laptop"), Some(MatchRank::Nick));
    }

    fn resolved(instance: &str, id: &str, ip: &str) -> ServiceEvent {
        let txt = [
            ("txtvers", "1"),
            ("proto", "1"),
            ("id", id),
            ("nick", instance),
        ];
        let info =
            ServiceInfo::new(SERVICE_TYPE, instance, "laptop.local.", ip, 7342, &txt[..]).unwrap();
        ServiceEvent::ServiceResolved(Box::new(info.as_resolved_service()))
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn repeated_resolutions_merge_into_one_peer() {
        let mut book = PeerBook::new(None);
        let Some(PeerEvent::Up(first)) = book.apply(resolved("laptop", ID, "10.0.0.1")) else {
            panic!("first resolution must announce the peer")
        };
        assert_eq!(
            first.addrs,
            vec!["10.0.0.1:7342".parse::<SocketAddr>().unwrap()]
        );
        // The same peer seen on another interface: one peer, both addresses.
        let Some(PeerEvent::Up(merged)) = book.apply(resolved("laptop", ID, "fe80::1")) else {
            panic!("a new address is a change")
        };
        assert_eq!(merged.addrs.len(), 2);
        assert_eq!(merged.addrs[0].to_string(), "10.0.0.1:7342");
        // Seen again with nothing new: no event.
        assert_eq!(book.apply(resolved("laptop", ID, "10.0.0.1")), None);
        let removed =
            ServiceEvent::ServiceRemoved(SERVICE_TYPE.into(), format!("laptop.{SERVICE_TYPE}"));
        assert!(matches!(book.apply(removed), Some(PeerEvent::Down(p)) if p.id == ID));
        assert!(book.by_id.is_empty());
    }

    #[test]
    fn ourselves_and_malformed_ids_are_left_out() {
        let mut book = PeerBook::new(Some(ID.to_owned()));
        assert_eq!(book.apply(resolved("me", ID, "10.0.0.1")), None);
        assert_eq!(book.apply(resolved("bad", "NOT-AN-ID", "10.0.0.2")), None);
        let other = "f".repeat(32);
        assert!(
            matches!(book.apply(resolved("phone", &other, "10.0.0.3")), Some(PeerEvent::Up(p)) if p.name == "phone")
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("abc", 63), "abc");
    }
}
