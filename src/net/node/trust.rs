//! The network task's side of trust: the loud warning when a peer's key is
//! refused, `/trust` (accepting a new key, the conversation carrying on
//! under the id it proves), `/verify` (the code both people compare), and
//! carrying the history of a peer over when its id changes.

use super::{DialError, NetEvent, Node};
use crate::net::Link;
use crate::net::policy::carry_over_history;
use crate::protocol::{Fingerprint, Hello, ProtocolError, verification_code};

impl Node {
    /// A dialled peer was refused for its key: the user hears about it.
    pub(super) async fn refused_dial(&mut self, target: &str, error: &DialError) {
        let (name, why) = match error {
            DialError::Handshake(ProtocolError::Refused { name, why, .. }) => {
                (Some(name.clone()), why.clone())
            }
            other => (None, format!("{target}: {other}")),
        };
        let key_changed = why.starts_with(crate::net::policy::KEY_CHANGED);
        let _ = self
            .events
            .send(NetEvent::Refused {
                name,
                addr: None,
                why,
                key_changed,
            })
            .await;
    }

    /// The first session with a key under this name: conversations kept
    /// under the name with ids no key proves (an earlier lantalk's random
    /// ids) carry on under the id this key proves.
    pub(super) async fn first_contact(&mut self, peer: &Hello) {
        let (Some(store), Some(known)) = (self.store.clone(), self.policy.known.clone()) else {
            return;
        };
        for (from, into) in carry_over_history(&store, &known, &peer.name, &peer.id).await {
            self.moved(from, into).await;
        }
    }

    /// Continues the conversation with `from` as the one with `into`: in
    /// the history, in the texts waiting, and on screen.
    async fn merge(&mut self, from: String, into: String) {
        if let Some(store) = &self.store
            && let Err(e) = store.merge_peer(from.clone(), into.clone()).await
        {
            tracing::warn!("cannot carry the history of {from} over to {into}: {e}");
            return;
        }
        self.moved(from, into).await;
    }

    /// The history of `from` is now `into`'s: so are its waiting texts and
    /// its conversation on screen.
    async fn moved(&mut self, from: String, into: String) {
        if let Some(waiting) = self.outgoing.remove(&from) {
            let out = self.outgoing.entry(into.clone()).or_default();
            out.texts.extend(waiting.texts);
        }
        let _ = self.events.send(NetEvent::Merged { from, into }).await;
    }

    /// `/trust`: accepts the key the peer (id or name) offered, or the one
    /// it advertises, for its name: in place of the old one (its
    /// conversation carries over), or with `also` beside it (another
    /// device of that name, a conversation of its own).
    pub(super) async fn trust(&mut self, peer: String, also: bool) {
        let Some(known) = self.policy.known.clone() else {
            return self
                .notice(&peer, "no data directory: nothing is pinned".into())
                .await;
        };
        let discovered = self
            .discovered
            .get(&peer)
            .or_else(|| self.discovered.values().find(|p| p.nick == peer));
        let name = discovered
            .map(|p| p.nick.clone())
            .or_else(|| self.names.get(&peer).cloned())
            .unwrap_or_else(|| peer.clone());
        let offered = known.by_name(&name).ok().flatten().and_then(|k| k.offered);
        let fp = offered.or(discovered.and_then(|p| p.fp));
        let text = match known.trust(&name, fp, also) {
            Ok((old, new)) => {
                if !also
                    && let Some(old) = old
                    && old.peer_id() != new.peer_id()
                {
                    self.merge(old.peer_id(), new.peer_id()).await;
                }
                let id = new.peer_id();
                if self.outgoing.contains_key(&id) && !self.by_peer.contains_key(&id) {
                    self.dial_peer(&id);
                }
                format!(
                    "now trusting the key {} for {name:?}; compare codes with /verify",
                    new.grouped()
                )
            }
            Err(e) => e.to_string(),
        };
        let target = fp.map_or(peer, |fp| fp.peer_id());
        self.notice(&target, text).await;
    }

    /// `/verify`: the code for the session with `peer`, and with
    /// `confirmed`, the key marked verified.
    pub(super) async fn verify(&mut self, peer: String, confirmed: bool) {
        let Some(ours) = self.policy.tls.as_ref().map(|t| t.fingerprint) else {
            return self
                .notice(&peer, "this lantalk does not use keys".into())
                .await;
        };
        let live = self
            .by_peer
            .get(&peer)
            .and_then(|sid| self.sessions.get(sid));
        let theirs: Option<(Fingerprint, String)> = match live.map(|l| (l.link, l.name.clone())) {
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
            None => self
                .policy
                .known
                .as_ref()
                .and_then(|k| k.by_id(&peer).ok().flatten())
                .map(|k| (k.fp, k.name)),
        };
        let Some((theirs, name)) = theirs else {
            let why = "no key known for this peer yet: talk to it first".to_owned();
            return self.notice(&peer, why).await;
        };
        let mut verified = false;
        if let Some(known) = &self.policy.known {
            if confirmed {
                match known.set_verified(&name, theirs) {
                    Ok(true) => verified = true,
                    Ok(false) => {
                        let why = format!("{name:?} is pinned to another key; see /trust");
                        return self.notice(&peer, why).await;
                    }
                    Err(e) => return self.notice(&peer, e.to_string()).await,
                }
            } else {
                verified =
                    matches!(known.by_name(&name), Ok(Some(k)) if k.fp == theirs && k.verified);
            }
        }
        if verified
            && let Some(sid) = self.by_peer.get(&peer)
            && let Some(live) = self.sessions.get_mut(sid)
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

    async fn notice(&self, peer: &str, text: String) {
        let _ = self
            .events
            .send(NetEvent::Notice {
                peer: peer.to_owned(),
                text,
            })
            .await;
    }
}
