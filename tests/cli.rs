//! The command line's conventions and first-use edges, against the real
//! binary: completions, the manual page, `--version`, `history` without a
//! peer, what `send --help` and a failed `send` say, and addresses without
//! a port (port 7342) across a namespace LAN.

mod common;

use std::process::Command;
use std::time::Duration;

use common::lan::Lan;
use common::local::{Listen, data_dir, lantalk, run};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _lantalk"),
        ("zsh", "#compdef lantalk"),
        ("fish", "complete -c lantalk"),
    ] {
        let mut cmd = lantalk();
        cmd.args(["completions", shell]);
        let out = run(cmd, None, SECS(20));
        out.assert_success();
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        // Every command is offered.
        for command in ["send", "peers", "listen", "history", "trust", "verify"] {
            assert!(out.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let mut cmd = lantalk();
    cmd.args(["completions", "tcsh"]);
    assert_eq!(run(cmd, None, SECS(20)).code(), Some(2));
}

#[test]
fn man_prints_a_roff_manual_page() {
    let mut cmd = lantalk();
    cmd.arg("man");
    let out = run(cmd, None, SECS(20));
    out.assert_success();
    assert!(out.stdout.contains(".TH lantalk 1"), "{}", out.stdout);
    assert!(out.stdout.contains(".SH SYNOPSIS"), "{}", out.stdout);
    assert!(out.stdout.contains("send"), "the commands are listed");
}

#[test]
fn version_names_the_commit_when_built_from_git() {
    let mut cmd = lantalk();
    cmd.arg("--version");
    let out = run(cmd, None, SECS(20));
    out.assert_success();
    let crate_version = env!("CARGO_PKG_VERSION");
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match commit {
        Some(commit) => assert_eq!(
            out.stdout.trim(),
            format!("lantalk {crate_version} ({commit})")
        ),
        // Built from a tarball: the crate version alone.
        None => assert_eq!(out.stdout.trim(), format!("lantalk {crate_version}")),
    }
}

#[test]
fn send_help_does_not_call_port_a_port_to_listen_on() {
    let mut cmd = lantalk();
    cmd.args(["send", "--help"]);
    let out = run(cmd, None, SECS(20));
    out.assert_success();
    assert!(
        !out.stdout.contains("TCP port to listen on"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("`send` does not listen"),
        "{}",
        out.stdout
    );
}

#[test]
fn send_to_a_dead_port_names_the_address_once() {
    let dead = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
        // Closed here: nothing listens there any more.
    };
    let dir = data_dir();
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(dir.path())
        .args(["send", &dead.to_string(), "hello"]);
    let out = run(cmd, None, SECS(30));
    assert_eq!(out.code(), Some(4), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches(&dead.to_string()).count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("could not connect"), "{}", out.stderr);
}

#[test]
fn history_without_a_peer_lists_the_conversations() {
    let laptop = Listen::start(false);
    let phone = data_dir();
    let mut send = lantalk();
    send.arg("--data-dir").arg(phone.path()).args([
        "--name",
        "phone",
        "send",
        &laptop.addr(),
        "hello",
    ]);
    run(send, None, SECS(30)).assert_success();

    let mut history = lantalk();
    history.arg("--data-dir").arg(phone.path()).arg("history");
    let out = run(history, None, SECS(20));
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(lines[0].contains("  laptop  lantalk"), "{}", out.stdout);

    let mut history = lantalk();
    history
        .arg("--data-dir")
        .arg(phone.path())
        .args(["history", "--json"]);
    let out = run(history, None, SECS(20));
    out.assert_success();
    let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["name"], "laptop");
    assert_eq!(line["kind"], "lantalk");
    assert_eq!(line["undelivered"], 0);
    assert!(line["last_ts"].as_u64().unwrap() > 0, "{line}");
    assert_eq!(line["peer"].as_str().unwrap().len(), 32, "{line}");
}

/// `send IP` means port 7342 (it used to look for a peer *named* `IP` for
/// five seconds), for IPv4 and IPv6 literals, bracketed or not.
#[test]
#[ignore = "needs root (network namespaces)"]
fn send_to_an_address_without_a_port_dials_7342() {
    let lan = Lan::new("send_to_an_address_without_a_port", 2);
    let dirs = tempfile::tempdir().unwrap();
    let laptop_dir = dirs.path().join("laptop");
    let mut laptop = lan.spawn(
        0,
        "laptop",
        &["--data-dir", laptop_dir.to_str().unwrap(), "listen"],
    );
    laptop.wait_err(SECS(10), |l| l.contains("listening on port 7342"));
    let phone_dir = dirs.path().join("phone");
    let phone_dir = phone_dir.to_str().unwrap();
    let laptop_ip = lan.addr(0);
    for (host, to) in [(1, laptop_ip.as_str()), (0, "::1"), (0, "[::1]")] {
        let text = format!("to {to}");
        let out = lan.run(
            host,
            "phone",
            &["--data-dir", phone_dir, "send", to, &text],
            SECS(30),
        );
        assert!(
            out.status.success(),
            "send {to} failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        laptop.wait_out(SECS(10), |l| l == format!("phone: {text}"));
    }
}

/// `/connect IP` in the chat screen means port 7342 (it used to print only
/// its usage).
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn chat_screen_connect_to_an_address_without_a_port_dials_7342() {
    let lan = Lan::new("connect_without_a_port", 2);
    let dirs = tempfile::tempdir().unwrap();
    let laptop_dir = dirs.path().join("laptop");
    let mut laptop = lan.spawn(
        0,
        "laptop",
        &[
            "--no-mdns",
            "--data-dir",
            laptop_dir.to_str().unwrap(),
            "listen",
        ],
    );
    laptop.wait_err(SECS(10), |l| l.contains("listening on port 7342"));
    let phone_dir = dirs.path().join("phone");
    let cmd = lan.shell_command(
        1,
        "phone",
        &["--no-mdns", "--data-dir", phone_dir.to_str().unwrap()],
    );
    let mut tmux = common::tmux::Tmux::new();
    tmux.new_session("phone", 100, 30, &format!("exec {cmd}"));
    tmux.wait_for("phone", "Message", SECS(10));
    tmux.type_text("phone", &format!("/connect {}", lan.addr(0)));
    tmux.keys("phone", &["Enter"]);
    tmux.wait_for("phone", "reached laptop#", SECS(10));
    laptop.wait_err(SECS(10), |l| l.contains("phone connected from"));
}
