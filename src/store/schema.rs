//! The history database's schema and its migrations, and opening a file:
//! keeping it private, checking it is ours, WAL mode, bringing an older
//! file up to date. Nothing here runs queries on messages (see
//! `queries.rs`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::{DbError, StoreError};
use crate::files;

/// How long a statement waits for another process's write lock (a `lantalk
/// send` or `history` next to a running chat screen) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
///   the rowid, i.e. `seq`); `messages_outbox` held only our undelivered
///   texts (until version 3).
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

/// Schema version 2: each peer's kind (see `crate::peer::PeerKind`), in
/// place of the `raw` flag.
///
/// - `kind`: `lantalk` or `raw` (as `PeerKind::name` writes it); a later
///   kind that an older lantalk would misread comes with a schema version
///   of its own.
/// - `addr`: the address of a `raw` peer (a raw peer is known by it).
///
/// Files from version 1 kept a raw peer under the key `raw-ADDRESS`: its
/// address is taken from there, once, here.
const V2: &str = "
ALTER TABLE peers ADD COLUMN kind TEXT NOT NULL DEFAULT 'lantalk';
ALTER TABLE peers ADD COLUMN addr TEXT;
UPDATE peers SET kind = 'raw', addr = substr(key, 5) WHERE raw = 1;
ALTER TABLE peers DROP COLUMN raw;
";

/// Schema version 3: our texts not delivered yet are listed in a table of
/// their own, `undelivered`, in place of the index `messages_outbox`.
///
/// A text of ours is stored before it leaves, as pending or sent, and
/// listed there; its acknowledgement only takes it off the list (a row of
/// a few bytes), instead of rewriting its row in `messages` and an index
/// entry: half the work of storing our texts. So a text of ours whose row
/// says pending or sent is delivered when it is not listed; one given up on
/// says failed and is not listed. The list is the outbox to send after a
/// restart.
const V3: &str = "
CREATE TABLE undelivered (
    seq INTEGER PRIMARY KEY REFERENCES messages(seq) ON DELETE CASCADE
) STRICT;
INSERT INTO undelivered (seq) SELECT seq FROM messages WHERE outgoing = 1 AND state < 2;
DROP INDEX messages_outbox;
";

/// The schema's history: `MIGRATIONS[n]` takes version n to n + 1. Only
/// ever append; a file is at version `user_version`.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// Why opening failed, before it is tied to the file's path.
pub(super) enum OpenError {
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
    pub(super) fn into_error(self, path: &Path) -> StoreError {
        let path = path.display().to_string();
        match self {
            OpenError::Sqlite(e) => {
                let unwritable = matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
                );
                let source = DbError::Sqlite(Arc::new(e));
                if unwritable {
                    StoreError::Unwritable { path, source }
                } else {
                    StoreError::Db { path, source }
                }
            }
            OpenError::Refused(why) => StoreError::Db {
                path,
                source: DbError::Unusable(why),
            },
            OpenError::ReadOnly => StoreError::Unwritable {
                path,
                source: DbError::Unusable(
                    "the file can only be read (read-only file or file system)".into(),
                ),
            },
        }
    }
}

/// The files SQLite keeps beside the database in WAL mode.
const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// Keeps the database and its companions readable by their owner only.
/// SQLite creates a database 0644, but creates its `-wal` and `-shm` files
/// with the mode of the database file: so a database it is about to create
/// is created here first, empty and 0600 (an empty file is an empty
/// database to SQLite), and an older one made by an earlier lantalk, with
/// any companions, is narrowed to 0600. Nothing here fails: what cannot be
/// created or changed is for opening to report (a read-only directory).
fn make_private(path: &Path, create: bool) {
    if create {
        // Already there (the usual case), or for SQLite to fail on.
        let _ = files::create_private(path);
    }
    let companion = |suffix: &str| {
        let mut name = OsString::from(path.as_os_str());
        name.push(suffix);
        PathBuf::from(name)
    };
    for file in std::iter::once(path.to_owned()).chain(COMPANIONS.map(companion)) {
        if let Ok(Some(was)) = files::make_private(&file) {
            tracing::info!("made {} private (it was {was:04o})", file.display());
        }
    }
}

/// Opens the file, checks it is a database, and brings its schema up to date.
pub(super) fn connect(path: &Path, create: bool) -> Result<Connection, OpenError> {
    make_private(path, create);
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
