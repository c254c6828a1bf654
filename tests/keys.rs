//! A peer is its key, on one machine: the real binary on loopback, with
//! what the security review tried. A fresh key that names itself like a
//! peer from before keys gets neither its conversation nor the texts
//! waiting for it (finding 1); a session without a key that claims such a
//! peer's id gets none of its waiting texts, which go only to a session we
//! dial (finding 5); moving a conversation to a new key takes that exact
//! key (finding 6); a name longer than 200 bytes is refused (finding 7).
//! The attacks that need a LAN (a relay, a spoofed advert, two hosts of one
//! name) are in `tests/security.rs`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::local::*;
use common::proc::{Proc, python};
use serde_json::Value;

const FRAMED_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/framed_peer.py");

/// The id of "phone" from before keys: random then, public in its adverts.
const OLD_ID: &str = "00112233445566778899aabbccddeeff";
const QUEUED: &str = "written while the old phone was away";

fn listen_args() -> [&'static str; 5] {
    ["--name", "laptop", "--port", "0", "listen"]
}

/// A laptop data directory from before keys: a conversation with "phone"
/// (id [`OLD_ID`]) holding a text from it, and one of ours waiting for it.
fn laptop_from_before_keys(dir: &Path) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = lantalk::store::Store::open(dir).unwrap();
        let peer = || {
            lantalk::store::PeerRef::new(OLD_ID.into(), "phone", lantalk::peer::PeerKind::Lantalk)
        };
        let text = |id: &str, body: &str| lantalk::protocol::Text {
            id: id.into(),
            ts: now_ms(),
            body: body.into(),
        };
        store
            .received(vec![(peer(), text("before-1", "from before keys"))])
            .await
            .unwrap();
        store
            .sent(
                peer(),
                text("queued-1", QUEUED),
                lantalk::store::State::Pending,
            )
            .await
            .unwrap();
    });
}

/// The fingerprint of the key in data directory `dir`.
fn fingerprint(dir: &Path) -> lantalk::protocol::Fingerprint {
    lantalk::identity::load_or_create_keys(dir)
        .expect("the keys of a data directory that has run")
        .fingerprint
}

/// `framed_peer.py ARGS...` (a hand-written client or server).
fn framed(args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(FRAMED_PEER).args(args);
    cmd
}

/// The frames a `framed_peer.py client` printed, and its exit code.
fn run_client(args: &[&str]) -> (Vec<Value>, Option<i32>) {
    let mut proc = Proc::spawn(framed(args));
    let status = proc.wait_exit(Duration::from_secs(30));
    let frames = proc
        .drain_out()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    eprintln!("framed_peer.py stderr: {:?}", proc.drain_err());
    (frames, status.code())
}

/// Finding 1. Before: the first encrypted session with a key named "phone"
/// carried the conversation of the key-less "phone" over to that key, with
/// the texts waiting for it. Now the new key is another peer: it gets
/// nothing, the old conversation is told once how to move it (the exact
/// key), and only `trust … --fingerprint` moves it.
#[test]
fn a_fresh_key_named_like_a_peer_from_before_keys_gets_neither_its_history_nor_its_queue() {
    let laptop = data_dir();
    let laptop = laptop.path();
    let phone = data_dir();
    let phone = phone.path();
    laptop_from_before_keys(laptop);

    let (mut listen, port) = listen_in(laptop, &listen_args());
    let addr = format!("127.0.0.1:{port}");
    send(&addr, phone, "phone", &["with a key"]).assert_success();
    listen.wait_out(WAIT, |l| l == "phone: with a key");
    let fp = fingerprint(phone);
    let new_id = fp.peer_id();
    // The old conversation is told, with the command that moves it.
    let told = listen.wait_err(WAIT, |l| l.contains("a new key named \"phone\" connected"));
    assert!(told.contains(OLD_ID), "{told}");
    assert!(told.contains(&fp.grouped()), "{told}");
    let command = format!("lantalk trust phone#0011 --fingerprint {fp}");
    assert!(told.contains(&command), "{told}");

    // Once: a second session says nothing more.
    send(&addr, phone, "phone", &["again"]).assert_success();
    listen.wait_out(WAIT, |l| l == "phone: again");
    let notices = listen
        .drain_err()
        .iter()
        .filter(|l| l.contains("a new key named"))
        .count();
    assert_eq!(notices, 1, "{:#?}", listen.drain_err());
    listen.terminate();
    listen.wait_exit(WAIT);

    // Two peers named phone: nothing moved.
    assert_eq!(
        bodies(&history_json(laptop, &new_id, &[])),
        ["with a key", "again"]
    );
    let old = history_json(laptop, OLD_ID, &[]);
    assert_eq!(bodies(&old), ["from before keys", QUEUED]);
    assert_eq!(old[1]["state"], "pending", "{old:#?}");
    let both = lantalk_in(laptop, &["history", "phone"]);
    assert_eq!(both.code(), Some(2), "{}", both.stderr);
    assert!(both.stderr.contains("phone#0011"), "{}", both.stderr);
    assert!(
        both.stderr.contains(&format!("phone#{}", &new_id[..4])),
        "{}",
        both.stderr
    );

    // The user says they are one peer, with the key the notice showed.
    let wrong = lantalk_in(laptop, &["trust", "phone#0011"]);
    assert_eq!(wrong.code(), Some(2), "no key given: {}", wrong.stderr);
    let moved = lantalk_in(
        laptop,
        &["trust", "phone#0011", "--fingerprint", &fp.to_string()],
    );
    moved.assert_success();
    assert!(
        moved
            .stdout
            .contains(&format!("continues with the key {}", fp.grouped())),
        "{}",
        moved.stdout
    );
    let all = history_json(laptop, "phone", &[]);
    assert_eq!(
        bodies(&all),
        ["from before keys", QUEUED, "with a key", "again"]
    );
    assert!(all.iter().all(|r| r["peer"] == new_id.as_str()), "{all:#?}");
}

/// Finding 5. A session without a key (TLS without a certificate, or
/// plaintext) that claims the id of a peer from before keys gets none of
/// the texts waiting for that id; what it sends is still received. The
/// control: the same text does go out on a session we dial to where that
/// peer is (as to an older lantalk).
#[test]
fn a_claim_of_an_id_without_a_key_gets_none_of_its_waiting_texts() {
    let laptop = data_dir();
    let laptop = laptop.path();
    laptop_from_before_keys(laptop);
    let (mut listen, port) = listen_in(laptop, &listen_args());
    let port = port.to_string();

    for (how, tls) in [("TLS without a certificate", true), ("plaintext", false)] {
        let mut args = vec!["client"];
        if tls {
            args.push("--tls");
        }
        let body = format!("claiming the old id, {how}");
        args.extend(["--id", OLD_ID, "127.0.0.1", &port, "phone", &body]);
        let (frames, code) = run_client(&args);
        // Its text was acknowledged (so the session was open and read);
        // anything the laptop had sent would have come before that ack.
        assert_eq!(code, Some(0), "{how}: {frames:#?}");
        assert!(
            frames.iter().all(|f| f["type"] != "text"),
            "{how}: a waiting text went to a claim: {frames:#?}"
        );
        listen.wait_out(WAIT, |l| l == format!("phone: {body}"));
    }
    // Each claim was told why it got nothing.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let told = listen
            .drain_err()
            .iter()
            .filter(|l| l.contains("without a key, so nothing proves it is the peer"))
            .count();
        if told == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{told} notices: {:#?}",
            listen.drain_err()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    listen.terminate();
    listen.wait_exit(WAIT);
    let old = history_json(laptop, OLD_ID, &[]);
    let queued = old.iter().find(|r| r["body"] == QUEUED).unwrap();
    assert_eq!(queued["state"], "pending", "{old:#?}");

    // The control: dialled where it listens, the old peer gets it, first.
    let mut server = Proc::spawn(framed(&["server", "--id", OLD_ID, "0", "phone"]));
    let line = server.wait_out(WAIT, |l| l.contains("\"listening\""));
    let listening: Value = serde_json::from_str(&line).unwrap();
    let addr = format!("127.0.0.1:{}", listening["port"]);
    let out = send(&addr, laptop, "laptop", &["dialled"]);
    out.assert_success();
    assert!(out.stderr.contains("PLAINTEXT"), "{}", out.stderr);
    let seen = server.wait_out(WAIT, |l| l.contains("\"dialled\""));
    let before: Vec<String> = server.drain_out();
    let queued_at = before.iter().position(|l| l.contains(QUEUED));
    let dialled_at = before.iter().position(|l| *l == seen);
    assert!(
        queued_at.is_some() && queued_at < dialled_at,
        "the waiting text did not go out first on a dialled session: {before:#?}"
    );
}

/// Finding 7: a name longer than 200 bytes is refused with a clear error
/// (it would be stored, pinned and shown); 200 bytes is fine.
#[test]
fn a_name_longer_than_200_bytes_is_refused() {
    let laptop = data_dir();
    let (mut listen, port) = listen_in(laptop.path(), &listen_args());
    let port = port.to_string();
    let long = "n".repeat(201);
    let (frames, code) = run_client(&["client", "127.0.0.1", &port, &long, "too long a name"]);
    assert_eq!(code, Some(1), "{frames:#?}");
    let error = frames
        .iter()
        .find(|f| f["type"] == "error")
        .unwrap_or_else(|| panic!("no error frame: {frames:#?}"));
    assert_eq!(error["code"], "bad_hello", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("200 bytes"),
        "{error}"
    );
    let fine = "é".repeat(100);
    let (frames, code) = run_client(&["client", "127.0.0.1", &port, &fine, "a long name"]);
    assert_eq!(code, Some(0), "{frames:#?}");
    listen.wait_out(WAIT, |l| l.ends_with(": a long name"));
    assert!(
        listen
            .drain_out()
            .iter()
            .all(|l| !l.contains("too long a name")),
        "a text under a refused name was shown"
    );
}

/// `/name` on the other side: its hello again, the same id, a new name.
/// The session goes on under the new name; a hello that changes the id is
/// a protocol error (the session was judged on that id).
#[test]
fn a_hello_during_a_session_renames_the_peer_but_cannot_change_its_id() {
    let laptop = data_dir();
    let (mut listen, port) = listen_in(laptop.path(), &listen_args());
    let (mut raw, _) = Raw::handshake(port, "phone");
    raw.send(&serde_json::json!({"type": "text", "id": "r-1", "ts": 1, "body": "before"}));
    raw.expect("ack");
    // The same id (Raw's), a new name.
    raw.send(&hello("fone"));
    raw.send(&serde_json::json!({"type": "text", "id": "r-2", "ts": 2, "body": "after"}));
    raw.expect("ack");
    listen.wait_err(WAIT, |l| l == "lantalk: phone is now called fone");
    listen.wait_out(WAIT, |l| l == "fone: after");

    let mut other = hello("fone");
    other["id"] = "ffffffffffffffffffffffffffffffff".into();
    raw.send(&other);
    let error = raw.expect("error");
    assert_eq!(error["code"], "bad_hello", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("may change the name, not the id"),
        "{error}"
    );
    raw.expect_eof();
}
