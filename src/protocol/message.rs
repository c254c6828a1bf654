//! The messages of protocol v1 as plain serde data.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// One protocol message: the JSON payload of a frame, tagged by its `type` field.
///
/// Unknown fields are ignored and unknown types decode to [`Message::Unknown`],
/// which receivers must skip: that is what lets later versions add messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// First message on every connection, sent by both sides without waiting.
    Hello(Hello),
    /// A chat message.
    Text(Text),
    /// Receipt for a text: the receiver has shown, printed or stored it.
    Ack {
        /// The `id` of the acknowledged text.
        id: String,
    },
    /// Liveness probe; answered by a `pong` with the same nonce.
    Ping {
        /// Arbitrary value echoed in the pong.
        nonce: u64,
    },
    /// Answer to a `ping`.
    Pong {
        /// The nonce of the ping being answered.
        nonce: u64,
    },
    /// Orderly end: the sender shuts down its write side after this.
    Bye,
    /// A fatal problem; the sender closes the connection after this.
    Error {
        /// Machine-readable snake_case code, see [`ErrorCode`].
        code: String,
        /// Human-readable explanation.
        message: String,
    },
    /// Any message type this version does not know. Never sent; skipped on receipt.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Every field any message of protocol v1 has, in one flat struct: decoding
/// into it is a single pass over the payload, where serde's tagged enums
/// first copy the whole object into a temporary tree. Wrong types are still
/// errors; which fields are required is checked per type afterwards.
#[derive(Deserialize)]
struct Flat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<String>,
    ts: Option<u64>,
    body: Option<String>,
    nonce: Option<u64>,
    code: Option<String>,
    message: Option<String>,
    proto: Option<u64>,
    name: Option<String>,
    app: Option<String>,
}

impl Message {
    /// Decodes one payload: `bad_json` for anything but one UTF-8 JSON object,
    /// wrong field types or missing fields; unknown types and unknown fields
    /// are ignored.
    pub fn from_json(payload: &[u8]) -> Result<Message, ProtocolError> {
        let bad = |e: String| ProtocolError::BadJson(e);
        // The whole payload must be UTF-8 (PROTOCOL.md section 2): serde_json
        // does not check the strings it skips, such as unknown fields.
        let payload = std::str::from_utf8(payload).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        // serde would also fill `Flat` from a JSON array of its fields in
        // declaration order; a message is an object (PROTOCOL.md section 2).
        if !payload.trim_ascii_start().starts_with('{') {
            return Err(bad("a message must be a JSON object".into()));
        }
        let flat: Flat<'_> = serde_json::from_str(payload).map_err(|e| bad(e.to_string()))?;
        let need = |field: Option<String>, name: &str| {
            field.ok_or_else(|| bad(format!("{} without {name}", flat.kind)))
        };
        Ok(match flat.kind.as_ref() {
            "text" => Message::Text(Text {
                id: need(flat.id, "id")?,
                ts: flat.ts.ok_or_else(|| bad("text without ts".into()))?,
                body: need(flat.body, "body")?,
            }),
            "ack" => Message::Ack {
                id: need(flat.id, "id")?,
            },
            "ping" => Message::Ping {
                nonce: flat.nonce.ok_or_else(|| bad("ping without nonce".into()))?,
            },
            "pong" => Message::Pong {
                nonce: flat.nonce.ok_or_else(|| bad("pong without nonce".into()))?,
            },
            "bye" => Message::Bye,
            "error" => Message::Error {
                code: need(flat.code, "code")?,
                message: need(flat.message, "message")?,
            },
            "hello" => {
                let name = need(flat.name, "name")?;
                if name.len() > MAX_NAME_LEN {
                    return Err(ProtocolError::BadHello(format!(
                        "a name of {} bytes (at most {MAX_NAME_LEN} bytes)",
                        name.len()
                    )));
                }
                Message::Hello(Hello {
                    proto: flat
                        .proto
                        .ok_or_else(|| bad("hello without proto".into()))?,
                    id: need(flat.id, "id")?,
                    name,
                    app: need(flat.app, "app")?,
                })
            }
            _ => Message::Unknown,
        })
    }
}

/// The longest name a `hello` may carry, in bytes (PROTOCOL.md section
/// 3): a name is a label on screen and in the known peers, not a document.
pub const MAX_NAME_LEN: usize = 200;

/// The `hello` message: who is on the other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version, 1.
    pub proto: u64,
    /// The peer's stable identity: 32 lowercase hex characters (128 bits).
    pub id: String,
    /// Display name chosen by the peer's user.
    pub name: String,
    /// Software and version, e.g. `lantalk/0.1.0`.
    pub app: String,
}

/// The `text` message: one chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// Message id, unique per sender; echoed in the `ack`.
    pub id: String,
    /// Sender's clock when the message was written, in Unix milliseconds.
    pub ts: u64,
    /// The message itself, UTF-8, may contain newlines.
    pub body: String,
}

/// The error codes defined by protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A length prefix of 0 or above the maximum.
    FrameTooLarge,
    /// A payload that is not valid JSON of the expected shape.
    BadJson,
    /// A first message that is not a valid `hello`.
    BadHello,
    /// A `hello` with a `proto` other than 1.
    UnsupportedProto,
    /// No `hello` within 5 seconds of connecting.
    HandshakeTimeout,
    /// A frame not completed within 30 seconds of its first byte, or a peer
    /// silent for 12 seconds despite a `ping`.
    Timeout,
    /// A plaintext or raw session refused by a peer that accepts only
    /// encrypted ones (`--require-encryption`).
    EncryptionRequired,
    /// A session refused because the peer's identity does not hold: its
    /// certificate is not the one pinned for its name or advertised, its
    /// id is not the one its certificate proves, or a name known by its key
    /// came without it.
    Untrusted,
}

impl ErrorCode {
    /// The snake_case string used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FrameTooLarge => "frame_too_large",
            Self::BadJson => "bad_json",
            Self::BadHello => "bad_hello",
            Self::UnsupportedProto => "unsupported_proto",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::Timeout => "timeout",
            Self::EncryptionRequired => "encryption_required",
            Self::Untrusted => "untrusted",
        }
    }
}

/// Whether `id` has the form of a peer id: exactly 32 lowercase hex characters.
pub fn is_valid_peer_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
