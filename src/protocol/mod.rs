//! The lantalk wire protocol, version 1: message types, framing and the
//! handshake rules. Pure data and byte handling: this module owns no sockets,
//! no timers and no tasks, so every rule here is testable on plain byte buffers.
//!
//! ```text
//! +----------------+--------------------------------------------+
//! | length: u32 BE | payload: `length` bytes of UTF-8 JSON      |
//! | 1..=1_048_576  | an object with a string field "type"       |
//! +----------------+--------------------------------------------+
//! ```
//!
//! Because the maximum length is below 2^24, the first byte of every valid frame
//! is 0x00; listeners use that byte to tell a lantalk session from other traffic.
//! The full specification, written for people implementing other clients, is
//! `assets/PROTOCOL.md`.

mod codec;
mod fingerprint;
mod message;
#[cfg(test)]
mod proptests;
mod refusal;
#[cfg(test)]
mod tests;

pub use codec::FrameCodec;
pub use fingerprint::{BadFingerprint, Fingerprint, verification_code};
pub use message::{ErrorCode, Hello, MAX_NAME_LEN, Message, Text, is_valid_peer_id};
pub use refusal::{ENCRYPTION_REQUIRED, Refusal};

use std::time::Duration;

/// The protocol version this crate speaks, sent as `proto` in `hello`.
pub const PROTO_VERSION: u64 = 1;

/// Largest payload a frame may carry, in bytes (1 MiB).
pub const MAX_FRAME_LEN: usize = 1_048_576;

/// Size of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

/// A peer that has not sent its `hello` this long after connecting is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A side that has received nothing for this long sends a `ping`, which the
/// peer must answer: an idle but healthy session thus carries a frame in each
/// direction at least this often.
pub const PING_AFTER: Duration = Duration::from_secs(5);

/// A session that has received nothing for this long, despite a `ping`, is
/// closed: the peer's process or link is gone.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(12);

/// A frame must arrive completely within this long of its first byte.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `text` fits in one frame once encoded (bodies up to about 1 MiB do).
/// Senders check this before queueing, so an oversized message is refused
/// to the user instead of failing on the wire.
pub fn text_fits_in_frame(text: &Text) -> bool {
    // JSON escaping grows a string at most 6-fold (`\u00XX`), the id as much
    // as the body, and the rest of the object takes under 64 bytes
    // (`{"type":"text","id":"","ts":18446744073709551615,"body":""}` is 59):
    // only measure when the text is large enough for the limit to matter.
    if (text.body.len() + text.id.len()) * 6 + 64 <= MAX_FRAME_LEN {
        return true;
    }
    // The enclosing message adds `"type":"text",` to the object.
    serde_json::to_vec(text)
        .is_ok_and(|json| json.len() + r#""type":"text","#.len() <= MAX_FRAME_LEN)
}

/// Everything that can go wrong with bytes coming from a peer.
///
/// Each variant except [`ProtocolError::Io`] maps to an `error` message that
/// should be sent to the peer before closing the connection (see
/// [`ProtocolError::to_message`]).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The length prefix was 0 or above [`MAX_FRAME_LEN`]; the payload was not
    /// read. Close the connection: the stream can no longer be resynchronised.
    #[error("frame length out of range (must be 1..={MAX_FRAME_LEN} bytes)")]
    FrameTooLarge,
    /// The payload was not a JSON object of a known shape. Close.
    #[error("malformed message: {0}")]
    BadJson(String),
    /// The first frame was not a valid `hello`. Close.
    #[error("bad hello: {0}")]
    BadHello(String),
    /// The peer speaks another protocol version. Close.
    #[error("unsupported protocol version {0} (this side speaks {PROTO_VERSION})")]
    UnsupportedProto(String),
    /// No `hello` arrived within [`HANDSHAKE_TIMEOUT`]. Raised by the session
    /// layer, which owns the clock.
    #[error("no hello within {} s", HANDSHAKE_TIMEOUT.as_secs())]
    HandshakeTimeout,
    /// A frame did not complete within [`FRAME_TIMEOUT`], or nothing arrived
    /// within [`PEER_TIMEOUT`] despite a ping. Raised by the session layer.
    #[error("{0}")]
    Timeout(String),
    /// The peer is refused for who it is or how it connects (plaintext when
    /// encryption is required, a key that does not match its pin). Raised
    /// by the session layer, which knows the certificates. Close.
    #[error("{0}")]
    Refused(Refusal),
    /// The socket failed. Nothing can be sent; just drop the connection.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// The `code` to put in the `error` message for this failure, if one should be sent.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Self::FrameTooLarge => ErrorCode::FrameTooLarge,
            Self::BadJson(_) => ErrorCode::BadJson,
            Self::BadHello(_) => ErrorCode::BadHello,
            Self::UnsupportedProto(_) => ErrorCode::UnsupportedProto,
            Self::HandshakeTimeout => ErrorCode::HandshakeTimeout,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Refused(refusal) => refusal.code(),
            Self::Io(_) => return None,
        })
    }

    /// The `error` message to send to the peer, or `None` when the socket is gone.
    pub fn to_message(&self) -> Option<Message> {
        self.code().map(|code| Message::Error {
            code: code.as_str().to_owned(),
            message: match self {
                Self::Refused(refusal) => refusal.told(),
                other => other.to_string(),
            },
        })
    }
}
