//! The node's side of trust. A peer is its key: a key met for the first
//! time is a new peer, whatever its name. When it goes by the name of a
//! peer we know by another key, that peer's conversation is told once, with
//! the new key, and how to move the conversation to it if it is the same
//! peer (`/trust`); nothing moves by itself. `/verify` shows the code both
//! people compare.

use super::Node;
use crate::net::{Link, NetEvent};
use crate::peer::{self, PeerId, PeerInfo, PeerKind};

use crate::protocol::{Fingerprint, verification_code};
use crate::trust::Known;

use crate::peer::KEY_START;

impl Node {
    /// The first session with the key `fp`: peers of the same name known by
    /// another key (or from before keys) hear of it in their conversation,
    /// once.
    pub(super) async fn first_contact(&mut self, peer: &PeerInfo, fp: Fingerprint) {
        let Some(known) = self.policy.known.clone() else {
            return;
        };
        let mut others: Vec<PeerId> = match known.named(&peer.name).await {
            Ok(keys) => keys
                .into_iter()
                .filter(|k| k.fp != fp && k.replaced_by.is_none())
                .map(|k| PeerId::new(k.id()))
                .collect(),
            Err(_) => Vec::new(),
        };
        // Conversations from before keys, under that name.
        if let Some(store) = self.store.clone()
            && let Ok(conversations) = store.conversations().await
        {
            for c in conversations {
                let keyless = matches!(known.by_id(c.peer.as_str()).await, Ok(None));
                if c.kind == PeerKind::Lantalk
                    && c.peer != peer.id
                    && keyless
                    && c.name.eq_ignore_ascii_case(&peer.name)
                    && !others.contains(&c.peer)
                {
                    others.push(c.peer);
                }
            }
        }
        for known in others {
            let event = NetEvent::Namesake {
                known,
                peer: peer.clone(),
                fp,
            };
            let _ = self.events.send(event).await;
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
        if let Some(old) = self.peers.remove(&from) {
            let new = self.peers.entry(&into, old.kind);
            new.out.absorb(old.out);
        }
        let _ = self.events.send(NetEvent::Merged { from, into }).await;
    }

    /// `/trust KEY` in the conversation with `peer`: the user read the new
    /// key and says it is this peer's. `key` is the start of the key (at
    /// least [`KEY_START`] hex digits, as the notice shows) or all of it;
    /// it must name exactly one key met.
    pub(super) async fn trust(&mut self, peer: PeerId, key: String) {
        let Some(known) = self.policy.known.clone() else {
            return self
                .notice(&peer, "no data directory: no key is remembered".into())
                .await;
        };
        let fp = match key_named(&known, &key).await {
            Ok(fp) => fp,
            Err(why) => return self.notice(&peer, why).await,
        };
        let text = match known.trust(peer.as_str(), fp.fp).await {
            Ok((_, new)) => {
                let into = PeerId::new(new.id());
                self.merge(peer.clone(), into.clone()).await;
                let waits = self
                    .peers
                    .get(&into)
                    .is_some_and(|p| !p.out.is_empty() && p.sessions.is_empty());
                if waits {
                    self.dial_peer(&into);
                }
                format!(
                    "this conversation continues with the key {} ({}); compare codes with /verify",
                    new.fp.grouped(),
                    peer::labelled(&new.name, &into)
                )
            }
            Err(e) => crate::error_chain(&e),
        };
        self.notice(&peer, text).await;
    }

    /// `/forget` in a browser's conversation: no longer remembered, and its
    /// page closed (it comes back by itself, and then needs the token or
    /// the user's yes again).
    pub(super) async fn forget(&mut self, peer: PeerId) {
        let state = self.peers.get(&peer);
        if state.is_some_and(|p| p.kind != PeerKind::Web) {
            let text = "/forget is for a browser's conversation: keys are moved with /trust".into();
            return self.notice(&peer, text).await;
        }
        let Some(http) = &self.http else {
            let text = "the web client is off (--no-web): no browser is remembered".into();
            return self.notice(&peer, text).await;
        };
        let was = http.forget(peer.as_str());
        for sid in state.map(|p| p.sessions.clone()).unwrap_or_default() {
            if let Some(live) = self.sessions.get(&sid) {
                live.handle.bye();
            }
        }
        let text = if was {
            "this browser is forgotten: it must bring the join token or be accepted again \
             (/qr new changes the token)"
        } else {
            "this browser was not remembered: it joined with the join token, \
             which /qr new changes"
        };
        self.notice(&peer, text.into()).await;
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
        let theirs: Option<Fingerprint> = match live.map(|l| l.link) {
            Some(Link::Authenticated { fp, .. }) => Some(fp),
            Some(link) => {
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
                    .map(|k| k.fp),
                None => None,
            },
        };
        let Some(theirs) = theirs else {
            let why = "no key known for this peer yet: talk to it first".to_owned();
            return self.notice(&peer, why).await;
        };
        let mut verified = false;
        if let Some(known) = self.policy.known.clone() {
            if confirmed {
                match known.set_verified(theirs).await {
                    Ok(true) => verified = true,
                    Ok(false) => {
                        let why = "that key is not remembered (a read-only data directory?)";
                        return self.notice(&peer, why.into()).await;
                    }
                    Err(e) => return self.notice(&peer, crate::error_chain(&e)).await,
                }
            } else {
                verified = matches!(known.by_fp(theirs).await, Ok(Some(k)) if k.verified);
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

    pub(super) async fn notice(&mut self, peer: &PeerId, text: String) {
        let _ = self
            .events
            .send(NetEvent::Notice {
                peer: peer.clone(),
                text,
            })
            .await;
    }
}

/// The one key met whose fingerprint starts with `typed` (hex, spaces
/// allowed), or why there is none.
async fn key_named(known: &crate::trust::KnownPeers, typed: &str) -> Result<Known, String> {
    let start: String = typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if start.len() < KEY_START || !start.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "/trust takes the new key, as the notice shows it: at least its first \
             {KEY_START} hex digits (e.g. /trust 3f2a91c0)"
        ));
    }
    let all = known.list().await.map_err(|e| crate::error_chain(&e))?;
    let found: Vec<Known> = all
        .into_iter()
        .filter(|k| k.fp.to_string().starts_with(&start))
        .collect();
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(format!("no key met starts with {start}: nothing to trust")),
        n => Err(format!(
            "{n} keys met start with {start}: type more of the key"
        )),
    }
}
