//! The history database through its public handle, on real files in
//! temporary directories.

use std::net::IpAddr;

use super::queries::fts_query;
use super::*;

fn peer(key: &str, name: &str) -> PeerRef {
    PeerRef::new(key.into(), name, PeerKind::Lantalk)
}

fn text(id: &str, ts: u64, body: &str) -> Text {
    Text {
        id: id.into(),
        ts,
        body: body.into(),
    }
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Opens the file directly, as another program would.
fn sqlite(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(Store::file_in(dir.path())).unwrap()
}

fn integrity(dir: &tempfile::TempDir) -> String {
    sqlite(dir)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn an_empty_directory_gets_a_migrated_wal_database_and_opens_again() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    assert_eq!(store.path(), d.path().join("history.sqlite3"));
    assert!(store.conversations().await.unwrap().is_empty());
    drop(store);

    let conn = sqlite(&d);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for expected in [
        "messages",
        "messages_by_peer",
        "messages_fts",
        "undelivered",
        "peers",
    ] {
        assert!(tables.iter().any(|t| t == expected), "{tables:?}");
    }
    drop(conn);

    // Opened again: nothing to migrate, and it works.
    let store = Store::open(d.path()).unwrap();
    let new = store
        .received(vec![(peer(A, "phone"), text("1", 1, "hi"))])
        .await
        .unwrap();
    assert_eq!(new, [true]);
    assert_eq!(integrity(&d), "ok");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error_naming_it() {
    let d = dir();
    let file = d.path().join("history.sqlite3");
    std::fs::write(&file, "this is not SQLite, just text long enough to be a header ...........................................").unwrap();
    let err = Store::open(d.path()).unwrap_err();
    assert!(matches!(err, StoreError::Db { .. }), "{err:?}");
    let msg = crate::error_chain(&err);
    assert!(
        msg.contains(&file.display().to_string()) && msg.contains("not a database"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_lantalk_is_refused() {
    let d = dir();
    drop(Store::open(d.path()).unwrap());
    sqlite(&d)
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let msg = crate::error_chain(&Store::open(d.path()).unwrap_err());
    assert!(
        msg.contains("history.sqlite3") && msg.contains("newer lantalk"),
        "{msg}"
    );
}

/// A file written by the version before peer kinds (schema 1, a `raw`
/// flag and `raw-ADDRESS` keys) opens with each peer's kind.
#[tokio::test]
async fn a_file_from_before_peer_kinds_gets_their_kinds() {
    let d = dir();
    {
        let conn = rusqlite::Connection::open(d.path().join("history.sqlite3")).unwrap();
        conn.execute_batch(super::schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO peers (key, name, raw) VALUES
                 ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'phone', 0),
                 ('raw-192.168.1.23', 'raw 192.168.1.23:5000', 1);
             INSERT INTO messages (peer, outgoing, id, ts, stored, body, state) VALUES
                 (1, 0, 'x1', 1, 1, 'from the phone', 2),
                 (2, 0, NULL, 2, 2, 'from nc', 2),
                 (1, 1, 'o1', 3, 3, 'still waiting', 0);",
        )
        .unwrap();
    }
    let store = Store::open(d.path()).unwrap();
    let list = store.conversations().await.unwrap();
    let kinds: Vec<(&str, PeerKind)> = list.iter().map(|c| (c.peer.as_str(), c.kind)).collect();
    let raw = PeerKind::Raw("192.168.1.23".parse().unwrap());
    assert_eq!(kinds, [(A, PeerKind::Lantalk), ("raw-192.168.1.23", raw)]);
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].kind, PeerKind::Lantalk);
    // Known peers keep their rows: a text from the raw address goes on.
    let nc = PeerRef::new(
        PeerId::raw("192.168.1.23".parse().unwrap()),
        "raw 192.168.1.23:5001",
        raw,
    );
    store
        .received(vec![(nc, text("9", 4, "again"))])
        .await
        .unwrap();
    assert_eq!(store.conversations().await.unwrap().len(), 2);
    assert_eq!(integrity(&d), "ok");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The database and the files SQLite keeps beside it while it is open.
fn db_files(d: &tempfile::TempDir) -> [std::path::PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| d.path().join(format!("history.sqlite3{suffix}")))
}

#[tokio::test]
async fn the_database_and_its_wal_are_private() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    store
        .received(vec![(peer(A, "phone"), text("p-1", 10, "secret"))])
        .await
        .unwrap();
    for file in db_files(&d) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // Files an earlier lantalk left 0644 (a WAL too, while another
    // process has it open) are narrowed when opened, by `history` (which
    // never creates) too.
    for file in db_files(&d) {
        set_mode(&file, 0o644);
    }
    let reader = Store::open_existing(d.path()).unwrap();
    for file in db_files(&d) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(reader.conversations().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_older_database_made_0644_is_narrowed_and_its_new_wal_follows() {
    let d = dir();
    // As an earlier lantalk left it: 0644, in WAL mode, closed (no WAL).
    let conn = sqlite(&d);
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let [db, wal, shm] = db_files(&d);
    assert_eq!(mode(&db), 0o644);
    assert!(!wal.exists());

    let store = Store::open(d.path()).unwrap();
    assert!(store.conversations().await.unwrap().is_empty());
    for file in [db, wal, shm] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn open_existing_never_creates_and_an_unusable_directory_is_unwritable() {
    let d = dir();
    let err = Store::open_existing(d.path()).unwrap_err();
    assert!(matches!(err, StoreError::Unwritable { .. }), "{err:?}");
    assert!(!Store::file_in(d.path()).exists());

    // A data directory below a regular file cannot exist.
    let file = d.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = Store::open(&file.join("lantalk")).unwrap_err();
    assert!(matches!(err, StoreError::Unwritable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_text_received_twice_is_stored_once_also_after_reopening() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    let batch = vec![
        (peer(A, "phone"), text("p-1", 10, "one")),
        (peer(A, "phone"), text("p-2", 11, "two")),
        (peer(A, "phone"), text("p-1", 10, "one")), // in the same batch
        (peer(B, "tablet"), text("p-1", 12, "same id, other peer")),
    ];
    assert_eq!(
        store.received(batch).await.unwrap(),
        [true, true, false, true]
    );
    drop(store);

    let store = Store::open(d.path()).unwrap();
    let again = vec![
        (peer(A, "phone"), text("p-2", 11, "two")),
        (peer(A, "phone"), text("p-3", 13, "three")),
    ];
    assert_eq!(store.received(again).await.unwrap(), [false, true]);
    let (records, more) = store.page(A.into(), None, 10).await.unwrap();
    assert!(!more);
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);
    assert!(
        records
            .iter()
            .all(|r| !r.outgoing && r.state == State::Delivered)
    );
    assert!(records.iter().all(|r| r.peer == A));
    assert_eq!(records[0].ts, 10);
    assert_eq!(records[0].id, "p-1");
    // Our own text with the same id is another message.
    store
        .sent(peer(A, "phone"), text("p-1", 20, "mine"), State::Sent)
        .await
        .unwrap();
    assert_eq!(store.page(A.into(), None, 10).await.unwrap().0.len(), 4);
}

#[tokio::test]
async fn raw_lines_are_never_duplicates_and_raw_peers_are_keyed_by_ip() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    let ip: IpAddr = "::ffff:192.168.1.23".parse().unwrap();
    let key = PeerId::raw(ip);
    let kind = PeerKind::Raw(ip.to_canonical());
    let raw = |port: u16| PeerRef::new(key.clone(), format!("raw 192.168.1.23:{port}"), kind);
    // Two connections: both count their lines from 1.
    let first = vec![
        (raw(5000), text("1", 1, "a")),
        (raw(5000), text("2", 2, "b")),
    ];
    let second = vec![(raw(5001), text("1", 3, "c"))];
    assert_eq!(store.received(first).await.unwrap(), [true, true]);
    assert_eq!(store.received(second).await.unwrap(), [true]);
    let (records, _) = store.page(key.clone(), None, 10).await.unwrap();
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["a", "b", "c"]);
    assert!(records.iter().all(|r| r.id.is_empty()));
    let conversations = store.conversations().await.unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].peer, key);
    assert_eq!(conversations[0].kind, kind);
    assert_eq!(conversations[0].name, "raw 192.168.1.23:5001");
}

#[tokio::test]
async fn our_texts_go_through_states_and_the_outbox_keeps_their_order() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    let s1 = store
        .sent(peer(A, "phone"), text("m1", 1, "first"), State::Pending)
        .await
        .unwrap();
    let s2 = store
        .sent(peer(B, "tablet"), text("m2", 2, "second"), State::Sent)
        .await
        .unwrap();
    let seqs = store
        .sent_batch(
            peer(A, "phone"),
            vec![text("m3", 3, "third"), text("m4", 4, "fourth")],
            State::Pending,
        )
        .await
        .unwrap();
    assert!(s1 < s2 && s2 < seqs[0] && seqs[0] < seqs[1]);
    // Storing an id again is a no-op returning its seq.
    let again = store
        .sent(peer(A, "phone"), text("m1", 1, "first"), State::Sent)
        .await
        .unwrap();
    assert_eq!(again, s1);

    let outbox = store.outbox().await.unwrap();
    let ids: Vec<(&str, &str)> = outbox
        .iter()
        .map(|u| (u.peer.as_str(), u.text.id.as_str()))
        .collect();
    assert_eq!(ids, [(A, "m1"), (B, "m2"), (A, "m3"), (A, "m4")]);
    assert_eq!(outbox[0].text, text("m1", 1, "first"));
    assert_eq!(outbox[0].seq, s1);

    store
        .set_state(A.into(), vec!["m1".into(), "m3".into()], State::Delivered)
        .await
        .unwrap();
    store
        .set_state(B.into(), vec!["m2".into()], State::Failed)
        .await
        .unwrap();
    // Delivered stays delivered; unknown ids and peers are ignored.
    store
        .set_state(A.into(), vec!["m1".into(), "nope".into()], State::Pending)
        .await
        .unwrap();
    store
        .set_state("unknown".into(), vec!["m1".into()], State::Failed)
        .await
        .unwrap();
    let outbox = store.outbox().await.unwrap();
    let ids: Vec<&str> = outbox.iter().map(|u| u.text.id.as_str()).collect();
    assert_eq!(ids, ["m4"]);
    let (records, _) = store.page(A.into(), None, 10).await.unwrap();
    let states: Vec<State> = records.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Delivered, State::Delivered, State::Pending]);
    assert!(records.iter().all(|r| r.outgoing));
    let (records, _) = store.page(B.into(), None, 10).await.unwrap();
    assert_eq!(records[0].state, State::Failed);

    // Reopened: the outbox is still there.
    drop(store);
    let store = Store::open(d.path()).unwrap();
    assert_eq!(store.outbox().await.unwrap().len(), 1);
    let conversations = store.conversations().await.unwrap();
    let a = conversations.iter().find(|c| c.peer == A).unwrap();
    assert_eq!(a.undelivered, 1);
}

#[tokio::test]
async fn pages_go_back_in_time_and_say_when_there_is_more() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    let texts: Vec<(PeerRef, Text)> = (1..=25)
        .map(|i| (peer(A, "phone"), text(&format!("{i}"), i, &format!("m{i}"))))
        .collect();
    store.received(texts).await.unwrap();
    // Another conversation in between does not show up in A's pages.
    store
        .received(vec![(peer(B, "tablet"), text("x", 0, "other"))])
        .await
        .unwrap();

    let bodies = |r: &[Record]| r.iter().map(|r| r.body.clone()).collect::<Vec<_>>();
    let (newest, more) = store.page(A.into(), None, 10).await.unwrap();
    assert!(more);
    assert_eq!(
        bodies(&newest),
        (16..=25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let (middle, more) = store.page(A.into(), Some(newest[0].seq), 10).await.unwrap();
    assert!(more);
    assert_eq!(
        bodies(&middle),
        (6..=15).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let (oldest, more) = store.page(A.into(), Some(middle[0].seq), 10).await.unwrap();
    assert!(!more, "exactly the rest: nothing older");
    assert_eq!(
        bodies(&oldest),
        (1..=5).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );

    // Exactly `limit` left: no more.
    let (five, more) = store.page(A.into(), Some(middle[0].seq), 5).await.unwrap();
    assert_eq!(five.len(), 5);
    assert!(!more);
    let (none, more) = store.page(A.into(), Some(oldest[0].seq), 10).await.unwrap();
    assert!(none.is_empty() && !more);
    let (all, more) = store.page(A.into(), None, 1000).await.unwrap();
    assert_eq!(all.len(), 25);
    assert!(!more);
    let (unknown, more) = store.page("nobody".into(), None, 10).await.unwrap();
    assert!(unknown.is_empty() && !more);
}

#[test]
fn fts_queries_quote_every_word() {
    assert_eq!(
        fts_query("hello world").as_deref(),
        Some(r#""hello" "world""#)
    );
    assert_eq!(fts_query("  din*  ").as_deref(), Some(r#""din"*"#));
    assert_eq!(fts_query(r#"foo" OR "#).as_deref(), Some(r#""foo""" "OR""#));
    assert_eq!(fts_query("NEAR(a b)").as_deref(), Some(r#""NEAR(a" "b)""#));
    assert_eq!(fts_query("* ** - \" 👍"), None);
    assert_eq!(fts_query(""), None);
    assert_eq!(fts_query("a\0b").as_deref(), Some(r#""a" "b""#));
}

/// Whatever the user types, the search runs (no FTS5 syntax error).
#[test]
fn any_query_is_searched_without_error() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let d = dir();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Store::open(d.path()).unwrap();
    rt.block_on(store.received(vec![(peer(A, "a"), text("1", 1, "some words here"))]))
        .unwrap();
    let words = proptest::string::string_regex(r#"\PC*|["*()^:+\-\\ a-zA-Z\x00]{0,30}"#).unwrap();
    TestRunner::new(Config::with_cases(500))
        .run(&words, |words| {
            rt.block_on(store.search(None, words.clone(), 10))
                .map(drop)
                .map_err(|e| TestCaseError::fail(format!("{words:?}: {e}")))
        })
        .unwrap();
}

#[tokio::test]
async fn search_finds_words_and_never_parses_the_query() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    store
        .received(vec![
            (
                peer(A, "phone"),
                text("1", 1, "Dinner is at 8, bring the cake"),
            ),
            (peer(A, "phone"), text("2", 2, "the café is closed")),
            (peer(B, "tablet"), text("1", 3, "dinner? OR what")),
            (peer(A, "phone"), text("3", 4, r#"he said "foo" and left"#)),
        ])
        .await
        .unwrap();
    store
        .sent(
            peer(B, "tablet"),
            text("o1", 5, "DINNER at mine"),
            State::Sent,
        )
        .await
        .unwrap();

    let found = |peer: Option<&str>, words: &str| {
        let store = store.clone();
        let (peer, words) = (peer.map(PeerId::new), words.to_owned());
        async move {
            store
                .search(peer, words, 100)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .map(|r| r.body)
                .collect::<Vec<_>>()
        }
    };
    // Newest first, every conversation, case-insensitive, ours and theirs.
    assert_eq!(
        found(None, "dinner").await,
        [
            "DINNER at mine",
            "dinner? OR what",
            "Dinner is at 8, bring the cake"
        ]
    );
    assert_eq!(
        found(Some(A), "dinner").await,
        ["Dinner is at 8, bring the cake"]
    );
    assert_eq!(
        found(Some(A), "cake dinner").await,
        ["Dinner is at 8, bring the cake"]
    );
    assert!(found(Some(A), "cake nothing").await.is_empty());
    assert_eq!(
        found(Some(A), "din*").await,
        ["Dinner is at 8, bring the cake"]
    );
    assert!(
        found(Some(A), "din").await.is_empty(),
        "whole words unless *"
    );
    assert_eq!(found(None, "cafe").await, ["the café is closed"]);
    assert!(found(Some("nobody"), "dinner").await.is_empty());

    // Hostile or odd queries: matched as words, never an error.
    for words in [
        r#"foo" OR "#,
        "\"",
        "OR",
        "AND NOT",
        "NEAR(dinner cake, 2)",
        "body:dinner",
        "-dinner",
        "^dinner",
        "dinner)",
        "(((",
        "*",
        "a\0b",
        "🍰",
        "",
        "   ",
    ] {
        store
            .search(None, words.into(), 10)
            .await
            .unwrap_or_else(|e| panic!("{words:?}: {e}"));
    }
    assert_eq!(
        found(None, r#"foo" said"#).await,
        [r#"he said "foo" and left"#]
    );
    assert_eq!(found(None, "OR").await, ["dinner? OR what"]);
    assert!(found(None, "*").await.is_empty());

    // The limit keeps the newest.
    let two = store.search(None, "dinner".into(), 2).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].body, "DINNER at mine");
    assert_eq!(two[1].peer, B);
}

#[tokio::test]
async fn conversations_are_newest_first_and_a_rename_keeps_one() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    store
        .received(vec![(peer(A, "phone"), text("1", 100, "from the phone"))])
        .await
        .unwrap();
    store
        .sent(
            peer(B, "tablet"),
            text("o1", 200, "to the tablet"),
            State::Pending,
        )
        .await
        .unwrap();
    let list = store.conversations().await.unwrap();
    let keys: Vec<&str> = list.iter().map(|c| c.peer.as_str()).collect();
    assert_eq!(keys, [B, A]);
    assert_eq!(list[0].name, "tablet");
    assert_eq!(list[0].undelivered, 1);
    assert_eq!(list[0].last_ts, 200);
    assert_eq!(list[0].kind, PeerKind::Lantalk);

    // The phone renamed itself: same key, one conversation, the new name, first.
    store
        .received(vec![(
            peer(A, "Rodrigo's phone"),
            text("2", 300, "renamed"),
        )])
        .await
        .unwrap();
    let list = store.conversations().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].peer, A);
    assert_eq!(list[0].name, "Rodrigo's phone");
    assert_eq!(list[0].last_ts, 300);
    assert_eq!(list[0].undelivered, 0);
    let (records, _) = store.page(A.into(), None, 10).await.unwrap();
    assert_eq!(records.len(), 2);

    // A rename in the middle of a batch: the last name wins.
    store
        .received(vec![
            (peer(B, "tablet 2"), text("t1", 400, "x")),
            (peer(B, "tablet 3"), text("t2", 401, "y")),
        ])
        .await
        .unwrap();
    let list = store.conversations().await.unwrap();
    assert_eq!(list[0].name, "tablet 3");
}

#[tokio::test]
async fn timestamps_keep_all_64_bits() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    store
        .received(vec![
            (peer(A, "phone"), text("1", u64::MAX, "far future")),
            (peer(A, "phone"), text("2", 0, "epoch")),
        ])
        .await
        .unwrap();
    let (records, _) = store.page(A.into(), None, 10).await.unwrap();
    assert_eq!(records[0].ts, u64::MAX);
    assert_eq!(records[1].ts, 0);
    assert_eq!(store.conversations().await.unwrap()[0].last_ts, 0);
}

#[tokio::test]
async fn many_concurrent_batches_are_all_committed_and_the_file_stays_intact() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    // 40 callers at once, 50 batches each: jobs share transactions.
    let mut tasks = Vec::new();
    for caller in 0..40u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("{caller:032x}");
            for batch in 0..50u64 {
                let texts: Vec<(PeerRef, Text)> = (0..(1 + batch % 7))
                    .map(|i| {
                        let id = format!("{batch}-{i}");
                        (
                            peer(&key, "p"),
                            text(&id, batch, &format!("body {caller} {id}")),
                        )
                    })
                    .collect();
                let n = texts.len();
                let new = store.received(texts).await.unwrap();
                assert_eq!(new, vec![true; n]);
                if batch % 10 == 0 {
                    store
                        .sent(
                            peer(&key, "p"),
                            text(&format!("o{batch}"), batch, "ours"),
                            State::Sent,
                        )
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let per_caller: u64 = (0..50u64).map(|b| 1 + b % 7).sum::<u64>() + 5;
    let count: i64 = sqlite(&d)
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count as u64, 40 * per_caller);
    assert_eq!(store.conversations().await.unwrap().len(), 40);
    assert_eq!(integrity(&d), "ok");
    // The full-text index agrees with the table.
    sqlite(&d)
        .execute_batch("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        .unwrap();
    assert_eq!(
        store.search(None, "ours".into(), 1000).await.unwrap().len(),
        200
    );
}

#[tokio::test]
async fn two_handles_on_one_file_share_it() {
    // As `lantalk send` next to a running chat screen: two connections.
    let d = dir();
    let one = Store::open(d.path()).unwrap();
    let two = Store::open(d.path()).unwrap();
    let writes = |store: Store, key: &'static str| async move {
        for i in 0..200 {
            store
                .received(vec![(peer(key, "p"), text(&i.to_string(), i, "x"))])
                .await
                .unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(writes(one.clone(), A)),
        tokio::spawn(writes(two.clone(), B))
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(one.page(B.into(), None, 1000).await.unwrap().0.len(), 200);
    assert_eq!(two.page(A.into(), None, 1000).await.unwrap().0.len(), 200);
}

#[tokio::test]
async fn a_failing_job_does_not_take_its_neighbours_down() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    // Break the table behind the store's back: inserts into it now fail.
    sqlite(&d)
        .execute_batch(
            "CREATE TRIGGER no_b BEFORE INSERT ON messages
             WHEN new.peer = (SELECT pid FROM peers WHERE key = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')
             BEGIN SELECT raise(ABORT, 'refused'); END;
             INSERT INTO peers (key, name) VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'b');",
        )
        .unwrap();
    // Many jobs at once, so that they share transactions: every other one fails.
    let jobs = (0..200).map(|i| {
        let store = store.clone();
        async move {
            let texts = if i % 2 == 0 {
                vec![(peer(A, "a"), text(&format!("ok-{i}"), 1, "fine"))]
            } else {
                vec![
                    (
                        peer(A, "a"),
                        text(&format!("gone-{i}"), 2, "rolled back with its job"),
                    ),
                    (peer(B, "b"), text(&format!("{i}"), 1, "refused")),
                ]
            };
            store.received(texts).await
        }
    });
    let results = futures_util::future::join_all(jobs).await;
    for (i, result) in results.into_iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(result.unwrap(), [true], "job {i}");
        } else {
            let msg = crate::error_chain(&result.unwrap_err());
            assert!(
                msg.contains("history.sqlite3") && msg.contains("refused"),
                "{msg}"
            );
        }
    }
    let (records, _) = store.page(A.into(), None, 1000).await.unwrap();
    assert_eq!(records.len(), 100);
    assert!(records.iter().all(|r| r.body == "fine"));
    assert_eq!(integrity(&d), "ok");
}

#[tokio::test]
async fn a_conversation_carries_over_to_a_new_id_keeping_each_text_once() {
    let dir = dir();
    let store = Store::open(dir.path()).unwrap();
    store
        .received(vec![
            (peer(A, "bob"), text("1", 1, "old one")),
            (peer(A, "bob"), text("2", 2, "old two")),
        ])
        .await
        .unwrap();
    store
        .sent(peer(A, "bob"), text("m1", 3, "waiting"), State::Pending)
        .await
        .unwrap();
    // Into an id without history: the conversation is re-keyed.
    assert_eq!(store.merge_peer(A.into(), B.into()).await.unwrap(), 3);
    let (records, _) = store.page(B.into(), None, 10).await.unwrap();
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["old one", "old two", "waiting"]);
    assert!(store.page(A.into(), None, 10).await.unwrap().0.is_empty());
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        outbox[0].peer, B,
        "the undelivered text now waits for the new id"
    );

    // Into an id that has history of its own: merged in order, a text both
    // hold kept once, and the old conversation gone.
    const C: &str = "cccccccccccccccccccccccccccccccc";
    store
        .received(vec![
            (peer(C, "bob"), text("2", 2, "old two")),
            (peer(C, "bob"), text("3", 4, "new three")),
        ])
        .await
        .unwrap();
    assert_eq!(store.merge_peer(C.into(), B.into()).await.unwrap(), 2);
    let (records, _) = store.page(B.into(), None, 10).await.unwrap();
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["old one", "old two", "waiting", "new three"]);
    let keys: Vec<PeerId> = store
        .conversations()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.peer)
        .collect();
    assert_eq!(keys, [PeerId::new(B)]);
    // Texts still arrive under the new id afterwards.
    store
        .received(vec![(peer(B, "bob"), text("4", 5, "after"))])
        .await
        .unwrap();
    assert_eq!(store.page(B.into(), None, 10).await.unwrap().0.len(), 5);
    assert_eq!(
        store
            .merge_peer("dddddddddddddddddddddddddddddddd".into(), B.into())
            .await
            .unwrap(),
        0,
        "nothing to carry over"
    );
    assert_eq!(integrity(&dir), "ok");
}

/// Marking by seq: runs and gaps, a delivered text stays delivered, other
/// peers' texts and received ones are not touched.
#[tokio::test]
async fn states_by_seq_touch_only_the_texts_named() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    let texts: Vec<Text> = (1..=6).map(|i| text(&format!("s{i}"), i, "x")).collect();
    let seqs = store
        .sent_batch(peer(A, "a"), texts, State::Sent)
        .await
        .unwrap();
    let theirs = store
        .received(vec![(peer(A, "a"), text("r1", 7, "theirs"))])
        .await
        .unwrap();
    assert_eq!(theirs, [true]);
    let other = store
        .sent(peer(B, "b"), text("o1", 8, "other"), State::Sent)
        .await
        .unwrap();
    // s1, s2, s3 and s5 delivered (a gap at s4); then s2 and s4 failed.
    let delivered = vec![seqs[2], seqs[0], seqs[1], seqs[4]];
    store
        .set_state_by_seq(delivered, State::Delivered)
        .await
        .unwrap();
    store
        .set_state_by_seq(vec![seqs[1], seqs[3]], State::Failed)
        .await
        .unwrap();
    let (records, _) = store.page(A.into(), None, 10).await.unwrap();
    let states: Vec<(&str, State)> = records.iter().map(|r| (r.id.as_str(), r.state)).collect();
    assert_eq!(
        states,
        [
            ("s1", State::Delivered),
            ("s2", State::Delivered),
            ("s3", State::Delivered),
            ("s4", State::Failed),
            ("s5", State::Delivered),
            ("s6", State::Sent),
            ("r1", State::Delivered),
        ]
    );
    let (records, _) = store.page(B.into(), None, 10).await.unwrap();
    assert_eq!((records[0].seq, records[0].state), (other, State::Sent));
}

/// A text given up on that the peer acknowledges after all (its ack was
/// on its way) is delivered; one delivered is never failed afterwards.
#[tokio::test]
async fn a_late_ack_delivers_a_failed_text_but_nothing_undelivers_one() {
    let d = dir();
    let store = Store::open(d.path()).unwrap();
    store
        .sent_batch(
            peer(A, "a"),
            vec![text("f1", 1, "given up"), text("d1", 2, "delivered")],
            State::Sent,
        )
        .await
        .unwrap();
    store
        .set_state(A.into(), vec!["f1".into()], State::Failed)
        .await
        .unwrap();
    store
        .set_state(A.into(), vec!["d1".into()], State::Delivered)
        .await
        .unwrap();
    assert!(store.outbox().await.unwrap().is_empty());
    store
        .set_state(A.into(), vec!["f1".into()], State::Delivered)
        .await
        .unwrap();
    for state in [State::Failed, State::Pending, State::Sent] {
        store
            .set_state(A.into(), vec!["d1".into()], state)
            .await
            .unwrap();
    }
    let (records, _) = store.page(A.into(), None, 10).await.unwrap();
    let states: Vec<State> = records.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Delivered, State::Delivered]);
    assert_eq!(store.conversations().await.unwrap()[0].undelivered, 0);
}
