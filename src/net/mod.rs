//! Networking: the listener, one reader and one writer task per session,
//! dialling, mDNS discovery, and the node that runs them all ([`node`],
//! driven through [`api`]). Depends on [`crate::protocol`] for bytes;
//! knows nothing about how messages are shown.

pub mod api;
pub mod connect;
pub mod control;
pub mod dedupe;
pub mod discovery;
pub mod listener;
pub mod node;
mod outbox;
pub mod policy;
pub mod raw;
pub mod session;
pub mod stream;
pub mod tls;

use std::sync::atomic::{AtomicU64, Ordering};

pub use api::{AckPolicy, HistoryOff, NetCommand, NetEvent, Presence, Target};
pub use connect::{ConnectError, DialError, PER_ADDRESS_TIMEOUT, connect_any, dial};
pub use discovery::{Advert, Discovery, DiscoveryError, MatchRank, Peer, PeerEvent, SERVICE_TYPE};
pub use listener::{Bound, DEFAULT_PORT, Held, Http, HttpServer, bind, serve};
pub use node::{Listen, NodeConfig};
pub use policy::{Expect, Link, Policy, Reach};
pub use session::{CloseReason, Handshaken, SessionEvent, SessionHandle, SessionId, handshake};
pub use stream::{Conn, Transport};
pub use tls::Tls;

/// This host's addresses others can reach us on, best first (IPv4 before
/// IPv6; no loopback, no link-local IPv6), for showing the user where we are.
pub fn local_addrs() -> Vec<std::net::IpAddr> {
    let mut addrs: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && i.is_oper_up())
        .map(|i| i.ip())
        .filter(|ip| match ip {
            std::net::IpAddr::V6(v6) => !v6.is_unicast_link_local(),
            std::net::IpAddr::V4(_) => true,
        })
        .collect();
    addrs.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    addrs
}

/// The wall clock in Unix milliseconds, as `text.ts` carries it (0 if the
/// clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A new process-wide unique session id.
pub fn next_session_id() -> SessionId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
