//! The node's side of history: received texts are committed before they
//! are acknowledged or shown, our texts are stored before they leave and
//! then follow their delivery state, the outbox is reloaded at start, and
//! pages and searches are answered. Without a database (`--no-history`, or
//! after it failed), texts are acknowledged on arrival and copies are
//! recognised in memory.

use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;

use super::{EVENT_BATCH, Node};
use crate::net::{AckPolicy, HistoryOff, NetEvent, SessionId};
use crate::peer::PeerId;
use crate::protocol::Text;
use crate::store::{PeerRef, State, Store, StoreError};

/// Jobs of the history database under way, in the order they were asked
/// for: the node goes on with other work meanwhile (the database commits
/// one batch while the next arrives), and carries on with each job's
/// texts once it is committed, in order.
pub(super) type Pending = FuturesOrdered<BoxFuture<'static, Stored>>;

/// At most this many jobs are under way; beyond, the node takes no more
/// texts or commands until one is done (backpressure).
pub(super) const MAX_PENDING: usize = 8;

/// A job of the history database, done: what the node carries on with.
pub(super) enum Stored {
    /// Our texts to `to` are stored: they may leave now.
    Sent {
        to: PeerId,
        texts: Arc<[Text]>,
        seqs: Result<Vec<i64>, StoreError>,
    },
    /// Texts received are stored: acknowledge them, hand the new ones on.
    Received {
        from: Vec<SessionId>,
        texts: Arc<[(PeerRef, Text)]>,
        fresh: Result<Vec<bool>, StoreError>,
    },
    /// A change of delivery state is stored; then the users hear of it.
    Marked(Result<(), StoreError>, Option<NetEvent>),
}

/// Messages in one page of history.
pub(super) const PAGE: usize = 200;

/// Search results shown at most.
const FOUND_MAX: usize = 200;

impl Node {
    /// Opens history for this run: tells the users about every conversation
    /// and its newest page (if `show`), and takes the texts still
    /// undelivered into the outbox (they go out when their peer is met).
    pub(super) async fn start_history(&mut self, history: Result<Store, HistoryOff>, show: bool) {
        let store = match history {
            Ok(store) => store,
            Err(off) => {
                let _ = self.events.send(NetEvent::HistoryOff(off)).await;
                return;
            }
        };
        let loaded = async {
            let conversations = match show {
                true => store.conversations().await?,
                false => Vec::new(),
            };
            let mut pages = Vec::with_capacity(conversations.len());
            for c in &conversations {
                pages.push((
                    c.peer.clone(),
                    store.page(c.peer.clone(), None, PAGE).await?,
                ));
            }
            let outbox = store.outbox().await?;
            Ok::<_, StoreError>((conversations, pages, outbox))
        };
        let (conversations, pages, outbox) = match loaded.await {
            Ok(loaded) => loaded,
            Err(e) => {
                let off = HistoryOff::Unavailable(crate::error_chain(&e));
                let _ = self.events.send(NetEvent::HistoryOff(off)).await;
                return;
            }
        };
        if show {
            let _ = self
                .events
                .send(NetEvent::Conversations(conversations))
                .await;
        }
        for (peer, (records, more)) in pages {
            let _ = self
                .events
                .send(NetEvent::History {
                    peer,
                    records,
                    more,
                })
                .await;
        }
        for unsent in outbox {
            // A peer that does not acknowledge (a raw one) has what it
            // did not get when it left: nothing waits for it. A browser
            // acknowledges: what waits for it goes when it reconnects.
            if unsent.kind.capabilities().acks {
                let state = self.peers.entry(&unsent.peer, unsent.kind);
                state.out.push([(unsent.text, Some(unsent.seq))]);
            }
        }
        self.store = Some(store);
    }

    /// Texts from sessions: stored (one transaction), then acknowledged
    /// (as the ack policy says), then handed on, each new one once (see
    /// [`Node::received`]).
    pub(super) async fn texts_arrived(&mut self, texts: Vec<(SessionId, Text)>) {
        debug_assert!(texts.len() <= EVENT_BATCH);
        let mut from = Vec::with_capacity(texts.len());
        let mut known = Vec::with_capacity(texts.len());
        for (sid, text) in texts {
            // A session's events all come before its Closed: it is known.
            let Some(live) = self.sessions.get(&sid) else {
                continue;
            };
            from.push(sid);
            let peer = &live.peer;
            known.push((PeerRef::new(peer.id.clone(), &peer.name, peer.kind), text));
        }
        let texts: Arc<[(PeerRef, Text)]> = known.into();
        match &self.store {
            Some(store) => {
                let store = store.clone();
                self.pending.push_back(
                    async move {
                        let fresh = store.received(Arc::clone(&texts)).await;
                        Stored::Received { from, texts, fresh }
                    }
                    .boxed(),
                );
            }
            None => {
                let fresh = self.remembered(&texts);
                self.received(from, &texts, fresh).await;
            }
        }
    }

    /// Texts received, stored (or not, without history): acknowledged as
    /// the ack policy says, the new ones handed on.
    async fn received(
        &mut self,
        from: Vec<SessionId>,
        texts: &[(PeerRef, Text)],
        fresh: Vec<bool>,
    ) {
        for ((sid, (peer, text)), new) in from.into_iter().zip(texts).zip(fresh) {
            let Some(live) = self.sessions.get_mut(&sid) else {
                continue;
            };
            let acks = peer.kind.is_none_or(|k| k.capabilities().acks);
            match (new, self.acks) {
                (true, AckPolicy::Consumer) if acks => live.awaiting += 1,
                _ if acks => {
                    live.handle.ack(text.id.clone());
                }
                _ => {}
            }
            if new {
                let event = NetEvent::Text {
                    from: peer.key.clone(),
                    session: sid,
                    text: text.clone(),
                };
                let _ = self.events.send(event).await;
            }
        }
    }

    /// Carries on with a job the database has done.
    pub(super) async fn stored(&mut self, stored: Stored) {
        match stored {
            Stored::Sent { to, texts, seqs } => {
                let seqs = match seqs {
                    Ok(seqs) => seqs.into_iter().map(Some).collect(),
                    Err(e) => {
                        self.history_failed(&e).await;
                        vec![None; texts.len()]
                    }
                };
                self.may_leave(to, &texts, seqs).await;
            }
            Stored::Received { from, texts, fresh } => {
                let fresh = match fresh {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        self.history_failed(&e).await;
                        self.remembered(&texts)
                    }
                };
                self.received(from, &texts, fresh).await;
            }
            Stored::Marked(result, then) => {
                if let Err(e) = result {
                    self.history_failed(&e).await;
                }
                if let Some(event) = then {
                    let _ = self.events.send(event).await;
                }
            }
        }
    }

    /// Waits until every job under way is done, and carries on with each:
    /// what follows must come after them (a session's end after its last
    /// texts, a command after the texts sent before it).
    pub(super) async fn settle(&mut self) {
        use futures_util::StreamExt as _;
        while let Some(stored) = self.pending.next().await {
            self.stored(stored).await;
        }
    }

    /// Stores our texts to `to`, then lets them leave (see [`Node::may_leave`]).
    pub(super) async fn store_then_send(&mut self, to: PeerId, texts: Vec<Text>, state: State) {
        let Some(store) = self.store.clone() else {
            let seqs = vec![None; texts.len()];
            return self.may_leave(to, &texts, seqs).await;
        };
        let known = self.peers.get(&to);
        let peer = PeerRef {
            key: to.clone(),
            name: known.and_then(|p| p.name.clone()),
            kind: known.map(|p| p.kind),
        };
        let texts: Arc<[Text]> = texts.into();
        self.pending.push_back(
            async move {
                let seqs = store.sent_batch(peer, Arc::clone(&texts), state).await;
                Stored::Sent { to, texts, seqs }
            }
            .boxed(),
        );
    }

    /// Without a database: which texts are new, by the ids seen lately.
    fn remembered(&mut self, texts: &[(PeerRef, Text)]) -> Vec<bool> {
        texts
            .iter()
            .map(|(peer, text)| {
                let ids = peer.kind.is_none_or(|k| k.capabilities().message_ids);
                !ids || self.seen.first_time(peer.key.as_str(), &text.id)
            })
            .collect()
    }

    /// The database failed: say so once and carry on without it, so that
    /// chatting still works.
    async fn history_failed(&mut self, e: &StoreError) {
        let why = crate::error_chain(e);
        tracing::error!("{why}; no longer saving messages");
        self.store = None;
        let off = HistoryOff::Failed(why);
        let _ = self.events.send(NetEvent::HistoryOff(off)).await;
    }

    /// Stores our texts to `to` before they go out; returns their places
    /// in the history (none without one).
    pub(super) async fn record_sent(
        &mut self,
        to: &PeerId,
        texts: &[Text],
        state: State,
    ) -> Vec<Option<i64>> {
        let unstored = || vec![None; texts.len()];
        let Some(store) = &self.store else {
            return unstored();
        };
        let known = self.peers.get(to);
        let peer = PeerRef {
            key: to.clone(),
            name: known.and_then(|p| p.name.clone()),
            kind: known.map(|p| p.kind),
        };
        match store.sent_batch(peer, texts.to_vec(), state).await {
            Ok(seqs) => seqs.into_iter().map(Some).collect(),
            Err(e) => {
                self.history_failed(&e).await;
                unstored()
            }
        }
    }

    /// Moves our texts to `peer` to `state` in the database: those with
    /// these places in it (`seqs`), and those with these ids (`ids`: not
    /// found by place). A job under way: once it is done, the users are
    /// told `then` (at once without a history).
    pub(super) async fn mark(
        &mut self,
        peer: &PeerId,
        seqs: Vec<i64>,
        ids: Vec<String>,
        state: State,
        then: Option<NetEvent>,
    ) {
        let Some(store) = self.store.clone() else {
            if let Some(event) = then {
                let _ = self.events.send(event).await;
            }
            return;
        };
        let peer = peer.clone();
        self.pending.push_back(
            async move {
                let mut done = store.set_state_by_seq(seqs, state).await;
                if done.is_ok() {
                    done = store.set_state(peer, ids, state).await;
                }
                Stored::Marked(done, then)
            }
            .boxed(),
        );
    }

    /// Answers a request for an older page.
    pub(super) async fn load_history(&mut self, peer: PeerId, before: Option<i64>) {
        let Some(store) = &self.store else {
            let _ = self
                .events
                .send(NetEvent::History {
                    peer,
                    records: Vec::new(),
                    more: false,
                })
                .await;
            return;
        };
        match store.page(peer.clone(), before, PAGE).await {
            Ok((records, more)) => {
                let _ = self
                    .events
                    .send(NetEvent::History {
                        peer,
                        records,
                        more,
                    })
                    .await;
            }
            Err(e) => self.history_failed(&e).await,
        }
    }

    /// Answers `/search`.
    pub(super) async fn search(&mut self, words: String) {
        let Some(store) = &self.store else {
            let off = HistoryOff::NothingToSearch;
            let _ = self.events.send(NetEvent::HistoryOff(off)).await;
            return;
        };
        match store.search(None, words.clone(), FOUND_MAX).await {
            Ok(records) => {
                let _ = self.events.send(NetEvent::Found { words, records }).await;
            }
            Err(e) => self.history_failed(&e).await,
        }
    }
}
