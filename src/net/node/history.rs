//! The network task's side of history: received texts are committed before
//! they are acknowledged or shown, our texts are stored with their delivery
//! state, the outbox is reloaded at start, and the UI's pages and searches
//! are answered. Without a database (`--no-history`, or after it failed),
//! texts are acknowledged on arrival and duplicates are recognised in memory.

use super::{EVENT_BATCH, NetEvent, Node};
use crate::net::{SessionEvent, SessionId};
use crate::protocol::Text;
use crate::store::{PeerRef, State, Store};

/// Messages in one page of history.
pub(super) const PAGE: usize = 200;

/// Search results shown at most.
const FOUND_MAX: usize = 200;

impl Node {
    /// Opens history for this run: tells the UI about every conversation and
    /// its newest page, and takes the texts still undelivered into the outbox.
    pub(super) async fn start_history(&mut self, history: Result<Store, String>) {
        let store = match history {
            Ok(store) => store,
            Err(why) => {
                let _ = self.events.send(NetEvent::HistoryOff(why)).await;
                return;
            }
        };
        let loaded = async {
            let conversations = store.conversations().await?;
            let mut pages = Vec::with_capacity(conversations.len());
            for c in &conversations {
                pages.push((
                    c.peer.clone(),
                    store.page(c.peer.clone(), None, PAGE).await?,
                ));
            }
            let outbox = store.outbox().await?;
            Ok::<_, crate::store::StoreError>((conversations, pages, outbox))
        };
        let (conversations, pages, outbox) = match loaded.await {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = self.events.send(NetEvent::HistoryOff(e.to_string())).await;
                return;
            }
        };
        for c in &conversations {
            self.names.insert(c.peer.clone(), c.name.clone());
        }
        let _ = self
            .events
            .send(NetEvent::Conversations(conversations))
            .await;
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
        for (peer, text) in outbox {
            // A raw peer cannot be dialled back; what it did not get is gone.
            if peer.starts_with("raw-") {
                continue;
            }
            self.outgoing.entry(peer).or_default().texts.push_back(text);
        }
        self.store = Some(store);
    }

    /// Handles a batch of session events in order; runs of texts are
    /// committed together.
    pub(super) async fn session_events(&mut self, batch: Vec<SessionEvent>) {
        let mut texts: Vec<(SessionId, Text)> = Vec::new();
        for event in batch {
            match event {
                SessionEvent::Text { sid, text } => texts.push((sid, text)),
                other => {
                    if !texts.is_empty() {
                        self.texts_arrived(std::mem::take(&mut texts)).await;
                    }
                    self.session_event(other).await;
                }
            }
        }
        if !texts.is_empty() {
            self.texts_arrived(texts).await;
        }
        for (peer, ids) in std::mem::take(&mut self.acked) {
            self.mark(&peer, ids, State::Delivered).await;
        }
    }

    /// Texts from sessions: stored (one transaction), then acknowledged,
    /// then shown, each new one once.
    pub(super) async fn texts_arrived(&mut self, texts: Vec<(SessionId, Text)>) {
        debug_assert!(texts.len() <= EVENT_BATCH);
        let mut from = Vec::with_capacity(texts.len());
        let mut known = Vec::with_capacity(texts.len());
        for (sid, text) in texts {
            // A session's events all come before its Closed: it is known.
            let Some(live) = self.sessions.get(&sid) else {
                continue;
            };
            from.push((sid, live.raw));
            known.push((
                PeerRef {
                    key: live.peer_id.clone(),
                    name: live.name.clone(),
                    raw: live.raw,
                },
                text,
            ));
        }
        let fresh = match &self.store {
            Some(store) => match store.received(known.clone()).await {
                Ok(fresh) => fresh,
                Err(e) => {
                    self.history_failed(e.to_string()).await;
                    self.remembered(&known)
                }
            },
            None => self.remembered(&known),
        };
        for (((sid, raw), (_, text)), new) in from.into_iter().zip(known).zip(fresh) {
            if let Some(live) = self.sessions.get(&sid)
                && !raw
            {
                live.handle.ack(text.id.clone());
            }
            if new {
                let _ = self.events.send(NetEvent::Text { sid, text }).await;
            }
        }
    }

    /// Without a database: which texts are new, by the ids seen lately.
    fn remembered(&mut self, texts: &[(PeerRef, Text)]) -> Vec<bool> {
        texts
            .iter()
            .map(|(peer, text)| peer.raw || self.seen.first_time(&peer.key, &text.id))
            .collect()
    }

    /// The database failed: say so once and carry on without it, so that
    /// chatting still works.
    async fn history_failed(&mut self, why: String) {
        tracing::error!("history: {why}; no longer saving messages");
        self.store = None;
        let why = format!("history stopped: {why}");
        let _ = self.events.send(NetEvent::HistoryOff(why)).await;
    }

    /// Stores one of our texts before it goes out.
    pub(super) async fn record_sent(&mut self, to: &str, text: &Text, state: State) {
        let Some(store) = &self.store else { return };
        let peer = PeerRef {
            key: to.to_owned(),
            name: self.names.get(to).cloned().unwrap_or_else(|| to.to_owned()),
            raw: to.starts_with("raw-"),
        };
        if let Err(e) = store.sent(peer, text.clone(), state).await {
            self.history_failed(e.to_string()).await;
        }
    }

    /// Moves our texts to `peer` to `state` in the database.
    pub(super) async fn mark(&mut self, peer: &str, ids: Vec<String>, state: State) {
        let Some(store) = &self.store else { return };
        if ids.is_empty() {
            return;
        }
        if let Err(e) = store.set_state(peer.to_owned(), ids, state).await {
            self.history_failed(e.to_string()).await;
        }
    }

    /// Answers the UI's request for an older page.
    pub(super) async fn load_history(&mut self, peer: String, before: Option<i64>) {
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
            Err(e) => self.history_failed(e.to_string()).await,
        }
    }

    /// Answers `/search`.
    pub(super) async fn search(&mut self, words: String) {
        let Some(store) = &self.store else {
            let why = "history is off: nothing to search".to_owned();
            let _ = self.events.send(NetEvent::HistoryOff(why)).await;
            return;
        };
        match store.search(None, words.clone(), FOUND_MAX).await {
            Ok(records) => {
                let _ = self.events.send(NetEvent::Found { words, records }).await;
            }
            Err(e) => self.history_failed(e.to_string()).await,
        }
    }
}
