//! Benchmark #1: encode and decode of one 100-byte text frame with the real
//! [`FrameCodec`], measured by criterion (its default report on stdout), then
//! summarised as one table row from criterion's `estimates.json` files.
//!
//! `cargo bench --bench codec`; `LANTALK_BENCH_QUICK=1` for a short run.

mod support;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use criterion::Criterion;
use lantalk::protocol::{FrameCodec, Hello, Message, Text};
use tokio_util::codec::{Decoder, Encoder};

const GROUP: &str = "codec";
const IDS: [&str; 3] = ["encode", "decode", "roundtrip"];

fn hello() -> Message {
    Message::Hello(Hello {
        proto: 1,
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        name: "laptop".to_owned(),
        app: "lantalk/0.1.0".to_owned(),
    })
}

/// A realistic text: an id as `lantalk send` makes them, a millisecond
/// timestamp, and 100 bytes of plain ASCII body (no escaping needed).
fn text_100() -> Message {
    let body: String = "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(100)
        .collect();
    assert_eq!(body.len(), 100);
    Message::Text(Text {
        id: "0123456789abcdef-42".to_owned(),
        ts: 1_764_124_680_123,
        body,
    })
}

/// A decoder past its handshake: it has decoded a `hello` already.
fn codec_after_hello() -> FrameCodec {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    codec.encode(&hello(), &mut buf).expect("encode hello");
    match codec.decode(&mut buf) {
        Ok(Some(Message::Hello(_))) => {}
        other => panic!("hello did not decode: {other:?}"),
    }
    codec
}

fn benches(c: &mut Criterion) {
    let msg = text_100();
    let frame: Bytes = {
        let mut buf = BytesMut::new();
        FrameCodec::new().encode(&msg, &mut buf).expect("encode");
        buf.freeze()
    };
    eprintln!(
        "codec: the 100-byte text is a {}-byte frame (4-byte header + {}-byte JSON payload)",
        frame.len(),
        frame.len() - 4
    );
    // The frame decodes back to the message.
    assert_eq!(
        codec_after_hello()
            .decode(&mut BytesMut::from(&frame[..]))
            .unwrap(),
        Some(msg.clone())
    );

    let mut group = c.benchmark_group(GROUP);

    let mut enc = FrameCodec::new();
    let mut dst = BytesMut::with_capacity(4096);
    group.bench_function(IDS[0], |b| {
        b.iter(|| {
            dst.clear();
            enc.encode(black_box(&msg), &mut dst).unwrap();
            black_box(dst.len())
        })
    });

    // Each iteration copies the frame into the (empty) input buffer and
    // decodes it: the steady state of a session's read buffer. (A freshly
    // allocated BytesMut per iteration, e.g. via `iter_batched`, would add
    // its allocation, its promotion to a shared buffer by `split_to`, and
    // cold memory, none of which a session pays per frame.)
    let mut dec = codec_after_hello();
    let mut src = BytesMut::with_capacity(4096);
    group.bench_function(IDS[1], |b| {
        b.iter(|| {
            src.extend_from_slice(black_box(&frame));
            let got = dec.decode(&mut src).unwrap();
            debug_assert!(src.is_empty());
            got
        })
    });

    let mut enc = FrameCodec::new();
    let mut dec = codec_after_hello();
    let mut buf = BytesMut::with_capacity(4096);
    group.bench_function(IDS[2], |b| {
        b.iter(|| {
            enc.encode(black_box(&msg), &mut buf).unwrap();
            let got = dec.decode(&mut buf).unwrap();
            debug_assert!(buf.is_empty());
            got
        })
    });

    group.finish();
}

/// Where criterion writes its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion` in the package.
/// Set explicitly so that reading them back cannot look elsewhere.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("criterion")
}

/// The median time per iteration, in ns, of `GROUP/id` from this run (a
/// result older than `since` is from an earlier run and is not used).
fn median_ns(dir: &std::path::Path, id: &str, since: SystemTime) -> Result<f64, String> {
    let path = dir.join(GROUP).join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if modified < since {
        return Err(format!("{} is from an earlier run", path.display()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    json["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no median.point_estimate", path.display()))
}

fn main() {
    let started = SystemTime::now();
    let dir = criterion_dir();
    let mut c = Criterion::default().output_directory(&dir);
    if support::quick() {
        c = c
            .measurement_time(Duration::from_millis(200))
            .warm_up_time(Duration::from_millis(100))
            .sample_size(10);
    }
    let mut c = c.configure_from_args();
    benches(&mut c);
    c.final_summary();

    let medians: Result<Vec<f64>, String> =
        IDS.iter().map(|id| median_ns(&dir, id, started)).collect();
    match medians {
        Ok(m) => support::row(
            "1",
            "codec: encode + decode, 100-byte text frame",
            &format!(
                "{} ns + {} ns = {} ns per frame",
                support::num(m[0]),
                support::num(m[1]),
                support::num(m[2])
            ),
            "—",
            "—",
            "report ns per frame",
            None,
        ),
        // `cargo test --benches`, a filter, or `--list`: nothing was measured.
        Err(why) => eprintln!("codec: no table row ({why})"),
    }
}
