//! The raw-text line splitter (`lantalk::net::raw::Lines`) on generated
//! streams.
//!
//! The input is read as a list of pieces (bytes, line endings, long runs that
//! reach the 64 KiB piece size from a small input) and the sizes of the
//! chunks the stream arrives in.
//!
//! Checks: no panic; the messages do not depend on how the stream is chunked;
//! `has_partial` is true exactly when bytes after the last newline are held;
//! each line (LF or CR LF, the last one flushed) arrives as one message, or
//! as several pieces when longer than 64 KiB, whose concatenation is the
//! line's lossy UTF-8 decoding (so no piece splits a character); an empty
//! line is one empty message and no other message is empty; for valid UTF-8
//! every piece has at most 64 KiB and all but the last at least 64 KiB - 3.
#![no_main]

use arbitrary::Arbitrary;
use lantalk::net::raw::{Lines, MAX_LINE};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Lf,
    CrLf,
    Cr,
    /// `unit` repeated `times` times.
    Repeat {
        unit: Vec<u8>,
        times: u16,
    },
    /// `MAX_LINE + delta` bytes of `fill`: lines right at the piece size.
    NearMax {
        fill: u8,
        delta: i8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    chunks: Vec<u16>,
}

/// Streams stay under this size (room for lines of a few pieces) to keep
/// executions fast.
const MAX_STREAM: usize = 3 * MAX_LINE;

fn stream_of(pieces: &[Piece]) -> Vec<u8> {
    let mut stream = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Bytes(b) => stream.extend_from_slice(b),
            Piece::Lf => stream.push(b'\n'),
            Piece::CrLf => stream.extend_from_slice(b"\r\n"),
            Piece::Cr => stream.push(b'\r'),
            Piece::Repeat { unit, times } => {
                let room = MAX_STREAM.saturating_sub(stream.len());
                let n = (usize::from(*times) * unit.len()).min(room);
                stream.extend(unit.iter().cycle().take(n));
            }
            Piece::NearMax { fill, delta } => {
                let n = MAX_LINE.saturating_add_signed(isize::from(*delta));
                stream.extend(std::iter::repeat_n(*fill, n));
            }
        }
        if stream.len() >= MAX_STREAM {
            stream.truncate(MAX_STREAM);
            break;
        }
    }
    stream
}

/// Pushes `stream` in chunks of the given sizes (cycled; the whole stream at
/// once if there are none), then flushes; checks `has_partial` on the way.
fn split(stream: &[u8], sizes: &[u16]) -> Vec<String> {
    let mut lines = Lines::default();
    let mut out = Vec::new();
    let mut at = 0;
    let mut sizes = sizes.iter().map(|&s| usize::from(s).max(1)).cycle();
    while at < stream.len() {
        let n = sizes.next().unwrap_or(stream.len()).min(stream.len() - at);
        out.extend(lines.push(&stream[at..at + n]));
        at += n;
        assert_eq!(
            lines.has_partial(),
            stream[at - 1] != b'\n',
            "has_partial after {at} bytes"
        );
    }
    out.extend(lines.flush());
    assert!(!lines.has_partial());
    out
}

/// The stream's lines as PROTOCOL.md section 4.4 defines them: split at LF,
/// one CR before it dropped; a last line without LF counts if not empty.
fn lines_of(stream: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

fuzz_target!(|input: Input| {
    let stream = stream_of(&input.pieces);
    let whole = split(&stream, &[]);
    assert_eq!(
        split(&stream, &input.chunks),
        whole,
        "chunking changed the messages"
    );

    let mut messages = whole.iter();
    for line in lines_of(&stream) {
        let want = String::from_utf8_lossy(line);
        if want.is_empty() {
            assert_eq!(messages.next().map(String::as_str), Some(""), "empty line");
            continue;
        }
        let valid = std::str::from_utf8(line).is_ok();
        let mut got = String::new();
        let mut pieces = 0;
        let mut previous = 0;
        while got.len() < want.len() {
            let piece = messages.next().expect("a message for every line");
            assert!(!piece.is_empty(), "an empty piece of a non-empty line");
            assert!(
                piece.len() <= 3 * MAX_LINE,
                "piece of {} bytes",
                piece.len()
            );
            if valid {
                assert!(piece.len() <= MAX_LINE, "piece of {} bytes", piece.len());
                assert!(
                    pieces == 0 || previous >= MAX_LINE - 3,
                    "a short piece of {previous} bytes before the end"
                );
            }
            got.push_str(piece);
            previous = piece.len();
            pieces += 1;
        }
        assert!(
            got == want,
            "line of {} bytes came as {pieces} pieces that differ",
            line.len()
        );
    }
    assert_eq!(messages.next(), None, "more messages than lines");
});
