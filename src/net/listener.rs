//! Accepting connections: binding the port (with the fallback when 7342 is
//! busy), telling protocol traffic from other traffic by its first byte,
//! handing handshaken sessions to the owner, and capping how many are open.
//!
//! # Slots
//!
//! ```text
//! 512 connections = 480 shared + 32 reserved      MAX_CONNECTIONS = SHARED + RESERVED
//!  32 per source address (IPv6: per /64)          MAX_PER_SOURCE
//!  64 raw text sessions = 16 sources × 4,         MAX_RAW, MAX_RAW_PER_SOURCE
//!     in shared slots only
//! ```
//!
//! A new connection (under its source's cap) takes the first of: a free
//! shared slot; the shared slot of the oldest connection not heard from
//! yet, which is closed; a free reserved slot; the reserved slot of the
//! oldest connection on probation, which is closed. Otherwise it is closed.
//! In a reserved slot it is on probation: it must prove, within
//! [`PROBATION`], a key pinned before, or it is closed. Hence silent
//! connections never lock anyone out, raw text never takes more than 64 of
//! the 480 shared slots, and whatever fills those, a peer whose key was
//! pinned before gets a reserved slot unless 32 newer connections arrive
//! during its handshake.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc};

use super::next_session_id;
use super::policy::{Expect, Link, Policy};
use super::raw;
use super::session::{Handshaken, SessionEvent, drain, handshake};
use super::stream::Conn;
use crate::protocol::{
    ENCRYPTION_REQUIRED, Fingerprint, HANDSHAKE_TIMEOUT, Hello, ProtocolError, Refusal,
};

/// How long a connection may stay silent before its first byte. Generous:
/// someone typing into `nc` takes their time; a framed client sends its hello
/// at once (and then has the 5-s handshake timeout).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(120);

/// At most this many accepted connections are open at once, sessions and
/// connections that have not yet sent their first byte alike: the
/// [`SHARED`] slots any connection may take plus the [`RESERVED`] ones
/// (480 + 32 = 512). More are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 512;

/// At most this many of them from one source address (one /64 for IPv6, so
/// that a host cannot dodge the cap by picking new addresses), shared and
/// reserved slots together. 15 hosts at this cap fill the shared slots
/// (15 × 32 = 480) and 16 every slot: a flood from many hosts is what the
/// reserve and the raw caps are about.
pub const MAX_PER_SOURCE: usize = 32;

/// Slots kept for peers whose key is pinned (one host's worth, a
/// [`MAX_PER_SOURCE`]). A connection is taken into the reserve only when
/// the shared slots are full and none of them is still silent (a silent
/// one makes room instead). It is on probation: it must complete a TLS
/// handshake and prove a key pinned before this session within
/// [`PROBATION`] of being accepted, or it is closed; raw text and framed
/// sessions in clear cannot, and are closed at their first byte. While on
/// probation it may also be closed to make room for a newer connection,
/// oldest first, when the reserve is full: a flood that keeps reconnecting
/// must open more than 32 connections during a pinned peer's handshake
/// (milliseconds on a LAN) to push it out.
pub const RESERVED: usize = 32;

/// Slots any connection may take: `MAX_CONNECTIONS - RESERVED` = 480.
pub const SHARED: usize = MAX_CONNECTIONS - RESERVED;

/// How long a connection in the reserve has to prove a pinned key, from
/// being accepted to the end of the handshake: the handshake timeout.
pub const PROBATION: Duration = HANDSHAKE_TIMEOUT;

/// At most this many raw text sessions are open at once (16 hosts × 4),
/// all in shared slots: raw sessions can take at most 64 of the 480, so at
/// least 416 stay for framed sessions, besides the 32 reserved. A raw
/// connection beyond it is told why in one line and closed: the sessions
/// already open are people typing, and a newcomer is the one that can
/// read the refusal and try again, whereas pushing out the oldest would let
/// a flood disconnect them one after the other.
pub const MAX_RAW: usize = 64;

/// At most this many raw text sessions from one source address (one /64
/// for IPv6): a few terminals on one device.
pub const MAX_RAW_PER_SOURCE: usize = 4;

/// Keys that a connection on probation had pinned by its own handshake
/// (the latest this many, 32 bytes each) do not count as pinned before: the
/// handshake pins a new key before the reserve turns it away, so without
/// this a newcomer would get in on its second connection (`lantalk send`
/// retries on its own).
pub const PROBATION_PINS: usize = 1024;

const _: () = assert!(MAX_RAW <= SHARED && RESERVED < MAX_CONNECTIONS);

pub use crate::peer::DEFAULT_PORT;

/// What serves the connections that start with an HTTP request (the web
/// client, `crate::web`): the listener tells them by their first bytes and
/// hands them over, already counted against the connection caps (the slot
/// is held until the returned future ends).
pub trait HttpServer: std::fmt::Debug + Send + Sync + 'static {
    /// Serves one connection from `addr`; a WebSocket on it reports to
    /// `events` as a session does. `slot` is the connection's place under
    /// the listener's caps: it must be held until the connection and any
    /// WebSocket upgraded from it have ended, so that HTTP and WebSocket
    /// connections count against the same caps as sessions.
    fn serve(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        events: mpsc::Sender<SessionEvent>,
        slot: Held,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Forgets the browser `id` let in once without the token (`/forget`):
    /// it must bring the token or be accepted again. Whether it was
    /// remembered.
    fn forget(&self, id: &str) -> bool;
}

/// A connection's place under the listener's caps, freed when dropped.
pub type Held = Box<dyn std::any::Any + Send + Sync>;

/// The HTTP server a listener hands HTTP connections to, if any.
pub type Http = Arc<dyn HttpServer>;

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
    /// Open connections, shared and reserved slots together.
    total: usize,
    /// Of those, the ones in reserved slots (on probation or proven).
    reserved: usize,
    /// Raw text sessions (all in shared slots).
    raw: usize,
    /// Connections in shared slots still waiting for their first byte,
    /// oldest first: when the shared slots are full, the oldest of them
    /// makes room for a new connection.
    silent: VecDeque<(u64, Arc<Notify>)>,
    /// Connections in reserved slots that have not proven a pinned key yet,
    /// oldest first: when the reserve is full, the oldest makes room.
    probation: VecDeque<(u64, Arc<Notify>)>,
    /// Keys first pinned on probation, oldest first (see [`PROBATION_PINS`]).
    pinned_on_probation: VecDeque<Fingerprint>,
    next_id: u64,
    /// A refusal for the total was logged since the total was last below it.
    warned_total: bool,
    /// The reserve was reported in use since the shared slots were last free.
    warned_reserve: bool,
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
    /// In a reserved slot: on probation until [`Slot::proven`].
    reserved: bool,
    /// Counted as a raw text session ([`Slot::raw`]).
    raw: bool,
    /// Told when this connection, still silent or on probation, must make room.
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
    /// when the refusal was already logged). A shared slot while there is
    /// one (a silent connection making room if need be), else a reserved
    /// one on probation (the oldest on probation making room if need be).
    fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Option<String>> {
        let source = source_key(addr);
        let mut counts = self.lock();
        let counts = &mut *counts;
        if counts
            .by_source
            .get(&source)
            .is_some_and(|s| s.open >= MAX_PER_SOURCE)
        {
            let why = format!("{MAX_PER_SOURCE} connections open from {source}");
            return Err(refuse(counts, source, why));
        }
        let reserved = if counts.total - counts.reserved < SHARED {
            false
        } else if let Some((_, evict)) = counts.silent.pop_front() {
            // Its place is freed when it closes, a moment from now.
            evict.notify_one();
            false
        } else if counts.reserved < RESERVED {
            true
        } else if let Some((_, evict)) = counts.probation.pop_front() {
            evict.notify_one();
            true
        } else {
            let first = !counts.warned_total;
            counts.warned_total = true;
            return Err(first.then(|| format!("{MAX_CONNECTIONS} connections open")));
        };
        if reserved && !counts.warned_reserve {
            counts.warned_reserve = true;
            tracing::warn!(
                "{SHARED} connections open: new ones must prove a pinned key within {} s",
                PROBATION.as_secs()
            );
        }
        let entry = counts.by_source.entry(source).or_default();
        entry.open += 1;
        counts.total += 1;
        counts.next_id += 1;
        let evict = Arc::new(Notify::new());
        let queue = if reserved {
            counts.reserved += 1;
            &mut counts.probation
        } else {
            &mut counts.silent
        };
        queue.push_back((counts.next_id, Arc::clone(&evict)));
        Ok(Slot {
            limits: Arc::clone(self),
            source,
            id: counts.next_id,
            reserved,
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
    /// The connection has spoken: it can no longer be evicted as silent
    /// (one on probation still can, until it has proven its key). False
    /// when it was already told to make room (its first byte and a
    /// newcomer came at once): it must close all the same, or the shared
    /// slots would overflow.
    fn spoke(&self) -> bool {
        let mut counts = self.limits.lock();
        let before = counts.silent.len();
        counts.silent.retain(|(id, _)| *id != self.id);
        counts.silent.len() < before
    }

    /// Whether this connection is in a reserved slot, on probation.
    fn on_probation(&self) -> bool {
        self.reserved
    }

    /// The connection in a reserved slot proved a pinned key: it keeps
    /// its slot for as long as its session lasts.
    fn proven(&self) {
        self.limits
            .lock()
            .probation
            .retain(|(id, _)| *id != self.id);
    }

    /// Whether `link` shows a key pinned before, and not by a connection
    /// on probation: what lets a connection in the reserve in. A key this
    /// handshake pinned is remembered as pinned on probation.
    fn pinned_before(&self, link: &Link) -> bool {
        let Link::Authenticated { fp, first, .. } = *link else {
            return false;
        };
        let mut counts = self.limits.lock();
        let pins = &mut counts.pinned_on_probation;
        if first {
            if pins.len() == PROBATION_PINS {
                pins.pop_front();
            }
            pins.push_back(fp);
            return false;
        }
        !pins.contains(&fp)
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

    /// Resolves when this connection, silent or on probation, must close
    /// to make room.
    async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.total -= 1;
        counts.warned_total = false;
        if self.reserved {
            counts.reserved -= 1;
            counts.probation.retain(|(id, _)| *id != self.id);
        } else {
            counts.warned_reserve = false;
            counts.silent.retain(|(id, _)| *id != self.id);
        }
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
/// at once (see the module's documentation for the slots).
pub async fn serve(
    listener: TcpListener,
    hello: Hello,
    policy: Policy,
    events: mpsc::Sender<SessionEvent>,
    http: Option<Http>,
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
        let http = http.clone();
        tokio::spawn(async move {
            let http = http.as_ref();
            if let Err(why) = accept_one(stream, &hello, &policy, events, slot, http).await {
                tracing::info!("connection from {addr} closed: {why}");
            }
        });
    }
}

/// Decides what a new connection is by its first byte (0x16 TLS, 0x00 a
/// framed session in clear, anything else raw text), and runs the
/// handshakes. Our `hello` is sent only once the first byte has arrived, so
/// that non-protocol clients never see binary data. A connection in a
/// reserved slot goes [`on_probation`] instead.
async fn accept_one(
    stream: TcpStream,
    hello: &Hello,
    policy: &Policy,
    events: mpsc::Sender<SessionEvent>,
    mut slot: Slot,
    http: Option<&Http>,
) -> Result<(), String> {
    if slot.on_probation() {
        return on_probation(stream, hello, policy, events, slot).await;
    }
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
    if let Some(http) = http
        && is_http(seen)
    {
        let addr = super::stream::canonical(stream.peer_addr().map_err(|e| e.to_string())?);
        http.serve(stream, addr, events, Box::new(slot)).await;
        return Ok(());
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
    let session = open(conn, hello, policy, &events).await?;
    session.start_holding(next_session_id(), events, slot);
    Ok(())
}

/// What a raw text client in a reserved slot is told.
const BUSY: &str =
    "lantalk: busy: only peers with a known key are let in right now; try again later\n";

/// A connection in a reserved slot: its session starts only if it proves,
/// within [`PROBATION`], a key pinned before, and while no newer connection
/// needs its slot. Otherwise it is closed.
async fn on_probation(
    stream: TcpStream,
    hello: &Hello,
    policy: &Policy,
    events: mpsc::Sender<SessionEvent>,
    slot: Slot,
) -> Result<(), String> {
    let proving = tokio::time::timeout(PROBATION, prove(stream, hello, policy, &events, &slot));
    let session = tokio::select! {
        proved = proving => match proved {
            Ok(proved) => proved.map_err(|why| format!("on probation: {why}"))?,
            Err(_) => {
                return Err(format!(
                    "on probation: no pinned key proven within {} s",
                    PROBATION.as_secs()
                ));
            }
        },
        () = slot.evicted() => {
            return Err("on probation: closed to make room for a newer connection".into());
        }
    };
    slot.proven();
    session.start_holding(next_session_id(), events, slot);
    Ok(())
}

/// The TLS handshake and the `hello`s of a connection on probation, which
/// must show a key that was pinned before this session (see
/// [`Slot::pinned_before`]).
async fn prove(
    stream: TcpStream,
    hello: &Hello,
    policy: &Policy,
    events: &mpsc::Sender<SessionEvent>,
    slot: &Slot,
) -> Result<Handshaken, String> {
    let mut first = [0u8; 8];
    let seen = match stream.peek(&mut first).await {
        Err(e) => return Err(e.to_string()),
        Ok(0) => return Err("closed before sending anything".into()),
        Ok(n) => &first[..n],
    };
    let Some(tls) = policy.tls.as_ref().filter(|_| seen[0] == 0x16) else {
        // Raw text, or a session in clear: neither can prove a key.
        let raw = seen[0] != 0x00 && !is_reserved(seen);
        close_politely(stream, raw.then_some(BUSY), seen[0]).await;
        return Err(format!(
            "first byte {:#04x}: only TLS can prove a key",
            seen[0]
        ));
    };
    let (stream, fp) = tls
        .accept(stream)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let conn = Conn::tls(stream, fp).map_err(|e| e.to_string())?;
    let session = open(conn, hello, policy, events).await?;
    if slot.pinned_before(&session.link) {
        return Ok(session);
    }
    session.close().await;
    Err("its key was not pinned before this session".into())
}

/// The `hello`s on a connection, judged by `policy`; a refusal is also
/// reported to the owner.
async fn open(
    conn: Conn,
    hello: &Hello,
    policy: &Policy,
    events: &mpsc::Sender<SessionEvent>,
) -> Result<Handshaken, String> {
    let addr = conn.addr;
    match handshake(conn, hello, policy, &Expect::default()).await {
        Ok(session) => Ok(session),
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
    first[0] == 0x16 || is_http(first)
}

/// Whether the first bytes are an HTTP request's.
fn is_http(first: &[u8]) -> bool {
    [&b"GET "[..], b"POST ", b"HEAD "]
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
        let why = accept_one(server, &hello, &policy, events, slot, None)
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

    /// Fills the shared slots (15 hosts × 32), with connections still silent.
    fn fill(limits: &Arc<Limits>) -> Vec<Slot> {
        (0..SHARED)
            .map(|i| {
                let ip = Ipv4Addr::from(0x0a00_0000 + (i / MAX_PER_SOURCE) as u32);
                let slot = limits.admit(IpAddr::V4(ip)).unwrap();
                assert!(!slot.on_probation(), "connection {i}");
                slot
            })
            .collect()
    }

    /// Fills the reserve from one more host (once the shared slots are full
    /// and none is silent): connections on probation.
    fn fill_reserve(limits: &Arc<Limits>) -> Vec<Slot> {
        (0..RESERVED)
            .map(|i| {
                let slot = limits.admit("10.1.0.1".parse().unwrap()).unwrap();
                assert!(slot.on_probation(), "connection {i}");
                slot
            })
            .collect()
    }

    #[test]
    fn the_total_is_capped_across_sources() {
        let limits = Arc::new(Limits::default());
        let mut held = fill(&limits);
        for slot in &held {
            slot.spoke();
        }
        held.extend(fill_reserve(&limits));
        for slot in &held {
            slot.proven();
        }
        assert_eq!(limits.lock().total, MAX_CONNECTIONS);
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

    /// Connections that never said anything cannot lock out a peer: when
    /// the shared slots are full, the oldest silent one is told to close
    /// (and the newcomer takes a shared slot, not the reserve).
    #[tokio::test]
    async fn at_the_total_the_oldest_silent_connection_makes_room() {
        let limits = Arc::new(Limits::default());
        let held = fill(&limits);
        held[0].spoke();
        let newcomer = limits.admit("192.168.1.1".parse().unwrap()).unwrap();
        assert!(!newcomer.on_probation(), "a shared slot, not the reserve");
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

    /// Once the shared slots are full and none is silent, newcomers take
    /// reserved slots on probation; when the reserve is full, the oldest
    /// one on probation makes room, never one that proved its key; freed
    /// slots are taken again, each from its own pool.
    #[tokio::test]
    async fn a_full_house_admits_newcomers_on_probation_into_the_reserve() {
        let limits = Arc::new(Limits::default());
        let mut shared = fill(&limits);
        for slot in &shared {
            slot.spoke();
        }
        let mut reserve = fill_reserve(&limits);
        reserve[0].proven();
        let newcomer = limits.admit("192.168.1.1".parse().unwrap()).unwrap();
        assert!(newcomer.on_probation());
        let now = Duration::from_millis(10);
        assert!(
            tokio::time::timeout(now, reserve[0].evicted())
                .await
                .is_err(),
            "one that proved its key stays"
        );
        assert!(
            tokio::time::timeout(now, reserve[1].evicted())
                .await
                .is_ok(),
            "the oldest on probation is told to go"
        );
        assert!(
            tokio::time::timeout(now, reserve[2].evicted())
                .await
                .is_err()
        );
        // It closes; every reserved slot is then taken by a proven key.
        reserve.remove(1);
        reserve.push(newcomer);
        for slot in &reserve {
            slot.proven();
        }
        assert_eq!(limits.lock().reserved, RESERVED);
        assert!(matches!(
            limits.admit("192.168.1.2".parse().unwrap()),
            Err(Some(_))
        ));
        // A reserved slot freed goes to the next newcomer, on probation ...
        reserve.pop();
        let next = limits.admit("192.168.1.3".parse().unwrap()).unwrap();
        assert!(next.on_probation());
        // ... and a shared slot freed goes to the next one, not on probation.
        shared.pop();
        let other = limits.admit("192.168.1.4".parse().unwrap()).unwrap();
        assert!(!other.on_probation());
        drop((shared, reserve, next, other));
        let counts = limits.lock();
        assert!(
            counts.total == 0
                && counts.reserved == 0
                && counts.silent.is_empty()
                && counts.probation.is_empty()
                && counts.by_source.is_empty(),
            "every slot freed"
        );
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

    /// A slot on probation, after filling the shared slots with
    /// connections that spoke.
    fn on_probation_after(limits: &Arc<Limits>) -> (Vec<Slot>, Slot) {
        let shared = fill(limits);
        for slot in &shared {
            slot.spoke();
        }
        let slot = limits.admit(LOCALHOST).unwrap();
        assert!(slot.on_probation());
        (shared, slot)
    }

    /// A raw text client refused (over its host's raw cap, or in the
    /// reserve) reads one line saying why, then the end of the stream.
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
            accept_one(server, &hello, &policy, events.clone(), slot, None),
            read_all(client)
        );
        assert!(why.unwrap_err().contains("raw text session refused"));
        assert_eq!(
            told,
            "lantalk: refused: 4 raw text sessions open from 127.0.0.1; try again later\n"
        );
        drop(raw);

        let (_shared, slot) = on_probation_after(&limits);
        let (mut client, server) = pair().await;
        client.write_all(b"hello\n").await.unwrap();
        let (why, told) = tokio::join!(
            accept_one(server, &hello, &policy, events.clone(), slot, None),
            read_all(client)
        );
        assert!(why.unwrap_err().contains("only TLS can prove a key"));
        assert_eq!(told, BUSY);

        // A framed session in clear cannot prove a key either: closed
        // without a word.
        let slot = limits.admit(LOCALHOST).unwrap();
        let (mut client, server) = pair().await;
        client.write_all(&[0, 0, 0, 2, b'{', b'}']).await.unwrap();
        let (why, told) = tokio::join!(
            accept_one(server, &hello, &policy, events, slot, None),
            read_all(client)
        );
        assert!(why.unwrap_err().contains("first byte 0x00"));
        assert_eq!(told, "");
    }

    /// A connection on probation that says nothing is closed after the
    /// handshake timeout, not the two minutes a shared slot would give it.
    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_on_probation_is_closed_after_the_handshake_timeout() {
        let limits = Arc::new(Limits::default());
        let (_shared, slot) = on_probation_after(&limits);
        let (client, server) = pair().await;
        let (events, _rx) = mpsc::channel(4);
        let started = tokio::time::Instant::now();
        let policy = Policy::plaintext();
        let why = accept_one(server, &test_hello(), &policy, events, slot, None)
            .await
            .unwrap_err();
        assert!(why.contains("within 5 s"), "{why}");
        assert_eq!(started.elapsed(), PROBATION);
        assert_eq!(read_all(client).await, "", "closed");
        assert!(limits.lock().probation.is_empty(), "its slot is freed");
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
            accept_one(server, &test_hello(), &policy, events, slot, None).await
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

    /// A lantalk with its own keys and known peers.
    struct Party {
        _dir: tempfile::TempDir,
        hello: Hello,
        policy: Policy,
    }

    fn party(name: &str) -> Party {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = crate::identity::Keys::generate().unwrap();
        let hello = Hello {
            proto: crate::protocol::PROTO_VERSION,
            id: keys.fingerprint.peer_id(),
            name: name.into(),
            app: "test".into(),
        };
        let tls = crate::net::Tls::new(&keys).unwrap();
        let policy = Policy::new(tls, crate::trust::KnownPeers::new(dir.path()), false);
        Party {
            _dir: dir,
            hello,
            policy,
        }
    }

    /// `peer` connects over TLS to `laptop`, which takes it in `slot`:
    /// what the laptop's side returns, and the peer's end of the session
    /// if it `stays` (else it closes after the `hello`s, so that the laptop
    /// turning it away need not wait for it).
    async fn meet(
        laptop: &Party,
        peer: &Party,
        slot: Slot,
        events: mpsc::Sender<SessionEvent>,
        stays: bool,
    ) -> (Result<(), String>, Option<Handshaken>) {
        let (client, server) = pair().await;
        let dial = async {
            let tls = peer.policy.tls.as_ref().unwrap();
            let (stream, fp) = tls.connect(client).await.unwrap();
            let conn = Conn::tls(stream, Some(fp)).unwrap();
            let session = handshake(conn, &peer.hello, &peer.policy, &Expect::default()).await;
            session.ok().filter(|_| stays)
        };
        let served = accept_one(server, &laptop.hello, &laptop.policy, events, slot, None);
        tokio::join!(served, dial)
    }

    /// The link of the session that opened next.
    async fn opened(rx: &mut mpsc::Receiver<SessionEvent>) -> Link {
        match rx.recv().await.unwrap() {
            SessionEvent::Opened { link, .. } => link,
            other => panic!("{other:?}"),
        }
    }

    /// On probation, only a key pinned before gets in, and not one pinned
    /// by a connection on probation: a new key is pinned by its handshake
    /// but turned away, and again the next time.
    #[tokio::test]
    async fn on_probation_only_a_key_pinned_before_gets_in() {
        let (laptop, phone, stranger) = (party("laptop"), party("phone"), party("stranger"));
        let (events, mut rx) = mpsc::channel(4);
        let limits = Arc::new(Limits::default());
        // The phone met the laptop while there was room: its key is pinned.
        let slot = limits.admit(LOCALHOST).unwrap();
        let (served, open) = meet(&laptop, &phone, slot, events.clone(), true).await;
        served.unwrap();
        let link = opened(&mut rx).await;
        assert!(matches!(link, Link::Authenticated { first: true, .. }));
        drop(open);
        let closed = rx.recv().await.unwrap();
        assert!(matches!(closed, SessionEvent::Closed { .. }), "{closed:?}");

        let (_shared, _) = on_probation_after(&limits);
        for attempt in 0..2 {
            let slot = limits.admit(LOCALHOST).unwrap();
            assert!(slot.on_probation());
            let (served, _) = meet(&laptop, &stranger, slot, events.clone(), false).await;
            let why = served.unwrap_err();
            assert!(why.contains("not pinned before"), "{attempt}: {why}");
            assert!(rx.try_recv().is_err(), "no session opened");
        }
        let slot = limits.admit(LOCALHOST).unwrap();
        assert!(slot.on_probation());
        let (served, _open) = meet(&laptop, &phone, slot, events, true).await;
        served.unwrap();
        let link = opened(&mut rx).await;
        assert!(matches!(link, Link::Authenticated { first: false, .. }));
        let counts = limits.lock();
        assert_eq!(counts.reserved, 1, "the proven session keeps its slot");
        assert!(counts.probation.is_empty(), "no longer on probation");
    }
}
