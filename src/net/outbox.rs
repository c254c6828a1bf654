//! The write side of a session. Frames are encoded straight into one buffer.
//! A lone message (a reply, an ack, a text typed by hand) is written by the
//! caller at once, without handing it to another task; a burst, or a socket
//! that is not ready, is left to the writer task, which writes the buffer in
//! large batches and waits for the socket when the peer reads slowly.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;

use super::stream::WriteHalf;
use tokio::sync::Notify;
use tokio_util::codec::Encoder;

use crate::protocol::{FrameCodec, Message, PEER_TIMEOUT};

/// How messages are encoded for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// Length-prefixed JSON frames (the lantalk protocol).
    Frames,
    /// A raw text peer: a text is its body and a newline; nothing else is sent.
    Lines,
}

/// Shared by the session's handles, its reader and its writer task.
pub(super) struct Outbox {
    inner: Mutex<Inner>,
    /// Wakes the writer task.
    wake: Notify,
    /// Set on every inbound frame: the next message into an empty outbox may
    /// be written by its caller (a reply should not wait for a task switch).
    rearm: AtomicBool,
    /// Bytes encoded and not yet written, as of the last change.
    backlog: AtomicUsize,
    /// Wakes a reader waiting for the backlog to shrink.
    room: Notify,
    /// The writer gave up: the peer read nothing for [`PEER_TIMEOUT`]
    /// while we had bytes for it.
    stalled: AtomicBool,
}

/// A session stops reading from a peer while this many bytes (mostly acks)
/// wait to be written to it: a peer that sends but never reads is pushed back
/// on instead of growing our memory.
pub(super) const BACKLOG_HIGH: usize = 1 << 20;

/// Reading resumes once the backlog is below this.
const BACKLOG_LOW: usize = BACKLOG_HIGH / 4;

struct Inner {
    /// Encoded frames not yet written.
    buf: BytesMut,
    codec: FrameCodec,
    /// The socket; `None` while the writer task waits for it, and at the end.
    sock: Option<WriteHalf>,
    /// No more messages are accepted.
    closed: bool,
    /// Shut the write side down once `buf` is written.
    shutdown: bool,
    /// What the peer reads.
    wire: Wire,
    /// A caller may write directly (see `rearm`). Cleared by such a write and
    /// set again when the writer has emptied the buffer, so a burst of
    /// messages costs one write per batch, not one per message.
    direct_ok: bool,
}

impl Outbox {
    /// An outbox writing `wire`'s encoding to `sock`.
    pub(super) fn new(sock: WriteHalf, wire: Wire) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                buf: BytesMut::with_capacity(8 * 1024),
                codec: FrameCodec::new(),
                sock: Some(sock),
                closed: false,
                shutdown: false,
                wire,
                direct_ok: true,
            }),
            wake: Notify::new(),
            rearm: AtomicBool::new(false),
            backlog: AtomicUsize::new(0),
            room: Notify::new(),
            stalled: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the buffer half-encoded
        // in a way that matters more than losing the session: carry on.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `msg` (if any); with `last`, the write side is shut down after
    /// it and nothing more is accepted. Returns false once closed.
    pub(super) fn push(&self, msg: Option<&Message>, last: bool) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.closed {
            return false;
        }
        let was_idle = inner.buf.is_empty();
        match msg {
            // A raw peer reads lines: a text is its body and a newline; acks,
            // pings and the like mean nothing to it.
            Some(Message::Text(text)) if inner.wire == Wire::Lines => {
                inner.buf.extend_from_slice(text.body.as_bytes());
                inner.buf.extend_from_slice(b"\n");
            }
            Some(_) if inner.wire == Wire::Lines => {}
            Some(msg) => {
                if let Err(e) = inner.codec.encode(msg, &mut inner.buf) {
                    // Only a message too large for a frame fails to encode; it is dropped.
                    tracing::warn!("dropping an outgoing message: {e}");
                }
            }
            None => {}
        }
        if last {
            inner.closed = true;
            inner.shutdown = true;
        }
        if self.rearm.swap(false, Ordering::Relaxed) {
            inner.direct_ok = true;
        }
        let mut flushed = true;
        if was_idle
            && inner.direct_ok
            && let Some(sock) = &mut inner.sock
        {
            inner.direct_ok = false;
            match write_now(sock, &mut inner.buf) {
                Ok(done) => flushed = done,
                Err(_) => {
                    inner.closed = true;
                    inner.buf.clear();
                }
            }
        }
        let need_writer = !inner.buf.is_empty() || !flushed || inner.shutdown;
        self.backlog.store(inner.buf.len(), Ordering::Relaxed);
        drop(guard);
        if need_writer {
            self.wake.notify_one();
        }
        true
    }

    /// Bytes waiting to be written.
    pub(super) fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Resolves once the backlog has shrunk below the low-water mark (or the
    /// outbox is closed).
    pub(super) async fn room(&self) {
        loop {
            let notified = self.room.notified();
            if self.backlog() < BACKLOG_LOW || self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Called by the reader on every inbound frame.
    pub(super) fn rearm(&self) {
        self.rearm.store(true, Ordering::Relaxed);
    }

    /// Whether the writer gave up on a peer that stopped reading. The
    /// session's reader then ends the session too, so that the socket (and
    /// what the kernel buffers for it) is released.
    pub(super) fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Whether the outbox has stopped accepting messages (bye, error or failure).
    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The writer task: writes what callers left in the buffer, waiting for
    /// the socket when it is full; shuts the write side down at the end.
    ///
    /// A peer that reads nothing for [`PEER_TIMEOUT`] while bytes wait for
    /// it is given up on: without that, a peer that sends but never reads
    /// would keep the socket, this buffer and the kernel's buffers alive
    /// forever, since even a closed session waits to flush its last bytes.
    pub(super) async fn run(self: Arc<Self>) {
        enum Next {
            Idle,
            Wait(WriteHalf),
            Shutdown(WriteHalf),
            Stop,
        }
        loop {
            self.wake.notified().await;
            loop {
                let next = {
                    let mut guard = self.lock();
                    let inner = &mut *guard;
                    match inner.sock.take() {
                        None => Next::Stop,
                        Some(mut sock) => {
                            let written = write_now(&mut sock, &mut inner.buf);
                            let failed = written.is_err();
                            let flushed = written.unwrap_or(true);
                            if failed {
                                inner.closed = true;
                                inner.buf.clear();
                            }
                            self.backlog.store(inner.buf.len(), Ordering::Relaxed);
                            if inner.buf.len() < BACKLOG_LOW {
                                self.room.notify_waiters();
                            }
                            if failed {
                                Next::Stop
                            } else if !inner.buf.is_empty() || !flushed {
                                Next::Wait(sock)
                            } else if inner.shutdown {
                                Next::Shutdown(sock)
                            } else {
                                inner.sock = Some(sock);
                                inner.direct_ok = true;
                                Next::Idle
                            }
                        }
                    }
                };
                match next {
                    Next::Idle => break,
                    Next::Stop => return,
                    Next::Shutdown(mut sock) => {
                        let _ = sock.shutdown().await;
                        return;
                    }
                    Next::Wait(mut sock) => {
                        let ready = tokio::time::timeout(PEER_TIMEOUT, sock.ready()).await;
                        let mut inner = self.lock();
                        match ready {
                            Ok(Ok(())) => inner.sock = Some(sock),
                            Ok(Err(_)) => {
                                inner.closed = true;
                                inner.buf.clear();
                                return;
                            }
                            Err(_) => {
                                inner.closed = true;
                                inner.buf.clear();
                                self.backlog.store(0, Ordering::Relaxed);
                                self.stalled.store(true, Ordering::Relaxed);
                                drop(inner);
                                // A reader waiting for room sees the outbox closed.
                                self.room.notify_waiters();
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Writes as much of `buf` as the socket takes without waiting. Returns
/// whether everything written has left (TLS may keep encrypted bytes
/// buffered when the socket is full).
fn write_now(sock: &mut WriteHalf, buf: &mut BytesMut) -> std::io::Result<bool> {
    while !buf.is_empty() {
        match sock.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf.advance(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    sock.try_flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keys;
    use crate::net::stream::Conn;
    use crate::net::tls::Tls;
    use crate::protocol::{Hello, Text};
    use futures_util::StreamExt;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::Instant;
    use tokio_util::codec::FramedRead;

    fn text_of(seq: usize, len: usize) -> Message {
        Message::Text(Text {
            id: seq.to_string(),
            ts: 0,
            body: "y".repeat(len),
        })
    }

    /// Over TLS, a direct write by a caller into a full socket leaves
    /// encrypted bytes in rustls with nothing left in the outbox's buffer:
    /// the writer task must still push them out once the peer reads, or the
    /// last messages never arrive. (The direct write polls with a waker
    /// that wakes nothing; the writer task waits with its own.)
    #[tokio::test]
    async fn over_tls_bytes_left_in_rustls_by_a_direct_write_arrive_once_the_peer_reads() {
        let (ours, theirs) = (Keys::generate().unwrap().0, Keys::generate().unwrap().0);
        let (ours, theirs) = (Tls::new(&ours).unwrap(), Tls::new(&theirs).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dialled = TcpStream::connect(listener.local_addr().unwrap());
        let (dialled, accepted) = tokio::join!(dialled, listener.accept());
        let (client, server) = tokio::join!(
            ours.connect(dialled.unwrap()),
            theirs.accept(accepted.unwrap().0)
        );
        let (client, fp) = client.unwrap();
        let conn = Conn::tls(client, Some(fp)).unwrap();
        let outbox = Outbox::new(conn.write, Wire::Frames);
        let writer = tokio::spawn(Arc::clone(&outbox).run());
        let hello = Message::Hello(Hello {
            proto: 1,
            id: fp.peer_id(),
            name: "a".into(),
            app: "test".into(),
        });
        assert!(outbox.push(Some(&hello), false));
        // Callers write directly (as after every inbound frame), without the
        // writer task running, until the socket is full: the last text is
        // then all in rustls's buffer, none of it in the outbox's.
        let mut sent = 0;
        loop {
            assert!(sent < 100_000, "loopback took {sent} kB unread");
            outbox.rearm();
            assert!(outbox.push(Some(&text_of(sent, 1000)), false));
            sent += 1;
            assert_eq!(outbox.backlog(), 0, "rustls took less than a text");
            let mut inner = outbox.lock();
            let sock = inner.sock.as_mut().expect("the writer task has not run");
            if !sock.try_flush().unwrap() {
                break;
            }
        }
        let mut frames = FramedRead::new(server.unwrap().0, crate::protocol::FrameCodec::new());
        let first = frames.next().await.unwrap().unwrap();
        assert!(matches!(first, Message::Hello(_)), "{first:?}");
        for seq in 0..sent {
            let got = tokio::time::timeout(Duration::from_secs(10), frames.next())
                .await
                .unwrap_or_else(|_| panic!("text {seq} of {sent} never came"))
                .unwrap()
                .unwrap();
            match got {
                Message::Text(text) => assert_eq!(text.id, seq.to_string()),
                other => panic!("expected text {seq}, got {other:?}"),
            }
        }
        outbox.push(None, true);
        writer.await.unwrap();
    }

    /// A peer that reads nothing while bytes wait for it is given up on after
    /// the peer timeout: the buffer is freed and the socket let go (virtual
    /// time: the test does not wait 12 s).
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_nothing_is_given_up_after_the_peer_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = server.into_split();
        let outbox = Outbox::new(WriteHalf::Plain(write), Wire::Frames);
        let writer = tokio::spawn(Arc::clone(&outbox).run());
        // More than loopback's socket buffers hold, none of it read.
        let text = text_of(0, 60_000);
        for _ in 0..500 {
            assert!(outbox.push(Some(&text), false));
        }
        assert!(outbox.backlog() > 0, "the socket took everything");
        assert!(!outbox.stalled());
        let start = Instant::now();
        tokio::time::timeout(3 * PEER_TIMEOUT, writer)
            .await
            .expect("the writer gave up on the peer")
            .unwrap();
        let waited = start.elapsed();
        assert!(outbox.stalled());
        assert!(outbox.is_closed());
        assert_eq!(outbox.backlog(), 0, "the buffer is freed");
        assert!(
            waited >= PEER_TIMEOUT && waited < 2 * PEER_TIMEOUT,
            "{waited:?}"
        );
        assert!(!outbox.push(Some(&text), false), "nothing more is accepted");
        drop(client);
    }
}
