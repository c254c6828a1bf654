//! One TCP connection speaking protocol v1, after the listener or the dialer
//! has produced a socket: the handshake, then a reader task and a writer task.
//!
//! The reader never waits on the socket's write side and the writer never
//! waits on the read side, so two peers pushing bursts at each other cannot
//! deadlock. Received messages go to the owner as [`SessionEvent`]s over a
//! bounded channel: when the owner is slow, reading stops and TCP pushes back.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::outbox::{BACKLOG_HIGH, Outbox, Wire};
use super::policy::{Expect, Link, Policy};
use super::stream::{Conn, ReadHalf, WriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::{
    FRAME_TIMEOUT, FrameCodec, HANDSHAKE_TIMEOUT, Hello, Message, PEER_TIMEOUT, PING_AFTER,
    ProtocolError, Refusal, Text,
};

/// Identifies a session among all those of one process.
pub type SessionId = u64;

/// After sending `bye` or `error`, how long to wait for the peer to close its side.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// After the peer's bye, how long acks for its last texts may still be sent
/// before we answer with our own bye and close.
const ACK_GRACE: Duration = Duration::from_millis(500);

/// At most this many bytes are read and thrown away while lingering after an error.
const LINGER_DRAIN_LIMIT: usize = 1 << 20;

/// What a session reports to its owner.
#[derive(Debug)]
pub enum SessionEvent {
    /// The handshake completed; always the first event of a session.
    Opened {
        /// Which session.
        sid: SessionId,
        /// Who the peer is: id, name and kind.
        peer: PeerInfo,
        /// The peer's address.
        addr: SocketAddr,
        /// For sending on this session.
        handle: SessionHandle,
        /// How the session is protected and the peer known.
        link: Link,
        /// We dialled the peer (rather than it us).
        dialled: bool,
    },
    /// The peer sent its hello again, with a new name.
    Renamed {
        /// Which session.
        sid: SessionId,
        /// Its new name.
        name: String,
    },
    /// A connection was refused for who the peer is or how it came (a key
    /// that is not the pinned one, plaintext when encryption is required).
    /// The peer was told why; the user should be too.
    Refused {
        /// The peer's address.
        addr: SocketAddr,
        /// Why.
        refusal: Refusal,
    },
    /// The peer sent a text. Acknowledge it with [`SessionHandle::ack`] once it
    /// has been shown, printed or stored.
    Text {
        /// Which session.
        sid: SessionId,
        /// The message.
        text: Text,
    },
    /// The peer acknowledged our text with this id.
    Acked {
        /// Which session.
        sid: SessionId,
        /// Id of our text.
        id: String,
    },
    /// A browser without the join token asks to join: the user answers
    /// on `answer` (true: let it in). Dropping `answer` declines.
    JoinRequest {
        /// The name the browser gave.
        name: String,
        /// Its address.
        addr: SocketAddr,
        /// Its user agent, as it said.
        agent: String,
        /// Where the answer goes.
        answer: tokio::sync::oneshot::Sender<bool>,
    },
    /// The session is over; its handle no longer sends anything.
    Closed {
        /// Which session.
        sid: SessionId,
        /// Why it ended.
        reason: CloseReason,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CloseReason {
    /// The peer said `bye`.
    Bye,
    /// We said `bye` (or dropped every handle) and the peer closed.
    Local,
    /// The connection closed without a `bye`.
    Eof,
    /// The peer sent an `error` message.
    PeerError {
        /// The peer's error code.
        code: String,
        /// The peer's explanation.
        message: String,
    },
    /// The peer broke the protocol; we sent it an `error` with this code.
    Protocol(String),
    /// Nothing arrived for [`PEER_TIMEOUT`] despite a ping: the peer's
    /// process or link is gone.
    Timeout,
    /// A raw text session received nothing for [`super::raw::IDLE_TIMEOUT`]
    /// (it cannot be pinged; the peer was told in a last line).
    Idle,
    /// The socket failed.
    Io(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bye => write!(f, "the peer said goodbye"),
            Self::Local => write!(f, "closed"),
            Self::Eof => write!(f, "the connection closed without a goodbye"),
            Self::PeerError { code, message } => write!(f, "the peer reported {code}: {message}"),
            Self::Protocol(why) => write!(f, "protocol error: {why}"),
            Self::Timeout => write!(
                f,
                "the peer stopped responding (nothing for {} s)",
                PEER_TIMEOUT.as_secs()
            ),
            Self::Idle => write!(
                f,
                "nothing received for {} minutes",
                super::raw::IDLE_TIMEOUT.as_secs() / 60
            ),
            Self::Io(why) => write!(f, "connection error: {why}"),
        }
    }
}

/// Sends on an open session. Cheap to clone; sending never blocks, and sends
/// after the session ended are silently dropped (the owner learns of the end
/// from [`SessionEvent::Closed`]). When the last clone is dropped, the
/// session says bye.
#[derive(Clone)]
pub struct SessionHandle {
    guard: Arc<LastHandle>,
}

/// Says bye when the last [`SessionHandle`] goes away.
enum LastHandle {
    /// A session on a socket of ours.
    Outbox(Arc<Outbox>),
    /// A session whose messages another module writes (the web client's
    /// WebSocket): it gets them on a channel, and `Bye` means close.
    Channel(mpsc::Sender<Message>),
}

impl LastHandle {
    fn push(&self, msg: Message, last: bool) -> bool {
        match self {
            Self::Outbox(outbox) => outbox.push(Some(&msg), last),
            // Full: the peer reads nothing; what it misses is resent (texts)
            // or asked again (its texts are acked when they come again).
            Self::Channel(tx) => tx.try_send(msg).is_ok(),
        }
    }
}

impl Drop for LastHandle {
    fn drop(&mut self) {
        self.push(Message::Bye, true);
    }
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// A handle writing through `outbox`.
    pub(super) fn new(outbox: Arc<Outbox>) -> Self {
        Self {
            guard: Arc::new(LastHandle::Outbox(outbox)),
        }
    }

    /// A handle whose messages go to `tx`, for a session that another
    /// module carries (the web client's WebSocket). A message that does not
    /// fit in the channel is not sent (`false`): the session is treated as
    /// gone for it.
    pub fn channel(tx: mpsc::Sender<Message>) -> Self {
        Self {
            guard: Arc::new(LastHandle::Channel(tx)),
        }
    }

    /// Queues a text. Returns false if the session has already ended.
    pub fn send_text(&self, text: Text) -> bool {
        self.guard.push(Message::Text(text), false)
    }

    /// Sends our hello again: our new name (`/name`), same id.
    pub fn hello(&self, hello: &Hello) -> bool {
        self.guard.push(Message::Hello(hello.clone()), false)
    }

    /// Acknowledges a received text.
    pub fn ack(&self, id: String) -> bool {
        self.guard.push(Message::Ack { id }, false)
    }

    /// Sends `bye` after everything already queued, then closes our side.
    pub fn bye(&self) {
        self.guard.push(Message::Bye, true);
    }
}

/// A connection whose handshake completed: the peer's hello and the framed halves.
pub struct Handshaken {
    /// The peer's `hello`.
    pub peer: Hello,
    /// The peer's address (IPv4-mapped addresses shown as IPv4).
    pub addr: SocketAddr,
    /// How the session is protected and the peer known.
    pub link: Link,
    /// We dialled the peer (rather than it us).
    pub dialled: bool,
    reader: FramedRead<Watched, FrameCodec>,
    writer: FramedWrite<WriteHalf, FrameCodec>,
}

/// The read half of a session's socket, noting when bytes arrive: the
/// session's one timer (ping, dead peer, stalled frame) is computed from
/// these instants when it fires, instead of being re-armed on every read.
pub(super) struct Watched {
    inner: ReadHalf,
    /// When the last byte arrived (or the session started).
    last_byte: Instant,
    /// When the first byte of the frame being assembled arrived.
    frame_start: Option<Instant>,
}

impl Watched {
    fn new(inner: ReadHalf) -> Self {
        Self {
            inner,
            last_byte: Instant::now(),
            frame_start: None,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = Instant::now();
            self.last_byte = now;
            self.frame_start.get_or_insert(now);
        }
        polled
    }
}

/// Sends our `hello` at once, then waits up to 5 s for the peer's, and
/// judges it by `policy` (see [`Policy::judge`]). On a protocol error or a
/// refusal the peer is sent an `error` message before the connection is
/// closed.
pub async fn handshake(
    conn: Conn,
    ours: &Hello,
    policy: &Policy,
    expect: &Expect,
) -> Result<Handshaken, ProtocolError> {
    let Conn {
        read,
        write,
        addr,
        transport,
    } = conn;
    let mut reader = FramedRead::new(Watched::new(read), FrameCodec::new());
    let mut writer = FramedWrite::new(write, FrameCodec::new());
    writer.send(&Message::Hello(ours.clone())).await?;
    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.next()).await {
        Err(_) => Err(ProtocolError::HandshakeTimeout),
        Ok(None) => Err(ProtocolError::Io(std::io::ErrorKind::UnexpectedEof.into())),
        Ok(Some(result)) => result,
    };
    match first {
        Ok(Message::Hello(peer)) => match policy.judge(transport, &peer, expect, addr).await {
            Ok(link) => Ok(Handshaken {
                peer,
                addr,
                link,
                dialled: expect.dialled,
                reader,
                writer,
            }),
            Err(refusal) => {
                let e = ProtocolError::Refused(refusal);
                abort(reader, writer, e.to_message()).await;
                Err(e)
            }
        },
        // The codec yields only a hello or an error for a first frame; treat
        // anything else as a bad hello rather than trusting that invariant.
        Ok(_) | Err(_) => {
            let e = match first {
                Err(e) => e,
                Ok(_) => ProtocolError::BadHello("first message must be hello".into()),
            };
            abort(reader, writer, e.to_message()).await;
            Err(e)
        }
    }
}

impl Handshaken {
    /// Closes the connection without starting the session (the listener
    /// turned the peer away): shuts our side down and lingers briefly, as
    /// after an `error`, but without one.
    pub(super) async fn close(self) {
        abort(self.reader, self.writer, None).await;
    }

    /// Starts the reader and writer tasks. Events go to `events`, tagged with `sid`.
    pub fn start(self, sid: SessionId, events: mpsc::Sender<SessionEvent>) -> SessionHandle {
        self.start_holding(sid, events, ())
    }

    /// [`Handshaken::start`], keeping `slot` alive as long as the session
    /// reads (the listener's count of open connections).
    pub(super) fn start_holding<T: Send + 'static>(
        self,
        sid: SessionId,
        events: mpsc::Sender<SessionEvent>,
        slot: T,
    ) -> SessionHandle {
        let outbox = Outbox::new(self.writer.into_inner(), Wire::Frames);
        let handle = SessionHandle::new(Arc::clone(&outbox));
        let id = self.peer.id.clone();
        let opened = SessionEvent::Opened {
            sid,
            peer: PeerInfo {
                id: PeerId::new(self.peer.id),
                name: self.peer.name,
                kind: PeerKind::Lantalk,
            },
            addr: self.addr,
            handle: handle.clone(),
            link: self.link,
            dialled: self.dialled,
        };
        tokio::spawn(Arc::clone(&outbox).run());
        tokio::spawn(async move {
            let _slot = slot;
            if events.send(opened).await.is_ok() {
                read_loop(self.reader, sid, id, outbox, events).await;
            }
        });
        handle
    }
}

async fn read_loop(
    mut reader: FramedRead<Watched, FrameCodec>,
    sid: SessionId,
    id: String,
    out: Arc<Outbox>,
    events: mpsc::Sender<SessionEvent>,
) {
    let mut liveness = Liveness::default();
    let timer = tokio::time::sleep(PING_AFTER);
    tokio::pin!(timer);
    let reason = loop {
        if out.stalled() {
            // The peer stopped reading what we send (see `Outbox::run`).
            break CloseReason::Timeout;
        }
        let full = out.backlog() > BACKLOG_HIGH;
        let next = tokio::select! {
            biased;
            () = out.room(), if full => continue,
            next = reader.next(), if !full => next,
            () = &mut timer => {
                match liveness.check(&mut reader, &out) {
                    Ok(deadline) => {
                        timer.as_mut().reset(deadline);
                        continue;
                    }
                    Err(None) => break CloseReason::Timeout,
                    Err(Some(e)) => Some(Err(e)),
                }
            }
        };
        let msg = match next {
            None => break CloseReason::Eof,
            Some(Err(ProtocolError::Io(e))) => break CloseReason::Io(e.to_string()),
            Some(Err(e)) => {
                out.push(e.to_message().as_ref(), true);
                drain(reader.into_inner().inner).await;
                let reason = CloseReason::Protocol(e.to_string());
                let _ = events.send(SessionEvent::Closed { sid, reason }).await;
                return;
            }
            Some(Ok(msg)) => {
                // A reply to what just arrived may be written at once.
                out.rearm();
                // Bytes left over are the start of the next frame.
                let partial = !reader.read_buffer().is_empty();
                reader.get_mut().frame_start = partial.then(Instant::now);
                msg
            }
        };
        let event = match msg {
            Message::Text(text) => SessionEvent::Text { sid, text },
            Message::Ack { id } => SessionEvent::Acked { sid, id },
            Message::Ping { nonce } => {
                out.push(Some(&Message::Pong { nonce }), false);
                continue;
            }
            Message::Bye => {
                // Our own bye went first: this is the answer to it.
                if out.is_closed() {
                    break CloseReason::Local;
                }
                // Our answering bye waits (below): the peer only closed its
                // write side and still reads the acks of its last texts.
                break CloseReason::Bye;
            }
            Message::Error { code, message } => break CloseReason::PeerError { code, message },
            // A hello again: the peer's new name. Its id is what the
            // session was judged on: it cannot change.
            Message::Hello(hello) if hello.id == id => SessionEvent::Renamed {
                sid,
                name: hello.name,
            },
            Message::Hello(_) => {
                let e = ProtocolError::BadHello(
                    "a hello during a session may change the name, not the id".into(),
                );
                out.push(e.to_message().as_ref(), true);
                drain(reader.into_inner().inner).await;
                let reason = CloseReason::Protocol(e.to_string());
                let _ = events.send(SessionEvent::Closed { sid, reason }).await;
                return;
            }
            // A pong, or a type from a later version: ignored.
            Message::Pong { .. } | Message::Unknown => continue,
        };
        match events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => break CloseReason::Local,
            Err(mpsc::error::TrySendError::Full(event)) => {
                if events.send(event).await.is_err() {
                    break CloseReason::Local;
                }
                // We stopped reading while the owner caught up: the peer's
                // silence meanwhile was ours, not its.
                reader.get_mut().last_byte = Instant::now();
            }
        }
    };
    let reason = match reason {
        // The peer closing after our own bye is the normal end of a session we closed.
        CloseReason::Eof if out.is_closed() => CloseReason::Local,
        other => other,
    };
    let bye_from_peer = reason == CloseReason::Bye;
    let _ = events.send(SessionEvent::Closed { sid, reason }).await;
    if bye_from_peer {
        // Give the owner time to acknowledge the texts that came with the
        // bye (it sees them before the Closed event), then answer and close.
        tokio::spawn(async move {
            tokio::time::sleep(ACK_GRACE).await;
            out.push(Some(&Message::Bye), true);
        });
    } else {
        out.push(None, true);
    }
}

/// The state behind a session's single timer.
#[derive(Default)]
struct Liveness {
    /// The `last_byte` instant for which a ping was already sent.
    pinged_for: Option<Instant>,
    nonce: u64,
}

impl Liveness {
    /// Runs when the timer fires: pings a quiet peer, gives up on a silent
    /// one (`Err(None)`) or on a stalled frame (`Err(Some(timeout))`), and
    /// otherwise returns when to look again.
    fn check(
        &mut self,
        reader: &mut FramedRead<Watched, FrameCodec>,
        out: &Outbox,
    ) -> Result<Instant, Option<ProtocolError>> {
        let now = Instant::now();
        let watched = reader.get_ref();
        let last = watched.last_byte;
        if let Some(start) = watched.frame_start
            && now >= start + FRAME_TIMEOUT
        {
            return Err(Some(ProtocolError::Timeout(format!(
                "a frame did not complete within {} s",
                FRAME_TIMEOUT.as_secs()
            ))));
        }
        if now >= last + PEER_TIMEOUT {
            return Err(None);
        }
        if now >= last + PING_AFTER && self.pinged_for != Some(last) {
            self.nonce = self.nonce.wrapping_add(1);
            out.push(Some(&Message::Ping { nonce: self.nonce }), false);
            self.pinged_for = Some(last);
        }
        let quiet_until = if self.pinged_for == Some(last) {
            last + PEER_TIMEOUT
        } else {
            last + PING_AFTER
        };
        Ok(match watched.frame_start {
            Some(start) => quiet_until.min(start + FRAME_TIMEOUT),
            None => quiet_until,
        })
    }
}

/// Sends `error` (if any), shuts down our side and lingers briefly so the
/// peer can read it before the socket is dropped.
async fn abort(
    reader: FramedRead<Watched, FrameCodec>,
    mut writer: FramedWrite<WriteHalf, FrameCodec>,
    msg: Option<Message>,
) {
    if let Some(msg) = msg {
        let _ = tokio::time::timeout(CLOSE_LINGER, writer.send(&msg)).await;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, writer.close()).await;
    drain(reader.into_inner().inner).await;
}

/// Closing a socket with unread input makes the kernel send RST, which can
/// destroy an error message still in flight to the peer: read and discard
/// what the peer still sends, bounded in bytes and time, before dropping.
pub(super) async fn drain(mut read: impl AsyncRead + Unpin) {
    let mut sink = [0u8; 8192];
    let mut drained = 0usize;
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while drained < LINGER_DRAIN_LIMIT {
            match read.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
