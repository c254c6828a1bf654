//! The engine's whole surface: what its users ask of it ([`NetCommand`])
//! and what it tells them ([`NetEvent`]). Plain data: the chat screen,
//! `listen` and `send` all speak to the node in these terms, and a new kind
//! of peer adds variants here, not a path of its own.
//!
//! The variants a `lantalk send` needs also travel, as JSON, over the
//! control socket of a running lantalk (see [`super::control`]): the rest
//! are `#[serde(skip)]` and never leave the process.
//!
//! Peers are named by [`PeerId`] throughout; session ids appear only where
//! a consumer must tell two sessions of one peer apart (`listen` prints
//! each connection's address).

use std::net::SocketAddr;

use super::discovery::Peer;
use super::policy::Link;
use super::session::{CloseReason, SessionId};
use crate::peer::{PeerId, PeerInfo};
use crate::protocol::{Fingerprint, Refusal, Text};
use crate::store::{Conversation, Record};

/// Where to open a session with [`NetCommand::Connect`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// `HOST:PORT` as typed (`/connect`): resolved, then dialled.
    Address(String),
    /// Addresses already resolved, and what the user called them.
    Addrs {
        /// What the user typed, for messages.
        label: String,
        /// Where to connect, in order.
        addrs: Vec<SocketAddr>,
    },
    /// A peer found by discovery: it must present the key it advertises.
    Discovered(Box<Peer>),
}

/// What the node's users ask of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetCommand {
    /// Send texts to a peer, in order: stored first, then sent on its
    /// session, dialling it if none is open; kept and retried until
    /// acknowledged (for a peer that acknowledges).
    Send {
        /// Peer id.
        to: PeerId,
        /// The messages, oldest first.
        texts: Vec<Text>,
    },
    /// Open a session (answered with [`NetEvent::SessionOpened`] or
    /// [`NetEvent::ConnectFailed`]).
    Connect(Target),
    /// With [`AckPolicy::Consumer`]: these texts, received on `session`,
    /// are taken care of; acknowledge them.
    #[serde(skip)]
    Ack {
        /// The session they came on.
        session: SessionId,
        /// Their ids.
        ids: Vec<String>,
    },
    /// Stop trying to deliver the texts waiting for `peer`: they are
    /// marked failed (answered with [`NetEvent::SendFailed`] once stored).
    GiveUp {
        /// Peer id.
        peer: PeerId,
        /// Why, for the history and the answer.
        reason: String,
    },
    /// Send the page of `peer`'s history before seq `before` (the newest
    /// page when `None`); answered with [`NetEvent::History`].
    #[serde(skip)]
    LoadHistory {
        /// Peer key.
        peer: PeerId,
        /// Only messages older than this seq.
        before: Option<i64>,
    },
    /// Full-text search of all conversations; answered with [`NetEvent::Found`].
    #[serde(skip)]
    Search(String),
    /// Change our display name: re-advertise, and use it in later hellos.
    #[serde(skip)]
    Rename(String),
    /// The user's answer to a [`NetEvent::JoinRequest`].
    #[serde(skip)]
    AnswerJoin {
        /// Which request.
        req: u64,
        /// Let the browser in.
        accept: bool,
    },
    /// `/trust KEY` in the conversation with `peer`: the user says the key
    /// that starts with `key` (at least 8 hex digits, as the notice shows
    /// it) is this peer's; its conversation and what waits for it move to
    /// that key. Answered with [`NetEvent::Notice`].
    #[serde(skip)]
    Trust {
        /// The conversation.
        peer: PeerId,
        /// The start of the key, as typed.
        key: String,
    },
    /// `/forget` in a browser's conversation: the browser let in once
    /// without the token is no longer remembered, and its page is closed,
    /// so that it must bring the token or be accepted again. Answered with
    /// [`NetEvent::Notice`].
    #[serde(skip)]
    Forget(PeerId),
    /// Show the verification code of the session with this peer; with
    /// `confirmed`, the people compared it: mark the key verified.
    /// Answered with [`NetEvent::Verification`] or [`NetEvent::Notice`].
    #[serde(skip)]
    Verify {
        /// Peer id.
        peer: PeerId,
        /// The codes matched.
        confirmed: bool,
    },
    /// Say bye to every session and goodbye on mDNS, then stop.
    Shutdown,
}

/// When a received text is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckPolicy {
    /// Once it is stored in the history (at once without one): the chat
    /// screen, which shows whatever arrives.
    #[default]
    Stored,
    /// Once stored and the consumer says it is done with it
    /// ([`NetCommand::Ack`]): `listen`, which acknowledges what it printed.
    Consumer,
}

/// Why history is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOff {
    /// Turned off (`--no-history`, `history = false`).
    Disabled,
    /// The database could not be opened, and why.
    Unavailable(String),
    /// The database failed while running, and why; texts from then on are
    /// kept in memory only.
    Failed(String),
    /// Asked for something that needs history (a search) while it is off.
    NothingToSearch,
}

impl std::fmt::Display for HistoryOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disabled => f.write_str("history off (--no-history)"),
            Self::Unavailable(why) => f.write_str(why),
            Self::Failed(why) => write!(f, "history stopped: {why}"),
            Self::NothingToSearch => f.write_str("history is off: nothing to search"),
        }
    }
}

/// A peer seen on the network, as the node's users see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Its id.
    pub id: PeerId,
    /// Its name (DNS-SD instance name, e.g. `laptop (2)` after a conflict).
    pub name: String,
    /// Its host, e.g. `laptop.local.`.
    pub host: String,
    /// Addresses to dial, best first.
    pub addrs: Vec<SocketAddr>,
    /// Why lantalk will not talk to it although it is listed.
    pub problem: Option<String>,
}

/// What happened on the network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetEvent {
    /// The listener is up on this port.
    #[serde(skip)]
    Listening {
        /// This host's reachable addresses, best first (may be empty: no network).
        addrs: Vec<std::net::IpAddr>,
        /// The real port.
        port: u16,
        /// The default port, when it was busy and another was chosen.
        fell_back_from: Option<u16>,
    },
    /// Nobody can connect to us, and why (the port asked for is busy);
    /// everything else works: we connect to others, and discovery still
    /// finds peers (without advertising us).
    #[serde(skip)]
    NotListening(String),
    /// Discovery is running.
    #[serde(skip)]
    DiscoveryActive,
    /// Discovery is off: turned off by the user (`--no-mdns`).
    #[serde(skip)]
    DiscoveryDisabled,
    /// Discovery is off because it could not start, and why.
    #[serde(skip)]
    DiscoveryOff(String),
    /// Discovery runs but is limited, and why (no network, one IP family only).
    #[serde(skip)]
    DiscoveryLimited(String),
    /// mDNS renamed us after a conflict; we are advertised under this name.
    #[serde(skip)]
    Renamed(String),
    /// mDNS renamed our host after a conflict: we are reachable by this name
    /// (`laptop-2.local`), and our usual host name reaches another device.
    HostRenamed(String),
    /// Every peer with history, most recent first; sent once at start,
    /// each followed by a [`NetEvent::History`] with its newest page.
    #[serde(skip)]
    Conversations(Vec<Conversation>),
    /// A page of a conversation, oldest first; `more` when older messages exist.
    #[serde(skip)]
    History {
        /// Peer key.
        peer: PeerId,
        /// The messages.
        records: Vec<Record>,
        /// Older messages remain.
        more: bool,
    },
    /// The answer to [`NetCommand::Search`], newest first.
    #[serde(skip)]
    Found {
        /// What was searched for.
        words: String,
        /// Matching messages.
        records: Vec<Record>,
    },
    /// History is not kept, and why.
    #[serde(skip)]
    HistoryOff(HistoryOff),
    /// A peer appeared or changed.
    #[serde(skip)]
    PeerUp(Presence),
    /// A peer left the network.
    #[serde(skip)]
    PeerDown(PeerId),
    /// A session completed its handshake (either direction).
    SessionOpened {
        /// Who: id, name, kind.
        peer: PeerInfo,
        /// The session (for [`NetCommand::Ack`] and telling sessions apart).
        session: SessionId,
        /// Its address.
        addr: SocketAddr,
        /// Encrypted or not, and how the peer is known.
        link: Link,
    },
    /// A browser without the join token asks to join; answer with
    /// [`NetCommand::AnswerJoin`] and the same `req`.
    #[serde(skip)]
    JoinRequest {
        /// Which request.
        req: u64,
        /// The name the browser gave.
        name: String,
        /// Its address.
        addr: SocketAddr,
        /// Its user agent.
        agent: String,
    },
    /// A connection was refused for who the peer is or how it came.
    #[serde(skip)]
    Refused {
        /// Its address, when it connected to us.
        addr: Option<SocketAddr>,
        /// Why.
        refusal: Refusal,
    },
    /// The verification code of the session with a peer.
    #[serde(skip)]
    Verification {
        /// Peer id.
        peer: PeerId,
        /// The code, the same on both screens.
        code: String,
        /// Our fingerprint.
        ours: Fingerprint,
        /// The peer's.
        theirs: Fingerprint,
        /// Marked verified (now or before).
        verified: bool,
    },
    /// The conversation with `from` continues as the one with `into`: the
    /// peer's id changed (a key trusted anew, or the first key of a peer
    /// from before ids were derived from keys). History is merged already.
    #[serde(skip)]
    Merged {
        /// The old peer id.
        from: PeerId,
        /// The new one.
        into: PeerId,
    },
    /// A peer changed its name during a session (`/name` there).
    #[serde(skip)]
    PeerRenamed {
        /// Who.
        peer: PeerId,
        /// Its new name.
        name: String,
    },
    /// A key met for the first time goes by the name of `known`, a peer
    /// known by another key (or from before keys): another peer, told once
    /// in `known`'s conversation with how to move that conversation to the
    /// new key, if it is the same peer (`/trust`, `lantalk trust`).
    #[serde(skip)]
    Namesake {
        /// The peer known by that name.
        known: PeerId,
        /// The new key's peer.
        peer: PeerInfo,
        /// The new key.
        fp: Fingerprint,
    },
    /// A line for the conversation with `peer` (the answer to `/trust` and
    /// the like).
    #[serde(skip)]
    Notice {
        /// Peer id.
        peer: PeerId,
        /// What to say.
        text: String,
    },
    /// A session ended.
    SessionClosed {
        /// Whose.
        peer: PeerId,
        /// Which one.
        session: SessionId,
        /// Why.
        reason: CloseReason,
        /// Another session with the peer is still open.
        connected: bool,
    },
    /// A text arrived, new (a copy of one already received is not shown
    /// again); stored, and acknowledged as the [`AckPolicy`] says.
    #[serde(skip)]
    Text {
        /// Who sent it.
        from: PeerId,
        /// The session it came on.
        session: SessionId,
        /// The message.
        text: Text,
    },
    /// Another program on this data directory (`lantalk send`, through
    /// the control socket) gave the node these texts for `peer`: they are
    /// ours, stored and sent like those typed here.
    #[serde(skip)]
    Sending {
        /// Peer id.
        to: PeerId,
        /// The messages, oldest first.
        texts: Vec<Text>,
    },
    /// The peer acknowledged these texts of ours (stored as delivered).
    Acked {
        /// Peer id.
        peer: PeerId,
        /// Ids of our texts.
        ids: Vec<String>,
    },
    /// Texts to this peer are not acknowledged yet and wait for it: they go
    /// out again, in order, as soon as a session with it opens.
    Waiting {
        /// Peer id.
        to: PeerId,
        /// Ids of the waiting texts.
        ids: Vec<String>,
        /// Why they wait, for the conversation.
        reason: String,
        /// When the next try to reach it is due (`None`: when it is seen
        /// on the network again).
        retry_in: Option<std::time::Duration>,
    },
    /// Texts to this peer cannot be delivered (a raw peer that left, or
    /// given up on).
    SendFailed {
        /// Peer id.
        to: PeerId,
        /// Ids of the texts that failed.
        ids: Vec<String>,
        /// Why, for the conversation's system line.
        reason: String,
    },
    /// A [`NetCommand::Connect`] failed.
    ConnectFailed {
        /// What was dialled, for people.
        target: String,
        /// Why, in a few words.
        reason: String,
        /// The peer was refused for who it is (also told as
        /// [`NetEvent::Refused`]). Not carried over the control socket:
        /// `reason` says it there.
        #[serde(skip)]
        refusal: Option<Refusal>,
    },
}
