//! The node's state, per peer in one map ([`Peers`]) and per open session
//! ([`Live`]). Everything the node knows about a peer lives in its
//! [`PeerState`]; a peer with nothing going on (no session, nothing
//! waiting, not advertised) is forgotten, least recently used first, once
//! more than [`MAX_IDLE`] are kept: whatever a hostile network feeds in
//! (adverts with fresh ids, connections from many addresses) stays bounded.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::time::Instant;

use super::delivery::Outgoing;
use crate::net::discovery::Peer;
use crate::net::{Link, SessionHandle, SessionId};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::Fingerprint;

/// At most this many idle peers are remembered (their last addresses and
/// keys make a later retry or `/trust` quicker; nothing is lost without them).
pub(super) const MAX_IDLE: usize = 128;

/// What the node knows of one peer.
#[derive(Debug)]
pub(super) struct PeerState {
    /// Its latest name (its hello, or the history), if known.
    pub(super) name: Option<String>,
    /// How it reaches us.
    pub(super) kind: PeerKind,
    /// Its advertisement, while discovery sees it.
    pub(super) advert: Option<Peer>,
    /// Where it was last seen (advertised or dialled): retries go there.
    pub(super) addrs: Vec<SocketAddr>,
    /// Its key as far as we know it (advertised, or proven by a session);
    /// kept after it leaves: a retry must not fall back to plaintext.
    pub(super) fp: Option<Fingerprint>,
    /// Its open sessions, oldest first; the last one is used for sending.
    pub(super) sessions: Vec<SessionId>,
    /// Our texts it has not acknowledged, and the retry timer.
    pub(super) out: Outgoing,
    /// A dial to it is under way.
    pub(super) dialling: bool,
    /// When it was last used, for forgetting the least recently used.
    used: u64,
}

impl PeerState {
    fn new(kind: PeerKind) -> Self {
        Self {
            name: None,
            kind,
            advert: None,
            addrs: Vec::new(),
            fp: None,
            sessions: Vec::new(),
            out: Outgoing::default(),
            dialling: false,
            used: 0,
        }
    }

    /// Nothing going on: it may be forgotten.
    fn idle(&self) -> bool {
        self.sessions.is_empty() && self.out.is_empty() && !self.dialling && self.advert.is_none()
    }

    /// The session to send on, if one is open.
    pub(super) fn current(&self) -> Option<SessionId> {
        self.sessions.last().copied()
    }
}

/// Every peer the node knows, by id.
#[derive(Debug, Default)]
pub(super) struct Peers {
    map: HashMap<PeerId, PeerState>,
    clock: u64,
}

impl Peers {
    /// The peer's state, if known (not counted as a use).
    pub(super) fn get(&self, id: &PeerId) -> Option<&PeerState> {
        self.map.get(id)
    }

    /// The peer's state, if known.
    pub(super) fn get_mut(&mut self, id: &PeerId) -> Option<&mut PeerState> {
        self.clock += 1;
        let clock = self.clock;
        let state = self.map.get_mut(id)?;
        state.used = clock;
        Some(state)
    }

    /// The peer's state, made if it is new (as a peer of `kind`).
    pub(super) fn entry(&mut self, id: &PeerId, kind: PeerKind) -> &mut PeerState {
        self.clock += 1;
        let clock = self.clock;
        let state = self
            .map
            .entry(id.clone())
            .or_insert_with(|| PeerState::new(kind));
        state.used = clock;
        state
    }

    /// Takes the peer's state out (its id changed: see `Node::moved`).
    pub(super) fn remove(&mut self, id: &PeerId) -> Option<PeerState> {
        self.map.remove(id)
    }

    /// When the next retry is due, if any peer has one scheduled.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.map.values().filter_map(|p| p.out.retry_at()).min()
    }

    /// The peers whose retry is due at `now` (each retry is taken).
    pub(super) fn due(&mut self, now: Instant) -> Vec<PeerId> {
        self.map
            .iter_mut()
            .filter_map(|(id, p)| p.out.take_due(now).then(|| id.clone()))
            .collect()
    }

    /// Forgets the least recently used idle peers beyond [`MAX_IDLE`].
    pub(super) fn evict(&mut self) {
        let idle = self.map.values().filter(|p| p.idle()).count();
        if idle <= MAX_IDLE {
            return;
        }
        let mut by_age: Vec<(u64, PeerId)> = self
            .map
            .iter()
            .filter(|(_, p)| p.idle())
            .map(|(id, p)| (p.used, id.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, id) in by_age.into_iter().take(idle - MAX_IDLE) {
            self.map.remove(&id);
        }
    }

    /// How many peers are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

/// One session as the node tracks it.
pub(super) struct Live {
    /// Whose session it is.
    pub(super) peer: PeerInfo,
    /// For sending on it.
    pub(super) handle: SessionHandle,
    /// How it is protected.
    pub(super) link: Link,
    /// Texts handed to the consumer that it has not acknowledged yet
    /// ([`crate::net::AckPolicy::Consumer`]).
    pub(super) awaiting: usize,
    /// It has ended; kept only until the consumer's acks are sent.
    pub(super) closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Text;

    fn id(n: usize) -> PeerId {
        PeerId::new(format!("{n:032x}"))
    }

    #[test]
    fn idle_peers_are_forgotten_least_recently_used_first() {
        let mut peers = Peers::default();
        for n in 0..MAX_IDLE + 10 {
            peers.entry(&id(n), PeerKind::Lantalk);
        }
        // Something waits for peer 0, and peer 1 was used last: both stay.
        let text = Text {
            id: "t".into(),
            ts: 0,
            body: "hi".into(),
        };
        peers
            .entry(&id(0), PeerKind::Lantalk)
            .out
            .push([(text, None)]);
        peers.get_mut(&id(1));
        peers.evict();
        assert_eq!(peers.len(), MAX_IDLE + 1, "the idle ones cut to the cap");
        assert!(
            peers.get(&id(0)).is_some(),
            "waiting texts are never forgotten"
        );
        assert!(peers.get(&id(1)).is_some(), "recently used");
        assert!(peers.get(&id(2)).is_none(), "the oldest idle one went");
        assert!(peers.get(&id(MAX_IDLE + 9)).is_some());
    }
}
