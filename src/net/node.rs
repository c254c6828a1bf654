//! The network side of the TUI as one task: the listener, discovery, every
//! session and the dialling, behind two channels. The UI sends
//! [`NetCommand`]s (never waiting) and receives [`NetEvent`]s (bounded, so a
//! flood pushes back to the sockets instead of growing memory).

use std::net::SocketAddr;

use crate::net::{CloseReason, Peer, SessionId};
use crate::protocol::{Hello, Text};

/// What the UI asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetCommand {
    /// Send a text to the peer with this id, dialling it first if no session is open.
    Send {
        /// Peer id.
        to: String,
        /// The message.
        text: Text,
    },
    /// Acknowledge a received text.
    Ack {
        /// Session it came on.
        sid: SessionId,
        /// Its id.
        id: String,
    },
    /// Dial `HOST:PORT` (when multicast is blocked).
    Connect(String),
    /// Change our display name: re-advertise, and use it in later hellos.
    Rename(String),
    /// Say bye to every session and goodbye on mDNS, then stop.
    Shutdown,
}

/// What happened on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// The listener is up on this port.
    Listening {
        /// The real port.
        port: u16,
        /// The default port, when it was busy and another was chosen.
        fell_back_from: Option<u16>,
    },
    /// Discovery is running.
    DiscoveryActive,
    /// Discovery is off, and why (shown in the status bar).
    DiscoveryOff(String),
    /// mDNS renamed us after a conflict; we are advertised under this name.
    Renamed(String),
    /// A peer appeared or changed.
    PeerUp(Peer),
    /// A peer left the network.
    PeerDown(Peer),
    /// A session completed its handshake (either direction).
    SessionOpened {
        /// Session id.
        sid: SessionId,
        /// The peer's hello.
        peer: Hello,
        /// Its address.
        addr: SocketAddr,
    },
    /// A session ended.
    SessionClosed {
        /// Session id.
        sid: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// A text arrived; acknowledge it with [`NetCommand::Ack`] once shown.
    Text {
        /// Session it came on.
        sid: SessionId,
        /// The message.
        text: Text,
    },
    /// The peer acknowledged our text.
    Acked {
        /// Session.
        sid: SessionId,
        /// Id of our text.
        id: String,
    },
    /// Texts to this peer could not be sent (dial failed, or the session closed before their ack).
    SendFailed {
        /// Peer id.
        to: String,
        /// Ids of the texts that failed.
        ids: Vec<String>,
        /// Why, for the conversation's system line.
        reason: String,
    },
    /// `/connect` failed.
    ConnectFailed {
        /// What the user typed.
        target: String,
        /// Why.
        reason: String,
    },
}
