//! Unit tests for the protocol layer: the real [`FrameCodec`] driven through
//! tokio-util's `Decoder`/`Encoder` traits on raw `BytesMut` buffers.

use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio_util::codec::{Decoder, Encoder};

use super::{
    ErrorCode, FrameCodec, HANDSHAKE_TIMEOUT, HEADER_LEN, Hello, MAX_FRAME_LEN, Message,
    PROTO_VERSION, ProtocolError, Text, is_valid_peer_id,
};

const PEER_ID: &str = "0123456789abcdef0123456789abcdef";

fn hello() -> Message {
    Message::Hello(Hello {
        proto: 1,
        id: PEER_ID.to_owned(),
        name: "laptop".to_owned(),
        app: "lantalk/0.1.0".to_owned(),
    })
}

fn text(body: &str) -> Message {
    Message::Text(Text {
        id: "m-1".to_owned(),
        ts: 1_700_000_000_123,
        body: body.to_owned(),
    })
}

/// Every message this version sends, except `hello`.
fn after_hello_messages() -> Vec<Message> {
    vec![
        text("héllo wörld 👋🏽 — 日本語\nsecond line\r\n\ttab \"quoted\" \\ \u{0}"),
        Message::Ack {
            id: "m-1".to_owned(),
        },
        Message::Ping { nonce: 0 },
        Message::Pong { nonce: u64::MAX },
        Message::Bye,
        Message::Error {
            code: "bad_json".to_owned(),
            message: "malformed message: expected value".to_owned(),
        },
    ]
}

/// The frame the codec produces for `msg`.
fn encode(msg: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    FrameCodec::new().encode(msg, &mut buf).expect("encode");
    buf
}

/// A frame built by hand: big-endian length of `payload`, then `payload`.
fn raw_frame(payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(u32::try_from(payload.len()).unwrap());
    buf.extend_from_slice(payload);
    buf
}

/// A codec that has already decoded a valid `hello`.
fn codec_after_hello() -> FrameCodec {
    let mut codec = FrameCodec::new();
    let mut buf = encode(&hello());
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(hello()));
    assert!(buf.is_empty());
    codec
}

/// Decodes the single frame `payload` as the first frame of a connection.
fn decode_first(payload: &[u8]) -> Result<Option<Message>, ProtocolError> {
    FrameCodec::new().decode(&mut raw_frame(payload))
}

/// Decodes the single frame `payload` on a connection past its handshake.
fn decode_after_hello(payload: &[u8]) -> Result<Option<Message>, ProtocolError> {
    codec_after_hello().decode(&mut raw_frame(payload))
}

/// Checks that `err` maps to `code` and to an `error` message carrying it.
fn assert_reported_as(err: &ProtocolError, code: ErrorCode, wire: &str) {
    assert_eq!(err.code(), Some(code), "{err:?}");
    match err.to_message() {
        Some(Message::Error { code, message }) => {
            assert_eq!(code, wire);
            assert_eq!(message, err.to_string());
        }
        other => panic!("expected an error message, got {other:?}"),
    }
}

#[test]
fn round_trip_every_message() {
    let mut enc = FrameCodec::new();
    let mut dec = FrameCodec::new();
    let mut buf = BytesMut::new();
    enc.encode(&hello(), &mut buf).unwrap();
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(hello()));
    assert!(buf.is_empty());
    for msg in after_hello_messages() {
        enc.encode(&msg, &mut buf).unwrap();
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(msg));
        assert!(buf.is_empty(), "frame not fully consumed");
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
    }
}

#[test]
fn encoded_frame_layout() {
    let expected_types = ["hello", "text", "ack", "ping", "pong", "bye", "error"];
    let msgs = std::iter::once(hello()).chain(after_hello_messages());
    for (msg, ty) in msgs.zip(expected_types) {
        let buf = encode(&msg);
        let (head, payload) = buf.split_at(HEADER_LEN);
        let len = u32::from_be_bytes(head.try_into().unwrap()) as usize;
        assert_eq!(len, payload.len(), "{ty}: length prefix");
        assert!((1..=MAX_FRAME_LEN).contains(&len));
        assert_eq!(buf[0], 0x00, "{ty}: first byte");
        let json: Value = serde_json::from_slice(payload).expect("payload is JSON");
        assert!(json.is_object());
        assert_eq!(json["type"], Value::from(ty));
    }
}

#[test]
fn field_names_on_the_wire() {
    let json =
        |msg: &Message| -> Value { serde_json::from_slice(&encode(msg)[HEADER_LEN..]).unwrap() };
    assert_eq!(
        json(&hello()),
        serde_json::json!({"type": "hello", "proto": 1, "id": PEER_ID, "name": "laptop", "app": "lantalk/0.1.0"})
    );
    assert_eq!(
        json(&text("hi")),
        serde_json::json!({"type": "text", "id": "m-1", "ts": 1_700_000_000_123_u64, "body": "hi"})
    );
    assert_eq!(
        json(&Message::Pong { nonce: u64::MAX }),
        serde_json::json!({"type": "pong", "nonce": u64::MAX})
    );
    assert_eq!(json(&Message::Bye), serde_json::json!({"type": "bye"}));
}

/// The hello frame quoted byte for byte in assets/PROTOCOL.md.
#[test]
fn hello_frame_exact_bytes() {
    let json = br#"{"type":"hello","proto":1,"id":"0123456789abcdef0123456789abcdef","name":"laptop","app":"lantalk/0.1.0"}"#;
    let buf = encode(&hello());
    assert_eq!(&buf[..HEADER_LEN], &[0x00, 0x00, 0x00, 0x68]);
    assert_eq!(json.len(), 0x68);
    assert_eq!(&buf[HEADER_LEN..], &json[..]);
}

#[test]
fn byte_at_a_time_yields_only_at_the_last_byte() {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    for msg in [hello(), text("one byte at a time ✓")] {
        let frame = encode(&msg);
        let (last, init) = frame.split_last().unwrap();
        for (i, b) in init.iter().enumerate() {
            buf.put_u8(*b);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "after byte {i}");
        }
        buf.put_u8(*last);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
        assert!(buf.is_empty());
    }
}

#[test]
fn two_frames_in_one_buffer() {
    let mut buf = encode(&hello());
    buf.extend_from_slice(&encode(&text("first")));
    buf.extend_from_slice(&encode(&Message::Ping { nonce: 7 }));
    let mut codec = FrameCodec::new();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(hello()));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(text("first")));
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Message::Ping { nonce: 7 })
    );
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
}

#[test]
fn oversized_header_fails_before_any_payload() {
    let max = u32::try_from(MAX_FRAME_LEN).unwrap();
    for len in [max + 1, 0x8000_0000, u32::MAX] {
        for mut codec in [FrameCodec::new(), codec_after_hello()] {
            let mut buf = BytesMut::with_capacity(HEADER_LEN);
            buf.put_slice(&len.to_be_bytes()[..3]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "3 of 4 header bytes");
            buf.put_u8(len.to_be_bytes()[3]);
            assert_eq!(buf.len(), HEADER_LEN, "only the header is present");
            let err = codec.decode(&mut buf).unwrap_err();
            assert!(
                matches!(err, ProtocolError::FrameTooLarge),
                "{len}: {err:?}"
            );
            assert_reported_as(&err, ErrorCode::FrameTooLarge, "frame_too_large");
            assert!(buf.capacity() < 1024, "reserved {} bytes", buf.capacity());
        }
    }
}

#[test]
fn max_length_header_is_accepted() {
    for mut codec in [FrameCodec::new(), codec_after_hello()] {
        let mut buf = BytesMut::new();
        buf.put_u32(u32::try_from(MAX_FRAME_LEN).unwrap());
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }
}

/// A text whose encoded payload is exactly `payload_len` bytes.
fn text_of_payload_len(payload_len: usize) -> Message {
    let overhead = encode(&text("")).len() - HEADER_LEN;
    text(&"a".repeat(payload_len - overhead))
}

#[test]
fn max_size_frame_round_trips() {
    let msg = text_of_payload_len(MAX_FRAME_LEN);
    let mut buf = encode(&msg);
    assert_eq!(buf.len(), HEADER_LEN + MAX_FRAME_LEN);
    assert_eq!(&buf[..HEADER_LEN], &[0x00, 0x10, 0x00, 0x00]);
    assert_eq!(codec_after_hello().decode(&mut buf).unwrap(), Some(msg));
}

#[test]
fn zero_length_frame_is_rejected() {
    for mut codec in [FrameCodec::new(), codec_after_hello()] {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(err, ProtocolError::FrameTooLarge), "{err:?}");
        assert_reported_as(&err, ErrorCode::FrameTooLarge, "frame_too_large");
    }
}

#[test]
fn malformed_payload_after_hello_is_bad_json() {
    let cases: [&[u8]; 12] = [
        b"not json",
        b"\xff\xfe\xfd\xfc",
        b"{\"type\":\"text\",\"id\":\"a\",\"ts\":1,\"body\":\"\xc3\x28\"}",
        b"[1,2,3]",
        b"\"text\"",
        b"null",
        b"{}",
        b"{\"type\":5}",
        b"{\"type\":\"ping\",\"nonce\":\"x\"}",
        b"{\"type\":\"ping\",\"nonce\":-1}",
        b"{\"type\":\"text\",\"ts\":1,\"body\":\"no id\"}",
        b"{\"type\":\"bye\"} trailing",
    ];
    for payload in cases {
        let shown = String::from_utf8_lossy(payload);
        match decode_after_hello(payload) {
            Err(err @ ProtocolError::BadJson(_)) => {
                assert_reported_as(&err, ErrorCode::BadJson, "bad_json");
            }
            other => panic!("{shown}: expected BadJson, got {other:?}"),
        }
    }
}

/// Invalid UTF-8 is `bad_json` wherever it is, also in what the decoder
/// skips: an unknown field, or a message of an unknown type. (Found by the
/// `message_parser` fuzz target: serde_json does not check skipped strings.)
#[test]
fn invalid_utf8_in_skipped_fields_is_bad_json() {
    let cases: [&[u8]; 3] = [
        b"{\"type\":\"status\",\"mood\":\"-\xdffine\"}",
        b"{\"type\":\"text\",\"id\":\"m-1\",\"ts\":1,\"body\":\"hi\",\"x\":\"\xff\"}",
        b"{\"type\":\"bye\",\"extra\":[\"\xc3\x28\"]}",
    ];
    for payload in cases {
        let shown = String::from_utf8_lossy(payload);
        match decode_after_hello(payload) {
            Err(err @ ProtocolError::BadJson(_)) => {
                assert_reported_as(&err, ErrorCode::BadJson, "bad_json");
            }
            other => panic!("{shown}: expected BadJson, got {other:?}"),
        }
    }
}

/// A message's fields in a JSON array, in the order the decoder declares
/// them, are not a message: the payload must be an object. (Found by the
/// property `fields_in_an_array_are_not_a_message`: serde fills a struct
/// from a sequence too, so `["ack","m-1",null,...]` used to decode as an ack.)
#[test]
fn fields_in_a_json_array_are_bad_json() {
    let nulls = |n: usize| vec!["null"; n].join(",");
    let cases = [
        format!(r#"["ack","m-1",{}]"#, nulls(8)),
        format!(r#"["bye",{}]"#, nulls(9)),
        format!(r#" ["ping",null,null,null,5,{}]"#, nulls(5)),
        format!(r#"["text","m-1",1,"hi",{}]"#, nulls(6)),
    ];
    for payload in &cases {
        match decode_after_hello(payload.as_bytes()) {
            Err(err @ ProtocolError::BadJson(_)) => {
                assert_reported_as(&err, ErrorCode::BadJson, "bad_json");
            }
            other => panic!("{payload}: expected BadJson, got {other:?}"),
        }
    }
    // Whitespace before the object is still fine.
    assert_eq!(
        decode_after_hello(b" \r\n\t{\"type\":\"bye\"}").unwrap(),
        Some(Message::Bye)
    );
}

#[test]
fn first_frame_must_be_a_valid_hello() {
    let valid = serde_json::json!({"type": "hello", "proto": 1, "id": PEER_ID, "name": "laptop", "app": "lantalk/0.1.0"});
    let with = |key: &str, v: Value| {
        let mut h = valid.clone();
        h[key] = v;
        h.to_string()
    };
    let without = |key: &str| {
        let mut h = valid.clone();
        h.as_object_mut().unwrap().remove(key);
        h.to_string()
    };
    let bad_hello = [
        r#"{"type":"text","id":"m-1","ts":1,"body":"hi"}"#.to_owned(),
        r#"{"type":"bye"}"#.to_owned(),
        r#"[1,2]"#.to_owned(),
        with("id", Value::from(PEER_ID.to_uppercase())),
        with("id", Value::from("0123456789abcdef")),
        with("id", Value::from(format!("{PEER_ID}0"))),
        with("id", Value::from(PEER_ID.replace('f', "g"))),
        with("name", Value::from(7)),
        with("name", Value::from("n".repeat(201))),
        without("name"),
        without("app"),
        without("id"),
        without("proto"),
    ];
    // A name of exactly 200 bytes is fine (a later hello renames: the same cap).
    assert!(decode_first(with("name", Value::from("é".repeat(100))).as_bytes()).is_ok());
    for payload in &bad_hello {
        match decode_first(payload.as_bytes()) {
            Err(err @ ProtocolError::BadHello(_)) => {
                assert_reported_as(&err, ErrorCode::BadHello, "bad_hello");
            }
            other => panic!("{payload}: expected BadHello, got {other:?}"),
        }
    }
    for proto in [
        Value::from(2),
        Value::from(0),
        Value::from("1"),
        Value::from(1.5),
    ] {
        let payload = with("proto", proto);
        match decode_first(payload.as_bytes()) {
            Err(err @ ProtocolError::UnsupportedProto(_)) => {
                assert_reported_as(&err, ErrorCode::UnsupportedProto, "unsupported_proto");
            }
            other => panic!("{payload}: expected UnsupportedProto, got {other:?}"),
        }
    }
    match decode_first(b"not json") {
        Err(err @ ProtocolError::BadJson(_)) => {
            assert_reported_as(&err, ErrorCode::BadJson, "bad_json")
        }
        other => panic!("expected BadJson, got {other:?}"),
    }
    // The valid hello itself, and one with an extra field, are accepted.
    assert_eq!(
        decode_first(valid.to_string().as_bytes()).unwrap(),
        Some(hello())
    );
    let extra = with("color", Value::from("red"));
    assert_eq!(decode_first(extra.as_bytes()).unwrap(), Some(hello()));
}

#[test]
fn unknown_type_is_skipped_and_decoding_continues() {
    let mut buf = encode(&hello());
    buf.extend_from_slice(&raw_frame(br#"{"type":"wave","x":1}"#));
    buf.extend_from_slice(&raw_frame(br#"{"type":"typing"}"#));
    buf.extend_from_slice(&encode(&Message::Ping { nonce: 42 }));
    let mut codec = FrameCodec::new();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(hello()));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Unknown));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Unknown));
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Message::Ping { nonce: 42 })
    );
    assert!(buf.is_empty());
}

#[test]
fn unknown_type_is_never_encoded_as_a_known_one() {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    assert!(codec.encode(&Message::Unknown, &mut buf).is_err());
    assert!(buf.is_empty());
}

#[test]
fn unknown_fields_are_ignored() {
    let payload = br#"{"type":"text","id":"m-1","ts":1700000000123,"body":"hi","color":"red","extra":{"a":[1]}}"#;
    assert_eq!(decode_after_hello(payload).unwrap(), Some(text("hi")));
    let payload = br#"{"type":"ping","nonce":5,"future":true}"#;
    assert_eq!(
        decode_after_hello(payload).unwrap(),
        Some(Message::Ping { nonce: 5 })
    );
}

#[test]
fn encoding_too_large_a_message_fails_and_leaves_dst_unchanged() {
    let mut codec = FrameCodec::new();
    let mut dst = BytesMut::new();
    codec.encode(&Message::Ping { nonce: 1 }, &mut dst).unwrap();
    let before = dst.clone();
    for msg in [
        text(&"x".repeat(MAX_FRAME_LEN + 1)),
        text_of_payload_len(MAX_FRAME_LEN + 1),
    ] {
        let err = codec.encode(&msg, &mut dst).unwrap_err();
        assert!(matches!(err, ProtocolError::FrameTooLarge), "{err:?}");
        assert_eq!(dst, before);
    }
    // The codec is still usable afterwards.
    codec.encode(&Message::Bye, &mut dst).unwrap();
    let mut dec = codec_after_hello();
    assert_eq!(
        dec.decode(&mut dst).unwrap(),
        Some(Message::Ping { nonce: 1 })
    );
    assert_eq!(dec.decode(&mut dst).unwrap(), Some(Message::Bye));
}

#[test]
fn error_codes_and_messages() {
    let cases = [
        (
            ProtocolError::FrameTooLarge,
            ErrorCode::FrameTooLarge,
            "frame_too_large",
        ),
        (
            ProtocolError::BadJson("x".into()),
            ErrorCode::BadJson,
            "bad_json",
        ),
        (
            ProtocolError::BadHello("x".into()),
            ErrorCode::BadHello,
            "bad_hello",
        ),
        (
            ProtocolError::UnsupportedProto("2".into()),
            ErrorCode::UnsupportedProto,
            "unsupported_proto",
        ),
        (
            ProtocolError::HandshakeTimeout,
            ErrorCode::HandshakeTimeout,
            "handshake_timeout",
        ),
        (
            ProtocolError::Timeout("x".into()),
            ErrorCode::Timeout,
            "timeout",
        ),
    ];
    for (err, code, wire) in &cases {
        assert_eq!(code.as_str(), *wire);
        assert_reported_as(err, *code, wire);
    }
    let io = ProtocolError::Io(std::io::ErrorKind::BrokenPipe.into());
    assert_eq!(io.code(), None);
    assert_eq!(io.to_message(), None);
}

#[test]
fn constants_match_the_spec() {
    assert_eq!(PROTO_VERSION, 1);
    assert_eq!(MAX_FRAME_LEN, 1 << 20);
    assert_eq!(HEADER_LEN, 4);
    assert_eq!(HANDSHAKE_TIMEOUT.as_secs(), 5);
    // Every valid length fits in 3 bytes, so the first byte of a frame is 0x00.
    const { assert!(MAX_FRAME_LEN < 1 << 24) };
    assert_eq!(u32::try_from(MAX_FRAME_LEN).unwrap().to_be_bytes()[0], 0x00);
}

#[test]
fn peer_id_format() {
    assert!(is_valid_peer_id(PEER_ID));
    assert!(is_valid_peer_id(&"f".repeat(32)));
    for bad in [
        "",
        "0123456789abcdef",
        &PEER_ID.to_uppercase(),
        &format!("{PEER_ID}0"),
        &PEER_ID.replace('0', "g"),
        &PEER_ID.replace('0', "é"),
    ] {
        assert!(!is_valid_peer_id(bad), "{bad:?}");
    }
}

#[test]
fn text_fits_in_frame_matches_what_the_encoder_accepts() {
    let mut codec = FrameCodec::new();
    for len in [
        0,
        100_000,
        MAX_FRAME_LEN - 100,
        MAX_FRAME_LEN - 40,
        MAX_FRAME_LEN - 30,
        MAX_FRAME_LEN,
    ] {
        for fill in ["a", "\u{1}"] {
            let body = fill.repeat(len / fill.len());
            let text = Text {
                id: "abc-1".into(),
                ts: 1_700_000_000_000,
                body,
            };
            let mut dst = BytesMut::new();
            let encoded = codec.encode(&Message::Text(text.clone()), &mut dst).is_ok();
            assert_eq!(
                super::text_fits_in_frame(&text),
                encoded,
                "len {len} fill {fill:?}"
            );
        }
    }
}

/// An id that needs escaping counts with its escaped length. (Found by the
/// property `text_fits_in_frame_agrees_with_the_encoder`: the quick check
/// counted the id's raw length, so this text was said to fit and then
/// failed to encode, 1 byte over the limit.)
#[test]
fn text_fits_in_frame_counts_the_ids_escapes() {
    let text = Text {
        id: "\u{1}".repeat(24),
        ts: 10_000_000_000_000_000_000,
        body: "\u{1}".repeat(174_729),
    };
    let mut dst = BytesMut::new();
    let encoded = FrameCodec::new().encode(&Message::Text(text.clone()), &mut dst);
    assert!(
        matches!(encoded, Err(ProtocolError::FrameTooLarge)),
        "{encoded:?}"
    );
    assert!(!super::text_fits_in_frame(&text));
}

/// The hex dump of a hello frame in `assets/PROTOCOL.md` is what lantalk
/// really sends (for the same id and name, with this version's `app`).
#[test]
fn protocol_md_hello_example_matches_the_encoder() {
    let doc = include_str!("../../assets/PROTOCOL.md");
    let dump: Vec<u8> = doc
        .lines()
        .skip_while(|l| !l.starts_with("00000000  "))
        .take_while(|l| l.len() > 10 && l[..8].bytes().all(|b| b.is_ascii_hexdigit()))
        .flat_map(|l| {
            let hex = l[10..].split('|').next().unwrap_or("").to_owned();
            hex.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!dump.is_empty(), "no hex dump found in PROTOCOL.md");
    let hello = Message::Hello(Hello {
        proto: PROTO_VERSION,
        id: "0123456789abcdef0123456789abcdef".into(),
        name: "laptop".into(),
        app: concat!("lantalk/", env!("CARGO_PKG_VERSION")).into(),
    });
    assert_eq!(
        dump,
        encode(&hello).to_vec(),
        "PROTOCOL.md's hello frame is out of date"
    );
}
