//! The peer book: turns what the daemon saw ([`Seen`], plain data converted
//! from mdns-sd's events by the daemon wrapper) into [`PeerEvent`]s. It
//! validates each resolved advertisement (whatever others advertise is
//! untrusted: no usable id or port sets it aside with the reason, strings
//! and address lists are bounded), merges the several resolutions of one
//! advertisement into one [`Peer`] per peer id, leaves out our own, and caps
//! the number of peers.
//!
//! Pure code on plain data: no I/O, no tokio, no clock, and it must not name
//! `mdns_sd` (the daemon wrapper in `mod.rs` converts).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use super::SERVICE_TYPE;
use super::addrs::{Net, sort_addrs};
use super::peer::{Ignored, Peer, PeerEvent};
use crate::protocol::{Fingerprint, PROTO_VERSION, is_valid_peer_id};

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

/// What the daemon saw about one advertisement of our service type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    /// It was resolved (again): its records as they are now.
    Resolved(Resolved),
    /// It said goodbye or its records expired; its full name.
    Removed(String),
}

/// One resolution of an advertisement, as received: untrusted, not yet bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The DNS-SD full name, e.g. `laptop._lantalk._tcp.local.` (escaped).
    pub(super) fullname: String,
    /// The host name from the SRV record, e.g. `laptop.local.`.
    pub(super) host: String,
    /// The port from the SRV record.
    pub(super) port: u16,
    /// The host's addresses, each with the index of the interface it was
    /// seen on (0 when unknown; used only for link-local IPv6).
    pub(super) ips: Vec<(IpAddr, u32)>,
    /// The TXT properties in the order received: key, and value as text
    /// (empty when it has none or is not UTF-8).
    pub(super) txt: Vec<(String, String)>,
}

impl Resolved {
    /// The value of TXT property `key` (case-insensitive, as mdns-sd
    /// compares keys; the first one when repeated), `None` when there is no
    /// such property.
    fn txt(&self, key: &str) -> Option<&str> {
        let key = key.to_lowercase();
        self.txt
            .iter()
            .find(|(k, _)| k.to_lowercase() == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Merges what the daemon saw into one entry per peer id, and one peer per
/// advertisement.
pub(super) struct PeerBook {
    own_id: Option<String>,
    by_id: HashMap<String, Peer>,
    /// Advertisements set aside, by lowercase full name, with the reason last reported.
    ignored: HashMap<String, String>,
}

impl PeerBook {
    /// An empty book; advertisements with `own_id` (ours) are left out.
    pub(super) fn new(own_id: Option<String>) -> Self {
        Self {
            own_id,
            by_id: HashMap::new(),
            ignored: HashMap::new(),
        }
    }

    /// Takes in one thing the daemon saw; the changes to report, in order.
    /// `nets` are our networks, to order the peer's addresses by.
    pub(super) fn apply(&mut self, seen: Seen, nets: &[Net]) -> Vec<PeerEvent> {
        match seen {
            Seen::Resolved(resolved) => match peer_from_resolved(&resolved, nets) {
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
            Seen::Removed(fullname) => {
                let key = fullname.to_lowercase();
                self.ignored.remove(&key);
                self.remove_fullname(&key, None).into_iter().collect()
            }
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
fn peer_from_resolved(r: &Resolved, nets: &[Net]) -> Result<Peer, Ignored> {
    let name = bounded(&instance_of(&r.fullname), NAME_MAX);
    let host = bounded(&r.host, NAME_MAX);
    let ignored = |why: String| Ignored {
        name: name.clone(),
        host: host.clone(),
        why,
    };
    let id = match r.txt("id") {
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
    let problem = match r.txt("proto").unwrap_or_default() {
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
    let fp = match r.txt("fp").filter(|f| !f.is_empty()) {
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
        .txt("nick")
        .filter(|n| !n.is_empty())
        .map_or_else(|| name.clone(), |n| bounded(n, NICK_MAX));
    let mut addrs: Vec<SocketAddr> = r
        .ips
        .iter()
        .map(|&(ip, scope)| socket_addr(ip, scope, r.port))
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

/// `ip` with `port`; an IPv6 link-local address keeps the interface it was
/// seen on (`scope`), as it is reachable only through that one.
fn socket_addr(ip: IpAddr, scope: u32, port: u16) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
        }
        other => SocketAddr::new(other, port),
    }
}

/// The instance part of a DNS-SD full name, unescaped:
/// `laptop (2)._lantalk._tcp.local.` → `laptop (2)`.
pub(super) fn instance_of(fullname: &str) -> String {
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
pub(super) fn truncate(s: &str, max: usize) -> &str {
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

    /// A resolution of `instance` with these TXT properties and addresses
    /// (comma-separated, no interface index).
    fn resolved_with(instance: &str, txt: &[(&str, &str)], ips: &str, port: u16) -> Seen {
        Seen::Resolved(Resolved {
            fullname: format!("{instance}.{SERVICE_TYPE}"),
            host: "laptop.local.".into(),
            port,
            ips: ips.split(',').map(|ip| (ip.parse().unwrap(), 0)).collect(),
            txt: txt
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    fn resolved(instance: &str, id: &str, ip: &str) -> Seen {
        let txt = [
            ("txtvers", "1"),
            ("proto", "1"),
            ("id", id),
            ("nick", instance),
        ];
        resolved_with(instance, &txt, ip, 7342)
    }

    fn removed(instance: &str) -> Seen {
        Seen::Removed(format!("{instance}.{SERVICE_TYPE}"))
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
    fn link_local_addresses_keep_their_interface_others_drop_it() {
        let mut book = PeerBook::new(None);
        let Seen::Resolved(mut r) = resolved("laptop", ID, "10.0.0.1") else {
            unreachable!()
        };
        r.ips = vec![
            ("fe80::1".parse().unwrap(), 3),
            ("2001:db8::1".parse().unwrap(), 3),
            ("10.0.0.1".parse().unwrap(), 3),
        ];
        let PeerEvent::Up(p) = one(book.apply(Seen::Resolved(r), &nets())) else {
            panic!()
        };
        assert_eq!(
            p.addrs,
            addrs(&["10.0.0.1:7342", "[fe80::1%3]:7342", "[2001:db8::1]:7342"])
        );
    }

    #[test]
    fn txt_keys_match_in_any_case_and_the_first_counts() {
        let other = "b".repeat(32);
        let r = Resolved {
            fullname: format!("x.{SERVICE_TYPE}"),
            host: "x.local.".into(),
            port: 1,
            ips: vec![],
            txt: vec![
                ("ID".into(), ID.into()),
                ("id".into(), other),
                ("nick".into(), String::new()),
            ],
        };
        assert_eq!(r.txt("id"), Some(ID));
        assert_eq!(r.txt("Nick"), Some(""));
        assert_eq!(r.txt("fp"), None);
        let p = peer_from_resolved(&r, &nets()).unwrap();
        assert_eq!(
            (p.id.as_str(), p.nick.as_str()),
            (ID, "x"),
            "empty nick: the name"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("abc", 63), "abc");
    }
}
