//! Who a peer is, as plain data: its [`PeerId`] (the key every conversation,
//! delivery queue and pin is filed under) and its [`PeerKind`] (how it
//! reaches us, and so what it can do: [`Capabilities`]). Used by `store`,
//! `net` and `app` alike; depends on nothing in the crate.
//!
//! A peer id is opaque: nothing parses it back to learn what kind of peer it
//! names. The kind travels beside it (in the session-opened event, in the
//! history's `kind` column, in the chat screen's peer list).
//!
//! Also what an address typed by hand means: [`with_default_port`] (no port
//! is port [`DEFAULT_PORT`]) and [`is_ip_address`] (an address, not a name
//! to discover).

use std::fmt;
use std::net::IpAddr;

/// The TCP port lantalk listens on unless told otherwise, and the port an
/// address typed without one means.
pub const DEFAULT_PORT: u16 = 7342;

/// An address as typed, with the port made explicit: `10.0.0.2`,
/// `laptop.lan`, `::1` and `[::1]` mean port [`DEFAULT_PORT`]
/// (`10.0.0.2:7342`, `laptop.lan:7342`, `[::1]:7342`); `HOST:PORT` and
/// `[IPv6]:PORT` are returned as they are. Nothing is resolved.
pub fn with_default_port(typed: &str) -> String {
    if let Some(inside) = typed.strip_prefix('[') {
        // `[::1]` (no port) or `[::1]:7342` (as typed).
        return match inside.strip_suffix(']') {
            Some(_) => format!("{typed}:{DEFAULT_PORT}"),
            None => typed.to_owned(),
        };
    }
    match typed.matches(':').count() {
        0 => format!("{typed}:{DEFAULT_PORT}"),
        1 => typed.to_owned(),
        // Two colons or more: a bare IPv6 address (`::1`, `fe80::1%eth0`).
        _ => format!("[{typed}]:{DEFAULT_PORT}"),
    }
}

/// Whether `typed` is an IP address, with or without a port or brackets
/// (`10.0.0.2`, `10.0.0.2:7342`, `::1`, `[::1]`, `[fe80::1%eth0]:7342`):
/// something to dial as it is, never a name to look for on the network.
pub fn is_ip_address(typed: &str) -> bool {
    let bare = typed
        .strip_prefix('[')
        .and_then(|t| t.split_once(']'))
        .map_or(typed, |(inside, _)| inside);
    let bare = bare.split_once('%').map_or(bare, |(ip, _scope)| ip);
    bare.parse::<IpAddr>().is_ok() || typed.parse::<std::net::SocketAddr>().is_ok()
}

/// The key of a peer: for a lantalk peer the 32-hex id its certificate
/// proves (or the id it claims, without one); for a raw text peer a key
/// made from its address ([`PeerId::raw`]), so that every connection from
/// one address continues one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(String);

impl PeerId {
    /// The id a peer gave (a `hello` id, a key stored in the history).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The key of the raw text peer at `ip` (the port changes with every
    /// connection, the address does not).
    pub fn raw(ip: IpAddr) -> Self {
        Self(format!("raw-{}", ip.to_canonical()))
    }

    /// The id as text, for storing, printing and comparing with user input.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A few characters of the id that tell peers of one name apart on
    /// screen: `phone#3f2a` (see [`labelled`]).
    pub fn tag(&self) -> &str {
        let end = self
            .0
            .char_indices()
            .nth(TAG_LEN)
            .map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

/// How many characters of an id [`PeerId::tag`] shows: with a few peers of
/// one name, 16 bits tell them apart.
pub const TAG_LEN: usize = 4;

/// How many hex digits of a key `/trust KEY` takes at least (and notices
/// show): enough that the user typed the key the notice showed, not a guess.
pub const KEY_START: usize = 8;

/// `name#tag`: a peer's name with the start of its id, for when several
/// peers go by one name (a name is only a label; a peer is its key).
pub fn labelled(name: &str, id: &PeerId) -> String {
    format!("{name}#{}", id.tag())
}

/// Whether what someone typed names the peer `name` with id `id`: its name
/// (without ASCII case), its id, or `name#START` with the start of its id
/// (at least [`TAG_LEN`] characters).
pub fn names(query: &str, name: &str, id: &str) -> bool {
    let query = query.trim();
    if query == id || query.eq_ignore_ascii_case(name) {
        return true;
    }
    match query.rsplit_once('#') {
        Some((n, start)) => {
            n.eq_ignore_ascii_case(name)
                && start.len() >= TAG_LEN
                && id.starts_with(&start.to_ascii_lowercase())
        }
        None => false,
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A peer id reads as the text it is (for printing, comparing with what
/// the user typed, storing); it is made from text only on purpose
/// ([`PeerId::new`]).
impl std::ops::Deref for PeerId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for PeerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PeerId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PeerId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<&str> for PeerId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for PeerId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl serde::Serialize for PeerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PeerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// How a peer reaches us, which decides what it can do. New kinds of peers
/// (a browser, the LocalSend app) are new variants here.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum PeerKind {
    /// Another lantalk, or anything speaking its framed protocol
    /// (`assets/phone.py`): acknowledges, can be dialled back.
    #[default]
    Lantalk,
    /// A raw text connection from this address (`nc`, a plain socket): one
    /// line is one message, nothing is acknowledged, it cannot be dialled.
    Raw(IpAddr),
    /// A phone's browser on the web client's WebSocket (its id is the
    /// random identity the page keeps): acknowledges, its messages carry
    /// ids, it cannot be dialled (texts for it wait until it reconnects).
    Web,
}

/// What a kind of peer can do; the node and the chat screen decide by
/// these, never by the kind's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// It acknowledges our texts: a text is delivered only when acked,
    /// and kept for a retry until then.
    pub acks: bool,
    /// We can open a session to it (it listens somewhere), so texts for it
    /// can wait while it is away.
    pub dialable: bool,
    /// Its messages carry ids of their own, so a copy is recognised by id.
    pub message_ids: bool,
    /// It can send and receive files.
    pub files: bool,
}

impl PeerKind {
    /// What this kind of peer can do.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            PeerKind::Lantalk => Capabilities {
                acks: true,
                dialable: true,
                message_ids: true,
                files: false,
            },
            PeerKind::Raw(_) => Capabilities {
                acks: false,
                dialable: false,
                message_ids: false,
                files: false,
            },
            PeerKind::Web => Capabilities {
                acks: true,
                dialable: false,
                message_ids: true,
                files: false,
            },
        }
    }

    /// The kind's name in the history database and in `--json` output.
    pub fn name(&self) -> &'static str {
        match self {
            PeerKind::Lantalk => "lantalk",
            PeerKind::Raw(_) => "raw",
            PeerKind::Web => "web",
        }
    }

    /// The address a raw peer is known by.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            PeerKind::Raw(ip) => Some(*ip),
            PeerKind::Lantalk | PeerKind::Web => None,
        }
    }

    /// The kind named `name` (as [`PeerKind::name`] writes it), with the
    /// address a raw peer needs; `None` for a name this version does not know.
    pub fn from_parts(name: &str, address: Option<IpAddr>) -> Option<Self> {
        match (name, address) {
            ("lantalk", _) => Some(PeerKind::Lantalk),
            ("raw", Some(ip)) => Some(PeerKind::Raw(ip)),
            ("web", _) => Some(PeerKind::Web),
            _ => None,
        }
    }
}

/// A peer as a session or a stored conversation knows it: id, the name it
/// goes by, and its kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerInfo {
    /// Its key.
    pub id: PeerId,
    /// Its display name (from its `hello`; `raw ADDR` for a raw peer).
    pub name: String,
    /// How it reaches us.
    pub kind: PeerKind,
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_address_without_a_port_means_the_default_port() {
        for (typed, meant) in [
            ("10.66.0.2", "10.66.0.2:7342"),
            ("10.66.0.2:9000", "10.66.0.2:9000"),
            ("laptop.lan", "laptop.lan:7342"),
            ("laptop.lan:9000", "laptop.lan:9000"),
            ("::1", "[::1]:7342"),
            ("[::1]", "[::1]:7342"),
            ("[::1]:9000", "[::1]:9000"),
            ("fe80::1%eth0", "[fe80::1%eth0]:7342"),
            ("[fe80::1%eth0]:9000", "[fe80::1%eth0]:9000"),
        ] {
            assert_eq!(with_default_port(typed), meant, "{typed}");
        }
    }

    #[test]
    fn ip_addresses_are_told_from_names() {
        for ip in [
            "10.66.0.2",
            "10.66.0.2:7342",
            "::1",
            "[::1]",
            "[::1]:7342",
            "fe80::1%eth0",
            "[fe80::1%eth0]:7342",
        ] {
            assert!(is_ip_address(ip), "{ip}");
        }
        for name in [
            "laptop",
            "laptop.local",
            "laptop:7342",
            "[laptop]",
            "10.66.0",
        ] {
            assert!(!is_ip_address(name), "{name}");
        }
    }

    use super::*;

    #[test]
    fn raw_ids_are_keyed_by_the_canonical_address() {
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(PeerId::raw(mapped), PeerId::raw(v4));
        assert_eq!(PeerId::raw(v4).as_str(), "raw-10.0.0.2");
    }

    #[test]
    fn a_query_names_a_peer_by_name_id_or_name_and_tag() {
        let id = PeerId::new("3f2a91c0".repeat(4));
        assert_eq!(labelled("phone", &id), "phone#3f2a");
        for yes in ["phone", "PHONE", id.as_str(), "phone#3f2a", "Phone#3f2a91"] {
            assert!(names(yes, "phone", id.as_str()), "{yes}");
        }
        for no in ["phon", "phone#3f2b", "phone#3f", "laptop#3f2a", "3f2a"] {
            assert!(!names(no, "phone", id.as_str()), "{no}");
        }
    }

    #[test]
    fn capabilities_come_from_the_kind() {
        let raw = PeerKind::Raw("10.0.0.2".parse().unwrap());
        assert!(!raw.capabilities().acks && !raw.capabilities().dialable);
        assert!(PeerKind::Lantalk.capabilities().acks);
        let web = PeerKind::Web.capabilities();
        assert!(web.acks && web.message_ids && !web.dialable && !web.files);
        for kind in [PeerKind::Lantalk, raw, PeerKind::Web] {
            assert_eq!(
                PeerKind::from_parts(kind.name(), kind.address()),
                Some(kind)
            );
        }
        assert_eq!(PeerKind::from_parts("raw", None), None);
        assert_eq!(PeerKind::from_parts("carrier-pigeon", None), None);
    }
}
