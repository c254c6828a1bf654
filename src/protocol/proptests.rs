//! Property tests for the protocol layer: the real [`FrameCodec`] and
//! [`Message::from_json`] on generated messages, byte streams cut at generated
//! points, and generated garbage. Each property is checked on a few hundred
//! cases per run (a few seconds in a debug build); `cargo fuzz` targets for
//! the same code live in `fuzz/`.

use bytes::{BufMut, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use tokio_util::codec::{Decoder, Encoder};

use super::{
    ErrorCode, FrameCodec, HEADER_LEN, Hello, MAX_FRAME_LEN, Message, ProtocolError, Text,
    text_fits_in_frame,
};

// ---------------------------------------------------------------- strategies

/// Any string, control characters and astral planes included.
fn any_string() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..24).prop_map(String::from_iter)
}

/// A well-formed peer id: 32 lowercase hex characters.
fn peer_id() -> impl Strategy<Value = String> {
    vec(select(b"0123456789abcdef".as_slice()), 32)
        .prop_map(|hex| String::from_utf8(hex).expect("hex is ASCII"))
}

/// A `hello` that passes the handshake rules.
fn valid_hello() -> impl Strategy<Value = Message> {
    (peer_id(), any_string(), any_string()).prop_map(|(id, name, app)| {
        Message::Hello(Hello {
            proto: 1,
            id,
            name,
            app,
        })
    })
}

fn any_text() -> impl Strategy<Value = Text> {
    (any_string(), any::<u64>(), any_string()).prop_map(|(id, ts, body)| Text { id, ts, body })
}

/// Any message this version can send (every variant but `Unknown`), with any
/// field values: a `hello` here need not pass the handshake rules.
fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any_string(), any_string(), any_string()).prop_map(
            |(proto, id, name, app)| Message::Hello(Hello {
                proto,
                id,
                name,
                app
            })
        ),
        any_text().prop_map(Message::Text),
        any_string().prop_map(|id| Message::Ack { id }),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Message::Pong { nonce }),
        Just(Message::Bye),
        (any_string(), any_string()).prop_map(|(code, message)| Message::Error { code, message }),
    ]
}

/// A length prefix that must be refused: 0 or above [`MAX_FRAME_LEN`].
fn bad_length() -> impl Strategy<Value = u32> {
    let max = u32::try_from(MAX_FRAME_LEN).expect("MAX_FRAME_LEN fits in u32");
    prop_oneof![Just(0), Just(max + 1), Just(u32::MAX), (max + 1)..=u32::MAX]
}

/// Bytes that may go on a connection: mostly whole frames (valid or damaged
/// payloads), with bad length prefixes and plain noise mixed in.
fn stream_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => any_message().prop_map(|m| encode(&m).to_vec()),
        2 => (any_message(), any::<Index>(), any::<u8>()).prop_map(|(m, at, byte)| {
            // A valid payload with one byte changed: mostly bad_json.
            let mut json = serde_json::to_vec(&m).expect("serializable");
            let at = at.index(json.len());
            json[at] = byte;
            raw_frame(&json).to_vec()
        }),
        2 => (any_message(), any::<Index>()).prop_map(|(m, at)| {
            // A valid payload cut short, framed with its shorter length.
            let json = serde_json::to_vec(&m).expect("serializable");
            raw_frame(&json[..at.index(json.len())]).to_vec()
        }),
        1 => vec(any::<u8>(), 0..24).prop_map(|p| raw_frame(&p).to_vec()),
        1 => bad_length().prop_map(|len| len.to_be_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..12),
    ]
}

/// A connection's bytes: usually a valid `hello`, then anything.
fn any_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::weighted(0.9, valid_hello()),
        vec(stream_piece(), 0..10),
    )
        .prop_map(|(hello, pieces)| {
            let mut bytes = hello.map(|h| encode(&h).to_vec()).unwrap_or_default();
            pieces.iter().for_each(|p| bytes.extend_from_slice(p));
            bytes
        })
}

// ------------------------------------------------------------------- helpers

/// The frame the codec produces for `msg`.
fn encode(msg: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    FrameCodec::new().encode(msg, &mut buf).expect("encode");
    buf
}

/// A frame built by hand: big-endian length of `payload`, then `payload`.
fn raw_frame(payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(u32::try_from(payload.len()).expect("small payload"));
    buf.extend_from_slice(payload);
    buf
}

/// `bytes` cut at the given points (in any order; repeats give empty chunks).
fn split_at<'a>(bytes: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p.index(bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// What a connection's bytes decoded to: the messages, then the code of the
/// error that ended it (if one did), and the bytes left buffered otherwise.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<ErrorCode>,
    left_buffered: usize,
}

/// Feeds `chunks` to a fresh codec one after another, decoding after each
/// until it needs more bytes, as `FramedRead` does; stops at the first error.
/// Checks on the way that every error maps to an `error` code and that a
/// codec waiting for bytes holds less than one largest frame.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Outcome, TestCaseError> {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => messages.push(msg),
                Ok(None) => {
                    prop_assert!(
                        buf.len() < HEADER_LEN + MAX_FRAME_LEN,
                        "waiting with {} bytes buffered",
                        buf.len()
                    );
                    break;
                }
                Err(e) => {
                    prop_assert!(e.code().is_some(), "{e:?} maps to no error code");
                    return Ok(Outcome {
                        messages,
                        error: e.code(),
                        left_buffered: 0,
                    });
                }
            }
        }
    }
    Ok(Outcome {
        messages,
        error: None,
        left_buffered: buf.len(),
    })
}

/// A decode result with the error reduced to its wire code, for comparisons.
fn by_code(result: Result<Message, ProtocolError>) -> Result<Message, Option<ErrorCode>> {
    result.map_err(|e| e.code())
}

/// Decodes `payload` as the first frame of a connection.
fn decode_first(payload: &[u8]) -> Result<Message, Option<ErrorCode>> {
    let mut codec = FrameCodec::new();
    match codec.decode(&mut raw_frame(payload)) {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) => panic!("a whole frame decoded to nothing"),
        Err(e) => Err(e.code()),
    }
}

// ----------------------------------------------- a model of message decoding

/// The JSON type of a message field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Str,
    U64,
}

/// Every field of protocol v1 and its type (`assets/PROTOCOL.md`, section 3).
const FIELDS: [(&str, Ty); 9] = [
    ("id", Ty::Str),
    ("ts", Ty::U64),
    ("body", Ty::Str),
    ("nonce", Ty::U64),
    ("code", Ty::Str),
    ("message", Ty::Str),
    ("proto", Ty::U64),
    ("name", Ty::Str),
    ("app", Ty::Str),
];

/// One field of a generated payload.
#[derive(Debug, Clone)]
enum Field {
    Absent,
    Str(String),
    U64(u64),
    /// JSON of the wrong type for this field (for a u64: negative, fractional,
    /// exponent, too large, a string...).
    Wrong(&'static str),
}

impl Field {
    fn json(&self) -> Option<String> {
        match self {
            Field::Absent => None,
            Field::Str(s) => Some(serde_json::to_string(s).expect("string")),
            Field::U64(n) => Some(n.to_string()),
            Field::Wrong(raw) => Some((*raw).to_owned()),
        }
    }
    fn str(&self) -> Option<String> {
        match self {
            Field::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn u64(&self) -> Option<u64> {
        match self {
            Field::U64(n) => Some(*n),
            _ => None,
        }
    }
}

fn field(name: &'static str, ty: Ty) -> BoxedStrategy<Field> {
    let good = match (name, ty) {
        ("id", _) => prop_oneof![peer_id(), any_string()]
            .prop_map(Field::Str)
            .boxed(),
        ("proto", _) => prop_oneof![Just(1), any::<u64>()]
            .prop_map(Field::U64)
            .boxed(),
        (_, Ty::Str) => any_string().prop_map(Field::Str).boxed(),
        (_, Ty::U64) => prop_oneof![Just(0), Just(u64::MAX), any::<u64>()]
            .prop_map(Field::U64)
            .boxed(),
    };
    let wrong: &'static [&'static str] = match ty {
        Ty::Str => &["7", "true", "[]", "{}", r#"["a"]"#, r#"{"a":"b"}"#],
        Ty::U64 => &[
            "-1",
            "1.0",
            "1.5",
            "1e2",
            "18446744073709551616",
            r#""7""#,
            "true",
            "[]",
            "{}",
        ],
    };
    prop_oneof![
        3 => Just(Field::Absent),
        4 => good,
        1 => select(wrong).prop_map(Field::Wrong),
    ]
    .boxed()
}

/// A generated payload: a `type`, the nine known fields, some unknown ones,
/// written in a generated order with generated whitespace.
#[derive(Debug, Clone)]
struct Payload {
    kind: Field,
    fields: Vec<Field>,
    json: String,
}

fn payload() -> impl Strategy<Value = Payload> {
    let kind = prop_oneof![
        6 => select(&["hello", "text", "ack", "ping", "pong", "bye", "error"][..])
            .prop_map(|k| Field::Str(k.to_owned())),
        1 => select(&["Text", "", "hello ", "status"][..]).prop_map(|k| Field::Str(k.to_owned())),
        1 => any_string().prop_map(Field::Str),
        1 => Just(Field::Absent),
        1 => select(&["5", "null", "[]", r#"{"type":"text"}"#][..]).prop_map(Field::Wrong),
    ];
    let fields: Vec<_> = FIELDS.iter().map(|&(name, ty)| field(name, ty)).collect();
    let unknown_value = prop_oneof![
        select(&["null", "1", "-2.5e7", "[1,[2,{}]]", r#"{"type":"bye"}"#][..])
            .prop_map(str::to_owned),
        any_string().prop_map(|s| serde_json::to_string(&s).expect("string")),
    ];
    let unknown = vec(
        (
            select(&["x", "Type", "ID", "extra", "", "types"][..]),
            unknown_value,
        ),
        0..3,
    );
    let ws = select(&["", " ", "\n", "\t", "\r\n  "][..]);
    let order = vec(any::<Index>(), 12);
    (kind, fields, unknown, ws, order).prop_map(|(kind, fields, unknown, ws, order)| {
        let mut members: Vec<String> = Vec::new();
        let mut push = |key: &str, value: String| {
            let key = serde_json::to_string(key).expect("key");
            members.push(format!("{ws}{key}{ws}:{ws}{value}{ws}"));
        };
        if let Some(v) = kind.json() {
            push("type", v);
        }
        for ((name, _), f) in FIELDS.iter().zip(&fields) {
            if let Some(v) = f.json() {
                push(name, v);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (key, value) in unknown {
            if seen.insert(key) {
                push(key, value);
            }
        }
        // Field order does not matter (PROTOCOL.md section 3): shuffle.
        for (i, pick) in (1..members.len()).rev().zip(&order) {
            members.swap(i, pick.index(i + 1));
        }
        let json = format!("{ws}{{{}}}{ws}", members.join(","));
        Payload { kind, fields, json }
    })
}

/// What `Message::from_json` must make of `p`, from PROTOCOL.md section 3:
/// `None` for `bad_json` (no string `type`, a field of the wrong type, a
/// required field missing); unknown types decode to `Unknown`.
fn expected_message(p: &Payload) -> Option<Message> {
    let Field::Str(kind) = &p.kind else {
        return None;
    };
    if p.fields.iter().any(|f| matches!(f, Field::Wrong(_))) {
        return None;
    }
    let get = |name: &str| {
        let i = FIELDS
            .iter()
            .position(|(n, _)| *n == name)
            .expect("known field");
        &p.fields[i]
    };
    let s = |name: &str| get(name).str();
    let n = |name: &str| get(name).u64();
    Some(match kind.as_str() {
        "hello" => Message::Hello(Hello {
            proto: n("proto")?,
            id: s("id")?,
            name: s("name")?,
            app: s("app")?,
        }),
        "text" => Message::Text(Text {
            id: s("id")?,
            ts: n("ts")?,
            body: s("body")?,
        }),
        "ack" => Message::Ack { id: s("id")? },
        "ping" => Message::Ping { nonce: n("nonce")? },
        "pong" => Message::Pong { nonce: n("nonce")? },
        "bye" => Message::Bye,
        "error" => Message::Error {
            code: s("code")?,
            message: s("message")?,
        },
        _ => Message::Unknown,
    })
}

/// What the first frame of a connection must decode to, from the handshake
/// rules of PROTOCOL.md section 4.1, checked in the order given there.
fn expected_first(p: &Payload) -> Result<Message, Option<ErrorCode>> {
    let get = |name: &str| {
        let i = FIELDS
            .iter()
            .position(|(n, _)| *n == name)
            .expect("known field");
        &p.fields[i]
    };
    if !matches!(&p.kind, Field::Str(k) if k == "hello") {
        return Err(Some(ErrorCode::BadHello));
    }
    match get("proto") {
        Field::Absent => return Err(Some(ErrorCode::BadHello)),
        Field::U64(1) => {}
        _ => return Err(Some(ErrorCode::UnsupportedProto)),
    }
    let (Some(id), Some(name), Some(app)) = (get("id").str(), get("name").str(), get("app").str())
    else {
        return Err(Some(ErrorCode::BadHello));
    };
    if !super::is_valid_peer_id(&id) {
        return Err(Some(ErrorCode::BadHello));
    }
    Ok(Message::Hello(Hello {
        proto: 1,
        id,
        name,
        app,
    }))
}

/// JSON values of any shape, nested a few levels.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any_string().prop_map(Value::from),
        select(
            &[
                "hello", "text", "ack", "ping", "pong", "bye", "error", "type"
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            vec(
                (prop_oneof![any_string(), Just("type".to_owned())], inner),
                0..6
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------- properties

/// The number of cases per property: `n`, or `PROPTEST_CASES` when set (for
/// a longer search: `PROPTEST_CASES=20000 cargo test --release --lib proptests`).
pub(crate) fn cases(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Encoding then decoding any message, at any split of the bytes, gives
    /// it back; every frame starts with 0x00 and its length is the payload's.
    #[test]
    fn any_session_round_trips_at_any_split(
        hello in valid_hello(),
        msgs in vec(any_message(), 0..8),
        points in vec(any::<Index>(), 0..12),
    ) {
        let mut codec = FrameCodec::new();
        let mut wire = BytesMut::new();
        for msg in std::iter::once(&hello).chain(&msgs) {
            let start = wire.len();
            codec.encode(msg, &mut wire).expect("a small message encodes");
            let frame = &wire[start..];
            prop_assert_eq!(frame[0], 0, "first byte of a frame");
            let len = u32::from_be_bytes(frame[..HEADER_LEN].try_into().unwrap());
            prop_assert_eq!(len as usize, frame.len() - HEADER_LEN);
        }
        let expected = Outcome {
            messages: std::iter::once(hello).chain(msgs).collect(),
            error: None,
            left_buffered: 0,
        };
        prop_assert_eq!(decode_chunks(split_at(&wire, &points))?, expected);
    }

    /// `from_json` inverts the encoder's JSON for every message it can send.
    #[test]
    fn from_json_inverts_serialization(msg in any_message()) {
        let json = serde_json::to_vec(&msg).expect("serializable");
        prop_assert_eq!(Message::from_json(&json).expect("decodes"), msg);
    }

    /// Where TCP cuts a stream does not matter: any stream (valid frames,
    /// damaged ones, bad lengths, noise) decodes to the same messages and the
    /// same error whether it arrives at once, in generated chunks, or one
    /// byte at a time; errors always map to a wire code and a waiting codec
    /// never holds a whole frame's worth of bytes.
    #[test]
    fn split_points_do_not_change_decoding(
        stream in any_stream(),
        points in vec(any::<Index>(), 1..16),
    ) {
        let whole = decode_chunks([stream.as_slice()])?;
        prop_assert_eq!(&decode_chunks(split_at(&stream, &points))?, &whole);
        prop_assert_eq!(&decode_chunks(stream.chunks(1))?, &whole);
    }

    /// Arbitrary bytes, first frame or later, never panic: the decoder
    /// yields messages, waits, or fails with an error that has a wire code.
    #[test]
    fn arbitrary_bytes_never_panic(
        after_hello in any::<bool>(),
        noise in vec(any::<u8>(), 0..256),
        zero_lead in any::<bool>(),
    ) {
        let mut bytes = if after_hello { encode(&Message::Hello(Hello {
            proto: 1,
            id: "0123456789abcdef0123456789abcdef".into(),
            name: "n".into(),
            app: "a".into(),
        })).to_vec() } else { Vec::new() };
        // A leading 0x00 makes a plausible length more likely.
        if zero_lead { bytes.push(0); }
        bytes.extend_from_slice(&noise);
        decode_chunks([bytes.as_slice()])?;
    }

    /// A length of 0 or above the maximum fails as soon as the 4 header
    /// bytes are in, with nothing allocated for the payload; an acceptable
    /// length just waits for the payload.
    #[test]
    fn bad_length_fails_before_its_payload(
        len in bad_length(),
        good_len in 2..=MAX_FRAME_LEN,
        payload_start in vec(any::<u8>(), 0..2),
        after_hello in any::<bool>(),
    ) {
        let mut codec = FrameCodec::new();
        if after_hello {
            let hello = encode(&Message::Hello(Hello {
                proto: 1,
                id: "0123456789abcdef0123456789abcdef".into(),
                name: "n".into(),
                app: "a".into(),
            }));
            prop_assert!(matches!(codec.decode(&mut hello.clone()), Ok(Some(_))));
        }
        let mut buf = BytesMut::with_capacity(64);
        buf.put_u32(len);
        buf.extend_from_slice(&payload_start);
        let capacity = buf.capacity();
        let result = codec.decode(&mut buf);
        prop_assert!(matches!(result, Err(ProtocolError::FrameTooLarge)), "{result:?}");
        prop_assert!(buf.capacity() <= capacity, "allocated for a refused payload");

        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        buf.put_u32(u32::try_from(good_len).unwrap());
        buf.extend_from_slice(&payload_start);
        prop_assert!(matches!(codec.decode(&mut buf), Ok(None)));
    }

    /// `from_json` never panics on arbitrary bytes and fails only with `bad_json`.
    #[test]
    fn from_json_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..128)) {
        let result = Message::from_json(&bytes);
        prop_assert!(matches!(result, Ok(_) | Err(ProtocolError::BadJson(_))), "{result:?}");
    }

    /// `from_json` on JSON of any shape, and a first frame of any shape:
    /// anything but an object is `bad_json` (after the handshake) or
    /// `bad_hello` (as a first frame), never a message.
    #[test]
    fn only_objects_are_messages(value in any_json()) {
        let json = serde_json::to_vec(&value).expect("serializable");
        let result = by_code(Message::from_json(&json));
        if value.is_object() {
            prop_assert!(matches!(result, Ok(_) | Err(Some(ErrorCode::BadJson))), "{result:?}");
        } else {
            prop_assert_eq!(result, Err(Some(ErrorCode::BadJson)));
            prop_assert_eq!(decode_first(&json), Err(Some(ErrorCode::BadHello)));
        }
    }

    /// A message's fields laid out as a JSON array, in any order, is not a
    /// message: the payload must be an object (PROTOCOL.md section 2).
    #[test]
    fn fields_in_an_array_are_not_a_message(p in payload(), with_nulls in any::<bool>()) {
        let mut items: Vec<String> = Vec::new();
        items.extend(p.kind.json());
        for f in &p.fields {
            match f.json() {
                Some(v) => items.push(v),
                None if with_nulls => items.push("null".into()),
                None => {}
            }
        }
        let json = format!("[{}]", items.join(","));
        prop_assert_eq!(by_code(Message::from_json(json.as_bytes())), Err(Some(ErrorCode::BadJson)));
    }

    /// `from_json` follows PROTOCOL.md section 3 on generated objects: any
    /// field order and whitespace, unknown fields ignored, unknown types
    /// skipped, required fields enforced, wrong types refused.
    #[test]
    fn from_json_follows_the_spec(p in payload()) {
        let got = by_code(Message::from_json(p.json.as_bytes()));
        let want = expected_message(&p).ok_or(Some(ErrorCode::BadJson));
        prop_assert_eq!(got, want, "payload {}", p.json);
    }

    /// A payload that is not UTF-8 is `bad_json`, after the handshake and as
    /// a first frame, wherever the bad byte is: anywhere, or in the string
    /// value of an unknown field, which the decoder skips.
    #[test]
    fn payloads_that_are_not_utf8_are_bad_json(
        p in payload(),
        in_skipped_field in any::<bool>(),
        filler in any_string(),
        at in any::<Index>(),
        byte in 0x80u8..=0xff,
    ) {
        let mut bytes = p.json.clone().into_bytes();
        if in_skipped_field {
            let mut value = serde_json::to_vec(&filler).expect("string");
            value.insert(1 + at.index(value.len() - 1), byte);
            let brace = bytes.iter().position(|&b| b == b'{').expect("an object");
            let empty = p.json[brace + 1..].trim_start().starts_with('}');
            let mut member = br#""skipped":"#.to_vec();
            member.extend_from_slice(&value);
            if !empty {
                member.push(b',');
            }
            bytes.splice(brace + 1..brace + 1, member);
        } else {
            bytes.insert(at.index(bytes.len() + 1), byte);
        }
        prop_assume!(std::str::from_utf8(&bytes).is_err());
        prop_assert_eq!(by_code(Message::from_json(&bytes)), Err(Some(ErrorCode::BadJson)));
        prop_assert_eq!(decode_first(&bytes), Err(Some(ErrorCode::BadJson)));
    }

    /// The first frame follows the handshake rules of PROTOCOL.md section 4.1.
    #[test]
    fn first_frame_follows_the_handshake_rules(p in payload()) {
        prop_assert_eq!(decode_first(p.json.as_bytes()), expected_first(&p), "payload {}", p.json);
    }
}

/// Texts whose encoded size lands near [`MAX_FRAME_LEN`], on either side: a
/// character repeated (plain, escaped as `\uXXXX` or `\"`, multi-byte) after a
/// short prefix, with an id that may itself need escaping.
fn large_text() -> impl Strategy<Value = Large> {
    let unit = prop_oneof![
        3 => Just("\u{1}"),
        4 => select(&["a", "é", "\"", "\n", "👋", "\u{7f}"][..]),
    ];
    let id = prop_oneof![any_string(), (0..48usize).prop_map(|n| "\u{1}".repeat(n)),];
    (unit, 0..400usize, any_string(), id, any::<u64>()).prop_map(
        |(unit, offset, prefix, id, ts)| {
            let escaped = serde_json::to_string(unit).expect("string").len() - 2;
            let count = (MAX_FRAME_LEN - offset) / escaped;
            Large(Text {
                id,
                ts,
                body: prefix + &unit.repeat(count),
            })
        },
    )
}

/// A large text, shown in failure reports by its shape rather than its megabyte.
struct Large(Text);

impl std::fmt::Debug for Large {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = &self.0.body;
        let head: String = body.chars().take(8).collect();
        let tail: String = body
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        write!(
            f,
            "Text {{ id: {:?}, ts: {}, body: {} bytes {:?}..{:?} }}",
            self.0.id,
            self.0.ts,
            body.len(),
            head,
            tail
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// `text_fits_in_frame` says yes exactly when the encoder accepts the
    /// text, and a refused text leaves the output buffer as it was.
    #[test]
    fn text_fits_in_frame_agrees_with_the_encoder(text in large_text()) {
        let Large(text) = text;
        let mut dst = BytesMut::from(&b"before"[..]);
        let encoded = FrameCodec::new().encode(&Message::Text(text.clone()), &mut dst);
        prop_assert_eq!(text_fits_in_frame(&text), encoded.is_ok(),
            "encoder said {:?}", encoded.as_ref().err());
        if encoded.is_err() {
            prop_assert_eq!(&dst[..], b"before");
        }
    }
}
