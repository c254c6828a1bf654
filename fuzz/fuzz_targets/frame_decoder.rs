//! The frame decoder (`FrameCodec`) on arbitrary connection bytes.
//!
//! Input: one control byte, then the bytes of a connection. Bit 0x80 of the
//! control byte puts a valid `hello` frame in front, so that the fuzzer reaches
//! the rules after the handshake without having to find a peer id; the low six
//! bits choose the size of the chunks the bytes arrive in.
//!
//! Checks: no panic; the same messages and the same error whether the bytes
//! arrive at once, in chunks or one at a time; every error maps to a wire code;
//! a decoder waiting for bytes holds less than one largest frame; the first
//! message is a `hello` that passes the handshake rules; the decoded messages
//! encode again and decode to themselves.
#![no_main]

use bytes::BytesMut;
use lantalk::protocol::{
    ErrorCode, FrameCodec, HEADER_LEN, Hello, MAX_FRAME_LEN, Message, PROTO_VERSION,
    is_valid_peer_id,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

/// What a connection's bytes decoded to.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<ErrorCode>,
}

/// Decodes `chunks` as they would arrive from a socket, until an error.
fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => messages.push(msg),
                Ok(None) => {
                    assert!(
                        buf.len() < HEADER_LEN + MAX_FRAME_LEN,
                        "{} buffered",
                        buf.len()
                    );
                    break;
                }
                Err(e) => {
                    let error = e.code();
                    assert!(error.is_some(), "{e:?} maps to no wire code");
                    return Outcome { messages, error };
                }
            }
        }
    }
    Outcome {
        messages,
        error: None,
    }
}

fn encode_all<'a>(messages: impl IntoIterator<Item = &'a Message>) -> BytesMut {
    let mut codec = FrameCodec::new();
    let mut wire = BytesMut::new();
    for msg in messages {
        codec
            .encode(msg, &mut wire)
            .expect("a decoded message encodes again");
    }
    wire
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut stream = Vec::new();
    if control & 0x80 != 0 {
        let hello = Message::Hello(Hello {
            proto: PROTO_VERSION,
            id: "0123456789abcdef0123456789abcdef".into(),
            name: "fuzz".into(),
            app: "lantalk-fuzz".into(),
        });
        stream.extend_from_slice(&encode_all([&hello]));
    }
    stream.extend_from_slice(rest);

    let whole = decode([stream.as_slice()]);
    let size = usize::from(control & 0x3f) + 1;
    assert_eq!(decode(stream.chunks(size)), whole, "in chunks of {size}");
    assert_eq!(decode(stream.chunks(1)), whole, "one byte at a time");

    if let Some(first) = whole.messages.first() {
        let Message::Hello(hello) = first else {
            panic!("first message {first:?} is not a hello");
        };
        assert_eq!(hello.proto, PROTO_VERSION);
        assert!(is_valid_peer_id(&hello.id), "{hello:?}");
    }

    // Unknown types are skipped by receivers and never sent.
    let sendable: Vec<Message> = whole
        .messages
        .iter()
        .filter(|m| **m != Message::Unknown)
        .cloned()
        .collect();
    let wire = encode_all(&sendable);
    assert_eq!(
        decode([&wire[..]]),
        Outcome {
            messages: sendable,
            error: None
        }
    );
});
