//! History on disk: every text sent and received, and the outbox of texts
//! not yet delivered, in an SQLite database in the data directory
//! (`history.sqlite3`, WAL mode, schema versioned with migrations).
//!
//! One thread owns the connection; [`Store`] is a cheap handle that sends it
//! jobs and awaits the answers, so no caller blocks the async runtime. Jobs
//! that arrive together are committed in one transaction (group commit):
//! a burst costs one commit, not one per text.
//!
//! Durability: an answer means committed. With WAL and `synchronous =
//! NORMAL` a commit survives the process being killed (SIGKILL, a crash);
//! a power cut or an OS crash may lose the last commits, never corrupt the
//! file. Other processes (`lantalk send`, `lantalk history`) may use the
//! same file at the same time; a writer waits up to 5 s for another's lock.
//!
//! Conversations are keyed by the peer's id ([`PeerId`]), never by its
//! name or address, so a rename or a new IP keeps the conversation; each
//! peer's [`PeerKind`] is stored beside it.
//!
//! The types here are plain data, also used by the TUI's model (`app`).

use std::sync::Arc;

use crate::peer::{PeerId, PeerKind};
use crate::protocol::Text;

/// Where one of our texts is on its way to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Typed, not yet written to a session (the peer is away).
    Pending,
    /// Written to a session, not yet acknowledged.
    Sent,
    /// Acknowledged by the peer (✓). Every received text is in this state.
    Delivered,
    /// Given up on (only `lantalk send` gives up; the chat screen retries).
    Failed,
}

/// Who a stored message is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRef {
    /// The peer's key.
    pub key: PeerId,
    /// Its display name when the message was stored (the latest one is
    /// kept); `None` keeps the stored one (a new peer is named after its key).
    pub name: Option<String>,
    /// Its kind; `None` keeps the stored one (a new peer is a lantalk peer).
    pub kind: Option<PeerKind>,
}

impl PeerRef {
    /// A peer whose name and kind are known.
    pub fn new(key: PeerId, name: impl Into<String>, kind: PeerKind) -> Self {
        Self {
            key,
            name: Some(name.into()),
            kind: Some(kind),
        }
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the database: increases with every message stored; pages
    /// are asked for "before this seq".
    pub seq: i64,
    /// The peer's key.
    pub peer: PeerId,
    /// Ours (true) or the peer's (false).
    pub outgoing: bool,
    /// The protocol id of the text; empty for a raw peer's line (raw lines
    /// have no id of their own: each connection counts from 1 again).
    pub id: String,
    /// The sender's timestamp (Unix ms).
    pub ts: u64,
    /// The message.
    pub body: String,
    /// For our texts, how far it got; [`State::Delivered`] for the peer's.
    pub state: State,
}

/// One of our texts not delivered yet, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsent {
    /// The peer it is for.
    pub peer: PeerId,
    /// That peer's kind.
    pub kind: PeerKind,
    /// Where it is in the history.
    pub seq: i64,
    /// The text.
    pub text: Text,
}

/// A peer we have history with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The peer's key.
    pub peer: PeerId,
    /// Its latest known display name.
    pub name: String,
    /// Its kind.
    pub kind: PeerKind,
    /// Timestamp of the newest message (Unix ms).
    pub last_ts: u64,
    /// Our texts to it not yet delivered (pending or sent).
    pub undelivered: u64,
}

/// What can go wrong with the history database. The cause is the
/// error's `source()`: print it with [`crate::error_chain`] (or `{:#}`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (corrupt file, disk full, locked for too long ...):
    /// texts cannot be kept; say so, and go on without history or stop.
    #[error("history database {path}")]
    Db {
        /// The database file.
        path: String,
        /// Why.
        source: DbError,
    },
    /// The database cannot be opened or created where it should be: the
    /// data directory is missing, read-only or not ours. Not a fault of the
    /// file: commands then run without history (as for the peer id).
    #[error("history database {path}")]
    Unwritable {
        /// The database file.
        path: String,
        /// Why.
        source: DbError,
    },
    /// The store's thread is gone (it panicked or the process is ending).
    #[error("the history database is closed")]
    Closed,
}

/// Why the database failed: SQLite's error, or a file that is not usable
/// as ours (a newer schema, no WAL mode, read-only).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// SQLite's own error.
    #[error(transparent)]
    Sqlite(Arc<rusqlite::Error>),
    /// The file cannot be used as it is, and why.
    #[error("{0}")]
    Unusable(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(Arc::new(e))
    }
}

/// A handle on the history database; cheap to clone. Every method is one
/// job for the store's thread; jobs waiting together share a transaction.
#[derive(Clone)]
pub struct Store {
    inner: db::Handle,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

mod db;
mod queries;
mod schema;
#[cfg(test)]
mod tests;

impl Store {
    /// Opens (creating and migrating as needed) `history.sqlite3` in `dir`.
    /// A file that is not a database, or one written by a newer lantalk, is
    /// [`StoreError::Db`] naming the file; a directory where it cannot be
    /// opened or created is [`StoreError::Unwritable`].
    pub fn open(dir: &std::path::Path) -> Result<Store, StoreError> {
        Ok(Store {
            inner: db::Handle::open(dir, true)?,
        })
    }

    /// Like [`Store::open`], but never creates the file (`lantalk history`):
    /// check [`Store::file_in`] first to tell "no history yet" apart.
    pub fn open_existing(dir: &std::path::Path) -> Result<Store, StoreError> {
        Ok(Store {
            inner: db::Handle::open(dir, false)?,
        })
    }

    /// Where the database is (or would be) in the data directory `dir`.
    pub fn file_in(dir: &std::path::Path) -> std::path::PathBuf {
        dir.join(db::FILE)
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        self.inner.path()
    }

    /// Stores texts received from peers, in order, and returns for each
    /// whether it was new: `false` for a copy of a text already stored (same
    /// peer key and id), which must be acknowledged but not shown again.
    /// Returns once everything is committed: only then may the texts be
    /// acknowledged. The peer's name is updated to the one given.
    pub async fn received(
        &self,
        texts: impl Into<Arc<[(PeerRef, Text)]>>,
    ) -> Result<Vec<bool>, StoreError> {
        self.inner.received(texts.into()).await
    }

    /// Stores one of our texts to `peer` in `state` (pending or sent);
    /// returns its seq. Storing the same id for the same peer again is a
    /// no-op returning the existing seq.
    pub async fn sent(&self, peer: PeerRef, text: Text, state: State) -> Result<i64, StoreError> {
        let seqs = self.inner.sent(peer, Arc::from([text]), state).await?;
        // One text in, one seq out (see `Db::sent`).
        Ok(seqs[0])
    }

    /// [`Store::sent`] for many texts to one peer, in order, in one job;
    /// returns their seqs.
    pub async fn sent_batch(
        &self,
        peer: PeerRef,
        texts: impl Into<Arc<[Text]>>,
        state: State,
    ) -> Result<Vec<i64>, StoreError> {
        self.inner.sent(peer, texts.into(), state).await
    }

    /// Moves our texts with these ids to `peer` to `state` (a text already
    /// delivered stays delivered).
    pub async fn set_state(
        &self,
        peer: PeerId,
        ids: Vec<String>,
        state: State,
    ) -> Result<(), StoreError> {
        self.inner.set_state(peer, ids, state).await
    }

    /// [`Store::set_state`] for our texts with these seqs (as
    /// [`Store::sent_batch`] returned them): cheaper, for acks by the
    /// thousand.
    pub async fn set_state_by_seq(&self, seqs: Vec<i64>, state: State) -> Result<(), StoreError> {
        self.inner.set_state_by_seq(seqs, state).await
    }

    /// Our texts not yet delivered (pending or sent), oldest first, with the
    /// peer each is for: the outbox to send after a restart.
    pub async fn outbox(&self) -> Result<Vec<Unsent>, StoreError> {
        self.inner.outbox().await
    }

    /// The newest `limit` messages with `peer` older than seq `before` (all
    /// when `None`), oldest first, and whether there are older ones still.
    pub async fn page(
        &self,
        peer: PeerId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<Record>, bool), StoreError> {
        self.inner.page(peer, before, limit).await
    }

    /// Full-text search (SQLite FTS5) of message bodies, newest first, in one
    /// conversation or in all. `words` are matched as words (each word must
    /// occur, in any order; a word ending in `*` is a prefix), never parsed
    /// as FTS5 query syntax.
    pub async fn search(
        &self,
        peer: Option<PeerId>,
        words: String,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.search(peer, words, limit).await
    }

    /// Continues the conversation with the peer key `from` as the one with
    /// `into` (a peer's id changed: a new key it was trusted with, or the
    /// first key of a peer from before ids were derived from keys).
    /// Returns how many messages moved.
    pub async fn merge_peer(&self, from: PeerId, into: PeerId) -> Result<u64, StoreError> {
        self.inner.merge_peer(from, into).await
    }

    /// Every peer with history, most recent first.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.inner.conversations().await
    }

    /// What is stored of the peer with this key (its latest name and its
    /// kind), if it has history.
    pub async fn peer(&self, key: PeerId) -> Result<Option<PeerRef>, StoreError> {
        self.inner.peer(key).await
    }
}
