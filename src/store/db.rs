//! The store's thread and its SQLite connection.
//!
//! One thread owns the [`Connection`]; a [`Handle`] sends it jobs over a
//! channel, each with a oneshot for its answer. The thread takes every job
//! waiting in the channel (up to [`MAX_JOBS`] jobs or about [`MAX_ROWS`]
//! rows), runs them in one transaction, commits, and only then answers
//! them: an answer means "committed". (If one job fails, each is run again
//! in a transaction of its own.) A burst of texts thus costs one commit
//! however it arrives: in one job, or in many jobs queued behind a commit.
//!
//! Durability: WAL with `synchronous = NORMAL`. A commit is in the WAL file
//! once COMMIT returns, so it survives the process being killed (SIGKILL,
//! a panic, an abort); the WAL is synced to disk at checkpoints, so a power
//! cut or an OS crash can lose the last commits, never corrupt the file.
//!
//! The schema and opening a file are `schema.rs`'s; the queries are
//! `queries.rs`'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::schema::connect;
use super::{Conversation, DbError, PeerRef, Record, State, StoreError, Unsent};
use crate::peer::PeerId;
use crate::protocol::Text;

/// The database file, in the data directory.
pub(super) const FILE: &str = "history.sqlite3";

/// At most this many jobs share one transaction...
const MAX_JOBS: usize = 1024;

/// ... and about this many rows: beyond, the waiting jobs go in the next one
/// (a transaction's answers all wait for its commit).
const MAX_ROWS: usize = 16_384;

/// One job for the store's thread. Its work may run twice: when another job
/// of its transaction fails, the transaction is rolled back and every job
/// is run again in a transaction of its own.
trait Job: Send {
    /// Whether it writes (the transaction then takes the write lock at once).
    fn writes(&self) -> bool;
    /// About how many rows it touches.
    fn rows(&self) -> usize;
    /// Runs the work inside the current transaction, keeping its result.
    fn run(&mut self, db: &mut Db) -> Result<(), DbError>;
    /// Answers once the transaction is over: the kept result, or why the
    /// transaction failed (`failed`).
    fn answer(self: Box<Self>, failed: Option<&DbError>);
}

/// A [`Job`] made of a closure and the oneshot its caller awaits.
struct Call<T, F> {
    writes: bool,
    rows: usize,
    work: F,
    result: Option<Result<T, DbError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    path: Arc<PathBuf>,
}

impl<T, F> Job for Call<T, F>
where
    T: Send,
    F: FnMut(&mut Db) -> rusqlite::Result<T> + Send,
{
    fn writes(&self) -> bool {
        self.writes
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn run(&mut self, db: &mut Db) -> Result<(), DbError> {
        let result = (self.work)(db).map_err(DbError::from);
        let outcome = result.as_ref().map(drop).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn answer(self: Box<Self>, failed: Option<&DbError>) {
        let result = match (self.result, failed) {
            (Some(Err(why)), _) => Err(why),
            (_, Some(why)) => Err(why.clone()),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(DbError::Unusable("the job was not run".to_owned())),
        };
        let _ = self.reply.send(result.map_err(|source| StoreError::Db {
            path: self.path.display().to_string(),
            source,
        }));
    }
}

#[derive(Clone)]
pub(super) struct Handle {
    path: Arc<PathBuf>,
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Handle {
    /// Opens `dir/history.sqlite3` (creating it when `create`), sets it up,
    /// migrates it, and starts the thread that owns it.
    pub(super) fn open(dir: &Path, create: bool) -> Result<Handle, StoreError> {
        let path = dir.join(FILE);
        let conn = connect(&path, create).map_err(|e| e.into_error(&path))?;
        let (jobs, queue) = mpsc::channel();
        let db = Db {
            conn,
            pids: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("lantalk-store".into())
            .spawn(move || db.serve(queue))
            .map_err(|e| StoreError::Db {
                path: path.display().to_string(),
                source: DbError::Unusable(format!("cannot start its thread: {e}")),
            })?;
        Ok(Handle {
            path: Arc::new(path),
            jobs,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the store's thread in the next transaction; answers
    /// once that transaction is committed.
    async fn call<T: Send + 'static>(
        &self,
        writes: bool,
        rows: usize,
        work: impl FnMut(&mut Db) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Call {
            writes,
            rows,
            work,
            result: None,
            reply,
            path: Arc::clone(&self.path),
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(super) async fn received(
        &self,
        texts: Arc<[(PeerRef, Text)]>,
    ) -> Result<Vec<bool>, StoreError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.call(true, texts.len(), move |db| db.received(&texts))
            .await
    }

    pub(super) async fn sent(
        &self,
        peer: PeerRef,
        texts: Arc<[Text]>,
        state: State,
    ) -> Result<Vec<i64>, StoreError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.call(true, texts.len(), move |db| db.sent(&peer, &texts, state))
            .await
    }

    pub(super) async fn set_state(
        &self,
        peer: PeerId,
        ids: Vec<String>,
        state: State,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.call(true, ids.len(), move |db| db.set_state(&peer, &ids, state))
            .await
    }

    pub(super) async fn set_state_by_seq(
        &self,
        seqs: Vec<i64>,
        state: State,
    ) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.call(true, seqs.len(), move |db| {
            db.set_state_by_seq(&seqs, state)
        })
        .await
    }

    pub(super) async fn outbox(&self) -> Result<Vec<Unsent>, StoreError> {
        self.call(false, 1, Db::outbox).await
    }

    pub(super) async fn merge_peer(&self, from: PeerId, into: PeerId) -> Result<u64, StoreError> {
        self.call(true, 1, move |db| db.merge_peer(&from, &into))
            .await
    }

    pub(super) async fn page(
        &self,
        peer: PeerId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<Record>, bool), StoreError> {
        self.call(false, 1, move |db| db.page(&peer, before, limit))
            .await
    }

    pub(super) async fn search(
        &self,
        peer: Option<PeerId>,
        words: String,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.call(false, 1, move |db| db.search(peer.as_ref(), &words, limit))
            .await
    }

    pub(super) async fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.call(false, 1, Db::conversations).await
    }

    pub(super) async fn peer(&self, key: PeerId) -> Result<Option<PeerRef>, StoreError> {
        self.call(false, 1, move |db| db.peer(&key)).await
    }
}

/// The store's thread's state: the connection, and the row id of every peer
/// key met (a row is only deleted or re-keyed by `merge_peer`, which
/// forgets the keys it touches).
pub(super) struct Db {
    pub(super) conn: Connection,
    pub(super) pids: HashMap<PeerId, i64>,
}

impl Db {
    /// Takes jobs until every handle is gone.
    fn serve(mut self, queue: mpsc::Receiver<Box<dyn Job>>) {
        while let Ok(first) = queue.recv() {
            let mut rows = first.rows();
            let mut batch = vec![first];
            while batch.len() < MAX_JOBS && rows < MAX_ROWS {
                match queue.try_recv() {
                    Ok(job) => {
                        rows += job.rows();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.transaction(batch);
        }
    }

    /// Runs `batch` in one transaction and answers every job after COMMIT.
    /// If anything fails, the transaction is rolled back and each job is run
    /// again alone, so that one failing job does not fail the others. (Jobs
    /// are not wrapped in savepoints instead: a savepoint copies every page
    /// it changes into a sub-journal, measured a sixth of the time in bursts.)
    fn transaction(&mut self, mut batch: Vec<Box<dyn Job>>) {
        let outcome = self.attempt(&mut batch);
        if outcome.is_err() && batch.len() > 1 {
            for mut job in batch {
                let outcome = self.attempt(std::slice::from_mut(&mut job));
                job.answer(outcome.err().as_ref());
            }
        } else {
            let failed = outcome.err();
            for job in batch {
                job.answer(failed.as_ref());
            }
        }
    }

    /// One transaction running `jobs`, then indexing the new rows; rolled
    /// back if anything fails.
    fn attempt(&mut self, jobs: &mut [Box<dyn Job>]) -> Result<(), DbError> {
        // A writer takes the write lock at BEGIN: upgrading a read lock later
        // could fail at once with SQLITE_BUSY instead of waiting.
        let writes = jobs.iter().any(|j| j.writes());
        let begin = if writes { "BEGIN IMMEDIATE" } else { "BEGIN" };
        self.conn.execute_batch(begin)?;
        let result = (|| {
            // Rows are only ever appended, under the write lock: the rows
            // this transaction stores are those after `last`.
            let last = match writes {
                true => Some(self.last_seq()?),
                false => None,
            };
            for job in jobs.iter_mut() {
                job.run(self)?;
            }
            if let Some(last) = last {
                self.index_after(last)?;
            }
            Ok(self.conn.execute_batch("COMMIT")?)
        })();
        if result.is_err() {
            // (SQLite may have rolled back already: then this fails, harmlessly.)
            let _ = self.conn.execute_batch("ROLLBACK");
            // Peers inserted in the transaction are gone again.
            self.pids.clear();
        }
        result
    }

    /// The seq of the newest message (0 for none).
    fn last_seq(&self) -> rusqlite::Result<i64> {
        self.conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM messages")?
            .query_row([], |r| r.get(0))
    }

    /// Adds the bodies of the messages after seq `last` to the full-text
    /// index, in one statement (see `schema.rs`, V1, for why not a trigger). A search
    /// in the same transaction does not see them yet.
    fn index_after(&self, last: i64) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages_fts (rowid, body) SELECT seq, body FROM messages WHERE seq > ?1",
            )?
            .execute([last])?;
        Ok(())
    }
}
