//! Dialling a peer: try each of its addresses in turn with a short timeout, so
//! one dead address (a stale IPv6, a second interface) does not stall the rest.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::policy::{Expect, Policy, Reach};
use super::session::{Handshaken, handshake};
use super::stream::Conn;
use crate::protocol::{Hello, ProtocolError, Refusal};

/// How long one address gets before the next is tried.
pub const PER_ADDRESS_TIMEOUT: Duration = Duration::from_millis(1500);

/// Every address failed; holds what happened to each.
#[derive(Debug, thiserror::Error)]
pub struct ConnectError {
    /// Each address tried, with why it failed.
    pub attempts: Vec<(SocketAddr, String)>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts.is_empty() {
            return write!(f, "no address to connect to");
        }
        let parts: Vec<String> = self
            .attempts
            .iter()
            .map(|(addr, why)| format!("{addr} ({why})"))
            .collect();
        write!(f, "could not connect to {}", parts.join(", "))
    }
}

/// Connects to the first address that answers, in the order given.
pub async fn connect_any(
    addrs: &[SocketAddr],
    per_address: Duration,
) -> Result<TcpStream, ConnectError> {
    let mut attempts = Vec::new();
    for &addr in addrs {
        match tokio::time::timeout(per_address, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => attempts.push((addr, plain(&e))),
            Err(_) => attempts.push((addr, format!("no answer in {} ms", per_address.as_millis()))),
        }
    }
    Err(ConnectError { attempts })
}

/// Why a dialled session did not open.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No address answered.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// TLS failed and plaintext was not an option.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The `hello`s failed, or the peer was refused (see `Policy::judge`).
    #[error("handshake failed: {0}")]
    Handshake(#[from] ProtocolError),
    /// Not dialled at all: the name did not resolve.
    #[error("{0}")]
    NotDialled(String),
    /// Not dialled at all: the policy forbids reaching the peer this way
    /// (plaintext when encryption is required).
    #[error("{0}")]
    Forbidden(Refusal),
}

impl DialError {
    /// Why the peer was refused for who it is, if it was (a key that is not
    /// the one pinned for its name or advertised: the user must be warned,
    /// loudly).
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Handshake(ProtocolError::Refused(refusal)) | Self::Forbidden(refusal) => {
                Some(refusal)
            }
            _ => None,
        }
    }
}

/// Connects to the first address that answers and opens a session: TLS
/// and/or plaintext as `reach` says, then the `hello`s, judged by `policy`.
///
/// [`Reach::TlsThenPlain`] tries plaintext only when the peer did what a
/// lantalk from before TLS does with a TLS hello: close the connection
/// without a word. Any other TLS failure (an alert, garbage, a reset) is
/// an error: nothing is sent in clear to whatever broke the handshake.
pub async fn dial(
    addrs: &[SocketAddr],
    hello: &Hello,
    policy: &Policy,
    expect: &Expect,
    reach: Reach,
) -> Result<Handshaken, DialError> {
    let stream = connect_any(addrs, PER_ADDRESS_TIMEOUT).await?;
    let conn = match (reach, &policy.tls) {
        (Reach::Plain, _) | (_, None) => Conn::plain(stream).map_err(ProtocolError::Io)?,
        (Reach::Tls | Reach::TlsThenPlain, Some(tls)) => match tls.connect(stream).await {
            Ok((tls, fp)) => Conn::tls(tls, Some(fp)).map_err(ProtocolError::Io)?,
            Err(e)
                if reach == Reach::TlsThenPlain
                    && e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                tracing::info!("the peer closed on our TLS hello ({e}): a lantalk without TLS?");
                let stream = connect_any(addrs, PER_ADDRESS_TIMEOUT).await?;
                Conn::plain(stream).map_err(ProtocolError::Io)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && reach == Reach::Tls => {
                return Err(DialError::Tls(format!(
                    "{}: it closed the connection on our TLS hello, and a key is expected there \
                     (advertised, or met at that address), so nothing is tried in clear",
                    plain(&e)
                )));
            }
            Err(e) => return Err(DialError::Tls(plain(&e))),
        },
    };
    Ok(handshake(conn, hello, policy, expect).await?)
}

/// The system's words for `e` without the `(os error N)` suffix, which
/// means nothing to the person reading it.
fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dead_address_is_skipped_for_the_next_one() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let addrs = [dead, live.local_addr().unwrap()];
        let stream = connect_any(&addrs, PER_ADDRESS_TIMEOUT).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
    }

    #[tokio::test]
    async fn every_failure_is_reported() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = connect_any(&[dead, dead], PER_ADDRESS_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(err.attempts.len(), 2);
        assert!(
            err.to_string()
                .starts_with(&format!("could not connect to {dead} (")),
            "{err}"
        );
        assert!(!err.to_string().contains("os error"), "{err}");
        let none = connect_any(&[], PER_ADDRESS_TIMEOUT).await.unwrap_err();
        assert_eq!(none.to_string(), "no address to connect to");
    }
}
