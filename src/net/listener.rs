//! Accepting connections: binding the port (with the fallback when 7342 is
//! busy), telling protocol traffic from other traffic by its first byte, and
//! handing handshaken sessions to the owner.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc};

use super::next_session_id;
use super::policy::{Expect, Policy};
use super::raw;
use super::session::{SessionEvent, drain, handshake};
use super::stream::Conn;
use crate::protocol::{ENCRYPTION_REQUIRED, Hello, ProtocolError, Refusal};

/// How long a connection may stay silent before its first byte. Generous:
/// someone typing into `nc` takes their time; a framed client sends its hello
/// at once (and then has the 5-s handshake timeout).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(120);

/// At most this many accepted connections are open at once, sessions and
/// connections that have not yet sent their first byte alike. More are
/// closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 512;

/// At most this many of them from one source address (one /64 for IPv6, so
/// that a host cannot dodge the cap by picking new addresses).
pub const MAX_PER_SOURCE: usize = 32;

/// At most this many raw text sessions are open at once (16 hosts × 4): raw
/// sessions can take at most 64 of the 512 slots, so at least 448 stay for
/// framed sessions. A raw connection beyond it is told why in one line and
/// closed: the sessions already open are people typing, and a newcomer is
/// the one that can read the refusal and try again, whereas pushing out the
/// oldest would let a flood disconnect them one after the other.
pub const MAX_RAW: usize = 64;

/// At most this many raw text sessions from one source address (one /64
/// for IPv6): a few terminals on one device.
pub const MAX_RAW_PER_SOURCE: usize = 4;

/// The port lantalk listens on unless told otherwise (the tutorial's port).
pub const DEFAULT_PORT: u16 = 7342;

/// A bound listening socket and how it came to be on its port.
#[derive(Debug)]
pub struct Bound {
    /// The socket, accepting IPv4 and IPv6 where the system allows.
    pub listener: TcpListener,
    /// The real port, to advertise.
    pub port: u16,
    /// Set when the default port was busy and another was chosen.
    pub fell_back_from: Option<u16>,
}

/// Binds `port`, or [`DEFAULT_PORT`] when `None`; `Some(0)` picks a free port.
/// Only the default port falls back to a free one when busy: a port the user
/// asked for explicitly is an error when taken.
pub async fn bind(port: Option<u16>) -> io::Result<Bound> {
    let wanted = port.unwrap_or(DEFAULT_PORT);
    match bind_dual_stack(wanted).await {
        Ok(listener) => {
            let port = listener.local_addr()?.port();
            Ok(Bound {
                listener,
                port,
                fell_back_from: None,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && port.is_none() => {
            let listener = bind_dual_stack(0).await?;
            let port = listener.local_addr()?.port();
            Ok(Bound {
                listener,
                port,
                fell_back_from: Some(wanted),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            e.kind(),
            format!("port {wanted} is already in use (try --port 0 for any free port)"),
        )),
        Err(e) => Err(e),
    }
}

/// `[::]:port` (which also accepts IPv4 on Linux), or `0.0.0.0:port` where IPv6 is off.
async fn bind_dual_stack(port: u16) -> io::Result<TcpListener> {
    match listen_on((Ipv6Addr::UNSPECIFIED, port).into()) {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(e),
        Err(_) => listen_on((Ipv4Addr::UNSPECIFIED, port).into()),
    }
}

/// Connections the kernel completes and queues for `accept` (capped by
/// `net.core.somaxconn`). The standard library's 128 overflows when a
/// thousand connections arrive at once: the kernel then drops handshakes
/// (the client believes it is connected to a server that has no record of
/// it, and a legitimate peer's SYN waits a second for its retransmission)
/// instead of letting the accept loop close the excess at once.
const BACKLOG: u32 = 1024;

/// A listening socket on `addr`, set up as `std::net::TcpListener::bind`
/// does (`SO_REUSEADDR`) but with [`BACKLOG`].
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Open connections per source, shared by the accept loop and the [`Slot`]s.
#[derive(Default)]
struct Limits {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_source: HashMap<IpAddr, Source>,
    total: usize,
    /// Raw text sessions among them.
    raw: usize,
    /// Connections still waiting for their first byte, oldest first: when
    /// the total is reached, the oldest of them makes room for a new one.
    silent: VecDeque<(u64, Arc<Notify>)>,
    next_id: u64,
    /// A refusal for the total was logged since the total was last below it.
    warned_total: bool,
    /// A refusal for [`MAX_RAW`] was logged since the count was last below it.
    warned_raw: bool,
}

#[derive(Default)]
struct Source {
    open: usize,
    /// Raw text sessions among them.
    raw: usize,
    /// A refusal was logged since this source was last under its cap.
    warned: bool,
    /// A raw refusal was logged since this source was last under its raw cap.
    warned_raw: bool,
}

/// One admitted connection; frees its place when dropped.
struct Slot {
    limits: Arc<Limits>,
    source: IpAddr,
    id: u64,
    /// Counted as a raw text session ([`Slot::raw`]).
    raw: bool,
    /// Told when this connection, still silent, must make room.
    evict: Arc<Notify>,
}

/// A raw text session refused for its caps.
#[derive(Debug)]
struct RawFull {
    /// Which cap, for the log and the peer.
    why: String,
    /// The first refusal since the cap was last free: worth a warning.
    first: bool,
}

impl Limits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `addr`, or why there is none (`None`
    /// when the refusal was already logged for this source).
    fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Option<String>> {
        let source = source_key(addr);
        let mut counts = self.lock();
        let counts = &mut *counts;
        if counts.total >= MAX_CONNECTIONS
            && let Some((_, evict)) = counts.silent.pop_front()
        {
            // Its place is freed when it closes, a moment from now.
            evict.notify_one();
        } else if counts.total >= MAX_CONNECTIONS {
            let first = !counts.warned_total;
            counts.warned_total = true;
            return Err(first.then(|| format!("{MAX_CONNECTIONS} connections open")));
        }
        if counts
            .by_source
            .get(&source)
            .is_some_and(|s| s.open >= MAX_PER_SOURCE)
        {
            let why = format!("{MAX_PER_SOURCE} connections open from {source}");
            return Err(refuse(counts, source, why));
        }
        let entry = counts.by_source.entry(source).or_default();
        entry.open += 1;
        counts.total += 1;
        counts.next_id += 1;
        let evict = Arc::new(Notify::new());
        counts
            .silent
            .push_back((counts.next_id, Arc::clone(&evict)));
        Ok(Slot {
            limits: Arc::clone(self),
            source,
            id: counts.next_id,
            raw: false,
            evict,
        })
    }
}

/// Notes a refusal of a source at its cap; the reason is returned once,
/// until the source is under its cap again.
fn refuse(counts: &mut Counts, source: IpAddr, why: String) -> Option<String> {
    let entry = counts.by_source.get_mut(&source)?;
    let first = !entry.warned;
    entry.warned = true;
    first.then_some(why)
}

impl Slot {
    /// The connection has spoken: it can no longer be evicted. False when
    /// it was already told to make room (its first byte and a newcomer
    /// came at once): it must close all the same, or the total would
    /// overflow.
    fn spoke(&self) -> bool {
        let mut counts = self.limits.lock();
        let before = counts.silent.len();
        counts.silent.retain(|(id, _)| *id != self.id);
        counts.silent.len() < before
    }

    /// Counts this connection as a raw text session, unless [`MAX_RAW`]
    /// or [`MAX_RAW_PER_SOURCE`] are reached.
    fn raw(&mut self) -> Result<(), RawFull> {
        let mut counts = self.limits.lock();
        let counts = &mut *counts;
        if counts.raw >= MAX_RAW {
            let first = !counts.warned_raw;
            counts.warned_raw = true;
            let why = format!("{MAX_RAW} raw text sessions open");
            return Err(RawFull { why, first });
        }
        let entry = counts.by_source.entry(self.source).or_default();
        if entry.raw >= MAX_RAW_PER_SOURCE {
            let first = !entry.warned_raw;
            entry.warned_raw = true;
            let why = format!(
                "{MAX_RAW_PER_SOURCE} raw text sessions open from {}",
                self.source
            );
            return Err(RawFull { why, first });
        }
        entry.raw += 1;
        counts.raw += 1;
        self.raw = true;
        Ok(())
    }

    /// Resolves when this silent connection must close to make room.
    async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.total -= 1;
        counts.warned_total = false;
        counts.silent.retain(|(id, _)| *id != self.id);
        if self.raw {
            counts.raw -= 1;
            counts.warned_raw = false;
        }
        if let Some(entry) = counts.by_source.get_mut(&self.source) {
            entry.open -= 1;
            entry.warned = false;
            if self.raw {
                entry.raw -= 1;
                entry.warned_raw = false;
            }
            if entry.open == 0 {
                counts.by_source.remove(&self.source);
            }
        }
    }
}

/// The address connections are counted under: IPv4 as is, IPv6 by /64.
fn source_key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Accepts connections forever, starting a session for each valid one; every
/// session reports to `events`. Returns only if the events receiver is gone.
/// Connections beyond [`MAX_CONNECTIONS`] or [`MAX_PER_SOURCE`] are closed
/// at once.
pub async fn serve(
    listener: TcpListener,
    hello: Hello,
    policy: Policy,
    events: mpsc::Sender<SessionEvent>,
) {
    let hello = Arc::new(hello);
    let policy = Arc::new(policy);
    let limits = Arc::new(Limits::default());
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if events.is_closed() {
            return;
        }
        let slot = match limits.admit(addr.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                if let Some(why) = why {
                    tracing::warn!("refusing connections from {addr}: {why}");
                }
                drop(stream);
                continue;
            }
        };
        let hello = Arc::clone(&hello);
        let policy = Arc::clone(&policy);
        let events = events.clone();
        tokio::spawn(async move {
            if let Err(why) = accept_one(stream, &hello, &policy, events, slot).await {
                tracing::info!("connection from {addr} closed: {why}");
            }
        });
    }
}

/// Decides what a new connection is by its first byte (0x16 TLS, 0x00 a
/// framed session in clear, anything else raw text), and runs the
/// handshakes. Our `hello` is sent only once the first byte has arrived, so
/// that non-protocol clients never see binary data.
async fn accept_one(
    stream: TcpStream,
    hello: &Hello,
    policy: &Policy,
    events: mpsc::Sender<SessionEvent>,
    mut slot: Slot,
) -> Result<(), String> {
    let mut first = [0u8; 8];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)) => peeked,
        () = slot.evicted() => {
            return Err("nothing received; closed to make room for a new connection".into());
        }
    };
    let seen = match peeked {
        Err(_) => return Err("nothing received; closed after the idle timeout".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(0)) => return Err("closed before sending anything".into()),
        Ok(Ok(n)) => &first[..n],
    };
    if !slot.spoke() {
        return Err("closed to make room for a new connection".into());
    }
    let conn = match (seen[0], &policy.tls) {
        (0x16, Some(tls)) => {
            let (stream, fp) = tls
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            Conn::tls(stream, fp).map_err(|e| e.to_string())?
        }
        (0x00, _) => Conn::plain(stream).map_err(|e| e.to_string())?,
        _ if is_reserved(seen) => {
            return Err(close_politely(stream, None, seen[0]).await);
        }
        _ if policy.require_encryption => {
            let addr = super::stream::canonical(stream.peer_addr().map_err(|e| e.to_string())?);
            let told = format!("lantalk: {ENCRYPTION_REQUIRED}\n");
            close_politely(stream, Some(&told), seen[0]).await;
            let refusal = Refusal::RawTextRefused { addr };
            let why = refusal.to_string();
            let _ = events.send(SessionEvent::Refused { addr, refusal }).await;
            return Err(why);
        }
        _ => {
            if let Err(full) = slot.raw() {
                if full.first {
                    tracing::warn!("refusing raw text sessions: {}", full.why);
                }
                let told = format!("lantalk: refused: {}; try again later\n", full.why);
                close_politely(stream, Some(&told), seen[0]).await;
                return Err(format!("raw text session refused: {}", full.why));
            }
            raw::run(stream, next_session_id(), events).await;
            drop(slot);
            return Ok(());
        }
    };
    let addr = conn.addr;
    match handshake(conn, hello, policy, &Expect::default()).await {
        Ok(session) => {
            session.start_holding(next_session_id(), events, slot);
            Ok(())
        }
        Err(ProtocolError::Refused(refusal)) => {
            let why = refusal.to_string();
            let _ = events.send(SessionEvent::Refused { addr, refusal }).await;
            Err(why)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Closes a connection that is not a session, after telling it `told`:
/// dropping a socket with unread input would reset the connection (and
/// destroy what we told it). Returns what to log.
async fn close_politely(stream: TcpStream, told: Option<&str>, first: u8) -> String {
    let (read, mut write) = stream.into_split();
    if let Some(told) = told {
        let _ = write.write_all(told.as_bytes()).await;
    }
    let _ = write.shutdown().await;
    drain(read).await;
    format!("not a lantalk session (first byte {first:#04x})")
}

/// First bytes kept for later modes: HTTP requests (and TLS when this side
/// has no TLS configuration).
fn is_reserved(first: &[u8]) -> bool {
    first[0] == 0x16
        || [&b"GET "[..], b"POST ", b"HEAD "]
            .iter()
            .any(|m| first.starts_with(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::session::CloseReason;
    use tokio::io::AsyncReadExt;

    /// A connection that never sends a byte is closed after the idle timeout
    /// (virtual time: the test does not wait two minutes).
    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_idle_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let hello = Hello {
            proto: crate::protocol::PROTO_VERSION,
            id: "0".repeat(32),
            name: "test".into(),
            app: "test".into(),
        };
        let (events, _rx) = mpsc::channel(4);
        let limits = Arc::new(Limits::default());
        let slot = limits.admit(addr.ip()).unwrap();
        let started = tokio::time::Instant::now();
        let policy = Policy::plaintext();
        let why = accept_one(server, &hello, &policy, events, slot)
            .await
            .unwrap_err();
        assert!(why.contains("idle timeout"), "{why}");
        assert_eq!(started.elapsed(), FIRST_BYTE_TIMEOUT);
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0, "closed");
    }

    #[test]
    fn connections_are_capped_per_source_and_freed_when_dropped() {
        let limits = Arc::new(Limits::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let mut held: Vec<Slot> = (0..MAX_PER_SOURCE)
            .map(|_| limits.admit(a).unwrap())
            .collect();
        // The first refusal is reported, the next ones quietly.
        assert!(matches!(limits.admit(a), Err(Some(_))));
        assert!(matches!(limits.admit(a), Err(None)));
        // Another host still gets in; mapped IPv4 counts as IPv4.
        let other = limits.admit(b).unwrap();
        assert_eq!(other.source, "10.0.0.2".parse::<IpAddr>().unwrap());
        held.pop();
        let again = limits.admit(a).unwrap();
        drop((held, again, other));
        let counts = limits.lock();
        assert!(
            counts.by_source.is_empty() && counts.total == 0 && counts.silent.is_empty(),
            "every slot freed"
        );
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64_prefix() {
        let limits = Arc::new(Limits::default());
        let held: Vec<Slot> = (0..MAX_PER_SOURCE)
            .map(|i| {
                limits
                    .admit(format!("fd00::{i:x}").parse().unwrap())
                    .unwrap()
            })
            .collect();
        assert!(limits.admit("fd00::ffff".parse().unwrap()).is_err());
        assert!(limits.admit("fd00:0:0:1::1".parse().unwrap()).is_ok());
        drop(held);
    }

    fn fill(limits: &Arc<Limits>) -> Vec<Slot> {
        (0..MAX_CONNECTIONS)
            .map(|i| {
                let ip = Ipv4Addr::from(0x0a00_0000 + (i / MAX_PER_SOURCE) as u32);
                limits.admit(IpAddr::V4(ip)).unwrap()
            })
            .collect()
    }

    #[test]
    fn the_total_is_capped_across_sources() {
        let limits = Arc::new(Limits::default());
        let held = fill(&limits);
        for slot in &held {
            slot.spoke();
        }
        assert!(matches!(
            limits.admit("192.168.1.1".parse().unwrap()),
            Err(Some(_))
        ));
        assert!(matches!(
            limits.admit("192.168.1.2".parse().unwrap()),
            Err(None)
        ));
        drop(held);
        assert!(limits.admit("192.168.1.1".parse().unwrap()).is_ok());
    }

    /// Connections that never said anything cannot lock out a peer: at the
    /// total, the oldest silent one is told to close.
    #[tokio::test]
    async fn at_the_total_the_oldest_silent_connection_makes_room() {
        let limits = Arc::new(Limits::default());
        let held = fill(&limits);
        held[0].spoke();
        let newcomer = limits.admit("192.168.1.1".parse().unwrap()).unwrap();
        let now = std::time::Duration::from_millis(10);
        assert!(
            tokio::time::timeout(now, held[0].evicted()).await.is_err(),
            "one that spoke stays"
        );
        assert!(
            tokio::time::timeout(now, held[1].evicted()).await.is_ok(),
            "the oldest silent one is told to go"
        );
        assert!(tokio::time::timeout(now, held[2].evicted()).await.is_err());
        drop((held, newcomer));
        assert_eq!(limits.lock().total, 0);
    }

    /// A connection told to make room goes even if its first byte came in
    /// at the same moment: else the slots would overflow.
    #[test]
    fn a_connection_told_to_make_room_cannot_stay_by_speaking() {
        let limits = Arc::new(Limits::default());
        let held = fill(&limits);
        let newcomer = limits.admit("192.168.1.1".parse().unwrap()).unwrap();
        assert!(!held[0].spoke(), "told to make room: it must close");
        assert!(held[1].spoke());
        assert!(newcomer.spoke());
        drop((held, newcomer));
        assert_eq!(limits.lock().total, 0);
    }

    #[test]
    fn raw_sessions_are_capped_in_total_and_per_source() {
        let limits = Arc::new(Limits::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_RAW_PER_SOURCE {
            let mut slot = limits.admit(a).unwrap();
            slot.raw().unwrap();
            held.push(slot);
        }
        // The host is at its raw cap: reported once, its connections are
        // still admitted (a framed session is not raw).
        let mut more = limits.admit(a).unwrap();
        let full = more.raw().unwrap_err();
        assert!(
            full.first && full.why.ends_with("from 10.0.0.1"),
            "{full:?}"
        );
        let mut again = limits.admit(a).unwrap();
        assert!(!again.raw().unwrap_err().first, "reported once");
        drop((more, again));
        // Other hosts up to the total.
        for host in 1..MAX_RAW / MAX_RAW_PER_SOURCE {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 1, host as u8));
            for _ in 0..MAX_RAW_PER_SOURCE {
                let mut slot = limits.admit(ip).unwrap();
                slot.raw().unwrap();
                held.push(slot);
            }
        }
        assert_eq!(limits.lock().raw, MAX_RAW);
        let mut late = limits.admit("10.0.2.1".parse().unwrap()).unwrap();
        let full = late.raw().unwrap_err();
        assert!(full.first, "{full:?}");
        assert_eq!(full.why, format!("{MAX_RAW} raw text sessions open"));
        // One closes: the next raw session takes its place.
        held.pop();
        late.raw().unwrap();
        drop((held, late));
        let counts = limits.lock();
        assert!(
            counts.total == 0 && counts.raw == 0 && counts.by_source.is_empty(),
            "every slot freed"
        );
    }

    fn test_hello() -> Hello {
        Hello {
            proto: crate::protocol::PROTO_VERSION,
            id: "0".repeat(32),
            name: "test".into(),
            app: "test".into(),
        }
    }

    /// A connected pair on loopback: the client's end and the server's.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// Everything the server writes until it closes, then our side closes.
    async fn read_all(mut client: TcpStream) -> String {
        let mut text = Vec::new();
        client.read_to_end(&mut text).await.unwrap();
        String::from_utf8_lossy(&text).into_owned()
    }

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A raw text client over its host's raw cap reads one line saying
    /// why, then the end of the stream.
    #[tokio::test]
    async fn refused_raw_text_is_told_why_in_one_line() {
        let limits = Arc::new(Limits::default());
        let (events, _rx) = mpsc::channel(4);
        let (hello, policy) = (test_hello(), Policy::plaintext());
        let mut raw = Vec::new();
        for _ in 0..MAX_RAW_PER_SOURCE {
            let mut slot = limits.admit(LOCALHOST).unwrap();
            slot.raw().unwrap();
            raw.push(slot);
        }
        let (mut client, server) = pair().await;
        client.write_all(b"hello\n").await.unwrap();
        let slot = limits.admit(LOCALHOST).unwrap();
        let (why, told) = tokio::join!(
            accept_one(server, &hello, &policy, events, slot),
            read_all(client)
        );
        assert!(why.unwrap_err().contains("raw text session refused"));
        assert_eq!(
            told,
            "lantalk: refused: 4 raw text sessions open from 127.0.0.1; try again later\n"
        );
    }

    /// A raw session that receives nothing for ten minutes is told so and
    /// closed, and its slot freed; a peer typing a line every nine minutes
    /// keeps its session (virtual time).
    #[tokio::test(start_paused = true)]
    async fn a_raw_session_is_closed_after_ten_idle_minutes_but_not_while_typing() {
        let limits = Arc::new(Limits::default());
        let slot = limits.admit(LOCALHOST).unwrap();
        let (mut client, server) = pair().await;
        let (events, mut rx) = mpsc::channel(16);
        let session = tokio::spawn(async move {
            let policy = Policy::plaintext();
            accept_one(server, &test_hello(), &policy, events, slot).await
        });
        let mut last = tokio::time::Instant::now();
        for i in 0..4 {
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(9 * 60)).await;
            }
            client
                .write_all(format!("line {i}\n").as_bytes())
                .await
                .unwrap();
            last = tokio::time::Instant::now();
        }
        let mut handle = None;
        let mut texts = Vec::new();
        let reason = loop {
            match rx.recv().await.expect("events until the session closes") {
                // The owner holds the handle: dropping it would close the session.
                SessionEvent::Opened { handle: h, .. } => handle = Some(h),
                SessionEvent::Text { text, .. } => texts.push(text.body),
                SessionEvent::Closed { reason, .. } => break reason,
                other => panic!("{other:?}"),
            }
        };
        let idle = last.elapsed();
        assert_eq!(reason, CloseReason::Idle);
        assert_eq!(texts, ["line 0", "line 1", "line 2", "line 3"]);
        assert!(
            idle >= raw::IDLE_TIMEOUT && idle < raw::IDLE_TIMEOUT + Duration::from_secs(1),
            "closed {idle:?} after the last byte"
        );
        assert_eq!(
            read_all(client).await,
            "lantalk: closed: nothing received for 10 minutes\n"
        );
        session.await.unwrap().unwrap();
        drop(handle);
        let counts = limits.lock();
        assert!(counts.total == 0 && counts.raw == 0, "its slot is freed");
    }
}
