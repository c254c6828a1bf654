//! The message parser (`Message::from_json`) and the first-frame rules on
//! arbitrary payloads.
//!
//! Checks: no panic; `from_json` fails only with `bad_json`; what it accepts
//! is UTF-8, is a JSON object with a string `type` (PROTOCOL.md sections 2
//! and 3), is decoded the same by serde's derived decoder for `Message`
//! (unless it holds JSON that serde_json's `Value` cannot, see
//! `UNREPRESENTABLE`) and survives an encode/decode round trip; a `hello` it
//! accepts that passes the handshake rules is accepted as a first frame too;
//! whatever the first-frame decoder accepts is a valid `hello`, and its
//! errors map to wire codes.
#![no_main]

use bytes::{BufMut, BytesMut};
use lantalk::protocol::{
    FrameCodec, MAX_FRAME_LEN, Message, PROTO_VERSION, ProtocolError, is_valid_peer_id,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokio_util::codec::Decoder;

/// Decodes `payload` as the first frame of a connection.
fn decode_first(payload: &[u8]) -> Result<Option<Message>, ProtocolError> {
    let mut frame = BytesMut::new();
    frame.put_u32(u32::try_from(payload.len()).expect("payload under 4 GiB"));
    frame.extend_from_slice(payload);
    FrameCodec::new().decode(&mut frame)
}

/// serde_json's errors for JSON that is valid by the grammar of RFC 8259 but
/// that a `Value` cannot hold: a number beyond f64 (`1e400`), an unpaired
/// surrogate escape (`"\ud800"`). `from_json` skips such values in fields it
/// does not know, which is fine; the checks that need a `Value` are skipped.
const UNREPRESENTABLE: [&str; 4] = [
    "number out of range",
    "lone leading surrogate in hex escape",
    "invalid unicode code point",
    "unexpected end of hex escape",
];

fuzz_target!(|data: &[u8]| {
    match Message::from_json(data) {
        Ok(msg) => {
            assert!(
                std::str::from_utf8(data).is_ok(),
                "accepted a payload that is not UTF-8"
            );
            let as_value = serde_json::from_slice::<Value>(data);
            match &as_value {
                Ok(value) => {
                    assert!(
                        value.get("type").is_some_and(Value::is_string),
                        "accepted without a string type: {value}"
                    );
                    let derived: Message = serde_json::from_slice(data)
                        .expect("serde's derived decoder accepts it too");
                    assert_eq!(derived, msg);
                }
                Err(e) => assert!(
                    UNREPRESENTABLE.iter().any(|u| e.to_string().starts_with(u)),
                    "accepted a payload that is not JSON: {e}"
                ),
            }
            if msg != Message::Unknown {
                let json = serde_json::to_vec(&msg).expect("serializable");
                assert_eq!(Message::from_json(&json).expect("round trip"), msg);
            }
            // (The first-frame rules read the payload as a `Value`.)
            if let Message::Hello(hello) = &msg
                && as_value.is_ok()
                && hello.proto == PROTO_VERSION
                && is_valid_peer_id(&hello.id)
            {
                assert_eq!(
                    decode_first(data).expect("a valid hello"),
                    Some(msg.clone())
                );
            }
        }
        Err(ProtocolError::BadJson(_)) => {}
        Err(other) => panic!("from_json failed with {other:?}, not bad_json"),
    }

    if data.is_empty() || data.len() > MAX_FRAME_LEN {
        return;
    }
    match decode_first(data) {
        Ok(Some(Message::Hello(hello))) => {
            assert_eq!(hello.proto, PROTO_VERSION);
            assert!(is_valid_peer_id(&hello.id), "{hello:?}");
        }
        Ok(other) => panic!("first frame decoded to {other:?}"),
        Err(e) => assert!(e.code().is_some(), "{e:?} maps to no wire code"),
    }
});
