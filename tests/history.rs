//! The history database end to end: the real binary over loopback
//! (`--no-mdns`, 127.0.0.1 only), each side with its own data directory,
//! processes stopped, killed and started again on the same directories.
//!
//! The database file is also opened directly (rusqlite) to check that it is
//! intact after a crash, as another program would open it.

mod common;

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::local::*;
use common::proc::Proc;
use serde_json::{Value, json};

/// The peer id the hand-written protocol client ([`Raw`]) says hello with.
const RAW_CLIENT_ID: &str = "0123456789abcdef0123456789abcdef";

fn db_file(dir: &Path) -> PathBuf {
    dir.join("history.sqlite3")
}

/// `lantalk --data-dir DIR history ARGS...`
fn history(dir: &Path, args: &[&str]) -> Finished {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    lantalk_in(dir, &all)
}

fn peer_id(dir: &Path) -> String {
    fs::read_to_string(dir.join("id"))
        .expect("an id file")
        .trim()
        .to_owned()
}

/// `PRAGMA integrity_check` of the data directory's database.
fn integrity(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(db_file(dir)).expect("open the database");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn listen_args(port: &str) -> [&str; 5] {
    ["--name", "laptop", "--port", port, "listen"]
}

#[test]
fn history_survives_restarts_of_both_sides_and_a_rename_keeps_the_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    let (laptop, phone) = (tmp.path().join("laptop"), tmp.path().join("phone"));

    let (mut listen, port) = listen_in(&laptop, &listen_args("0"));
    let to = format!("127.0.0.1:{port}");
    send(&to, &phone, "phone", &["first"]).assert_success();
    send(&to, &phone, "phone", &["second"]).assert_success();
    listen.wait_out(WAIT, |l| l == "phone: second");
    // While listen runs, `history` reads the same file.
    let out = history(&laptop, &["phone"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with(" phone: first"), "{lines:?}");
    listen.terminate();
    listen.wait_exit(WAIT);

    // Both started again on their directories; the phone has a new name.
    let (mut listen, port) = listen_in(&laptop, &listen_args("0"));
    send(
        &format!("127.0.0.1:{port}"),
        &phone,
        "Rodrigo's phone",
        &["third"],
    )
    .assert_success();
    listen.wait_out(WAIT, |l| l == "Rodrigo's phone: third");
    listen.terminate();
    listen.wait_exit(WAIT);

    // The laptop: one conversation, under the phone's id, by its latest name.
    let phone_id = peer_id(&phone);
    let records = history_json(&laptop, "rodrigo's PHONE", &[]);
    assert_eq!(bodies(&records), ["first", "second", "third"]);
    for r in &records {
        assert_eq!(r["peer"], phone_id.as_str(), "{r}");
        assert_eq!(r["name"], "Rodrigo's phone", "{r}");
        assert_eq!(r["outgoing"], false, "{r}");
        assert_eq!(r["state"], "delivered", "{r}");
    }
    assert_eq!(history_json(&laptop, &phone_id, &[]), records);
    // Without PEER: the conversations, by the name `history` takes.
    let out = history(&laptop, &[]);
    out.assert_success();
    assert!(
        out.stdout.contains("  Rodrigo's phone  lantalk"),
        "{}",
        out.stdout
    );
    let old_name = history(&laptop, &["phone"]);
    assert_eq!(old_name.code(), Some(3), "{}", old_name.stderr);
    assert!(
        old_name
            .stderr
            .contains(r#"conversations: "Rodrigo's phone""#),
        "{}",
        old_name.stderr
    );
    let out = history(&laptop, &["Rodrigo's phone"]);
    out.assert_success();
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    for (line, body) in out.stdout.lines().zip(["first", "second", "third"]) {
        let (time, rest) = line.split_at(16);
        assert!(
            time.bytes()
                .zip(b"2000-00-00 00:00")
                .all(|(c, f)| c.is_ascii_digit() == f.is_ascii_digit()
                    && (c.is_ascii_digit() || c == *f)),
            "{line:?}"
        );
        assert_eq!(rest, format!(" Rodrigo's phone: {body}"));
    }

    // The phone: its own texts, delivered, under the laptop's id.
    let records = history_json(&phone, "laptop", &[]);
    assert_eq!(bodies(&records), ["first", "second", "third"]);
    for r in &records {
        assert_eq!(r["peer"], peer_id(&laptop).as_str(), "{r}");
        assert_eq!(r["outgoing"], true, "{r}");
        assert_eq!(r["state"], "delivered", "{r}");
    }
    let out = history(&phone, &["laptop", "--name", "phone"]);
    out.assert_success();
    let ours: Vec<&str> = out.stdout.lines().map(|l| &l[17..]).collect();
    assert_eq!(ours, ["phone: first", "phone: second", "phone: third"]);
}

#[test]
fn listen_killed_mid_burst_keeps_every_acknowledged_text_and_an_intact_database() {
    const N: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let (laptop, phone) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    // A fixed port, so that `send` finds the restarted listen where it was.
    let port = fixed_port().to_string();
    let (mut first, p) = listen_in(&laptop, &listen_args(&port));
    assert_eq!(p.to_string(), port);

    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(&phone).args([
        "--name",
        "phone",
        "send",
        &format!("127.0.0.1:{port}"),
    ]);
    let (mut sender, mut stdin) = Proc::spawn_with_stdin(cmd);
    // Fed at up to 100,000 lines/s: faster than listen stores them (it is
    // busy all along), slow enough that the kill lands mid-burst.
    let feeder = thread::spawn(move || {
        for chunk in (1..=N).collect::<Vec<_>>().chunks(1000) {
            let lines: String = chunk.iter().map(|i| format!("burst {i}\n")).collect();
            if stdin.write_all(lines.as_bytes()).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });

    first.wait_out(Duration::from_secs(60), |l| l == "phone: burst 2000");
    first.kill();
    let printed_first: Vec<String> = first.drain_out();
    // What the killed listen had committed (opening the file recovers its WAL).
    let stored_before: HashSet<String> = {
        let conn = rusqlite::Connection::open(db_file(&laptop)).unwrap();
        let mut select = conn.prepare("SELECT body FROM messages").unwrap();
        select
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(integrity(&laptop), "ok", "right after the kill");
    assert!(
        stored_before.len() >= 2000 && stored_before.len() < N,
        "the kill should land mid-burst: {} of {N} stored",
        stored_before.len()
    );
    for line in &printed_first {
        let body = line.strip_prefix("phone: ").expect("a text line");
        assert!(
            stored_before.contains(body),
            "{body:?} printed before it was stored"
        );
    }

    let killed_at = Instant::now();
    let (mut second, p) = listen_in(&laptop, &listen_args(&port));
    assert_eq!(p.to_string(), port, "the port should be free again");
    let status = sender.wait_exit(Duration::from_secs(60));
    feeder.join().unwrap();
    assert!(status.success(), "send: {status}; stderr: {:?}", sender.err);
    // `send` exited 0: it saw every text acknowledged, some only after retrying.
    assert!(
        sender.err.iter().any(|l| l.contains("connecting again")),
        "{:?}",
        sender.err
    );

    // Every text is in the receiver's history, once, in order; the file is intact.
    let all: Vec<String> = (1..=N).map(|i| format!("burst {i}")).collect();
    let records = history_json(&laptop, "phone", &["--limit", "20000"]);
    assert_eq!(bodies(&records), all);
    assert_eq!(integrity(&laptop), "ok");

    // The restarted listen printed exactly what had not been stored: the
    // texts `send` sent again after the kill were acknowledged, not shown again.
    let expected: Vec<&String> = all.iter().filter(|b| !stored_before.contains(*b)).collect();
    if let Some(last) = expected.last() {
        second.wait_out(WAIT, |l| l == format!("phone: {last}"));
    }
    thread::sleep(Duration::from_millis(200));
    let printed_second: Vec<String> = second
        .drain_out()
        .iter()
        .map(|l| l.strip_prefix("phone: ").expect("a text line").to_owned())
        .collect();
    assert_eq!(printed_second.iter().collect::<Vec<_>>(), expected);

    // The sender's side recorded them all as delivered.
    let sent = history_json(&phone, "laptop", &["--limit", "20000"]);
    assert_eq!(bodies(&sent), all);
    assert!(sent.iter().all(|r| r["state"] == "delivered"));
    eprintln!(
        "killed listen after it printed {} of {N} texts with {} stored; the restarted \
         listen printed {} more; send finished {:?} after the kill",
        printed_first.len(),
        stored_before.len(),
        printed_second.len(),
        killed_at.elapsed()
    );
}

#[test]
fn a_text_received_again_after_a_restart_is_acknowledged_but_not_shown_again() {
    let tmp = tempfile::tempdir().unwrap();
    let laptop = tmp.path().join("laptop");
    let (mut listen, port) = listen_in(&laptop, &listen_args("0"));
    let (mut raw, _) = Raw::handshake(port, "phone");
    raw.send(&text("t1", "once"));
    assert_eq!(raw.expect("ack")["id"], "t1");
    listen.wait_out(WAIT, |l| l == "phone: once");
    drop(raw);
    listen.terminate();
    listen.wait_exit(WAIT);

    let (mut listen, port) = listen_in(&laptop, &listen_args("0"));
    let (mut raw, _) = Raw::handshake(port, "phone");
    raw.send(&text("t1", "once"));
    assert_eq!(raw.expect("ack")["id"], "t1");
    raw.send(&text("t2", "then this"));
    assert_eq!(raw.expect("ack")["id"], "t2");
    let line = listen.wait_out(WAIT, |l| l.starts_with("phone: "));
    assert_eq!(
        line, "phone: then this",
        "the copy of t1 must not be printed"
    );
    assert_eq!(
        bodies(&history_json(&laptop, "phone", &[])),
        ["once", "then this"]
    );
}

#[test]
fn history_output_plain_json_limit_search_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let laptop = tmp.path().join("laptop");
    let (mut listen, port) = listen_in(&laptop, &listen_args("0"));
    let (mut raw, _) = Raw::handshake(port, "phone");
    let ts = 1_795_669_500_000u64; // 2026-11-26 05:05 UTC
    let texts = [
        ("t1", "Dinner is at 8"),
        ("t2", "bring the 🍰\nfrom the fridge"),
        ("t3", "\x1b]0;pwned\x07 title?"),
        ("t4", "café or \"dinner\"? foo\" OR bar"),
    ];
    for (i, (id, body)) in texts.iter().enumerate() {
        raw.send(&json!({"type": "text", "id": id, "ts": ts + i as u64 * 60_000, "body": body}));
        assert_eq!(raw.expect("ack")["id"], *id);
    }
    listen.wait_out(WAIT, |l| l.starts_with("phone: café"));

    let out = history(&laptop, &["phone"]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        "2026-11-26 05:05 phone: Dinner is at 8\n\
         2026-11-26 05:06 phone: bring the 🍰\n  from the fridge\n\
         2026-11-26 05:07 phone: ^[]0;pwned^G title?\n\
         2026-11-26 05:08 phone: café or \"dinner\"? foo\" OR bar\n"
    );
    assert_eq!(out.stderr, "");

    let records = history_json(&laptop, "phone", &[]);
    assert_eq!(records.len(), 4);
    for (i, (r, (id, body))) in records.iter().zip(texts).enumerate() {
        assert_eq!(r["body"], body, "exact in JSON");
        assert_eq!(r["id"], id);
        assert_eq!(r["ts"], ts + i as u64 * 60_000);
        assert_eq!(r["peer"], RAW_CLIENT_ID);
        assert_eq!(r["name"], "phone");
        assert_eq!(r["outgoing"], false);
        assert_eq!(r["state"], "delivered");
        assert!(r["seq"].as_i64().is_some(), "{r}");
    }
    assert!(
        records
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );

    // --limit: the newest N, oldest first, and a word on stderr.
    let out = history(&laptop, &["phone", "--limit", "2"]);
    out.assert_success();
    assert_eq!(out.stdout.lines().count(), 2);
    assert!(
        out.stdout.starts_with("2026-11-26 05:07 "),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("older messages are not shown"),
        "{}",
        out.stderr
    );
    let out = history(&laptop, &["phone", "--limit", "0"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);

    // --search: words, not FTS5 syntax.
    let found = |words: &str, extra: &[&str]| {
        let mut args = vec!["--search", words];
        args.extend_from_slice(extra);
        bodies(&history_json(&laptop, "phone", &args))
    };
    assert_eq!(found("dinner", &[]), [texts[0].1, texts[3].1]);
    assert_eq!(found("DIN*", &[]), [texts[0].1, texts[3].1]);
    assert_eq!(found("dinner", &["--limit", "1"]), [texts[3].1]);
    assert_eq!(found("cafe", &[]), [texts[3].1]);
    assert_eq!(found("fridge cake", &[]), Vec::<String>::new());
    assert_eq!(found(r#"foo" OR "#, &[]), [texts[3].1]);
    for hostile in [
        "NEAR(dinner",
        "\"",
        "-dinner",
        "body:dinner",
        "*",
        "AND OR NOT",
    ] {
        let out = history(&laptop, &["phone", "--search", hostile]);
        assert!(out.status.success(), "{hostile:?}: {}", out.stderr);
    }
    let out = history(&laptop, &["phone", "--search", "pwned"]);
    assert_eq!(out.stdout, "2026-11-26 05:07 phone: ^[]0;pwned^G title?\n");

    // A raw text peer is kept by its address.
    let mut nc = TcpStream::connect(("127.0.0.1", port)).unwrap();
    nc.write_all(b"hello from nc\n").unwrap();
    let line = listen.wait_out(WAIT, |l| l.ends_with(": hello from nc"));
    let raw_name = line.strip_suffix(": hello from nc").unwrap();
    assert!(raw_name.starts_with("raw 127.0.0.1:"), "{line}");
    drop(nc);
    for peer in ["raw 127.0.0.1", "raw-127.0.0.1", raw_name] {
        let records = history_json(&laptop, peer, &[]);
        assert_eq!(bodies(&records), ["hello from nc"], "{peer}");
        assert_eq!(records[0]["peer"], "raw-127.0.0.1");
        assert_eq!(records[0]["id"], Value::Null);
    }

    // Unknown peer: exit 3, naming the conversations there are.
    let out = history(&laptop, &["tablet"]);
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("no conversation with \"tablet\"")
            && out.stderr.contains("\"phone\"")
            && out.stderr.contains(raw_name),
        "{}",
        out.stderr
    );

    // No database at all: exit 3, saying so; and nothing is created.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = history(&empty, &["phone"]);
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("no history yet"), "{}", out.stderr);
    assert!(!db_file(&empty).exists());

    // A file that is not a database: a clear error naming it.
    let broken = tmp.path().join("broken");
    fs::create_dir(&broken).unwrap();
    fs::write(db_file(&broken), "x".repeat(4096)).unwrap();
    let out = history(&broken, &["phone"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&db_file(&broken).display().to_string())
            && out.stderr.contains("not a database"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_history_leaves_no_database_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (laptop, phone) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    let (mut listen, port) = listen_in(
        &laptop,
        &["--no-history", "--name", "laptop", "--port", "0", "listen"],
    );
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(&phone)
        .args(["--name", "phone", "send", "--no-history"])
        .arg(format!("127.0.0.1:{port}"));
    run(cmd, Some(b"one\ntwo\n".to_vec()), WAIT).assert_success();
    listen.wait_out(WAIT, |l| l == "phone: two");
    listen.terminate();
    listen.wait_exit(WAIT);
    for dir in [&laptop, &phone] {
        assert!(dir.join("id").exists(), "the data directory is in use");
        let files: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !files.iter().any(|f| f.starts_with("history")),
            "{}: {files:?}",
            dir.display()
        );
    }
    let out = history(&laptop, &["phone"]);
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    let out = history(&laptop, &["--no-history", "phone"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
}

#[test]
fn send_records_a_text_the_peer_refused_as_failed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = thread::spawn(move || {
        let stream = accept_plaintext(&listener);
        let mut raw = Raw { stream };
        raw.expect("hello");
        raw.send(&hello("picky"));
        let first = raw.expect("text");
        raw.send(&json!({"type": "ack", "id": first["id"]}));
        raw.expect("text");
        raw.send(&json!({"type": "error", "code": "bad_json", "message": "no thanks"}));
    });
    let phone = tempfile::tempdir().unwrap();
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(phone.path())
        .args(["--name", "phone", "send"])
        .arg(format!("127.0.0.1:{port}"));
    // The second text is never acked; the third is never written (the
    // session ends first) and so is not recorded.
    let out = run(cmd, Some(b"taken\nrefused\n".to_vec()), WAIT);
    fake.join().unwrap();
    assert_eq!(out.code(), Some(4), "{}", out.stderr);
    let records = history_json(phone.path(), "picky", &[]);
    let fates: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["body"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(fates, [("taken", "delivered"), ("refused", "failed")]);
    let out = history(phone.path(), &["picky", "--name", "phone"]);
    assert!(
        out.stdout.ends_with(" phone: refused [failed]\n"),
        "{}",
        out.stdout
    );
}

/// A peer that says hello as "keeper" and reads texts: it acknowledges them
/// only if `acks`; it reports each text it read on `seen`.
fn keeper(
    acks: bool,
) -> (
    u16,
    std::sync::mpsc::Receiver<Value>,
    thread::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, seen) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let stream = accept_plaintext(&listener);
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut raw = Raw { stream };
        raw.expect("hello");
        raw.send(&hello("keeper"));
        while let Some(msg) = raw.recv() {
            if msg["type"] != "text" {
                continue;
            }
            if acks {
                raw.send(&json!({"type": "ack", "id": msg["id"]}));
            }
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    (port, seen, server)
}

/// `send` killed after it wrote texts the peer never acknowledged: the
/// texts were stored before they left, so the history shows them as not
/// acknowledged, and the next `send` from that data directory to that peer
/// delivers them first, in order, before its own.
#[test]
fn a_killed_send_loses_nothing_it_had_read() {
    let phone = tempfile::tempdir().unwrap();
    let (port, seen, _server) = keeper(false);
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(phone.path())
        .args(["--name", "phone", "send"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("start send");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    stdin.flush().unwrap();
    // Stdin stays open: send is still reading when it is killed.
    for want in ["one", "two", "three"] {
        let text = seen.recv_timeout(WAIT).expect("the peer read the text");
        assert_eq!(text["body"], want);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let records = history_json(phone.path(), "keeper", &[]);
    let fates: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["body"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(fates, [("one", "sent"), ("two", "sent"), ("three", "sent")]);

    // The peer (same id) is reachable again, and acknowledges this time.
    let (port, seen, server) = keeper(true);
    send(
        &format!("127.0.0.1:{port}"),
        phone.path(),
        "phone",
        &["four"],
    )
    .assert_success();
    let bodies: Vec<String> = (0..4)
        .map(|_| {
            let text = seen.recv_timeout(WAIT).expect("a text");
            text["body"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(bodies, ["one", "two", "three", "four"]);
    drop(seen);
    server.join().unwrap();
    let records = history_json(phone.path(), "keeper", &[]);
    let fates: Vec<&str> = records
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(fates, ["delivered"; 4]);
}
