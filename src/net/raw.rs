//! Raw text sessions: anything that connects and does not start with a
//! protocol frame (`nc laptop.local 7342`, a Python socket sending
//! `b"Hey there"`). Bytes are decoded as UTF-8 (invalid sequences replaced);
//! each line is a message, a partial line is delivered after a pause or at
//! close, and very long lines arrive in pieces. Replies are written back as
//! lines. There are no acks: a raw peer cannot send them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::outbox::Outbox;
use super::session::{CloseReason, SessionEvent, SessionHandle, SessionId};
use crate::protocol::{Hello, PROTO_VERSION, Text};

/// A partial line (no newline yet) is delivered after this long without more bytes.
pub const PARTIAL_LINE_DELAY: Duration = Duration::from_millis(500);

/// Longer lines are delivered in pieces of at most this many bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// Runs a raw text session on `stream` until the peer closes it.
pub(super) async fn run(stream: TcpStream, sid: SessionId, events: mpsc::Sender<SessionEvent>) {
    let _ = stream.set_nodelay(true);
    watch_link(&stream);
    let Ok(addr) = stream.peer_addr() else { return };
    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
    let (mut read, write) = stream.into_split();
    let outbox = Outbox::new(write, true);
    tokio::spawn(Arc::clone(&outbox).run());
    let opened = SessionEvent::Opened {
        sid,
        peer: raw_hello(addr),
        addr,
        handle: SessionHandle::new(Arc::clone(&outbox)),
        raw: true,
    };
    if events.send(opened).await.is_err() {
        return;
    }
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut count = 0u64;
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
            read.read(&mut buf).await
        };
        match read_result {
            Ok(0) => break CloseReason::Eof,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break CloseReason::Timeout,
            Err(e) => break CloseReason::Io(e.to_string()),
            Ok(n) => {
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

/// The hello a raw peer would have sent: named and keyed after its address.
pub fn raw_hello(addr: SocketAddr) -> Hello {
    Hello {
        proto: PROTO_VERSION,
        id: format!("raw-{addr}"),
        name: format!("raw {addr}"),
        app: "raw".into(),
    }
}

async fn emit(
    events: &mpsc::Sender<SessionEvent>,
    sid: SessionId,
    count: &mut u64,
    bodies: Vec<String>,
) -> bool {
    let ts = super::now_ms();
    for body in bodies {
        *count += 1;
        let text = Text {
            id: count.to_string(),
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
            } else {
                self.pending.push(b);
                if self.pending.len() >= MAX_LINE {
                    let cut = char_boundary(&self.pending);
                    let rest = self.pending.split_off(cut);
                    out.push(String::from_utf8_lossy(&self.pending).into_owned());
                    self.pending = rest;
                }
            }
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
        let out = lines.push(&big);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.len() == MAX_LINE));
    }
}
