//! Sessions as the node sees them: opening (what waits goes out), acks
//! (delivered), closing (what is unacknowledged waits for the next one),
//! and our texts going out (stored first, then sent, or kept until the
//! peer can be reached).

use tokio::time::Instant;

use super::Node;
use super::peers::Live;
use crate::net::{CloseReason, Link, NetEvent, SessionEvent, SessionId};
use crate::peer::{PeerId, PeerKind};
use crate::protocol::Text;
use crate::store::State;

impl Node {
    /// Handles a batch of session events in order; runs of texts are
    /// committed together, and the acks of the batch are stored together.
    /// A session opening or ending waits for the texts before it to be
    /// done with, so that its users hear of them in order.
    pub(super) async fn session_events(&mut self, batch: Vec<SessionEvent>) {
        let mut texts: Vec<(SessionId, Text)> = Vec::new();
        for event in batch {
            match event {
                SessionEvent::Text { sid, text } => texts.push((sid, text)),
                SessionEvent::Acked { sid, id } => self.acked(sid, id),
                other => {
                    if !texts.is_empty() {
                        self.texts_arrived(std::mem::take(&mut texts)).await;
                    }
                    self.settle().await;
                    self.session_event(other).await;
                }
            }
        }
        if !texts.is_empty() {
            self.texts_arrived(texts).await;
        }
        for (peer, acks) in std::mem::take(&mut self.acked) {
            // Told at once: the peer has the texts (it stored them before it
            // acknowledged). Our own note of it follows in the history; if
            // it were lost, the texts would only be sent again, and the
            // peer drops copies.
            let state = State::Delivered;
            self.mark(&peer, acks.seqs, acks.others, state, None).await;
            let ids = acks.ids;
            let _ = self.events.send(NetEvent::Acked { peer, ids }).await;
        }
    }

    /// The peer acknowledged our text `id`: it is delivered (stored at the
    /// end of the batch, one job per peer).
    fn acked(&mut self, sid: SessionId, id: String) {
        let Some(live) = self.sessions.get(&sid) else {
            return;
        };
        let peer = live.peer.id.clone();
        let waited = self.peers.get_mut(&peer).and_then(|p| p.out.acked(&id));
        let acks = self.acked.entry(peer).or_default();
        match waited {
            Some(Some(seq)) => acks.seqs.push(seq),
            Some(None) => {}
            None => acks.others.push(id.clone()),
        }
        acks.ids.push(id);
    }

    async fn session_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::JoinRequest {
                name,
                addr,
                agent,
                answer,
            } => {
                // Requests whose browser gave up are forgotten.
                self.joins.retain(|_, a| !a.is_closed());
                let req = self.next_join;
                self.next_join += 1;
                self.joins.insert(req, answer);
                let event = NetEvent::JoinRequest {
                    req,
                    name,
                    addr,
                    agent,
                };
                let _ = self.events.send(event).await;
            }
            SessionEvent::Refused { addr, refusal } => {
                let event = NetEvent::Refused {
                    addr: Some(addr),
                    refusal,
                };
                let _ = self.events.send(event).await;
            }
            SessionEvent::Opened {
                sid,
                peer,
                addr,
                handle,
                link,
                dialled,
            } => {
                if let Link::Authenticated {
                    first: true, fp, ..
                } = link
                {
                    self.first_contact(&peer, fp).await;
                }
                let state = self.peers.entry(&peer.id, peer.kind);
                state.name = Some(peer.name.clone());
                state.kind = peer.kind;
                if let Link::Authenticated { fp, .. } = link {
                    state.fp = Some(fp);
                }
                let mut resent = Vec::new();
                let mut unproven = None;
                // An id is anyone's to claim without a key: what waits for
                // it goes only to a session that proves it, or that we
                // opened (to where it is advertised or was dialled: a peer
                // from before keys). A session that only claims the id
                // carries nothing while texts wait, so that they keep
                // their order behind those.
                // A browser's id is a secret only it holds (random, kept in
                // its storage), and it came with the token or was let in.
                let carries = !peer.kind.capabilities().acks
                    || link.proves_id()
                    || peer.kind == PeerKind::Web
                    || dialled
                    || state.out.is_empty();
                if !carries {
                    unproven = Some(format!(
                        "{} connected {} without a key, so nothing proves it is the peer these \
                         texts were written to: they wait for a session that does (and what \
                         you write now waits behind them)",
                        peer.name,
                        link.describe()
                    ));
                } else {
                    state.sessions.push(sid);
                }
                if carries && peer.kind.capabilities().acks {
                    // Everything not yet acknowledged, in order; the peer
                    // drops what it already has.
                    state.out.opened();
                    for text in state.out.texts() {
                        handle.send_text(text.clone());
                    }
                    resent = state.out.seqs();
                }
                self.mark(&peer.id, resent, Vec::new(), State::Sent, None)
                    .await;
                let id = peer.id.clone();
                let opened = NetEvent::SessionOpened {
                    peer: peer.clone(),
                    session: sid,
                    addr,
                    link,
                };
                self.sessions.insert(
                    sid,
                    Live {
                        peer,
                        handle,
                        link,
                        awaiting: 0,
                        closed: false,
                    },
                );
                let _ = self.events.send(opened).await;
                if let Some(text) = unproven {
                    self.notice(&id, text).await;
                }
            }
            // Handled in batches by `session_events`.
            SessionEvent::Text { sid, text } => self.texts_arrived(vec![(sid, text)]).await,
            SessionEvent::Acked { sid, id } => self.acked(sid, id),
            SessionEvent::Closed { sid, reason } => self.closed(sid, reason).await,
            SessionEvent::Renamed { sid, name } => self.renamed(sid, name).await,
        }
    }

    /// The peer of session `sid` goes by `name` now (`/name` there): in its
    /// sessions, the history's next entries, its pin's label, the users.
    async fn renamed(&mut self, sid: SessionId, name: String) {
        let Some(live) = self.sessions.get_mut(&sid) else {
            return;
        };
        if live.peer.name == name {
            return;
        }
        live.peer.name = name.clone();
        let (peer, link) = (live.peer.id.clone(), live.link);
        for other in self.sessions.values_mut() {
            if other.peer.id == peer {
                other.peer.name = name.clone();
            }
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.name = Some(name.clone());
        }
        if let (Link::Authenticated { fp, .. }, Some(known)) = (link, &self.policy.known) {
            // A key met already: only its label changes.
            let _ = known.pin(&name, fp, crate::trust::Met::Inbound).await;
        }
        let _ = self.events.send(NetEvent::PeerRenamed { peer, name }).await;
    }

    /// A session ended: its unacknowledged texts go out on another open
    /// session of the peer, or wait for a retry.
    async fn closed(&mut self, sid: SessionId, reason: CloseReason) {
        let Some(live) = self.sessions.get_mut(&sid) else {
            return;
        };
        let peer = live.peer.id.clone();
        if live.awaiting > 0 {
            // The consumer's acks for its last texts may still go out.
            live.closed = true;
        } else {
            self.sessions.remove(&sid);
        }
        // Gone without a goodbye (killed, link cut): let discovery confirm
        // it, so that the peer list does not wait for the TTL.
        if !matches!(reason, CloseReason::Bye | CloseReason::Local) {
            self.verify_advert(&peer);
        }
        let mut waiting = None;
        let mut connected = false;
        if let Some(state) = self.peers.get_mut(&peer) {
            state.sessions.retain(|s| *s != sid);
            connected = !state.sessions.is_empty();
            match state.current().and_then(|s| self.sessions.get(&s)) {
                Some(other) => {
                    for text in state.out.texts() {
                        other.handle.send_text(text.clone());
                    }
                }
                None => {
                    let now = Instant::now();
                    waiting = state.out.closed(now).map(|ids| {
                        let retry_in = state.out.retry_at().map(|at| at - now);
                        (ids, retry_in)
                    });
                }
            }
        }
        if let Some((ids, retry_in)) = waiting {
            let reason = format!("waiting: {reason}");
            let event = NetEvent::Waiting {
                to: peer.clone(),
                ids,
                reason,
                retry_in,
            };
            let _ = self.events.send(event).await;
        }
        let event = NetEvent::SessionClosed {
            peer,
            session: sid,
            reason,
            connected,
        };
        let _ = self.events.send(event).await;
        self.peers.evict();
    }

    /// The consumer is done with these texts: acknowledge them.
    pub(super) fn consumer_acked(&mut self, sid: SessionId, ids: Vec<String>) {
        let Some(live) = self.sessions.get_mut(&sid) else {
            return;
        };
        live.awaiting = live.awaiting.saturating_sub(ids.len());
        for id in ids {
            live.handle.ack(id);
        }
        if live.closed && live.awaiting == 0 {
            self.sessions.remove(&sid);
        }
    }

    /// Our texts to `to`: stored first (a text typed or piped is never
    /// lost, even if we are killed before the peer has it), then sent on
    /// its session, or kept until one opens.
    pub(super) async fn send(&mut self, to: PeerId, texts: Vec<Text>) {
        if texts.is_empty() {
            return;
        }
        if self.peers.get(&to).is_none() {
            // Not met in this run (or forgotten since): what history knows.
            let stored = match &self.store {
                Some(store) => store.peer(to.clone()).await.ok().flatten(),
                None => None,
            };
            let kind = stored.as_ref().and_then(|p| p.kind).unwrap_or_default();
            let state = self.peers.entry(&to, kind);
            state.name = stored.and_then(|p| p.name);
        }
        let Some(state) = self.peers.get_mut(&to) else {
            return;
        };
        let current = state.current();
        let kind = state.kind;
        if !kind.capabilities().acks {
            return self.send_unacknowledged(to, kind, current, texts).await;
        }
        let state = if current.is_some() {
            State::Sent
        } else {
            State::Pending
        };
        self.store_then_send(to, texts, state).await;
    }

    /// Our texts to `to`, stored (at `seqs`, if there is a history): they
    /// join those waiting for its ack, and go out on its session, or wait
    /// for one.
    pub(super) async fn may_leave(&mut self, to: PeerId, texts: &[Text], seqs: Vec<Option<i64>>) {
        let Some(peer) = self.peers.get_mut(&to) else {
            return;
        };
        peer.out.push(texts.iter().cloned().zip(seqs));
        if let Some(live) = peer.current().and_then(|s| self.sessions.get(&s)) {
            // If the session is ending, its Closed event comes next and the
            // texts go out again on the next session.
            for text in texts {
                live.handle.send_text(text.clone());
            }
            return;
        }
        let now = Instant::now();
        if let Some(at) = peer.out.retry_at().filter(|at| *at > now) {
            // A retry is scheduled: dialling at once would fail as the last
            // try did and double the wait each time (a script piping lines
            // into `send` while the peer restarts would be told to wait 30 s
            // after a few lines). The texts go with that retry.
            let ids = texts.iter().map(|t| t.id.clone()).collect();
            let event = NetEvent::Waiting {
                to,
                ids,
                reason: "waiting: the peer could not be reached; retrying".to_owned(),
                retry_in: Some(at - now),
            };
            let _ = self.events.send(event).await;
            return;
        }
        if !self.dial_peer(&to) {
            let ids = texts.iter().map(|t| t.id.clone()).collect();
            let reason = "waiting: the peer is offline".to_owned();
            let event = NetEvent::Waiting {
                to,
                ids,
                reason,
                retry_in: None,
            };
            let _ = self.events.send(event).await;
        }
    }

    /// To a peer that never acknowledges and cannot be dialled back (a raw
    /// text peer): the texts are written, or they are lost and the user is
    /// told.
    async fn send_unacknowledged(
        &mut self,
        to: PeerId,
        kind: PeerKind,
        current: Option<SessionId>,
        texts: Vec<Text>,
    ) {
        let live = current.and_then(|s| self.sessions.get(&s));
        let written = live.is_some_and(|live| !live.closed);
        let state = if written { State::Sent } else { State::Failed };
        self.record_sent(&to, &texts, state).await;
        let mut failed = Vec::new();
        let live = current.and_then(|s| self.sessions.get(&s));
        for text in texts {
            if !live.is_some_and(|live| live.handle.send_text(text.clone())) {
                failed.push(text.id);
            }
        }
        if !failed.is_empty() {
            if written {
                self.mark(&to, Vec::new(), failed.clone(), State::Failed, None)
                    .await;
            }
            let reason = "the connection has closed".to_owned();
            debug_assert!(!kind.capabilities().dialable);
            let _ = self
                .events
                .send(NetEvent::SendFailed {
                    to,
                    ids: failed,
                    reason,
                })
                .await;
        }
    }

    /// Gives up on the texts waiting for `peer`: failed, in the history too.
    pub(super) async fn give_up(&mut self, peer: PeerId, reason: String) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let given = state.out.give_up();
        if given.is_empty() {
            return;
        }
        let seqs = given.iter().filter_map(|(_, seq)| *seq).collect();
        let ids = given.into_iter().map(|(t, _)| t.id).collect::<Vec<_>>();
        let then = NetEvent::SendFailed {
            to: peer.clone(),
            ids,
            reason,
        };
        self.mark(&peer, seqs, Vec::new(), State::Failed, Some(then))
            .await;
    }
}
