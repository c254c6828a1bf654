//! What discovery reports: [`Peer`], [`Ignored`], [`PeerEvent`], and how a
//! name typed by the user matches a peer ([`MatchRank`]). Plain data, shown
//! by the UI and the headless commands; no I/O, and it must not name
//! `mdns_sd`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Health;
use crate::protocol::Fingerprint;

/// A lantalk peer found on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// DNS-SD instance name, e.g. `laptop` or, after a conflict, `laptop (2)`.
    pub name: String,
    /// The name the peer's user chose (TXT `nick`); usually equal to `name`.
    pub nick: String,
    /// The peer's mDNS host name, e.g. `laptop.local.`.
    pub host: String,
    /// Addresses to dial, best first (at most [`MAX_ADDRS`](super::MAX_ADDRS)): those on one
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
    /// the second `laptop` on a network; `laptop#3f2a` names the one whose
    /// id starts with `3f2a` (see [`crate::peer::labelled`]).
    pub fn match_rank(&self, query: &str) -> Option<MatchRank> {
        if let Some((name, start)) = query.trim().rsplit_once('#') {
            let tagged = start.len() >= crate::peer::TAG_LEN
                && self.id.starts_with(&start.to_ascii_lowercase());
            return if tagged { self.match_rank(name) } else { None };
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::discovery::SERVICE_TYPE;

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

    #[test]
    fn a_name_with_the_start_of_the_id_names_one_of_the_peers_of_that_name() {
        let mut a = peer("vm", "vm", "vm.local.");
        a.id = format!("3f2a{}", "0".repeat(28));
        let mut b = a.clone();
        b.id = format!("9c01{}", "0".repeat(28));
        assert_eq!(a.match_rank("vm#3f2a"), Some(MatchRank::Exact));
        assert_eq!(a.match_rank("VM#3F2A"), Some(MatchRank::Exact));
        assert_eq!(b.match_rank("vm#3f2a"), None);
        assert_eq!(a.match_rank("vm#3f"), None, "too short to tell peers apart");
        assert_eq!(a.match_rank("phone#3f2a"), None);
    }
}
