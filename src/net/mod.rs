//! Networking: the listener, one reader and one writer task per session,
//! dialling, and mDNS discovery. Depends on [`crate::protocol`] for bytes;
//! knows nothing about how messages are shown.

pub mod connect;
pub mod discovery;
pub mod listener;
pub mod node;
pub mod session;

use std::sync::atomic::{AtomicU64, Ordering};

pub use connect::{ConnectError, PER_ADDRESS_TIMEOUT, connect_any};
pub use discovery::{Advert, Discovery, DiscoveryError, MatchRank, Peer, PeerEvent, SERVICE_TYPE};
pub use listener::{Bound, DEFAULT_PORT, bind, serve};
pub use session::{CloseReason, Handshaken, SessionEvent, SessionHandle, SessionId, handshake};

/// A new process-wide unique session id.
pub fn next_session_id() -> SessionId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
