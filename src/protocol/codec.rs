//! Bytes ⇄ [`Message`]: the length prefix is handled by tokio-util's
//! `LengthDelimitedCodec` (which checks the header before buffering any
//! payload); this layer adds the JSON payload and the handshake rules.

use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec, length_delimited};

use super::{HEADER_LEN, Hello, MAX_FRAME_LEN, Message, PROTO_VERSION, ProtocolError};
use crate::protocol::message::is_valid_peer_id;

/// Codec for one connection. The first frame it decodes must be a `hello`;
/// after that any message is accepted.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    awaiting_hello: bool,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameCodec {
    /// A codec for a fresh connection (expects `hello` first).
    pub fn new() -> Self {
        let inner = LengthDelimitedCodec::builder()
            .big_endian()
            .length_field_length(HEADER_LEN)
            .max_frame_length(MAX_FRAME_LEN)
            .new_codec();
        Self {
            inner,
            awaiting_hello: true,
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Message;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        let frame = match self.inner.decode(src) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) if is_length_error(&e) => return Err(ProtocolError::FrameTooLarge),
            Err(e) => return Err(ProtocolError::Io(e)),
        };
        if frame.is_empty() {
            return Err(ProtocolError::FrameTooLarge);
        }
        if std::mem::take(&mut self.awaiting_hello) {
            return parse_hello(&frame).map(|h| Some(Message::Hello(h)));
        }
        Message::from_json(&frame).map(Some)
    }
}

impl Encoder<&Message> for FrameCodec {
    type Error = ProtocolError;

    /// Writes the whole frame (header and payload) into `dst`, so that it
    /// reaches the socket in one write.
    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let start = dst.len();
        dst.put_u32(0);
        if let Err(e) = serde_json::to_writer(dst.writer(), msg) {
            dst.truncate(start);
            return Err(ProtocolError::BadJson(e.to_string()));
        }
        let len = dst.len() - start - HEADER_LEN;
        if len > MAX_FRAME_LEN {
            dst.truncate(start);
            return Err(ProtocolError::FrameTooLarge);
        }
        // `len` fits in u32: it is at most MAX_FRAME_LEN.
        dst[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

/// Whether an error from `LengthDelimitedCodec` is its "length out of range" error.
fn is_length_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<length_delimited::LengthDelimitedCodecError>())
}

/// Applies the handshake rules to the first frame of a connection:
/// not JSON → `bad_json`; not a `hello` → `bad_hello`; `proto` other than 1 →
/// `unsupported_proto`; missing or malformed fields → `bad_hello`.
fn parse_hello(payload: &[u8]) -> Result<Hello, ProtocolError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ProtocolError::BadJson(e.to_string()))?;
    let kind = value.get("type").and_then(Value::as_str);
    if kind != Some("hello") {
        let got = kind.map_or_else(|| "no type".to_owned(), |k| format!("type {k:?}"));
        return Err(ProtocolError::BadHello(format!(
            "first message must be hello, got {got}"
        )));
    }
    match value.get("proto") {
        Some(Value::Number(n)) if n.as_u64() == Some(PROTO_VERSION) => {}
        Some(other) => return Err(ProtocolError::UnsupportedProto(other.to_string())),
        None => return Err(ProtocolError::BadHello("missing proto".into())),
    }
    let hello: Hello =
        serde_json::from_value(value).map_err(|e| ProtocolError::BadHello(e.to_string()))?;
    if !is_valid_peer_id(&hello.id) {
        return Err(ProtocolError::BadHello(
            "id must be 32 lowercase hex characters".into(),
        ));
    }
    if hello.name.len() > super::MAX_NAME_LEN {
        return Err(ProtocolError::BadHello(format!(
            "a name of {} bytes (at most {} bytes)",
            hello.name.len(),
            super::MAX_NAME_LEN
        )));
    }
    Ok(hello)
}
