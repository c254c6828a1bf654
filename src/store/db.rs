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
//! Schema version 1 (see [`V1`]); the version is SQLite's `user_version`,
//! and [`MIGRATIONS`] brings any older file up to date when it is opened.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{Conversation, PeerRef, Record, State, StoreError};
use crate::protocol::Text;

/// The database file, in the data directory.
pub(super) const FILE: &str = "history.sqlite3";

/// How long a statement waits for another process's write lock (a `lantalk
/// send` or `history` next to a running chat screen) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many jobs share one transaction...
const MAX_JOBS: usize = 1024;

/// ... and about this many rows: beyond, the waiting jobs go in the next one
/// (a transaction's answers all wait for its commit).
const MAX_ROWS: usize = 16_384;

/// Schema version 1.
///
/// - `peers`: one row per conversation, keyed by the peer id (or
///   `raw-IP`), with its latest display name; `pid` is what messages point to.
/// - `messages`: every text, in the order stored (`seq`, the rowid).
///   `outgoing` = ours; `id` = the protocol id (NULL for a raw peer's lines,
///   whose ids are only a per-connection count); `ts` = the sender's clock,
///   `stored` = ours, both Unix ms; `state` 0 pending, 1 sent, 2 delivered,
///   3 failed. UNIQUE(peer, outgoing, id) makes a text received twice one
///   row. `messages_by_peer` pages a conversation (an index's key ends with
///   the rowid, i.e. `seq`); `messages_outbox` holds only our undelivered texts.
/// - `messages_fts`: an FTS5 index of the bodies, external content (the text
///   is kept once, in `messages`). New rows are indexed by the transaction
///   that stores them, in one statement just before COMMIT (see
///   [`Db::transaction`]), not by an insert trigger: a trigger runs inside
///   a statement savepoint, at which FTS5 writes its pending terms to disk,
///   once per row (measured 4x slower). Triggers keep the index right if a
///   row is ever deleted or its body changed (lantalk does neither).
///   `columnsize = 0`: no per-row size record (only ranking by bm25 uses
///   it; results here are newest first), a quarter less work per insert.
///   `automerge = 8` (default 4): segments are merged less often, a
///   quarter more texts per second in bursts, for a few more segments to
///   look in when searching.
const V1: &str = "
CREATE TABLE peers (
    pid  INTEGER PRIMARY KEY,
    key  TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    raw  INTEGER NOT NULL
) STRICT;
CREATE TABLE messages (
    seq      INTEGER PRIMARY KEY,
    peer     INTEGER NOT NULL REFERENCES peers(pid),
    outgoing INTEGER NOT NULL,
    id       TEXT,
    ts       INTEGER NOT NULL,
    stored   INTEGER NOT NULL,
    body     TEXT NOT NULL,
    state    INTEGER NOT NULL,
    UNIQUE (peer, outgoing, id)
) STRICT;
CREATE INDEX messages_by_peer ON messages(peer);
CREATE INDEX messages_outbox ON messages(peer) WHERE outgoing = 1 AND state < 2;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body, content = 'messages', content_rowid = 'seq', columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 8);
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.seq, new.body);
END;
";

/// The schema's history: `MIGRATIONS[n]` takes version n to n + 1. Only
/// ever append; a file is at version `user_version`.
const MIGRATIONS: &[&str] = &[V1];

/// One job for the store's thread. Its work may run twice: when another job
/// of its transaction fails, the transaction is rolled back and every job
/// is run again in a transaction of its own.
trait Job: Send {
    /// Whether it writes (the transaction then takes the write lock at once).
    fn writes(&self) -> bool;
    /// About how many rows it touches.
    fn rows(&self) -> usize;
    /// Runs the work inside the current transaction, keeping its result.
    fn run(&mut self, db: &mut Db) -> Result<(), String>;
    /// Answers once the transaction is over: the kept result, or why the
    /// transaction failed (`failed`).
    fn answer(self: Box<Self>, failed: Option<&str>);
}

/// A [`Job`] made of a closure and the oneshot its caller awaits.
struct Call<T, F> {
    writes: bool,
    rows: usize,
    work: F,
    result: Option<Result<T, String>>,
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

    fn run(&mut self, db: &mut Db) -> Result<(), String> {
        let result = (self.work)(db).map_err(|e| e.to_string());
        let outcome = result.as_ref().map(drop).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn answer(self: Box<Self>, failed: Option<&str>) {
        let result = match (self.result, failed) {
            (Some(Err(why)), _) => Err(why),
            (_, Some(why)) => Err(why.to_owned()),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err("the job was not run".to_owned()),
        };
        let _ = self.reply.send(result.map_err(|why| StoreError::Db {
            path: self.path.display().to_string(),
            why,
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
                why: format!("cannot start its thread: {e}"),
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
        texts: Vec<(PeerRef, Text)>,
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
        texts: Vec<Text>,
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
        peer: String,
        ids: Vec<String>,
        state: State,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.call(true, ids.len(), move |db| db.set_state(&peer, &ids, state))
            .await
    }

    pub(super) async fn outbox(&self) -> Result<Vec<(String, Text)>, StoreError> {
        self.call(false, 1, Db::outbox).await
    }

    pub(super) async fn merge_peer(&self, from: String, into: String) -> Result<u64, StoreError> {
        self.call(true, 1, move |db| db.merge_peer(&from, &into))
            .await
    }

    pub(super) async fn page(
        &self,
        peer: String,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<Record>, bool), StoreError> {
        self.call(false, 1, move |db| db.page(&peer, before, limit))
            .await
    }

    pub(super) async fn search(
        &self,
        peer: Option<String>,
        words: String,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.call(false, 1, move |db| {
            db.search(peer.as_deref(), &words, limit)
        })
        .await
    }

    pub(super) async fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.call(false, 1, Db::conversations).await
    }
}

/// Why opening failed, before it is tied to the file's path.
enum OpenError {
    Sqlite(rusqlite::Error),
    /// The file is not usable as ours (for instance a newer schema).
    Refused(String),
    /// The file can only be read (a read-only file or file system).
    ReadOnly,
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Sqlite(e)
    }
}

impl OpenError {
    fn into_error(self, path: &Path) -> StoreError {
        let path = path.display().to_string();
        match self {
            OpenError::Sqlite(e) => {
                let unwritable = matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
                );
                let why = e.to_string();
                if unwritable {
                    StoreError::Unwritable { path, why }
                } else {
                    StoreError::Db { path, why }
                }
            }
            OpenError::Refused(why) => StoreError::Db { path, why },
            OpenError::ReadOnly => StoreError::Unwritable {
                path,
                why: "the file can only be read (read-only file or file system)".into(),
            },
        }
    }
}

/// Opens the file, checks it is a database, and brings its schema up to date.
fn connect(path: &Path, create: bool) -> Result<Connection, OpenError> {
    let mut flags = OpenFlags::default();
    if !create {
        flags.remove(OpenFlags::SQLITE_OPEN_CREATE);
    }
    let mut conn = Connection::open_with_flags(path, flags)?;
    // SQLite falls back to reading only when it cannot write; a store that
    // is to write must not find that out at its first commit.
    if create && conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(OpenError::ReadOnly);
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The first statement that reads the file: "file is not a database" here.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Refused(format!(
            "cannot use WAL mode (the journal mode stays {mode:?})"
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the migrations the file has not had, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let latest = MIGRATIONS.len() as i64;
    let version = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
    };
    let too_new = |v: i64| {
        OpenError::Refused(format!(
            "written by a newer lantalk (schema version {v}; this one knows up to {latest})"
        ))
    };
    match version(conn)? {
        v if v == latest => return Ok(()),
        v if !(0..latest).contains(&v) => return Err(too_new(v)),
        _ => {}
    }
    // Another process may be migrating the same file: decide under the write lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = version(&tx)?;
    if from > latest {
        return Err(too_new(from));
    }
    for step in &MIGRATIONS[from.clamp(0, latest) as usize..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    Ok(())
}

/// The store's thread's state: the connection, and the row id of every peer
/// key met (a row is only deleted or re-keyed by `merge_peer`, which
/// forgets the keys it touches).
struct Db {
    conn: Connection,
    pids: HashMap<String, i64>,
}

const INSERT: &str = "INSERT INTO messages (peer, outgoing, id, ts, stored, body, state)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";

const COLUMNS: &str = "m.seq, m.outgoing, m.id, m.ts, m.body, m.state";

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
                job.answer(outcome.err().as_deref());
            }
        } else {
            let failed = outcome.err();
            for job in batch {
                job.answer(failed.as_deref());
            }
        }
    }

    /// One transaction running `jobs`, then indexing the new rows; rolled
    /// back if anything fails.
    fn attempt(&mut self, jobs: &mut [Box<dyn Job>]) -> Result<(), String> {
        // A writer takes the write lock at BEGIN: upgrading a read lock later
        // could fail at once with SQLITE_BUSY instead of waiting.
        let writes = jobs.iter().any(|j| j.writes());
        let begin = if writes { "BEGIN IMMEDIATE" } else { "BEGIN" };
        self.conn.execute_batch(begin).map_err(|e| e.to_string())?;
        let result = (|| {
            // Rows are only ever appended, under the write lock: the rows
            // this transaction stores are those after `last`.
            let last = match writes {
                true => Some(self.last_seq().map_err(|e| e.to_string())?),
                false => None,
            };
            for job in jobs.iter_mut() {
                job.run(self)?;
            }
            if let Some(last) = last {
                self.index_after(last).map_err(|e| e.to_string())?;
            }
            self.conn.execute_batch("COMMIT").map_err(|e| e.to_string())
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
    /// index, in one statement (see [`V1`] for why not a trigger). A search
    /// in the same transaction does not see them yet.
    fn index_after(&self, last: i64) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages_fts (rowid, body) SELECT seq, body FROM messages WHERE seq > ?1",
            )?
            .execute([last])?;
        Ok(())
    }

    fn received(&mut self, texts: &[(PeerRef, Text)]) -> rusqlite::Result<Vec<bool>> {
        let stored = now_ms();
        let mut peers = JobPeers::default();
        let mut insert = self.conn.prepare_cached(INSERT)?;
        let mut new = Vec::with_capacity(texts.len());
        for (peer, text) in texts {
            let pid = peers.pid(&self.conn, &mut self.pids, peer)?;
            // A raw peer's line ids restart with every connection: no dedupe.
            let id = (!peer.raw).then_some(text.id.as_str());
            let n = insert.execute(params![
                pid,
                false,
                id,
                text.ts as i64,
                stored,
                text.body,
                code(State::Delivered)
            ])?;
            new.push(n == 1);
        }
        Ok(new)
    }

    fn sent(&mut self, peer: &PeerRef, texts: &[Text], state: State) -> rusqlite::Result<Vec<i64>> {
        let stored = now_ms();
        let pid = JobPeers::default().pid(&self.conn, &mut self.pids, peer)?;
        let mut insert = self.conn.prepare_cached(INSERT)?;
        let mut existing = self.conn.prepare_cached(
            "SELECT seq FROM messages WHERE peer = ?1 AND outgoing = 1 AND id = ?2",
        )?;
        let mut seqs = Vec::with_capacity(texts.len());
        for text in texts {
            let n = insert.execute(params![
                pid,
                true,
                text.id,
                text.ts as i64,
                stored,
                text.body,
                code(state)
            ])?;
            seqs.push(if n == 1 {
                self.conn.last_insert_rowid()
            } else {
                existing.query_row(params![pid, text.id], |r| r.get(0))?
            });
        }
        Ok(seqs)
    }

    fn set_state(&mut self, peer: &str, ids: &[String], state: State) -> rusqlite::Result<()> {
        let Some(pid) = pid_of(&self.conn, &mut self.pids, peer)? else {
            return Ok(());
        };
        let mut update = self.conn.prepare_cached(
            "UPDATE messages SET state = ?1
             WHERE peer = ?2 AND outgoing = 1 AND id = ?3 AND state != ?4",
        )?;
        for id in ids {
            update.execute(params![code(state), pid, id, code(State::Delivered)])?;
        }
        Ok(())
    }

    /// Moves the conversation with `from` into the one with `into` (which
    /// takes over `from`'s row if it has none). Returns the messages moved.
    fn merge_peer(&mut self, from: &str, into: &str) -> rusqlite::Result<u64> {
        let Some(old) = pid_of(&self.conn, &mut self.pids, from)? else {
            return Ok(0);
        };
        self.pids.remove(from);
        self.pids.remove(into);
        let count: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM messages WHERE peer = ?1")?
            .query_row([old], |r| r.get(0))?;
        let new = self
            .conn
            .prepare_cached("SELECT pid FROM peers WHERE key = ?1")?
            .query_row([into], |r| r.get::<_, i64>(0))
            .optional()?;
        match new {
            None => {
                self.conn
                    .prepare_cached("UPDATE peers SET key = ?2 WHERE pid = ?1")?
                    .execute(params![old, into])?;
            }
            Some(new) => {
                // A text both conversations hold (the same id) is kept once.
                self.conn
                    .prepare_cached("UPDATE OR IGNORE messages SET peer = ?2 WHERE peer = ?1")?
                    .execute(params![old, new])?;
                self.conn
                    .prepare_cached("DELETE FROM messages WHERE peer = ?1")?
                    .execute([old])?;
                self.conn
                    .prepare_cached("DELETE FROM peers WHERE pid = ?1")?
                    .execute([old])?;
            }
        }
        Ok(count as u64)
    }

    fn outbox(&mut self) -> rusqlite::Result<Vec<(String, Text)>> {
        let mut select = self.conn.prepare_cached(
            "SELECT p.key, m.id, m.ts, m.body
             FROM messages AS m INDEXED BY messages_outbox JOIN peers AS p ON p.pid = m.peer
             WHERE m.outgoing = 1 AND m.state < 2
             ORDER BY m.seq",
        )?;
        select
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Text {
                        id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        ts: r.get::<_, i64>(2)? as u64,
                        body: r.get(3)?,
                    },
                ))
            })?
            .collect()
    }

    fn page(
        &mut self,
        peer: &str,
        before: Option<i64>,
        limit: usize,
    ) -> rusqlite::Result<(Vec<Record>, bool)> {
        let Some(pid) = pid_of(&self.conn, &mut self.pids, peer)? else {
            return Ok((Vec::new(), false));
        };
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages AS m
             WHERE m.peer = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3"
        ))?;
        let want = limit.saturating_add(1).min(i64::MAX as usize) as i64;
        let mut records: Vec<Record> = select
            .query_map(params![pid, before.unwrap_or(i64::MAX), want], |r| {
                record(r, peer)
            })?
            .collect::<rusqlite::Result<_>>()?;
        let more = records.len() > limit;
        records.truncate(limit);
        records.reverse();
        Ok((records, more))
    }

    fn search(
        &mut self,
        peer: Option<&str>,
        words: &str,
        limit: usize,
    ) -> rusqlite::Result<Vec<Record>> {
        let Some(query) = fts_query(words) else {
            return Ok(Vec::new());
        };
        let pid = match peer {
            Some(key) => match pid_of(&self.conn, &mut self.pids, key)? {
                Some(pid) => Some(pid),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, p.key FROM messages_fts AS f
             JOIN messages AS m ON m.seq = f.rowid JOIN peers AS p ON p.pid = m.peer
             WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.peer = ?2)
             ORDER BY f.rowid DESC LIMIT ?3"
        ))?;
        let limit = limit.min(i64::MAX as usize) as i64;
        select
            .query_map(params![query, pid, limit], |r| {
                let key: String = r.get(6)?;
                record(r, &key)
            })?
            .collect()
    }

    fn conversations(&mut self) -> rusqlite::Result<Vec<Conversation>> {
        let mut select = self.conn.prepare_cached(
            "WITH c AS (
                SELECT p.key, p.name, p.raw,
                    (SELECT seq FROM messages WHERE peer = p.pid ORDER BY seq DESC LIMIT 1) AS last,
                    (SELECT count(*) FROM messages INDEXED BY messages_outbox
                     WHERE peer = p.pid AND outgoing = 1 AND state < 2) AS undelivered
                FROM peers AS p)
             SELECT c.key, c.name, c.raw, m.ts, c.undelivered
             FROM c JOIN messages AS m ON m.seq = c.last
             ORDER BY c.last DESC",
        )?;
        select
            .query_map([], |r| {
                Ok(Conversation {
                    peer: r.get(0)?,
                    name: r.get(1)?,
                    raw: r.get(2)?,
                    last_ts: r.get::<_, i64>(3)? as u64,
                    undelivered: r.get::<_, i64>(4)? as u64,
                })
            })?
            .collect()
    }
}

/// The peers one job has named: each is written (inserted, or its name
/// updated) once per job and name, not once per text.
#[derive(Default)]
struct JobPeers {
    named: HashMap<String, (String, bool, i64)>,
}

impl JobPeers {
    fn pid(
        &mut self,
        conn: &Connection,
        pids: &mut HashMap<String, i64>,
        peer: &PeerRef,
    ) -> rusqlite::Result<i64> {
        if let Some((name, raw, pid)) = self.named.get(&peer.key)
            && *name == peer.name
            && *raw == peer.raw
        {
            return Ok(*pid);
        }
        conn.prepare_cached(
            "INSERT INTO peers (key, name, raw) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET name = excluded.name, raw = excluded.raw
             WHERE name IS NOT excluded.name OR raw IS NOT excluded.raw",
        )?
        .execute(params![peer.key, peer.name, peer.raw])?;
        let pid = pid_of(conn, pids, &peer.key)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        self.named
            .insert(peer.key.clone(), (peer.name.clone(), peer.raw, pid));
        Ok(pid)
    }
}

/// The row id of the peer with this key, if it has one.
fn pid_of(
    conn: &Connection,
    pids: &mut HashMap<String, i64>,
    key: &str,
) -> rusqlite::Result<Option<i64>> {
    if let Some(&pid) = pids.get(key) {
        return Ok(Some(pid));
    }
    let pid = conn
        .prepare_cached("SELECT pid FROM peers WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    if let Some(pid) = pid {
        pids.insert(key.to_owned(), pid);
    }
    Ok(pid)
}

/// A [`Record`] from the first six columns of [`COLUMNS`].
fn record(r: &rusqlite::Row<'_>, peer: &str) -> rusqlite::Result<Record> {
    Ok(Record {
        seq: r.get(0)?,
        peer: peer.to_owned(),
        outgoing: r.get(1)?,
        id: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        ts: r.get::<_, i64>(3)? as u64,
        body: r.get(4)?,
        state: state(r.get(5)?),
    })
}

/// The FTS5 query for what the user typed: every word quoted as a string
/// (so `"`, `OR`, `NEAR(`, `-`, `:` and `^` are only text), all required;
/// a word ending in `*` is a prefix. `None` when nothing is left to look for.
pub(super) fn fts_query(words: &str) -> Option<String> {
    let mut query = String::new();
    // NUL would end the query string for FTS5's parser.
    for word in words
        .split(|c: char| c.is_whitespace() || c == '\0')
        .filter(|w| !w.is_empty())
    {
        let (word, prefix) = match word.strip_suffix('*') {
            Some(stem) => (stem.trim_end_matches('*'), true),
            None => (word, false),
        };
        // A word with no letters or digits would be an empty phrase.
        if !word.chars().any(char::is_alphanumeric) {
            continue;
        }
        if !query.is_empty() {
            query.push(' ');
        }
        query.push('"');
        query.push_str(&word.replace('"', "\"\""));
        query.push('"');
        if prefix {
            query.push('*');
        }
    }
    (!query.is_empty()).then_some(query)
}

fn code(state: State) -> i64 {
    match state {
        State::Pending => 0,
        State::Sent => 1,
        State::Delivered => 2,
        State::Failed => 3,
    }
}

fn state(code: i64) -> State {
    match code {
        0 => State::Pending,
        1 => State::Sent,
        2 => State::Delivered,
        _ => State::Failed,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
