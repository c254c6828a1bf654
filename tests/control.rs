//! `lantalk send` while a lantalk (`listen`, the chat screen) runs on the
//! same data directory: the texts go through that lantalk's node, over
//! the control socket in the data directory, with `send`'s exit codes and
//! messages unchanged. Real binaries over loopback (`--no-mdns`), the
//! chat screen in tmux, name lookups in a namespace LAN.

mod common;

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, Instant};

use common::local::*;
use common::proc::{BIN, Proc};
use serde_json::Value;

/// `history PEER --json` of the data directory `dir`, parsed.
fn history_json(dir: &Path, peer: &str) -> Vec<Value> {
    let out = lantalk_in(dir, &["history", peer, "--json", "--limit", "100000"]);
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn bodies(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["body"].as_str().expect("a body"))
        .collect()
}

fn peer_id(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("id"))
        .expect("an id file")
        .trim()
        .to_owned()
}

/// Waits until the lantalk on `dir` serves its control socket.
fn wait_for_socket(dir: &Path) {
    let path = dir.join("control.sock");
    let deadline = Instant::now() + STARTUP;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no {} after {STARTUP:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lantalk ... send ADDR` with `lines` on stdin.
fn send_stdin(addr: &str, dir: &Path, lines: &str) -> Finished {
    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(dir).args(["send", addr]);
    run(cmd, Some(lines.as_bytes().to_vec()), WAIT * 3)
}

/// The `lantalk:` lines of stderr, without log lines.
fn status_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("lantalk: "))
        .collect()
}

#[test]
fn send_while_listen_runs_goes_through_its_node_and_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    let (mut laptop, port) = listen_in(&laptop_dir, &["--name", "laptop", "--port", "0", "listen"]);
    let (mut phone, _) = listen_in(&phone_dir, &["--name", "phone", "--port", "0", "listen"]);
    let to = format!("127.0.0.1:{port}");

    // The socket is private: mode 0600 in the 0700 data directory.
    let sock = std::fs::metadata(phone_dir.join("control.sock")).expect("a control socket");
    assert!(sock.file_type().is_socket());
    assert_eq!(sock.permissions().mode() & 0o777, 0o600);

    let out = send(&to, &phone_dir, "phone", &["through", "listen"]);
    out.assert_success();
    laptop.wait_out(WAIT, |l| l == "phone: through listen");
    // The session was the running listen's: it says so, and that it ended
    // with the send.
    phone.wait_err(WAIT, |l| l.contains(&format!("laptop connected from {to}")));
    phone.wait_err(WAIT, |l| l.contains("laptop left"));

    // Many lines in flight through the socket, every one acknowledged.
    let n = 3000;
    let lines: String = (1..=n).map(|i| format!("line {i}\n")).collect();
    let out = send_stdin(&to, &phone_dir, &lines);
    out.assert_success();
    laptop.wait_out(WAIT, |l| l == format!("phone: line {n}"));

    // One history on each side, each text once, from the phone's one id.
    let mut expected = vec!["through listen".to_owned()];
    expected.extend((1..=n).map(|i| format!("line {i}")));
    let sent = history_json(&phone_dir, "laptop");
    assert_eq!(bodies(&sent), expected);
    assert!(
        sent.iter().all(|r| r["state"] == "delivered"),
        "{:?}",
        sent.last()
    );
    let received = history_json(&laptop_dir, "phone");
    assert_eq!(bodies(&received), expected);
    let phone_id = peer_id(&phone_dir);
    assert!(received.iter().all(|r| r["peer"] == phone_id.as_str()));
    // Nothing but the listen's own lines on its stdout (it prints what it
    // receives, not what it sends).
    assert_eq!(phone.drain_out(), Vec::<String>::new());
    phone.terminate();
    phone.wait_exit(WAIT);
    assert!(
        !phone_dir.join("control.sock").exists(),
        "a lantalk that stops removes its socket"
    );
    laptop.terminate();
}

#[test]
fn exit_codes_and_messages_are_the_same_through_the_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let phone_dir = tmp.path().join("phone");
    let (_phone, _) = listen_in(&phone_dir, &["--name", "phone", "--port", "0", "listen"]);
    let dead = format!("127.0.0.1:{}", dead_port());
    let attempt = |extra: &[&str]| {
        let mut cmd = lantalk();
        cmd.env("LANTALK_LOG", "info")
            .arg("--data-dir")
            .arg(&phone_dir)
            .args(extra)
            .args(["send", &dead, "hello"]);
        run(cmd, None, WAIT * 2)
    };
    let through = attempt(&[]);
    assert_eq!(through.code(), Some(4), "stderr: {}", through.stderr);
    assert!(
        through
            .stderr
            .contains("sending through the lantalk running on"),
        "{}",
        through.stderr
    );
    // `--no-history` sends on a node of its own: the same words, the same code.
    let alone = attempt(&["--no-history"]);
    assert_eq!(alone.code(), Some(4), "stderr: {}", alone.stderr);
    assert!(
        !alone.stderr.contains("sending through"),
        "{}",
        alone.stderr
    );
    assert_eq!(status_lines(&through.stderr), status_lines(&alone.stderr));
    assert!(
        through
            .stderr
            .contains(&format!("could not connect to {dead}")),
        "{}",
        through.stderr
    );
}

#[test]
fn a_socket_left_by_a_killed_lantalk_is_ignored_then_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    let (mut laptop, port) = listen_in(&laptop_dir, &["--name", "laptop", "--port", "0", "listen"]);
    let to = format!("127.0.0.1:{port}");
    let args = ["--name", "phone", "--port", "0", "listen"];
    let (mut phone, _) = listen_in(&phone_dir, &args);
    phone.kill();
    assert!(
        phone_dir.join("control.sock").exists(),
        "SIGKILL leaves the socket file behind"
    );

    // Nobody accepts on it: send runs its own node, and says nothing of it
    // (only whom it reached, met for the first time).
    let out = send(&to, &phone_dir, "phone", &["after the crash"]);
    out.assert_success();
    let said = status_lines(&out.stderr);
    assert!(
        said.len() == 1 && said[0].starts_with("lantalk: reached laptop"),
        "{said:?}"
    );
    laptop.wait_out(WAIT, |l| l == "phone: after the crash");

    // The next lantalk on the directory replaces it and serves sends.
    let (mut phone, _) = listen_in(&phone_dir, &args);
    send(&to, &phone_dir, "phone", &["after the restart"]).assert_success();
    laptop.wait_out(WAIT, |l| l == "phone: after the restart");
    phone.wait_err(WAIT, |l| l.contains("laptop connected from"));
    assert_eq!(
        bodies(&history_json(&phone_dir, "laptop")),
        ["after the crash", "after the restart"]
    );
}

#[test]
fn garbage_on_the_control_socket_does_not_hurt_the_node() {
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream;
    let tmp = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    let (mut laptop, port) = listen_in(&laptop_dir, &["--name", "laptop", "--port", "0", "listen"]);
    let (mut phone, _) = listen_in(&phone_dir, &["--name", "phone", "--port", "0", "listen"]);
    let sock = phone_dir.join("control.sock");
    let hostile: [&[u8]; 5] = [
        b"\x00\x00\x00\x05hello",
        b"\x00\x00\x00\x02{}",
        b"\xff\xff\xff\xff",
        br#"\x00\x00\x00\x0a"Shutdown""#,
        b"\x00\x00\x00\x0a\"Shutdown\"",
    ];
    for bytes in hostile {
        let mut s = UnixStream::connect(&sock).expect("connect to the control socket");
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(bytes);
        // The node closes the connection (or waits for more): never dies.
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    // A command clients may not give (renaming the node) closes that client only.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let rename = br#"{"Rename":"pwned"}"#;
    s.write_all(&(rename.len() as u32).to_be_bytes()).unwrap();
    s.write_all(rename).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("closed by the node");
    assert!(rest.is_empty());
    // An oversized or unterminated frame from a client that then leaves.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, b'{']).unwrap();
    drop(s);

    let to = format!("127.0.0.1:{port}");
    send(&to, &phone_dir, "phone", &["still fine"]).assert_success();
    laptop.wait_out(WAIT, |l| l == "phone: still fine");
    phone.wait_err(WAIT, |l| l.contains("laptop connected from"));
    assert!(
        !phone.drain_err().iter().any(|l| l.contains("panicked")),
        "{:?}",
        phone.err
    );
    phone.terminate();
    assert!(phone.wait_exit(WAIT).success());
}

#[test]
#[ignore = "needs tmux"]
fn send_while_the_chat_screen_runs_shows_in_its_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    let (mut laptop, port) = listen_in(&laptop_dir, &["--name", "laptop", "--port", "0", "listen"]);
    let mut tmux = common::tmux::Tmux::new();
    let cmd = format!(
        "exec env {}={} {BIN} --no-mdns --port 0 --name phone --data-dir {}",
        common::NO_USER_CONFIG.0,
        common::NO_USER_CONFIG.1,
        common::lan::shell_quote(phone_dir.to_str().unwrap())
    );
    tmux.new_session("phone", 100, 30, &cmd);
    wait_for_socket(&phone_dir);

    let to = format!("127.0.0.1:{port}");
    let out = send(&to, &phone_dir, "phone", &["typed", "elsewhere"]);
    out.assert_success();
    laptop.wait_out(WAIT, |l| l == "phone: typed elsewhere");
    // In the conversation pane, as ours, and delivered.
    let screen = tmux.wait_screen("phone", "the text sent with `lantalk send`", WAIT, |s| {
        s.lines()
            .any(|l| l.contains("typed elsewhere") && l.contains('✓'))
    });
    assert!(screen.contains("laptop"), "{screen}");

    // Lines from stdin too, all there, once.
    let out = send_stdin(&to, &phone_dir, "second\nthird\n");
    out.assert_success();
    let screen = tmux.wait_for("phone", "third", WAIT);
    assert_eq!(screen.matches("typed elsewhere").count(), 1, "{screen}");
    assert_eq!(screen.matches("second").count(), 1, "{screen}");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn names_are_looked_up_by_send_and_not_found_is_still_3() {
    use common::lan::Lan;
    let lan = Lan::new("control_names", 2);
    let tmp = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (tmp.path().join("laptop"), tmp.path().join("phone"));
    let dir = |d: &Path| d.to_str().unwrap().to_owned();
    let (ld, pd) = (dir(&laptop_dir), dir(&phone_dir));
    let mut laptop = lan.spawn(0, "laptop", &["--data-dir", &ld, "listen"]);
    laptop.wait_err(STARTUP, |l| l.contains("listening on port"));
    let mut phone: Proc = lan.spawn(1, "phone", &["--data-dir", &pd, "listen"]);
    phone.wait_err(STARTUP, |l| l.contains("listening on port"));
    wait_for_socket(&phone_dir);

    let ghost = lan.run(
        1,
        "phone",
        &["--data-dir", &pd, "send", "ghost", "hi", "--timeout", "1"],
        WAIT * 2,
    );
    let err = String::from_utf8_lossy(&ghost.stderr);
    assert_eq!(ghost.status.code(), Some(3), "stderr: {err}");
    assert!(
        err.contains(r#"peer "ghost" not found on the network after 1 s"#),
        "{err}"
    );

    let found = lan.run(
        1,
        "phone",
        &[
            "--data-dir",
            &pd,
            "send",
            "laptop",
            "by name",
            "--timeout",
            "5",
        ],
        WAIT * 2,
    );
    let err = String::from_utf8_lossy(&found.stderr);
    assert_eq!(found.status.code(), Some(0), "stderr: {err}");
    laptop.wait_out(WAIT, |l| l == "phone: by name");
    phone.wait_err(WAIT, |l| l.contains("laptop connected from"));
}

#[test]
fn require_encryption_holds_when_the_running_lantalk_does_not_require_it() {
    let tmp = tempfile::tempdir().unwrap();
    let phone_dir = tmp.path().join("phone");
    // The running lantalk talks to plaintext peers; this send must not.
    let (_phone, _) = listen_in(&phone_dir, &["--name", "phone", "--port", "0", "listen"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/framed_peer.py");
    let mut cmd = std::process::Command::new(common::proc::python());
    cmd.args([script, "server", "0", "old"]);
    let mut old = Proc::spawn(cmd);
    let line = old.wait_out(WAIT, |l| l.contains("\"listening\""));
    let port: Value = serde_json::from_str(&line).unwrap();
    let to = format!("127.0.0.1:{}", port["port"]);

    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(&phone_dir).args([
        "--require-encryption",
        "send",
        &to,
        "must stay home",
    ]);
    let out = run(cmd, None, WAIT * 2);
    assert_eq!(out.code(), Some(4), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("refused because encryption is required"),
        "{}",
        out.stderr
    );
    // Without the flag it goes, in plaintext, through the same lantalk.
    send(&to, &phone_dir, "phone", &["in clear"]).assert_success();
    old.wait_out(WAIT, |l| l.contains("in clear"));
    let seen = old.drain_out();
    assert!(
        seen.iter().all(|l| !l.contains("must stay home")),
        "a text went out in clear despite --require-encryption: {seen:#?}"
    );
}
