//! Raw text sessions: anything that connects and does not start with a
//! protocol frame (`nc laptop.local 7342`, a Python socket sending
//! `b"Hey there"`). Bytes are decoded as UTF-8 (invalid sequences replaced);
//! each line is a message, a partial line is delivered after a pause or at
//! close, and very long lines arrive in pieces. Replies are written back as
//! lines. There are no acks: a raw peer cannot send them. A session that
//! receives nothing for [`IDLE_TIMEOUT`] is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::outbox::{Outbox, Wire};
use super::session::{CloseReason, SessionEvent, SessionHandle, SessionId};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::{Message, Text};

/// A partial line (no newline yet) is delivered after this long without more bytes.
pub const PARTIAL_LINE_DELAY: Duration = Duration::from_millis(500);

/// Longer lines are delivered in pieces of at most this many bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// A raw text session that receives nothing for this long is closed, after
/// a last line telling the peer why. A raw peer cannot be pinged, and TCP
/// keepalive only notices a peer that is gone, not one that stays connected
/// and silent: without this, idle `nc`s and scripts would hold their slots
/// (and [`super::listener::MAX_RAW`]) for good. Ten minutes is long enough
/// for a person to read, think and type; every byte the peer sends starts
/// the wait again, and what we send does not.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What the peer is told when its session is closed for [`IDLE_TIMEOUT`].
fn idle_line() -> String {
    format!(
        "lantalk: closed: nothing received for {} minutes",
        IDLE_TIMEOUT.as_secs() / 60
    )
}

/// Runs a raw text session on `stream` until the peer closes it, or
/// sends nothing for [`IDLE_TIMEOUT`].
pub(super) async fn run(stream: TcpStream, sid: SessionId, events: mpsc::Sender<SessionEvent>) {
    let _ = stream.set_nodelay(true);
    watch_link(&stream);
    let Ok(addr) = stream.peer_addr() else { return };
    let addr = super::stream::canonical(addr);
    let (mut read, write) = stream.into_split();
    let outbox = Outbox::new(super::stream::WriteHalf::Plain(write), Wire::Lines);
    tokio::spawn(Arc::clone(&outbox).run());
    let opened = SessionEvent::Opened {
        sid,
        peer: raw_peer(addr),
        addr,
        handle: SessionHandle::new(Arc::clone(&outbox)),
        link: super::Link::Plain,
        dialled: false,
    };
    if events.send(opened).await.is_err() {
        return;
    }
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut count = Counter::new();
    let mut last_byte = Instant::now();
    let reason = loop {
        let read_result = if lines.has_partial() {
            match tokio::time::timeout(PARTIAL_LINE_DELAY, read.read(&mut buf)).await {
                Ok(result) => result,
                // A pause after a partial line: deliver what there is.
                Err(_) => {
                    if !emit(&events, sid, &mut count, lines.flush()).await {
                        break CloseReason::Local;
                    }
                    continue;
                }
            }
        } else {
            let idle_until = last_byte + IDLE_TIMEOUT;
            match tokio::time::timeout_at(idle_until, read.read(&mut buf)).await {
                Ok(result) => result,
                Err(_) => {
                    let text = Text {
                        id: String::new(),
                        ts: super::now_ms(),
                        body: idle_line(),
                    };
                    outbox.push(Some(&Message::Text(text)), false);
                    break CloseReason::Idle;
                }
            }
        };
        match read_result {
            Ok(0) => break CloseReason::Eof,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break CloseReason::Timeout,
            Err(e) => break CloseReason::Io(e.to_string()),
            Ok(n) => {
                last_byte = Instant::now();
                if !emit(&events, sid, &mut count, lines.push(&buf[..n])).await {
                    break CloseReason::Local;
                }
            }
        }
    };
    // What arrived before the close is delivered too.
    emit(&events, sid, &mut count, lines.flush()).await;
    outbox.push(None, true);
    let _ = events.send(SessionEvent::Closed { sid, reason }).await;
}

/// A raw peer cannot answer pings, so the kernel watches the link instead:
/// TCP keepalive probes an idle connection after 5 s (3 probes, 2 s apart)
/// and a reply unacknowledged for 12 s fails the socket. Either way the read
/// fails with `TimedOut` within about 12 s of the peer vanishing.
fn watch_link(stream: &TcpStream) {
    let sock = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2))
        .with_retries(3);
    if let Err(e) = sock
        .set_tcp_keepalive(&keepalive)
        .and_then(|()| sock.set_tcp_user_timeout(Some(crate::protocol::PEER_TIMEOUT)))
    {
        tracing::debug!("cannot set keepalive on a raw session: {e}");
    }
}

/// Who a raw peer is: named after its address and keyed by its IP (see
/// [`PeerId::raw`]), so that every connection from one address continues
/// the same conversation.
pub fn raw_peer(addr: SocketAddr) -> PeerInfo {
    let ip = addr.ip().to_canonical();
    PeerInfo {
        id: PeerId::raw(ip),
        name: format!("raw {addr}"),
        kind: PeerKind::Raw(ip),
    }
}

/// Numbers a raw session's messages: a tag for the connection and a count,
/// so that ids stay unique in the history across connections and restarts.
struct Counter {
    tag: String,
    n: u64,
}

impl Counter {
    fn new() -> Self {
        // Collisions only matter within one address's history; the clock
        // alone would do, the random part covers clock jumps.
        let random = getrandom::u32().unwrap_or_default();
        Self {
            tag: format!("{:x}{random:08x}", super::now_ms()),
            n: 0,
        }
    }
}

async fn emit(
    events: &mpsc::Sender<SessionEvent>,
    sid: SessionId,
    count: &mut Counter,
    bodies: Vec<String>,
) -> bool {
    let ts = super::now_ms();
    for body in bodies {
        count.n += 1;
        let text = Text {
            id: format!("{}-{}", count.tag, count.n),
            ts,
            body,
        };
        if events.send(SessionEvent::Text { sid, text }).await.is_err() {
            return false;
        }
    }
    true
}

/// Splits a byte stream into messages: one per line, long lines in pieces.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Whether bytes without a newline are waiting.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes `bytes`; returns the complete lines (and 64 KiB pieces of overlong ones).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                out.push(take_line(&mut self.pending));
                continue;
            }
            // A full piece is cut off only when the line goes on past it, so
            // a line of exactly MAX_LINE bytes stays one message; a CR may wait
            // one byte beyond, to see whether it ends the line.
            let full =
                self.pending.len() > MAX_LINE || (self.pending.len() == MAX_LINE && b != b'\r');
            if full {
                let cut = char_boundary(&self.pending[..MAX_LINE]);
                let rest = self.pending.split_off(cut);
                out.push(String::from_utf8_lossy(&self.pending).into_owned());
                self.pending = rest;
            }
            self.pending.push(b);
        }
        out
    }

    /// Whatever is pending, as one message (none if nothing is).
    pub fn flush(&mut self) -> Vec<String> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        vec![take_line(&mut self.pending)]
    }
}

/// The pending bytes as a line, without a trailing `\r`.
fn take_line(pending: &mut Vec<u8>) -> String {
    if pending.last() == Some(&b'\r') {
        pending.pop();
    }
    let line = String::from_utf8_lossy(pending).into_owned();
    pending.clear();
    line
}

/// Where `bytes` would be cut without splitting a UTF-8 sequence: before an
/// incomplete sequence at its end, else at its end.
fn char_boundary(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(3) {
        let b = bytes[n - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for the lead byte
        }
        let needed = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needed > back { n - back } else { n };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newline_and_drop_cr() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"one\r\ntw"), vec!["one"]);
        assert!(lines.has_partial());
        assert_eq!(lines.push(b"o\nthree"), vec!["two"]);
        assert_eq!(lines.flush(), vec!["three"]);
        assert!(lines.flush().is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_an_error() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"caf\xc3\xa9 \xff!\n"), vec!["café \u{fffd}!"]);
    }

    #[test]
    fn the_tutorial_send_is_one_message() {
        let mut lines = Lines::default();
        assert!(lines.push(b"Hey there, Rodrigo's laptop.").is_empty());
        assert_eq!(lines.flush(), vec!["Hey there, Rodrigo's laptop."]);
    }

    #[test]
    fn long_lines_come_in_64_kib_pieces_without_splitting_characters() {
        let mut lines = Lines::default();
        let mut input = "a".repeat(MAX_LINE - 1).into_bytes();
        input.extend_from_slice("é".repeat(10).as_bytes());
        input.push(b'\n');
        let out = lines.push(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE - 1, "the é is not cut in half");
        assert_eq!(out[1], "é".repeat(10));
        let big = vec![b'x'; 3 * MAX_LINE];
        let mut out = lines.push(&big);
        assert_eq!(out.len(), 2, "the last piece waits: the line may end there");
        assert!(lines.has_partial());
        out.extend(lines.flush());
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.len() == MAX_LINE));
    }

    /// A line of exactly one piece's size is one message, with LF or CR LF.
    /// (Found by a property test: the piece used to be cut as soon as it was
    /// full, so the LF then ended an empty line, and a CR LF straddling the
    /// cut left the CR at the end of the piece.)
    #[test]
    fn a_line_of_exactly_64_kib_is_one_message() {
        let mut lines = Lines::default();
        let line = "y".repeat(MAX_LINE);
        for ending in ["\n", "\r\n"] {
            let out = lines.push(format!("{line}{ending}").as_bytes());
            assert_eq!(
                out.len(),
                1,
                "{ending:?}: {:?}",
                out.iter().map(String::len).collect::<Vec<_>>()
            );
            assert_eq!(out[0], line);
            assert!(!lines.has_partial());
        }
        let short = &line[1..];
        let out = lines.push(format!("{short}\r\n").as_bytes());
        assert_eq!(out, vec![short], "CR LF right at the piece size");
        // A CR that does not end the line is kept, in the next piece.
        let out = lines.push(format!("{line}\rz\n").as_bytes());
        assert_eq!(out, vec![line.clone(), "\rz".to_owned()]);
    }
}

/// Property tests of [`Lines`] against PROTOCOL.md section 4.4, on generated
/// lines (any characters, stray CRs, invalid and truncated UTF-8, lengths at
/// and around the 64 KiB piece size) and generated chunkings.
#[cfg(test)]
mod proptests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::{Lines, MAX_LINE};

    /// Cases per property: `n`, or `PROPTEST_CASES` when set.
    fn cases(n: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n)
    }

    /// A bit of line content: a character (not LF), a CR, a multi-byte
    /// character cut short, or bytes that may not be UTF-8 (LF excepted).
    fn unit() -> impl Strategy<Value = Vec<u8>> {
        let not_lf = |b: u8| if b == b'\n' { 0xff } else { b };
        prop_oneof![
            4 => any::<char>().prop_map(move |c| {
                c.to_string().bytes().map(not_lf).collect()
            }),
            1 => Just(b"\r".to_vec()),
            1 => any::<char>().prop_map(move |c| {
                let bytes = c.to_string().into_bytes();
                bytes[..bytes.len().saturating_sub(1).max(1)].iter().copied().map(not_lf).collect()
            }),
            1 => vec(any::<u8>().prop_map(not_lf), 1..4),
        ]
    }

    /// A line's bytes (no LF): short, or a unit repeated to within a few
    /// bytes of one or two piece sizes, then a few more units.
    fn content() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => vec(unit(), 0..12).prop_map(|units| units.concat()),
            1 => (unit(), 1..=2usize, -6isize..=6, vec(unit(), 0..3)).prop_map(
                |(fill, k, delta, tail)| {
                    let target = (k * MAX_LINE).saturating_add_signed(delta);
                    let mut line = fill.repeat(target / fill.len());
                    line.extend(tail.concat());
                    line
                }
            ),
        ]
    }

    /// A generated stream and the messages PROTOCOL.md section 4.4 makes of
    /// it: each line, without its LF or CR LF; a last line without LF
    /// (delivered by `flush`) without a trailing CR, if it is not empty.
    struct Stream {
        bytes: Vec<u8>,
        lines: Vec<Vec<u8>>,
    }

    /// Shows lengths and ends, not the hundreds of kilobytes.
    impl std::fmt::Debug for Stream {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let short = |b: &[u8]| {
                if b.len() <= 16 {
                    format!("{b:?}")
                } else {
                    format!("{} bytes {:?}..{:?}", b.len(), &b[..8], &b[b.len() - 8..])
                }
            };
            f.debug_struct("Stream")
                .field("bytes", &short(&self.bytes))
                .field(
                    "lines",
                    &self.lines.iter().map(|l| short(l)).collect::<Vec<_>>(),
                )
                .finish()
        }
    }

    fn stream() -> impl Strategy<Value = Stream> {
        let ending = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..])];
        (vec((content(), ending), 0..5), prop::option::of(content())).prop_map(|(ended, last)| {
            let mut bytes = Vec::new();
            let mut lines = Vec::new();
            for (content, ending) in ended {
                bytes.extend_from_slice(&content);
                bytes.extend_from_slice(ending);
                let line = match ending {
                    b"\n" => content.strip_suffix(b"\r").unwrap_or(&content),
                    _ => &content,
                };
                lines.push(line.to_vec());
            }
            if let Some(content) = last.filter(|c| !c.is_empty()) {
                bytes.extend_from_slice(&content);
                lines.push(content.strip_suffix(b"\r").unwrap_or(&content).to_vec());
            }
            Stream { bytes, lines }
        })
    }

    /// Pushes `bytes` cut at `points`, then flushes. Checks on the way that
    /// `has_partial` is true exactly when bytes after the last LF are held.
    fn split(bytes: &[u8], points: &[Index]) -> Result<Vec<String>, TestCaseError> {
        let cuts: Vec<usize> = points.iter().map(|p| p.index(bytes.len() + 1)).collect();
        split_at(bytes, cuts)
    }

    fn split_at(bytes: &[u8], mut cuts: Vec<usize>) -> Result<Vec<String>, TestCaseError> {
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts {
            out.extend(lines.push(&bytes[start..cut]));
            start = cut;
            let held = cut > 0 && bytes[cut - 1] != b'\n';
            prop_assert_eq!(lines.has_partial(), held, "has_partial after {} bytes", cut);
        }
        out.extend(lines.flush());
        prop_assert!(!lines.has_partial());
        Ok(out)
    }

    /// Checks `messages` against the expected `lines`: each line is one
    /// message, or consecutive pieces when longer than [`MAX_LINE`] whose
    /// concatenation is the line's lossy decoding (no piece splits a
    /// character); an empty line is one empty message and no piece is empty;
    /// for valid UTF-8, pieces have at most `MAX_LINE` bytes and all but the
    /// last at least `MAX_LINE - 3`.
    fn check(messages: &[String], lines: &[Vec<u8>]) -> Result<(), TestCaseError> {
        let mut messages = messages.iter();
        for (n, line) in lines.iter().enumerate() {
            let want = String::from_utf8_lossy(line);
            if want.is_empty() {
                prop_assert_eq!(messages.next().map(String::as_str), Some(""), "line {}", n);
                continue;
            }
            let valid = std::str::from_utf8(line).is_ok();
            let mut got = String::new();
            let mut previous: Option<usize> = None;
            while got.len() < want.len() {
                let piece = messages.next();
                prop_assert!(piece.is_some(), "line {} ({} bytes) missing", n, line.len());
                let piece = piece.unwrap();
                prop_assert!(!piece.is_empty(), "empty piece in line {}", n);
                if valid {
                    prop_assert!(piece.len() <= MAX_LINE, "piece of {} bytes", piece.len());
                    if let Some(p) = previous {
                        prop_assert!(p >= MAX_LINE - 3, "short piece of {} bytes", p);
                    }
                }
                got.push_str(piece);
                previous = Some(piece.len());
            }
            prop_assert!(got == want, "line {} ({} bytes) differs", n, line.len());
        }
        let extra = messages.next();
        prop_assert!(
            extra.is_none(),
            "a message no line explains: {:?}",
            extra.map(|m| m.len())
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases(64),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Lines, long ones included, arrive as PROTOCOL.md section 4.4
        /// says, however the stream is chunked.
        #[test]
        fn lines_arrive_as_the_spec_says_in_any_chunks(
            stream in stream(),
            points in vec(any::<Index>(), 0..8),
        ) {
            let whole = split(&stream.bytes, &[])?;
            check(&whole, &stream.lines)?;
            let chunked = split(&stream.bytes, &points)?;
            prop_assert!(chunked == whole, "chunking changed the messages");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases(512),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Arbitrary bytes, rich in CR and LF: the messages are the lossy
        /// decodings of the lines, whether pushed at once or byte by byte.
        #[test]
        fn arbitrary_bytes_split_into_their_lines(
            bytes in vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..512),
        ) {
            let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            if lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            let lines: Vec<Vec<u8>> =
                lines.iter().map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec()).collect();
            let whole = split(&bytes, &[])?;
            check(&whole, &lines)?;
            prop_assert_eq!(split_at(&bytes, (0..bytes.len()).collect())?, whole);
        }
    }
}
