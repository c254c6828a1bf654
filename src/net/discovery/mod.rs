//! mDNS/DNS-SD: advertising ourselves as `_lantalk._tcp.local.` and browsing
//! for peers. The only module that names `mdns_sd`; everything else sees
//! [`Peer`], [`PeerEvent`] and [`Health`].
//!
//! mdns-sd reports a peer several times (once per interface and address set)
//! and renames on conflicts; this module merges those into one [`Peer`] per
//! peer id and filters out our own advertisement. Whatever others advertise
//! is untrusted: advertisements without a usable id or port are set aside
//! with the reason ([`PeerEvent::Ignored`]), strings and address lists are
//! bounded, and the number of peers is capped.
//!
//! mdns-sd reports nothing when it cannot open UDP port 5353 or finds no
//! network: [`Health`] is our own check of both, so the user learns why
//! nobody shows up.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV6};
use std::time::Duration;

use mdns_sd::{
    DaemonEvent, IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::protocol::{Fingerprint, PROTO_VERSION, is_valid_peer_id};

mod addrs;
mod health;

use addrs::{Net, local_nets, sort_addrs};
pub use health::Health;
use health::health;

/// The DNS-SD service type lantalk advertises and browses.
pub const SERVICE_TYPE: &str = "_lantalk._tcp.local.";

/// How often to look for new network interfaces and addresses, in seconds.
const IP_CHECK_SECS: u32 = 30;

/// How long a goodbye or a shutdown may take before we stop waiting for it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How long a peer that failed to answer gets to answer a verify query.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the daemon may take to open its sockets before we look at them.
const START_WAIT: Duration = Duration::from_secs(1);

/// At most this many peers are kept; more are ignored (a flood of bogus
/// advertisements must not grow the list, or memory, without bound).
pub const MAX_PEERS: usize = 256;

/// At most this many addresses are kept per peer (the best ones): each is
/// tried in turn when dialling.
pub const MAX_ADDRS: usize = 8;

/// Longest instance or host name kept, in bytes (a DNS name is at most 255).
const NAME_MAX: usize = 255;

/// Longest TXT `nick` kept, in bytes (PROTOCOL.md: at most 200).
const NICK_MAX: usize = 200;

/// Failure to start or drive the mDNS daemon. Callers should carry on without
/// discovery (direct addresses still work) and tell the user. The text starts
/// with `mDNS` and says why, e.g. `mDNS unavailable: UDP port 5353 is held by
/// avahi-daemon (pid 612)`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DiscoveryError(String);

impl From<mdns_sd::Error> for DiscoveryError {
    fn from(e: mdns_sd::Error) -> Self {
        Self(format!("mDNS: {e}"))
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
    /// Addresses to dial, best first (at most [`MAX_ADDRS`]): those on one
    /// of our networks, IPv4 before IPv6 (link-local with scope); then the
    /// others; loopback last.
    pub addrs: Vec<SocketAddr>,
    /// TCP port of the peer's listener.
    pub port: u16,
    /// The peer's id (TXT `id`): 32 lowercase hex characters.
    pub id: String,
    /// The fingerprint of its certificate (TXT `fp`); `None` for a peer
    /// that does not speak TLS (an older lantalk).
    pub fp: Option<Fingerprint>,
    /// Full DNS-SD name, used to verify or identify the advertisement.
    #[serde(skip)]
    pub fullname: String,
    /// Why lantalk will not talk to this peer although it is listed, e.g.
    /// `speaks protocol 9; this lantalk speaks 1`. `None` for a usable peer.
    pub problem: Option<String>,
}

/// An advertisement of our service type that is not a usable lantalk peer
/// (no valid id, port 0, or too many peers), with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The instance name, as advertised (may hold anything: escape it to show it).
    pub name: String,
    /// The host name, as advertised.
    pub host: String,
    /// Why it is ignored, e.g. `no peer id (TXT id)`.
    pub why: String,
}

impl Ignored {
    /// Whether `query` names this advertisement, like [`Peer::match_rank`].
    pub fn matches(&self, query: &str) -> bool {
        let q = strip_local(query.trim());
        self.name.eq_ignore_ascii_case(q) || strip_local(&self.host).eq_ignore_ascii_case(q)
    }
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

/// A change in the set of peers, or in discovery itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A peer appeared, or its details (addresses, name, port) changed.
    Up(Peer),
    /// A peer said goodbye or its records expired.
    Down(Peer),
    /// An advertisement was set aside, and why (reported once per name and reason).
    Ignored(Ignored),
    /// Discovery's [`Health`] changed (a network came up or went away).
    Health(Health),
}

/// What [`Discovery::find`] found for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A peer to dial (check [`Peer::problem`] first).
    Found(Peer),
    /// Something by that name is advertised, but it is not usable, and why.
    Unusable(Ignored),
    /// Nothing by that name answered.
    NotFound,
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
    /// Our certificate's fingerprint (TXT `fp`), if we speak TLS.
    pub fp: Option<Fingerprint>,
}

/// A running mDNS daemon, advertising at most one service.
pub struct Discovery {
    daemon: ServiceDaemon,
    advertised: Option<String>,
    /// The interfaces we were limited to (empty: all).
    interfaces: Vec<String>,
}

impl Discovery {
    /// Starts the daemon, limited to `interfaces` when not empty. Fails, with
    /// the reason, when mDNS cannot work at all: an unknown interface, or UDP
    /// port 5353 held by a program that does not share it. Blocks for as long
    /// as the daemon takes to open its sockets (a few milliseconds).
    pub fn start(interfaces: &[String]) -> Result<Self, DiscoveryError> {
        for name in interfaces {
            if cfg!(target_os = "linux")
                && !std::path::Path::new("/sys/class/net").join(name).exists()
            {
                return Err(DiscoveryError(format!(
                    "mDNS: no network interface named {name:?}"
                )));
            }
        }
        let daemon = ServiceDaemon::new()?;
        // The daemon answers a status query only once it has opened its
        // sockets: after that, what it holds can be looked at.
        if let Ok(status) = daemon.status() {
            let _ = status.recv_timeout(START_WAIT);
        }
        if let Some(why) = health::port_unusable() {
            let _ = daemon.shutdown();
            return Err(DiscoveryError(format!("mDNS unavailable: {why}")));
        }
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
            interfaces: interfaces.to_vec(),
        })
    }

    /// How well discovery can work right now (see [`Health`]).
    pub fn health(&self) -> Health {
        health(&self.interfaces)
    }

    /// The [`Health`] as it changes: a new value each time it differs from
    /// the one before (which starts as [`Discovery::health`] now). The daemon
    /// notices new and lost addresses within `IP_CHECK_SECS`.
    pub fn health_changes(&self) -> Result<mpsc::Receiver<Health>, DiscoveryError> {
        let monitor = self.daemon.monitor()?;
        let interfaces = self.interfaces.clone();
        let mut last = self.health();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok(event) = monitor.recv_async().await {
                if !matches!(event, DaemonEvent::IpAdd(_) | DaemonEvent::IpDel(_)) {
                    continue;
                }
                let now = health(&interfaces);
                if now != last {
                    last = now.clone();
                    if tx.send(now).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Advertises our service (with name probing, so conflicts are resolved).
    /// Returns a receiver of the instance names the daemon renames us to (each once).
    pub fn advertise(&mut self, ad: &Advert) -> Result<mpsc::Receiver<String>, DiscoveryError> {
        let instance = truncate(&ad.name, 63);
        let nick = truncate(&ad.name, 200);
        let fp = ad.fp.map(|fp| fp.to_string());
        let mut txt = vec![
            ("txtvers", "1"),
            ("proto", "1"),
            ("id", ad.id.as_str()),
            ("nick", nick),
            ("status", "avail"),
        ];
        if let Some(fp) = &fp {
            txt.push(("fp", fp.as_str()));
        }
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

    /// Starts browsing. Peers with `own_id` (our own advertisement) are left
    /// out. Changes of [`Health`] come on the same channel.
    pub fn browse(
        &self,
        own_id: Option<String>,
    ) -> Result<mpsc::Receiver<PeerEvent>, DiscoveryError> {
        let events = self.daemon.browse(SERVICE_TYPE)?;
        let mut health = self.health_changes()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut book = PeerBook::new(own_id);
            loop {
                let changes = tokio::select! {
                    event = events.recv_async() => match event {
                        Ok(event) => book.apply(event, &local_nets()),
                        Err(_) => break,
                    },
                    Some(now) = health.recv() => vec![PeerEvent::Health(now)],
                };
                for change in changes {
                    if tx.send(change).await.is_err() {
                        return;
                    }
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
    /// With no peer by that name, an unusable advertisement by that name is
    /// reported at the deadline, so the user learns why it cannot be reached.
    pub async fn find(&self, query: &str, timeout: Duration) -> Result<Lookup, DiscoveryError> {
        let mut events = self.browse(None)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen: HashMap<String, Peer> = HashMap::new();
        let mut unusable: Option<Ignored> = None;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(PeerEvent::Up(peer)) => {
                        if peer.match_rank(query) == Some(MatchRank::Exact) {
                            return Ok(Lookup::Found(peer));
                        }
                        seen.insert(peer.id.clone(), peer);
                    }
                    Some(PeerEvent::Down(peer)) => {
                        seen.remove(&peer.id);
                    }
                    Some(PeerEvent::Ignored(ignored)) => {
                        if ignored.matches(query) {
                            unusable = Some(ignored);
                        }
                    }
                    Some(PeerEvent::Health(_)) => {}
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
        Ok(match (candidates.into_iter().next(), unusable) {
            (Some(peer), _) => Lookup::Found(peer),
            (None, Some(ignored)) => Lookup::Unusable(ignored),
            (None, None) => Lookup::NotFound,
        })
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

/// Merges mdns-sd's events into one entry per peer id, and one peer per
/// advertisement.
struct PeerBook {
    own_id: Option<String>,
    by_id: HashMap<String, Peer>,
    /// Advertisements set aside, by lowercase full name, with the reason last reported.
    ignored: HashMap<String, String>,
}

impl PeerBook {
    fn new(own_id: Option<String>) -> Self {
        Self {
            own_id,
            by_id: HashMap::new(),
            ignored: HashMap::new(),
        }
    }

    fn apply(&mut self, event: ServiceEvent, nets: &[Net]) -> Vec<PeerEvent> {
        match event {
            ServiceEvent::ServiceResolved(resolved) => match peer_from_resolved(&resolved, nets) {
                Ok(peer) => {
                    if self.own_id.as_deref() == Some(peer.id.as_str()) {
                        return Vec::new();
                    }
                    self.up(peer, nets)
                }
                Err(ignored) => {
                    let key = resolved.fullname.to_lowercase();
                    // Once usable, now not: that peer is gone.
                    let mut out: Vec<PeerEvent> =
                        self.remove_fullname(&key, None).into_iter().collect();
                    out.extend(self.set_aside(key, ignored));
                    out
                }
            },
            ServiceEvent::ServiceRemoved(_, fullname) => {
                let key = fullname.to_lowercase();
                self.ignored.remove(&key);
                self.remove_fullname(&key, None).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Remembers why the advertisement `key` (lowercase full name) is not
    /// used; the event to report it, unless that reason was reported before.
    fn set_aside(&mut self, key: String, ignored: Ignored) -> Option<PeerEvent> {
        if self.ignored.get(&key) == Some(&ignored.why) {
            return None;
        }
        // Bounded like the peers: a flood of bad advertisements forgets old reasons.
        if self.ignored.len() >= MAX_PEERS {
            self.ignored.clear();
        }
        self.ignored.insert(key, ignored.why.clone());
        Some(PeerEvent::Ignored(ignored))
    }

    /// Forgets the peer advertised as `fullname` (lowercase), unless its id is `keep`.
    fn remove_fullname(&mut self, fullname: &str, keep: Option<&str>) -> Option<PeerEvent> {
        let id = self
            .by_id
            .values()
            .find(|p| p.fullname.to_lowercase() == fullname && Some(p.id.as_str()) != keep)?
            .id
            .clone();
        self.by_id.remove(&id).map(PeerEvent::Down)
    }

    fn up(&mut self, peer: Peer, nets: &[Net]) -> Vec<PeerEvent> {
        // The same advertisement under a new id: the old one is gone, so the
        // list never shows one advertisement twice.
        let mut out: Vec<PeerEvent> = self
            .remove_fullname(&peer.fullname.to_lowercase(), Some(&peer.id))
            .into_iter()
            .collect();
        if !self.by_id.contains_key(&peer.id) && self.by_id.len() >= MAX_PEERS {
            let key = peer.fullname.to_lowercase();
            let ignored = Ignored {
                name: peer.name,
                host: peer.host,
                why: format!("more than {MAX_PEERS} peers on the network; the rest are ignored"),
            };
            out.extend(self.set_aside(key, ignored));
            return out;
        }
        self.ignored.remove(&peer.fullname.to_lowercase());
        out.extend(self.merge(peer, nets));
        out
    }

    fn merge(&mut self, mut peer: Peer, nets: &[Net]) -> Option<PeerEvent> {
        if let Some(known) = self.by_id.get(&peer.id) {
            // Same advertisement seen on another interface: keep every address.
            if known.fullname == peer.fullname && known.port == peer.port {
                for addr in &known.addrs {
                    if !peer.addrs.contains(addr) {
                        peer.addrs.push(*addr);
                    }
                }
                sort_addrs(&mut peer.addrs, nets);
                peer.addrs.truncate(MAX_ADDRS);
            }
            if *known == peer {
                return None;
            }
        }
        self.by_id.insert(peer.id.clone(), peer.clone());
        Some(PeerEvent::Up(peer))
    }
}

/// Our view of one resolved advertisement, or why it is not a usable lantalk peer.
fn peer_from_resolved(r: &ResolvedService, nets: &[Net]) -> Result<Peer, Ignored> {
    let name = bounded(&instance_of(&r.fullname), NAME_MAX);
    let host = bounded(&r.host, NAME_MAX);
    let ignored = |why: String| Ignored {
        name: name.clone(),
        host: host.clone(),
        why,
    };
    let id = match r.get_property_val_str("id") {
        None => return Err(ignored("no peer id (TXT id); not a lantalk peer?".into())),
        Some(id) if !is_valid_peer_id(id) => {
            return Err(ignored(format!(
                "its peer id {:?} is not 32 lowercase hex digits",
                bounded(id, 40)
            )));
        }
        Some(id) => id.to_owned(),
    };
    if r.port == 0 {
        return Err(ignored("it advertises port 0".into()));
    }
    // No `proto` (or an empty one) is taken as ours: the key is advisory.
    let problem = match r.get_property_val_str("proto").unwrap_or_default() {
        "" => None,
        p if p == PROTO_VERSION.to_string() => None,
        p if p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()) => Some(format!(
            "speaks protocol {p}; this lantalk speaks {PROTO_VERSION}"
        )),
        p => Some(format!(
            "speaks protocol {:?}; this lantalk speaks {PROTO_VERSION}",
            bounded(p, 16)
        )),
    };
    let fp = match r.get_property_val_str("fp").filter(|f| !f.is_empty()) {
        None => None,
        Some(text) => match text.parse::<Fingerprint>() {
            Ok(fp) => Some(fp),
            Err(e) => {
                return Err(ignored(format!("its TXT fp {:?}: {e}", bounded(text, 80))));
            }
        },
    };
    let problem = match fp {
        Some(fp) if problem.is_none() && fp.peer_id() != id => Some(format!(
            "its key (TXT fp) does not prove its id {id}: refusing to talk to it"
        )),
        _ => problem,
    };
    let nick = r
        .get_property_val_str("nick")
        .filter(|n| !n.is_empty())
        .map_or_else(|| name.clone(), |n| bounded(n, NICK_MAX));
    let mut addrs: Vec<SocketAddr> = r
        .addresses
        .iter()
        .map(|ip| socket_addr(ip, r.port))
        .collect();
    sort_addrs(&mut addrs, nets);
    addrs.truncate(MAX_ADDRS);
    Ok(Peer {
        name,
        nick,
        host,
        addrs,
        port: r.port,
        id,
        fp,
        fullname: r.fullname.clone(),
        problem,
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

/// `s` cut to at most `max` bytes on a character boundary, owned.
fn bounded(s: &str, max: usize) -> String {
    truncate(s, max).to_owned()
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

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// Our networks in these tests: 10.0.0.0/24.
    fn nets() -> Vec<Net> {
        vec![Net {
            ip: "10.0.0.1".parse().unwrap(),
            prefix: 24,
        }]
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
            fp: None,
            problem: None,
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

    /// A resolution of `instance` with these TXT properties and addresses.
    fn resolved_with(instance: &str, txt: &[(&str, &str)], ips: &str, port: u16) -> ServiceEvent {
        let info =
            ServiceInfo::new(SERVICE_TYPE, instance, "laptop.local.", ips, port, txt).unwrap();
        ServiceEvent::ServiceResolved(Box::new(info.as_resolved_service()))
    }

    fn resolved(instance: &str, id: &str, ip: &str) -> ServiceEvent {
        let txt = [
            ("txtvers", "1"),
            ("proto", "1"),
            ("id", id),
            ("nick", instance),
        ];
        resolved_with(instance, &txt, ip, 7342)
    }

    fn removed(instance: &str) -> ServiceEvent {
        ServiceEvent::ServiceRemoved(SERVICE_TYPE.into(), format!("{instance}.{SERVICE_TYPE}"))
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    /// The one event `events` must hold.
    fn one(mut events: Vec<PeerEvent>) -> PeerEvent {
        assert_eq!(events.len(), 1, "{events:?}");
        events.remove(0)
    }

    #[test]
    fn repeated_resolutions_merge_into_one_peer() {
        let mut book = PeerBook::new(None);
        let PeerEvent::Up(first) = one(book.apply(resolved("laptop", ID, "10.0.0.1"), &nets()))
        else {
            panic!("first resolution must announce the peer")
        };
        assert_eq!(first.addrs, addrs(&["10.0.0.1:7342"]));
        // The same peer seen on another interface: one peer, both addresses.
        let PeerEvent::Up(merged) = one(book.apply(resolved("laptop", ID, "fe80::1"), &nets()))
        else {
            panic!("a new address is a change")
        };
        assert_eq!(merged.addrs.len(), 2);
        assert_eq!(merged.addrs[0].to_string(), "10.0.0.1:7342");
        // Seen again with nothing new: no event.
        assert_eq!(
            book.apply(resolved("laptop", ID, "10.0.0.1"), &nets()),
            vec![]
        );
        assert!(
            matches!(one(book.apply(removed("laptop"), &nets())), PeerEvent::Down(p) if p.id == ID)
        );
        assert!(book.by_id.is_empty());
    }

    #[test]
    fn ourselves_and_malformed_ids_are_left_out() {
        let mut book = PeerBook::new(Some(ID.to_owned()));
        assert_eq!(book.apply(resolved("me", ID, "10.0.0.1"), &nets()), vec![]);
        let PeerEvent::Ignored(bad) =
            one(book.apply(resolved("bad", "NOT-AN-ID", "10.0.0.2"), &nets()))
        else {
            panic!("a bad id is reported")
        };
        assert_eq!(bad.name, "bad");
        assert!(
            bad.why.contains("\"NOT-AN-ID\" is not 32 lowercase hex"),
            "{}",
            bad.why
        );
        // Reported once, not at every resolution.
        assert_eq!(
            book.apply(resolved("bad", "NOT-AN-ID", "10.0.0.2"), &nets()),
            vec![]
        );
        let other = "f".repeat(32);
        assert!(
            matches!(one(book.apply(resolved("phone", &other, "10.0.0.3"), &nets())), PeerEvent::Up(p) if p.name == "phone")
        );
        assert_eq!(book.by_id.len(), 1);
    }

    #[test]
    fn missing_id_and_port_zero_say_why() {
        let mut book = PeerBook::new(None);
        let why = |events: Vec<PeerEvent>| match one(events) {
            PeerEvent::Ignored(i) => i.why,
            other => panic!("{other:?}"),
        };
        let no_id = why(book.apply(
            resolved_with("x", &[("proto", "1")], "10.0.0.5", 7342),
            &nets(),
        ));
        assert!(no_id.starts_with("no peer id"), "{no_id}");
        let port0 = why(book.apply(resolved_with("y", &[("id", ID)], "10.0.0.6", 0), &nets()));
        assert_eq!(port0, "it advertises port 0");
        assert!(book.by_id.is_empty());
    }

    #[test]
    fn missing_proto_and_nick_are_fine_another_proto_is_a_problem() {
        let mut book = PeerBook::new(None);
        let up = |events: Vec<PeerEvent>| match one(events) {
            PeerEvent::Up(p) => p,
            other => panic!("{other:?}"),
        };
        let plain = up(book.apply(
            resolved_with("plain", &[("id", ID)], "10.0.0.5", 7342),
            &nets(),
        ));
        assert_eq!((plain.nick.as_str(), plain.problem), ("plain", None));
        let other = "e".repeat(32);
        let future = up(book.apply(
            resolved_with(
                "future",
                &[("id", &other), ("proto", "9")],
                "10.0.0.6",
                7342,
            ),
            &nets(),
        ));
        assert_eq!(
            future.problem.as_deref(),
            Some("speaks protocol 9; this lantalk speaks 1")
        );
        let third = "d".repeat(32);
        let odd = up(book.apply(
            resolved_with(
                "odd",
                &[("id", &third), ("proto", "v2\x1b")],
                "10.0.0.7",
                7342,
            ),
            &nets(),
        ));
        assert_eq!(
            odd.problem.as_deref(),
            Some("speaks protocol \"v2\\u{1b}\"; this lantalk speaks 1")
        );
    }

    #[test]
    fn long_strings_are_bounded() {
        let mut book = PeerBook::new(None);
        // 250 bytes: with `nick=`, the largest string a TXT record holds.
        let nick = "é".repeat(125);
        let PeerEvent::Up(p) = one(book.apply(
            resolved_with("n", &[("id", ID), ("nick", &nick)], "10.0.0.5", 7342),
            &nets(),
        )) else {
            panic!()
        };
        assert_eq!(p.nick.len(), 200);
        assert!(p.nick.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_new_id_for_the_same_advertisement_replaces_the_old() {
        let mut book = PeerBook::new(None);
        one(book.apply(resolved("laptop", ID, "10.0.0.1"), &nets()));
        let other = "a".repeat(32);
        let events = book.apply(resolved("laptop", &other, "10.0.0.1"), &nets());
        assert!(
            matches!(&events[..], [PeerEvent::Down(old), PeerEvent::Up(new)] if old.id == ID && new.id == other),
            "{events:?}"
        );
        assert_eq!(book.by_id.len(), 1);
        // Its goodbye removes the one left.
        assert!(
            matches!(one(book.apply(removed("laptop"), &nets())), PeerEvent::Down(p) if p.id == other)
        );
    }

    #[test]
    fn the_list_is_capped() {
        let mut book = PeerBook::new(None);
        let mut over = 0;
        for round in 0..2 {
            for i in 0..MAX_PEERS + 10 {
                let id = format!("{i:032x}");
                for event in book.apply(resolved(&format!("p{i}"), &id, "10.0.0.9"), &nets()) {
                    if let PeerEvent::Ignored(ignored) = event {
                        assert!(
                            ignored.why.starts_with("more than 256 peers"),
                            "{}",
                            ignored.why
                        );
                        assert_eq!(round, 0, "each is reported once");
                        over += 1;
                    }
                }
            }
        }
        assert_eq!(book.by_id.len(), MAX_PEERS);
        assert_eq!(over, 10);
        // Room again once one leaves.
        one(book.apply(removed("p0"), &nets()));
        let id = format!("{:032x}", 9999);
        assert!(matches!(
            one(book.apply(resolved("late", &id, "10.0.0.9"), &nets())),
            PeerEvent::Up(_)
        ));
    }

    #[test]
    fn many_addresses_keep_the_best_few() {
        let mut book = PeerBook::new(None);
        let ips: Vec<String> = (1..=20).map(|i| format!("192.0.2.{i}")).collect();
        let ips = format!("{},10.0.0.77", ips.join(","));
        let PeerEvent::Up(p) =
            one(book.apply(resolved_with("many", &[("id", ID)], &ips, 7342), &nets()))
        else {
            panic!()
        };
        assert_eq!(p.addrs.len(), MAX_ADDRS);
        assert_eq!(p.addrs[0].to_string(), "10.0.0.77:7342", "ours first");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("abc", 63), "abc");
    }
}
