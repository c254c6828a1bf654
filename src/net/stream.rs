//! A session's socket, in clear or inside TLS, split into a read half and a
//! write half so the reader and the writer never wait on each other.
//!
//! The write half can be written without waiting ([`WriteHalf::try_write`]),
//! which the outbox uses to send a lone reply from the caller's task. For
//! TLS that means encrypting into rustls's buffer and pushing what the socket
//! takes; whatever it does not take stays buffered, and
//! [`WriteHalf::ready`] waits until it is out.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsStream;

use crate::protocol::Fingerprint;

/// How a session's bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// In clear.
    Plain,
    /// TLS 1.3; the peer's certificate, if it presented one.
    Tls(Option<Fingerprint>),
}

/// A connected socket before the `hello`s: its halves, the peer's address
/// and how it is carried.
pub struct Conn {
    pub(super) read: ReadHalf,
    pub(super) write: WriteHalf,
    /// The peer's address (IPv4-mapped addresses shown as IPv4).
    pub addr: SocketAddr,
    /// Clear or TLS, with the peer's certificate.
    pub transport: Transport,
}

impl Conn {
    /// A connection in clear.
    pub fn plain(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let addr = canonical(stream.peer_addr()?);
        let (read, write) = stream.into_split();
        Ok(Self {
            read: ReadHalf::Plain(read),
            write: WriteHalf::Plain(write),
            addr,
            transport: Transport::Plain,
        })
    }

    /// A connection whose TLS handshake completed.
    pub fn tls(stream: TlsStream<Tcp>, peer: Option<Fingerprint>) -> io::Result<Self> {
        let tcp = &stream.get_ref().0.0;
        tcp.set_nodelay(true)?;
        let addr = canonical(tcp.peer_addr()?);
        let (read, write) = tokio::io::split(stream);
        Ok(Self {
            read: ReadHalf::Tls(read),
            write: WriteHalf::Tls(write),
            addr,
            transport: Transport::Tls(peer),
        })
    }
}

/// The address as people read it: IPv4-mapped IPv6 shown as IPv4.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

type TlsRead = tokio::io::ReadHalf<TlsStream<Tcp>>;
type TlsWrite = tokio::io::WriteHalf<TlsStream<Tcp>>;

/// The socket under TLS. rustls hands its records to the socket as a
/// vectored write; one record (a lone message) goes out with `send`, which
/// costs the kernel less than `writev`.
pub struct Tcp(pub(super) TcpStream);

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let tcp = &mut self.get_mut().0;
        match bufs {
            [one] => Pin::new(tcp).poll_write(cx, one),
            _ => Pin::new(tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The read half of a session's socket.
pub(super) enum ReadHalf {
    Plain(OwnedReadHalf),
    Tls(TlsRead),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(r) => Pin::new(r).poll_read(cx, buf),
            // A TLS peer that vanished (killed, its link cut) closes without
            // close_notify, which rustls reports as an error: it is the end
            // of the stream, as when a plain socket closes.
            Self::Tls(r) => match Pin::new(r).poll_read(cx, buf) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Poll::Ready(Ok(()))
                }
                other => other,
            },
        }
    }
}

/// The write half of a session's socket.
pub(super) enum WriteHalf {
    Plain(OwnedWriteHalf),
    Tls(TlsWrite),
}

impl WriteHalf {
    /// Writes what the socket takes now, without waiting: `WouldBlock` when
    /// it takes nothing.
    pub(super) fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.try_write(buf),
            Self::Tls(w) => {
                let mut cx = Context::from_waker(Waker::noop());
                match Pin::new(w).poll_write(&mut cx, buf) {
                    Poll::Ready(done) => done,
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Whether everything written so far has reached the socket. Always true
    /// in clear; for TLS, pushes out encrypted bytes still buffered.
    pub(super) fn try_flush(&mut self) -> io::Result<bool> {
        match self {
            Self::Plain(_) => Ok(true),
            Self::Tls(w) => {
                let mut cx = Context::from_waker(Waker::noop());
                match Pin::new(w).poll_flush(&mut cx) {
                    Poll::Ready(Ok(())) => Ok(true),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Ok(false),
                }
            }
        }
    }

    /// Waits until more can be written: the socket is writable, and for TLS
    /// the bytes still buffered are out.
    pub(super) async fn ready(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.writable().await,
            Self::Tls(w) => std::future::poll_fn(|cx| Pin::new(&mut *w).poll_flush(cx)).await,
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(w) => Pin::new(w).poll_write(cx, buf),
            Self::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(w) => Pin::new(w).poll_flush(cx),
            Self::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(w) => Pin::new(w).poll_shutdown(cx),
            Self::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}
