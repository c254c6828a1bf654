//! The node's side of trust: `/trust` (accepting a new key, the
//! conversation carrying on under the id it proves), `/verify` (the code
//! both people compare), and carrying the history of a peer over when its
//! id changes (the first key of a peer from before ids were keys).

use super::Node;
use crate::net::{Link, NetEvent, TrustTarget};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::{Fingerprint, verification_code};

impl Node {
    /// The first session with a key under this name: conversations kept
    /// under the name with ids no key proves (an earlier lantalk's random
    /// ids) carry on under the id this key proves. Returns the (old, new)
    /// ids merged; the users are told with [`Node::tell_merged`].
    pub(super) async fn first_contact(&mut self, peer: &PeerInfo) -> Vec<(PeerId, PeerId)> {
        let mut merged = Vec::new();
        let (Some(store), Some(known)) = (self.store.clone(), self.policy.known.clone()) else {
            return merged;
        };
        let Ok(conversations) = store.conversations().await else {
            return merged;
        };
        for c in conversations {
            if c.kind != PeerKind::Lantalk || c.peer == peer.id || c.name != peer.name {
                continue;
            }
            if !matches!(known.by_id(c.peer.as_str()).await, Ok(None)) {
                // A key proves that id: another peer, not an old id.
                continue;
            }
            match store.merge_peer(c.peer.clone(), peer.id.clone()).await {
                Ok(_) => {
                    self.move_state(&c.peer, &peer.id);
                    merged.push((c.peer, peer.id.clone()));
                }
                Err(e) => tracing::warn!(
                    "cannot carry the history of {} over to {}: {}",
                    c.peer,
                    peer.id,
                    crate::error_chain(&e)
                ),
            }
        }
        merged
    }

    /// Tells the users that these conversations continue under new ids.
    pub(super) async fn tell_merged(&mut self, merged: Vec<(PeerId, PeerId)>) {
        for (from, into) in merged {
            let _ = self.events.send(NetEvent::Merged { from, into }).await;
        }
    }

    /// Continues the conversation with `from` as the one with `into`: in
    /// the history, in the texts waiting, and for the users.
    async fn merge(&mut self, from: PeerId, into: PeerId) {
        if let Some(store) = &self.store
            && let Err(e) = store.merge_peer(from.clone(), into.clone()).await
        {
            let why = crate::error_chain(&e);
            tracing::warn!("cannot carry the history of {from} over to {into}: {why}");
            return;
        }
        self.move_state(&from, &into);
        self.tell_merged(vec![(from, into)]).await;
    }

    /// The history of `from` is now `into`'s: so are its waiting texts.
    fn move_state(&mut self, from: &PeerId, into: &PeerId) {
        if let Some(old) = self.peers.remove(from) {
            let new = self.peers.entry(into, old.kind);
            new.out.absorb(old.out);
        }
    }

    /// `/trust`: accepts the key the peer offered, or the one it
    /// advertises, for its name: in place of the old one (its conversation
    /// carries over), or with `also` beside it (another device of that
    /// name, a conversation of its own).
    pub(super) async fn trust(&mut self, target: TrustTarget, also: bool) {
        let Some(known) = self.policy.known.clone() else {
            let peer = match target {
                TrustTarget::Peer(id) => id,
                TrustTarget::Name(name) => PeerId::new(name),
            };
            return self
                .notice(&peer, "no data directory: nothing is pinned".into())
                .await;
        };
        // The name its pin is under, and the key it advertises.
        let (name, advertised, asked) = match &target {
            TrustTarget::Peer(id) => {
                let state = self.peers.get(id);
                let advert = state.and_then(|p| p.advert.as_ref());
                let name = advert
                    .map(|a| a.nick.clone())
                    .or_else(|| state.and_then(|p| p.name.clone()))
                    .unwrap_or_else(|| id.to_string());
                (name, advert.and_then(|a| a.fp), id.clone())
            }
            TrustTarget::Name(name) => {
                let advert = self
                    .peers
                    .by_nick(name)
                    .and_then(|(_, p)| p.advert.as_ref());
                (
                    name.clone(),
                    advert.and_then(|a| a.fp),
                    PeerId::new(name.clone()),
                )
            }
        };
        let offered = known
            .by_name(&name)
            .await
            .ok()
            .flatten()
            .and_then(|k| k.offered);
        let fp = offered.or(advertised);
        let text = match known.trust(&name, fp, also).await {
            Ok((old, new)) => {
                let (old_id, new_id) = (
                    old.map(|o| PeerId::new(o.peer_id())),
                    PeerId::new(new.peer_id()),
                );
                if !also
                    && let Some(old_id) = old_id
                    && old_id != new_id
                {
                    self.merge(old_id, new_id.clone()).await;
                }
                let waits = self
                    .peers
                    .get(&new_id)
                    .is_some_and(|p| !p.out.is_empty() && p.sessions.is_empty());
                if waits {
                    self.dial_peer(&new_id);
                }
                format!(
                    "now trusting the key {} for {name:?}; compare codes with /verify",
                    new.grouped()
                )
            }
            Err(e) => crate::error_chain(&e),
        };
        let target = fp.map_or(asked, |fp| PeerId::new(fp.peer_id()));
        self.notice(&target, text).await;
    }

    /// `/verify`: the code for the session with `peer`, and with
    /// `confirmed`, the key marked verified.
    pub(super) async fn verify(&mut self, peer: PeerId, confirmed: bool) {
        let Some(ours) = self.policy.tls.as_ref().map(|t| t.fingerprint) else {
            return self
                .notice(&peer, "this lantalk does not use keys".into())
                .await;
        };
        let live = self
            .peers
            .get(&peer)
            .and_then(|p| p.current())
            .and_then(|sid| self.sessions.get(&sid));
        let theirs: Option<(Fingerprint, String)> =
            match live.map(|l| (l.link, l.peer.name.clone())) {
                Some((Link::Authenticated { fp, .. }, name)) => Some((fp, name)),
                Some((link, _)) => {
                    let why = format!(
                        "this session is {}: the peer has no key to verify. Your own key is {} \
                     (a script such as phone.py prints the key it sees: compare the two)",
                        link.describe(),
                        ours.grouped()
                    );
                    return self.notice(&peer, why).await;
                }
                None => match &self.policy.known {
                    Some(known) => known
                        .by_id(peer.as_str())
                        .await
                        .ok()
                        .flatten()
                        .map(|k| (k.fp, k.name)),
                    None => None,
                },
            };
        let Some((theirs, name)) = theirs else {
            let why = "no key known for this peer yet: talk to it first".to_owned();
            return self.notice(&peer, why).await;
        };
        let mut verified = false;
        if let Some(known) = self.policy.known.clone() {
            if confirmed {
                match known.set_verified(&name, theirs).await {
                    Ok(true) => verified = true,
                    Ok(false) => {
                        let why = format!("{name:?} is pinned to another key; see /trust");
                        return self.notice(&peer, why).await;
                    }
                    Err(e) => return self.notice(&peer, crate::error_chain(&e)).await,
                }
            } else {
                verified = matches!(known.by_name(&name).await, Ok(Some(k)) if k.fp == theirs && k.verified);
            }
        }
        if verified
            && let Some(sid) = self.peers.get(&peer).and_then(|p| p.current())
            && let Some(live) = self.sessions.get_mut(&sid)
            && let Link::Authenticated { verified: v, .. } = &mut live.link
        {
            *v = true;
        }
        let _ = self
            .events
            .send(NetEvent::Verification {
                peer,
                code: verification_code(&ours, &theirs),
                ours,
                theirs,
                verified,
            })
            .await;
    }

    async fn notice(&mut self, peer: &PeerId, text: String) {
        let _ = self
            .events
            .send(NetEvent::Notice {
                peer: peer.clone(),
                text,
            })
            .await;
    }
}
