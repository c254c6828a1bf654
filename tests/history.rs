//! History against the real binary over loopback (`--no-mdns`): what
//! `listen` stores survives restarts and a SIGKILL in the middle of a burst,
//! and `lantalk history` prints it, searches it and names what it knows.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::local::*;
use serde_json::Value;

/// `lantalk --no-mdns --data-dir DIR history ARGS...`, run to completion.
fn history(dir: &Path, args: &[&str]) -> Finished {
    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(dir).arg("history").args(args);
    run(cmd, None, WAIT)
}

/// The `--json` lines of `history`, parsed.
fn history_json(dir: &Path, peer: &str, limit: usize) -> Vec<Value> {
    let out = history(dir, &[peer, "--json", "--limit", &limit.to_string()]);
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// What `listen` stored is there after it restarts, under the sender's id:
/// a sender that comes back under another name continues the conversation,
/// and a text the sender resends is not printed twice.
#[test]
fn history_survives_restarts_and_follows_the_peer_id() {
    let laptop = data_dir();
    let phone = data_dir();
    let mut listen = Listen::start_in(
        laptop.path(),
        &["--port", "0", "--name", "laptop", "listen"],
    );
    send(
        &listen.addr(),
        phone.path(),
        "phone",
        &["before", "the", "restart"],
    )
    .assert_success();
    listen.wait_for_stdout_line(|l| l == "phone: before the restart", WAIT);
    listen.child.kill().unwrap();
    listen.child.wait().unwrap();

    let listen = Listen::start_in(
        laptop.path(),
        &["--port", "0", "--name", "laptop", "listen"],
    );
    // The same phone (same data directory, so the same id), renamed.
    send(&listen.addr(), phone.path(), "new phone", &["after", "it"]).assert_success();
    listen.wait_for_stdout_line(|l| l == "new phone: after it", WAIT);

    let out = history(laptop.path(), &["new phone"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].ends_with(" new phone: before the restart"),
        "{}",
        out.stdout
    );
    assert!(lines[1].ends_with(" new phone: after it"), "{}", out.stdout);
    // The sender keeps its side too: both texts, ours, delivered.
    let sent = history_json(phone.path(), "laptop", 10);
    let bodies: Vec<&str> = sent.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["before the restart", "after it"]);
    assert!(
        sent.iter()
            .all(|r| r["outgoing"] == true && r["state"] == "delivered"),
        "{sent:?}"
    );
    // The old name is not a conversation of its own.
    let old = history(laptop.path(), &["phone"]);
    assert_eq!(old.code(), Some(3), "{}", old.stdout);
    assert!(old.stderr.contains("\"new phone\""), "{}", old.stderr);
}

/// `listen` is SIGKILLed in the middle of a 10,000-text burst. Every text
/// the sender saw acknowledged is in the receiver's history, the database
/// is intact, and after a restart the rest can be sent again without any
/// text stored twice.
#[test]
fn a_killed_receiver_keeps_every_acknowledged_text() {
    const N: usize = 10_000;
    let laptop = data_dir();
    let mut listen = Listen::start_in(
        laptop.path(),
        &["--port", "0", "--name", "laptop", "listen"],
    );
    let pid = listen.child.id();
    let (raw, _) = Raw::handshake(listen.port, "phone");
    let mut writer = raw.stream.try_clone().unwrap();
    let pump = thread::spawn(move || {
        for i in 1..=N {
            let frame = frame(&text(&format!("burst-{i}"), &format!("burst line {i}")));
            if writer.write_all(&frame).is_err() {
                return i - 1;
            }
        }
        N
    });
    // Read acks until a third are in, kill the receiver, then take what
    // was already on its way before the connection died.
    let mut reader = raw.stream;
    reader.set_read_timeout(Some(WAIT)).unwrap();
    let mut acked: HashSet<String> = HashSet::new();
    let mut killed = None;
    loop {
        let mut header = [0u8; 4];
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                break;
            }
            Err(e) => panic!("reading acks: {e}"),
        }
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        if reader.read_exact(&mut payload).is_err() {
            break;
        }
        let msg: Value = serde_json::from_slice(&payload).unwrap();
        if msg["type"] == "ack" {
            acked.insert(msg["id"].as_str().unwrap().to_owned());
        }
        if killed.is_none() && acked.len() >= N / 3 {
            let status = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            killed = Some(Instant::now());
        }
    }
    assert!(
        killed.is_some(),
        "the burst ended before the kill: {} acks",
        acked.len()
    );
    let _ = listen.child.wait();
    let written = pump.join().unwrap();

    // The database is intact and holds every acknowledged text.
    let db = rusqlite::Connection::open(laptop.path().join("history.sqlite3")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);
    let stored = history_json(laptop.path(), "phone", 2 * N);
    let ids: HashSet<String> = stored
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), stored.len(), "a text stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged texts are not in the history, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    println!(
        "figure: SIGKILL during a {N}-text burst: {} acknowledged before the kill, {} stored ({} stored but unacknowledged), {written} written by the sender; integrity_check ok, 0 acknowledged texts missing",
        acked.len(),
        ids.len(),
        ids.len() - acked.len()
    );

    // Restarted, it takes the whole burst again: stored ones are acked but
    // not printed or stored twice.
    let listen = Listen::start_in(
        laptop.path(),
        &["--port", "0", "--name", "laptop", "listen"],
    );
    let (mut again, _) = Raw::handshake(listen.port, "phone");
    for i in 1..=N {
        again.write(&frame(&text(
            &format!("burst-{i}"),
            &format!("burst line {i}"),
        )));
    }
    let mut acks = 0;
    while acks < N {
        if again.expect("ack")["type"] == "ack" {
            acks += 1;
        }
    }
    let printed_again = std::iter::from_fn(|| listen.stdout.next(Duration::from_millis(300)))
        .filter(|l| l.starts_with("phone: burst line "))
        .count();
    assert_eq!(
        printed_again,
        N - ids.len(),
        "only the texts not stored before"
    );
    let all = history_json(laptop.path(), "phone", 2 * N);
    assert_eq!(all.len(), N, "every text once");
}

/// `history`'s output: plain and JSON, `--limit`, `--search` (words, a
/// prefix, and a query that would be FTS5 syntax), an unknown peer, no
/// database yet, and `--no-history` leaving no database behind.
#[test]
fn history_prints_limits_and_searches() {
    let laptop = data_dir();
    let phone = data_dir();
    let listen = Listen::start_in(
        laptop.path(),
        &["--port", "0", "--name", "laptop", "listen"],
    );
    let input =
        "pizza tonight?\nsure, at eight\nbring the \u{1b}]2;title\u{7} wine\nno pizzas left\n";
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(phone.path())
        .args(["--name", "phone", "send", &listen.addr()]);
    run(cmd, Some(input.as_bytes().to_vec()), WAIT).assert_success();
    listen.wait_for_stdout_line(|l| l == "phone: no pizzas left", WAIT);

    let all = history(laptop.path(), &["phone"]);
    all.assert_success();
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", all.stdout);
    assert!(lines[0].ends_with(" phone: pizza tonight?"), "{}", lines[0]);
    assert!(lines[2].contains("^[]2;title^G"), "escaped: {}", lines[2]);
    assert!(!all.stdout.contains('\u{1b}'), "{:?}", all.stdout);

    let last = history(laptop.path(), &["phone", "--limit", "1"]);
    assert_eq!(last.stdout.lines().count(), 1, "{}", last.stdout);
    assert!(last.stdout.contains("no pizzas left"), "{}", last.stdout);

    let json = history_json(laptop.path(), "phone", 10);
    assert_eq!(json.len(), 4);
    assert_eq!(json[2]["body"], "bring the \u{1b}]2;title\u{7} wine");
    assert_eq!(json[0]["outgoing"], false);
    assert_eq!(json[0]["state"], "delivered");
    assert_eq!(json[0]["name"], "phone");

    let found = history(laptop.path(), &["phone", "--search", "pizza"]);
    assert_eq!(
        found.stdout.lines().count(),
        1,
        "whole words: {}",
        found.stdout
    );
    let prefix = history(laptop.path(), &["phone", "--search", "pizza*"]);
    assert_eq!(
        prefix.stdout.lines().count(),
        2,
        "prefix: {}",
        prefix.stdout
    );
    let both = history(laptop.path(), &["phone", "--search", "eight sure"]);
    assert_eq!(both.stdout.lines().count(), 1, "{}", both.stdout);
    let hostile = history(laptop.path(), &["phone", "--search", "pizza\" OR NEAR("]);
    hostile.assert_success();

    let unknown = history(laptop.path(), &["nobody"]);
    assert_eq!(unknown.code(), Some(3));
    assert!(unknown.stderr.contains("\"phone\""), "{}", unknown.stderr);

    let empty = data_dir();
    let none = history(empty.path(), &["phone"]);
    assert_eq!(none.code(), Some(3), "{}", none.stderr);
    assert!(none.stderr.contains("no history yet"), "{}", none.stderr);

    // --no-history: listen prints and acks, and no database appears.
    let quiet = data_dir();
    let nolog = Listen::start_in(quiet.path(), &["--port", "0", "--no-history", "listen"]);
    send(
        &nolog.addr(),
        phone.path(),
        "phone",
        &["off", "the", "record"],
    )
    .assert_success();
    nolog.wait_for_stdout_line(|l| l == "phone: off the record", WAIT);
    assert!(!quiet.path().join("history.sqlite3").exists());
}
