//! Poisoned discovery: what others advertise as `_lantalk._tcp.local.` is
//! untrusted. A careless advertiser (`examples/advertise.rs`) on one host of
//! a namespace LAN publishes 255-byte TXT strings, missing keys, control
//! characters, a protocol we don't speak, port 0, duplicate ids, a flood of
//! services and addresses that refuse connections; the real binary on the
//! other host must keep a sane peer list, not crash, and say why a peer
//! cannot be reached.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::example::example;
use common::lan::Lan;
use common::proc::Proc;
use common::tmux::{Tmux, framed};
use serde_json::Value;

/// The host running lantalk.
const US: usize = 0;
/// The host running the advertisers.
const THEM: usize = 1;
/// The advertisers' address (host 1 of the LAN).
const THEIR_ADDR: &str = "10.77.0.2";
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A distinct valid peer id per letter.
fn id(c: char) -> String {
    c.to_string().repeat(32)
}

/// Starts the careless advertiser on host `i` with `args`; waits until it has registered.
fn advertise(lan: &Lan, i: usize, args: &[&str]) -> Proc {
    let exe = example("advertise");
    let mut argv = vec![exe.to_str().unwrap()];
    argv.extend_from_slice(args);
    let mut proc = Proc::spawn(lan.command_raw(i, &argv));
    proc.wait_out(SECS(10), |l| l == "ready");
    proc
}

/// Runs lantalk on host `i` (hostname `phone`, a scratch data directory).
fn lantalk(lan: &Lan, i: usize, dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_str().unwrap();
    let mut all = vec!["--data-dir", dir];
    all.extend_from_slice(args);
    lan.run(i, "phone", &all, SECS(60))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `lantalk peers --json` on host `i`: the objects, and stderr.
fn peers_json(lan: &Lan, i: usize, dir: &Path, timeout: &str) -> (Vec<Value>, String) {
    let out = lantalk(lan, i, dir, &["peers", "--json", "--timeout", timeout]);
    assert!(
        out.status.success(),
        "peers failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let list = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    (list, text(&out.stderr))
}

/// No byte that could drive a terminal: C0 controls but newline, DEL, and C1 (as UTF-8).
fn assert_terminal_safe(what: &str, s: &str) {
    let bad: Vec<char> = s
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{80}'..='\u{9f}').contains(c))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} holds raw control characters {bad:?}:\n{s}"
    );
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn poisoned_advertisements_leave_a_sane_peer_list() {
    let lan = Lan::new("poisoned_peer_list", 2);
    let dir = tempfile::tempdir().unwrap();
    let long_nick = "é".repeat(125); // 250 bytes: with `nick=`, a full 255-byte TXT string
    let junk = "x".repeat(249); // with `junkN=`, 255 bytes
    let (a, b, c, d, g, h, t) = (
        id('a'),
        id('b'),
        id('c'),
        id('d'),
        id('9'),
        id('e'),
        id('f'),
    );
    let junk_txt: Vec<String> = (0..3).map(|i| format!("junk{i}={junk}")).collect();
    let long_instance = "L".repeat(63);
    let long_host = "h".repeat(63);
    let mut long_args = vec!["--instance", &long_instance, "--host", &long_host, "--txt"];
    let id_b = format!("id={b}");
    long_args.push(&id_b);
    let nick_txt = format!("nick={long_nick}");
    long_args.extend(["--txt", &nick_txt]);
    for j in &junk_txt {
        long_args.extend(["--txt", j]);
    }
    let txt_id = |id: &str| format!("id={id}");
    let _advertisers = [
        // No proto, no nick: a usable peer named after its instance.
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "plain",
                "--host",
                "plain",
                "--txt",
                &txt_id(&a),
            ],
        ),
        // The longest names and TXT strings DNS allows.
        advertise(&lan, THEM, &long_args),
        // Control characters in the instance name and the nick (ESC, BEL, a C1 CSI).
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "ctl\\x1b]0;pwned\\x07",
                "--host",
                "ctl",
                "--txt",
                &txt_id(&c),
                "--txt",
                "nick=\\xc2\\x9b2J\\x1b[2J",
            ],
        ),
        // A nick that is not UTF-8.
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "badutf",
                "--host",
                "badutf",
                "--txt",
                &txt_id(&d),
                "--txt",
                "nick=\\xff\\xfe",
            ],
        ),
        // Not usable: no id, a malformed id, port 0.
        advertise(
            &lan,
            THEM,
            &["--instance", "noid", "--host", "noid", "--txt", "proto=1"],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "badid",
                "--host",
                "badid",
                "--txt",
                "id=NOT-AN-ID\\x1b[2J",
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "zero",
                "--host",
                "zero",
                "--port",
                "0",
                "--txt",
                &txt_id(&g),
            ],
        ),
        // A protocol we don't speak.
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "future",
                "--host",
                "future",
                "--txt",
                &txt_id(&h),
                "--txt",
                "proto=9",
            ],
        ),
        // One id under two names.
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "twin1",
                "--host",
                "twin1",
                "--txt",
                &txt_id(&t),
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "twin2",
                "--host",
                "twin2",
                "--txt",
                &txt_id(&t),
            ],
        ),
    ];

    let (list, stderr) = peers_json(&lan, US, dir.path(), "4");
    println!("peers --json:\n{list:#?}\nstderr:\n{stderr}");
    let by_id: HashMap<&str, &Value> = list
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    assert_eq!(by_id.len(), list.len(), "an id is listed twice: {list:#?}");
    let ids: HashSet<&str> = by_id.keys().copied().collect();
    let expected: HashSet<&str> = [&a, &b, &c, &d, &h, &t]
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(ids, expected, "{list:#?}");

    let plain = by_id[a.as_str()];
    assert_eq!(plain["name"], "plain");
    assert_eq!(
        plain["nick"], "plain",
        "no nick: the instance name stands in"
    );
    assert_eq!(plain["problem"], Value::Null);
    assert_eq!(plain["port"], 7342);

    let long = by_id[b.as_str()];
    assert_eq!(long["name"], long_instance.as_str());
    assert_eq!(long["host"], format!("{long_host}.local.").as_str());
    let nick = long["nick"].as_str().unwrap();
    assert!(
        nick.len() <= 200 && long_nick.starts_with(nick) && !nick.is_empty(),
        "{nick:?}"
    );

    // Kept exactly as advertised; only printing escapes it.
    assert_eq!(by_id[c.as_str()]["name"], "ctl\u{1b}]0;pwned\u{7}");
    assert_eq!(by_id[c.as_str()]["nick"], "\u{9b}2J\u{1b}[2J");
    assert_eq!(by_id[d.as_str()]["nick"], "badutf");

    assert_eq!(
        by_id[h.as_str()]["problem"],
        "speaks protocol 9; this lantalk speaks 1"
    );
    let twin = by_id[t.as_str()]["name"].as_str().unwrap();
    assert!(twin == "twin1" || twin == "twin2", "{twin}");

    // Why the others are missing, and what is wrong with "future".
    for needle in [
        "ignored \"noid\" on noid.local.: no peer id",
        "ignored \"badid\" on badid.local.: its peer id",
        "ignored \"zero\" on zero.local.: it advertises port 0",
        "future: speaks protocol 9; this lantalk speaks 1",
    ] {
        assert!(
            stderr.contains(needle),
            "no {needle:?} in stderr:\n{stderr}"
        );
    }
    assert_terminal_safe("peers --json stderr", &stderr);

    // The table for people: every name there, nothing raw.
    let out = lantalk(&lan, US, dir.path(), &["peers", "--timeout", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (table, stderr) = (text(&out.stdout), text(&out.stderr));
    println!("peers:\n{table}\nstderr:\n{stderr}");
    assert_terminal_safe("peers table", &table);
    assert_terminal_safe("peers stderr", &stderr);
    assert!(table.contains("ctl^[]0;pwned^G"), "{table}");
    assert_eq!(table.lines().count(), 1 + expected.len(), "{table}");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn unusable_peers_are_not_dialled_and_say_why() {
    let lan = Lan::new("unusable_peers", 2);
    let dir = tempfile::tempdir().unwrap();
    let txt_id = |c: char| format!("id={}", id(c));
    // Nothing listens on host 1: each of these refuses connections.
    let _advertisers = [
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "refuser",
                "--host",
                "refuser",
                "--txt",
                &txt_id('a'),
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "future",
                "--host",
                "future",
                "--txt",
                &txt_id('b'),
                "--txt",
                "proto=9",
            ],
        ),
        advertise(&lan, THEM, &["--instance", "noid", "--host", "noid"]),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "zero",
                "--host",
                "zero",
                "--port",
                "0",
                "--txt",
                &txt_id('c'),
            ],
        ),
    ];
    let send = |to: &str| {
        let started = Instant::now();
        let out = lantalk(&lan, US, dir.path(), &["send", to, "hi", "--timeout", "3"]);
        let stderr = text(&out.stderr);
        println!(
            "send {to}: {} after {:?}: {stderr}",
            out.status,
            started.elapsed()
        );
        assert_terminal_safe("send stderr", &stderr);
        (out.status.code(), stderr)
    };

    let (code, err) = send("refuser");
    assert_eq!(code, Some(4), "{err}");
    // Whichever of its addresses (IPv4, link-local IPv6) was tried.
    assert!(
        err.contains("refuser: could not connect to ")
            && err.contains(":7342 (Connection refused")
            && (err.contains(THEIR_ADDR) || err.contains("[fe80::")),
        "{err}"
    );
    let (code, err) = send("future");
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("future: speaks protocol 9; this lantalk speaks 1"),
        "{err}"
    );
    let (code, err) = send("noid");
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("\"noid\" is advertised on noid.local. but cannot be used: no peer id"),
        "{err}"
    );
    let (code, err) = send("zero.local");
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("cannot be used: it advertises port 0"),
        "{err}"
    );
    // Nothing by that name at all is still "not found".
    let (code, err) = send("nobody");
    assert_eq!(code, Some(3), "{err}");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn addresses_off_our_network_are_dialled_last() {
    let lan = Lan::new("off_network_addresses", 2);
    let dirs = tempfile::tempdir().unwrap();
    // The laptop has a second address, on a network we are not on; it sorts
    // before ours by number.
    let add = lan
        .command_raw(THEM, &["ip", "addr", "add", "10.1.0.2/24", "dev", "eth0"])
        .status()
        .unwrap();
    assert!(add.success());
    let laptop_dir = dirs.path().join("laptop");
    let mut laptop = lan.spawn(
        THEM,
        "laptop",
        &["--data-dir", laptop_dir.to_str().unwrap(), "listen"],
    );
    laptop.wait_err(SECS(10), |l| l.contains("listening on port"));

    let (list, _) = peers_json(&lan, US, &dirs.path().join("phone"), "3");
    let laptop_entry = list
        .iter()
        .find(|p| p["name"] == "laptop")
        .unwrap_or_else(|| panic!("laptop not listed: {list:#?}"));
    let addrs: Vec<&str> = laptop_entry["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    println!("dial order: {addrs:?}");
    assert!(addrs.contains(&"10.1.0.2"), "{addrs:?}");
    assert_eq!(
        addrs[0], THEIR_ADDR,
        "our network's address first: {addrs:?}"
    );
    assert_eq!(addrs.last(), Some(&"10.1.0.2"), "{addrs:?}");

    let out = lantalk(
        &lan,
        US,
        &dirs.path().join("phone"),
        &["send", "laptop", "hi"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    laptop.wait_out(SECS(5), |l| l == "phone: hi");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn a_flood_of_advertisements_is_capped() {
    let lan = Lan::new("advertisement_flood", 2);
    let dir = tempfile::tempdir().unwrap();
    let _flood = advertise(
        &lan,
        THEM,
        &[
            "--instance",
            "flood",
            "--host",
            "flood",
            "--txt",
            "id={id}",
            "--count",
            "300",
        ],
    );
    let started = Instant::now();
    let (list, stderr) = peers_json(&lan, US, dir.path(), "6");
    println!(
        "{} peers listed after {:?}; stderr: {stderr}",
        list.len(),
        started.elapsed()
    );
    assert_eq!(list.len(), 256, "{stderr}");
    let ids: HashSet<&str> = list.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 256);
    assert!(
        stderr.contains("more than 256 peers on the network; the rest are ignored"),
        "{stderr}"
    );
    // Ten of the ignored named, the rest counted: stderr stays short too.
    assert!(stderr.lines().count() <= 11, "{stderr}");
    assert!(stderr.contains(" more advertisements ignored"), "{stderr}");
}

/// The peers pane row of `name` (after the left border), if listed.
fn peer_row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find_map(|l| {
        let inner = l.strip_prefix('│')?;
        ["●", "○", "✗", "·"]
            .iter()
            .any(|m| inner.starts_with(&format!("{m} {name}")))
            .then_some(inner)
    })
}

/// Columns of the peers pane, borders included.
const PEERS_WIDTH: usize = 26;

/// The chat screen right of the peers pane, rows joined with spaces, so a
/// sentence wrapped over rows can be found.
fn joined(screen: &str) -> String {
    screen
        .lines()
        .map(|l| {
            let right: String = l.chars().skip(PEERS_WIDTH).collect();
            right.trim().trim_matches(['│', '┃']).trim().to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn chat_screen_lists_poisoned_peers_sanely_and_says_why_they_fail() {
    let lan = Lan::new("poisoned_chat_screen", 2);
    let dir = tempfile::tempdir().unwrap();
    let txt_id = |c: char| format!("id={}", id(c));
    let _advertisers = [
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "plain",
                "--host",
                "plain",
                "--txt",
                &txt_id('a'),
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "future",
                "--host",
                "future",
                "--txt",
                &txt_id('b'),
                "--txt",
                "proto=9",
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "ctl\\x1b]0;pwned\\x07",
                "--host",
                "ctl",
                "--txt",
                &txt_id('c'),
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "twin1",
                "--host",
                "twin1",
                "--txt",
                &txt_id('d'),
            ],
        ),
        advertise(
            &lan,
            THEM,
            &[
                "--instance",
                "twin2",
                "--host",
                "twin2",
                "--txt",
                &txt_id('d'),
            ],
        ),
        advertise(&lan, THEM, &["--instance", "noid", "--host", "noid"]),
    ];
    let mut tmux = Tmux::new();
    let cmd = lan.shell_command(US, "phone", &["--data-dir", dir.path().to_str().unwrap()]);
    tmux.new_session("phone", 160, 30, &format!("exec {cmd}"));
    let screen = tmux.wait_screen("phone", "four peers listed", SECS(10), |s| {
        ["plain", "future", "ctl", "twin"]
            .iter()
            .all(|n| peer_row(s, n).is_some())
    });
    println!("{}", framed(&screen));
    let rows = screen
        .lines()
        .filter(|l| {
            ["│● ", "│○ ", "│✗ ", "│· "]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .count();
    assert_eq!(rows, 4, "one row per peer id:\n{}", framed(&screen));
    assert!(peer_row(&screen, "noid").is_none(), "{}", framed(&screen));
    assert!(
        peer_row(&screen, "ctl^[]0;pwned^G").is_some(),
        "control characters shown escaped:\n{}",
        framed(&screen)
    );
    assert!(
        peer_row(&screen, "future").unwrap().starts_with("✗ future"),
        "future marked:\n{}",
        framed(&screen)
    );

    // Ctrl+N through the conversations to the one wanted.
    let open = |name: &str| {
        for _ in 0..8 {
            if tmux
                .capture("phone")
                .contains(&format!("Message to {name} "))
            {
                return;
            }
            tmux.keys("phone", &["C-n"]);
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cannot open {name}:\n{}", framed(&tmux.capture("phone")));
    };

    open("future");
    tmux.type_text("phone", "hello future");
    tmux.keys("phone", &["Enter"]);
    let screen = tmux.wait_for(
        "phone",
        "cannot send: this peer speaks protocol 9; this lantalk speaks 1",
        SECS(5),
    );
    assert!(
        joined(&screen).contains(
            "future speaks protocol 9; this lantalk speaks 1: messages cannot be sent to it"
        ),
        "{}",
        framed(&screen)
    );

    tmux.keys("phone", &["C-u"]);
    open("plain");
    tmux.type_text("phone", "hello plain");
    tmux.keys("phone", &["Enter"]);
    // The text waits (it goes out if the peer comes back); the reason is shown.
    let needle = format!(
        "phone: hello plain ◷ waiting: could not connect to {THEIR_ADDR}:7342 (Connection refused"
    );
    let screen = tmux.wait_screen("phone", &needle, SECS(10), |s| joined(s).contains(&needle));
    println!("{}", framed(&screen));
    // Still running, still listing everyone.
    assert_eq!(tmux.display("phone", "#{pane_dead}"), "0");
}
