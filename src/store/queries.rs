//! The queries on the history: storing texts (received, ours), their
//! delivery states, the outbox, pages, search, conversations, and merging
//! two peers' conversations. Runs on the store's thread (see `db.rs`),
//! inside the transaction it opened.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::db::Db;
use super::{Conversation, PeerRef, Record, State, Unsent};
use crate::peer::{PeerId, PeerKind};
use crate::protocol::Text;

const INSERT: &str = "INSERT INTO messages (peer, outgoing, id, ts, stored, body, state)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";

/// A message's columns, its state as it is: a text of ours still pending
/// or sent is delivered once it has left `undelivered` (see `schema.rs`,
/// V3). Needs `LEFT JOIN undelivered AS u ON u.seq = m.seq`.
const COLUMNS: &str = "m.seq, m.outgoing, m.id, m.ts, m.body, CASE WHEN m.state < 2 AND u.seq IS NULL THEN 2 ELSE m.state END";

impl Db {
    pub(super) fn received(&mut self, texts: &[(PeerRef, Text)]) -> rusqlite::Result<Vec<bool>> {
        let stored = now_ms();
        let mut peers = JobPeers::default();
        let mut insert = self.conn.prepare_cached(INSERT)?;
        let mut new = Vec::with_capacity(texts.len());
        for (peer, text) in texts {
            let pid = peers.pid(&self.conn, &mut self.pids, peer)?;
            // Lines of a peer without message ids (a raw peer's are only a
            // count per connection) are never taken for copies.
            let id = peer
                .kind
                .is_none_or(|k| k.capabilities().message_ids)
                .then_some(text.id.as_str());
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

    pub(super) fn sent(
        &mut self,
        peer: &PeerRef,
        texts: &[Text],
        state: State,
    ) -> rusqlite::Result<Vec<i64>> {
        let stored = now_ms();
        let pid = JobPeers::default().pid(&self.conn, &mut self.pids, peer)?;
        let mut insert = self.conn.prepare_cached(INSERT)?;
        let mut existing = self.conn.prepare_cached(
            "SELECT seq FROM messages WHERE peer = ?1 AND outgoing = 1 AND id = ?2",
        )?;
        let mut waits = self
            .conn
            .prepare_cached("INSERT INTO undelivered (seq) VALUES (?1)")?;
        let undelivered = matches!(state, State::Pending | State::Sent);
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
                let seq = self.conn.last_insert_rowid();
                if undelivered {
                    waits.execute([seq])?;
                }
                seq
            } else {
                existing.query_row(params![pid, text.id], |r| r.get(0))?
            });
        }
        Ok(seqs)
    }

    /// Moves our texts with these ids to `peer` to `state` (see
    /// [`Db::set_state_by_seq`]); a text given up on that the peer
    /// acknowledges after all is delivered too.
    pub(super) fn set_state(
        &mut self,
        peer: &PeerId,
        ids: &[String],
        state: State,
    ) -> rusqlite::Result<()> {
        let Some(pid) = pid_of(&self.conn, &mut self.pids, peer)? else {
            return Ok(());
        };
        let mut seq_of = self.conn.prepare_cached(
            "SELECT seq FROM messages WHERE peer = ?1 AND outgoing = 1 AND id = ?2",
        )?;
        let mut seqs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(seq) = seq_of
                .query_row(params![pid, id], |r| r.get::<_, i64>(0))
                .optional()?
            {
                seqs.push(seq);
            }
        }
        drop(seq_of);
        if state == State::Delivered {
            let mut late = self
                .conn
                .prepare_cached("UPDATE messages SET state = ?1 WHERE seq = ?2 AND state = ?3")?;
            for seq in &seqs {
                late.execute(params![code(State::Delivered), seq, code(State::Failed)])?;
            }
        }
        self.set_state_by_seq(&seqs, state)
    }

    /// Moves our texts with these seqs, among those not delivered yet, to
    /// `state`: delivered, they leave `undelivered` (and only that: their
    /// row says pending or sent, and is delivered by not being listed);
    /// failed, they leave it too; pending or sent, they stay. A delivered
    /// text stays delivered. Runs of consecutive seqs (acks come in order)
    /// are one statement each.
    pub(super) fn set_state_by_seq(&mut self, seqs: &[i64], state: State) -> rusqlite::Result<()> {
        let mut update = self.conn.prepare_cached(
            "UPDATE messages SET state = ?1
             WHERE seq IN (SELECT seq FROM undelivered WHERE seq BETWEEN ?2 AND ?3)",
        )?;
        let mut done = self
            .conn
            .prepare_cached("DELETE FROM undelivered WHERE seq BETWEEN ?1 AND ?2")?;
        let mut sorted = seqs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut at = 0;
        while at < sorted.len() {
            let first = sorted[at];
            let mut last = first;
            while at + 1 < sorted.len() && sorted[at + 1] == last + 1 {
                at += 1;
                last = sorted[at];
            }
            if state != State::Delivered {
                update.execute(params![code(state), first, last])?;
            }
            if matches!(state, State::Delivered | State::Failed) {
                done.execute(params![first, last])?;
            }
            at += 1;
        }
        Ok(())
    }

    /// Moves the conversation with `from` into the one with `into` (which
    /// takes over `from`'s row if it has none). Returns the messages moved.
    pub(super) fn merge_peer(&mut self, from: &PeerId, into: &PeerId) -> rusqlite::Result<u64> {
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
            .query_row([into.as_str()], |r| r.get::<_, i64>(0))
            .optional()?;
        match new {
            None => {
                self.conn
                    .prepare_cached("UPDATE peers SET key = ?2 WHERE pid = ?1")?
                    .execute(params![old, into.as_str()])?;
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

    pub(super) fn outbox(&mut self) -> rusqlite::Result<Vec<Unsent>> {
        let mut select = self.conn.prepare_cached(
            "SELECT p.key, p.kind, p.addr, m.seq, m.id, m.ts, m.body
             FROM undelivered AS u JOIN messages AS m ON m.seq = u.seq
             JOIN peers AS p ON p.pid = m.peer
             ORDER BY u.seq",
        )?;
        select
            .query_map([], |r| {
                Ok(Unsent {
                    peer: PeerId::new(r.get::<_, String>(0)?),
                    kind: kind(r, 1)?,
                    seq: r.get(3)?,
                    text: Text {
                        id: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        ts: r.get::<_, i64>(5)? as u64,
                        body: r.get(6)?,
                    },
                })
            })?
            .collect()
    }

    pub(super) fn page(
        &mut self,
        peer: &PeerId,
        before: Option<i64>,
        limit: usize,
    ) -> rusqlite::Result<(Vec<Record>, bool)> {
        let Some(pid) = pid_of(&self.conn, &mut self.pids, peer)? else {
            return Ok((Vec::new(), false));
        };
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages AS m LEFT JOIN undelivered AS u ON u.seq = m.seq
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

    pub(super) fn search(
        &mut self,
        peer: Option<&PeerId>,
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
             LEFT JOIN undelivered AS u ON u.seq = m.seq
             WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.peer = ?2)
             ORDER BY f.rowid DESC LIMIT ?3"
        ))?;
        let limit = limit.min(i64::MAX as usize) as i64;
        select
            .query_map(params![query, pid, limit], |r| {
                let key = PeerId::new(r.get::<_, String>(6)?);
                record(r, &key)
            })?
            .collect()
    }

    pub(super) fn conversations(&mut self) -> rusqlite::Result<Vec<Conversation>> {
        let mut select = self.conn.prepare_cached(
            "WITH c AS (
                SELECT p.key, p.name, p.kind, p.addr,
                    (SELECT seq FROM messages WHERE peer = p.pid ORDER BY seq DESC LIMIT 1) AS last,
                    (SELECT count(*) FROM undelivered AS u JOIN messages AS m ON m.seq = u.seq
                     WHERE m.peer = p.pid) AS undelivered
                FROM peers AS p)
             SELECT c.key, c.name, c.kind, c.addr, m.ts, c.undelivered
             FROM c JOIN messages AS m ON m.seq = c.last
             ORDER BY c.last DESC",
        )?;
        select
            .query_map([], |r| {
                Ok(Conversation {
                    peer: PeerId::new(r.get::<_, String>(0)?),
                    name: r.get(1)?,
                    kind: kind(r, 2)?,
                    last_ts: r.get::<_, i64>(4)? as u64,
                    undelivered: r.get::<_, i64>(5)? as u64,
                })
            })?
            .collect()
    }

    /// What is stored of the peer with this key: its latest name and kind.
    pub(super) fn peer(&mut self, key: &PeerId) -> rusqlite::Result<Option<PeerRef>> {
        self.conn
            .prepare_cached("SELECT name, kind, addr FROM peers WHERE key = ?1")?
            .query_row([key.as_str()], |r| {
                Ok(PeerRef {
                    key: key.clone(),
                    name: Some(r.get(0)?),
                    kind: Some(kind(r, 1)?),
                })
            })
            .optional()
    }
}

/// The peers one job has named: each is written (inserted, or its name
/// and kind updated) once per job, not once per text.
#[derive(Default)]
pub(super) struct JobPeers {
    named: HashMap<PeerId, (Option<String>, Option<PeerKind>, i64)>,
}

impl JobPeers {
    /// The row id of `peer`, inserted or brought up to date. A name or kind
    /// left out keeps what is stored (a new row is named after its key,
    /// and is a lantalk peer).
    pub(super) fn pid(
        &mut self,
        conn: &Connection,
        pids: &mut HashMap<PeerId, i64>,
        peer: &PeerRef,
    ) -> rusqlite::Result<i64> {
        if let Some((name, kind, pid)) = self.named.get(&peer.key)
            && *name == peer.name
            && *kind == peer.kind
        {
            return Ok(*pid);
        }
        let kind = peer.kind.map(|k| k.name());
        let addr = peer.kind.and_then(|k| k.address()).map(|ip| ip.to_string());
        conn.prepare_cached(
            "INSERT INTO peers (key, name, kind, addr)
             VALUES (?1, coalesce(?2, ?1), coalesce(?3, 'lantalk'), ?4)
             ON CONFLICT (key) DO UPDATE SET
                 name = coalesce(?2, name),
                 kind = coalesce(?3, kind),
                 addr = CASE WHEN ?3 IS NULL THEN addr ELSE ?4 END
             WHERE name IS NOT coalesce(?2, name)
                OR kind IS NOT coalesce(?3, kind)
                OR (?3 IS NOT NULL AND addr IS NOT ?4)",
        )?
        .execute(params![peer.key.as_str(), peer.name, kind, addr])?;
        let pid = pid_of(conn, pids, &peer.key)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        self.named
            .insert(peer.key.clone(), (peer.name.clone(), peer.kind, pid));
        Ok(pid)
    }
}

/// The row id of the peer with this key, if it has one.
pub(super) fn pid_of(
    conn: &Connection,
    pids: &mut HashMap<PeerId, i64>,
    key: &PeerId,
) -> rusqlite::Result<Option<i64>> {
    if let Some(&pid) = pids.get(key) {
        return Ok(Some(pid));
    }
    let pid = conn
        .prepare_cached("SELECT pid FROM peers WHERE key = ?1")?
        .query_row([key.as_str()], |r| r.get(0))
        .optional()?;
    if let Some(pid) = pid {
        pids.insert(key.clone(), pid);
    }
    Ok(pid)
}

/// The kind in columns `at` (`kind`) and `at + 1` (`addr`). A kind this
/// version does not know is taken for a lantalk peer.
fn kind(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<PeerKind> {
    let name: String = r.get(at)?;
    let addr: Option<String> = r.get(at + 1)?;
    let addr = addr.and_then(|a| a.parse().ok());
    Ok(PeerKind::from_parts(&name, addr).unwrap_or_default())
}

/// A [`Record`] from the first six columns of [`COLUMNS`].
fn record(r: &rusqlite::Row<'_>, peer: &PeerId) -> rusqlite::Result<Record> {
    Ok(Record {
        seq: r.get(0)?,
        peer: peer.clone(),
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
