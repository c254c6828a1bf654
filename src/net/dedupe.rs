//! Recognising texts that arrive twice. A sender retries the texts it has no
//! ack for when a connection drops, so the receiver may get one again: it
//! acknowledges the copy but shows it only once. Memory is bounded: a few
//! thousand recent ids per peer, for a bounded number of peers.

use std::collections::{HashMap, HashSet, VecDeque};

/// Ids remembered per peer. A retry resends at most what was in flight,
/// which the senders here keep below this.
pub const IDS_PER_PEER: usize = 8192;

/// Peers remembered; the least recently heard one is forgotten first.
pub const PEERS: usize = 256;

/// Recently received text ids, per peer id.
#[derive(Debug, Default)]
pub struct Seen {
    peers: HashMap<String, Recent>,
    /// Bumped on every insertion, to find the least recently heard peer.
    clock: u64,
}

#[derive(Debug, Default)]
struct Recent {
    order: VecDeque<String>,
    set: HashSet<String>,
    last_heard: u64,
}

impl Seen {
    /// Records `id` from `peer`; false if it was already seen (a duplicate).
    pub fn first_time(&mut self, peer: &str, id: &str) -> bool {
        self.clock += 1;
        if !self.peers.contains_key(peer) && self.peers.len() >= PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, r)| r.last_heard)
                .map(|(p, _)| p.clone());
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let recent = self.peers.entry(peer.to_owned()).or_default();
        recent.last_heard = self.clock;
        if recent.set.contains(id) {
            return false;
        }
        if recent.order.len() >= IDS_PER_PEER
            && let Some(old) = recent.order.pop_front()
        {
            recent.set.remove(&old);
        }
        recent.order.push_back(id.to_owned());
        recent.set.insert(id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_from_the_same_peer_is_a_duplicate() {
        let mut seen = Seen::default();
        assert!(seen.first_time("a", "1"));
        assert!(seen.first_time("a", "2"));
        assert!(!seen.first_time("a", "1"));
        // Ids are per sender: another peer may use the same one.
        assert!(seen.first_time("b", "1"));
    }

    #[test]
    fn memory_is_bounded_per_peer_and_in_peers() {
        let mut seen = Seen::default();
        for i in 0..IDS_PER_PEER + 10 {
            assert!(seen.first_time("a", &i.to_string()));
        }
        assert_eq!(seen.peers["a"].order.len(), IDS_PER_PEER);
        assert_eq!(seen.peers["a"].set.len(), IDS_PER_PEER);
        // The oldest ids were forgotten, the recent ones are still known.
        assert!(!seen.first_time("a", &(IDS_PER_PEER + 9).to_string()));
        for p in 0..PEERS + 5 {
            seen.first_time(&format!("p{p}"), "x");
        }
        assert_eq!(seen.peers.len(), PEERS);
        assert!(
            !seen.peers.contains_key("p0"),
            "least recently heard goes first"
        );
    }
}
