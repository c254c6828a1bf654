//! Environment faults, against the real binary: no network interface for
//! mDNS (and one coming up later), UDP port 5353 held by another responder
//! (exclusively, or shared as Avahi does), a data directory that cannot be
//! written, port 7342 busy under the chat screen, and the terminal closing
//! under it (SIGHUP). Each ends in a clear message and a working app (direct
//! connections still work) or a clean exit.
//!
//! mDNS runs only inside namespace LANs (`common/lan.rs`); the tests in the
//! machine's own namespace use `--no-mdns` and 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::lan::{Lan, require_root};
use common::proc::{BIN, Proc, port_of};
use common::tmux::{Tmux, framed};
use serde_json::{Value, json};

const LAPTOP: usize = 0;
const PHONE: usize = 1;
const SECS: fn(u64) -> Duration = Duration::from_secs;
/// How long any one thing may take to show up.
const WAIT: Duration = Duration::from_secs(10);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `lantalk ARGS` on host `i` of `lan` as `hostname`, with data directory `dir`.
fn run_on(lan: &Lan, i: usize, hostname: &str, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--data-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    lan.run(i, hostname, &all, SECS(60))
}

/// `lantalk listen` on host `i` as `hostname`; waits for its port.
fn listen_on(lan: &Lan, i: usize, hostname: &str, dir: &Path, extra: &[&str]) -> (Proc, u16) {
    let mut args = vec!["--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("listen");
    let mut proc = lan.spawn(i, hostname, &args);
    let line = proc.wait_err(WAIT, |l| l.contains("listening on port"));
    (proc, port_of(&line))
}

/// Takes host `i`'s only real interface down: only loopback is left.
fn unplug(lan: &Lan, i: usize) {
    let status = lan
        .command_raw(i, &["ip", "link", "set", "eth0", "down"])
        .status()
        .unwrap();
    assert!(status.success(), "cannot take eth0 down");
}

/// The status bar: the last row drawn.
fn status_bar(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// Starts the chat screen in tmux session `name` running `cmd` (one shell
/// command line whose last process is lantalk).
fn start_tui(tmux: &mut Tmux, name: &str, cmd: &str) {
    tmux.new_session(name, 120, 30, &format!("exec {cmd}"));
}

/// The port from the status bar's `ADDR:PORT` (or `no network :PORT`);
/// `None` while it shows `:…` (not listening yet).
fn try_port_in_status_bar(screen: &str) -> Option<u16> {
    status_bar(screen)
        .split(" · ")
        .nth(1)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
}

fn port_in_status_bar(screen: &str) -> u16 {
    try_port_in_status_bar(screen)
        .unwrap_or_else(|| panic!("no port in the status bar {:?}", status_bar(screen)))
}

/// A Python program run on a LAN host (`python3 -c`), e.g. to hold a port.
fn python(lan: &Lan, i: usize, program: &str) -> Proc {
    let mut proc = Proc::spawn(lan.command_raw(i, &["python3", "-c", program]));
    proc.wait_out(WAIT, |l| l == "held");
    proc
}

/// Holds UDP 5353 on IPv4 and IPv6 without SO_REUSEADDR/SO_REUSEPORT, as a
/// responder that does not share the port would.
const HOLD_5353_EXCLUSIVELY: &str = r#"
import socket, time
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v4.bind(("0.0.0.0", 5353))
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v6.bind(("::", 5353))
print("held", flush=True)
time.sleep(3600)
"#;

/// Holds UDP 5353 with SO_REUSEADDR and in the multicast group (on host 0's
/// address), as avahi-daemon does: others may share the port.
const HOLD_5353_SHARED: &str = r#"
import socket, struct, time
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
v4.bind(("0.0.0.0", 5353))
v4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
              struct.pack("4s4s", socket.inet_aton("224.0.0.251"), socket.inet_aton("10.77.0.1")))
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v6.bind(("::", 5353))
print("held", flush=True)
time.sleep(3600)
"#;

/// Holds TCP 7342 on every address (dual-stack), as another program would.
const HOLD_7342: &str = r#"
import socket, time
s = socket.create_server(("", 7342), family=socket.AF_INET6, dualstack_ipv6=True)
print("held", flush=True)
time.sleep(3600)
"#;

// ---------------------------------------------------------------------------
// No network interface for mDNS
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root (network namespaces)"]
fn without_a_network_listen_says_so_and_takes_direct_connections() {
    let lan = Lan::new("no_network_listen", 1);
    unplug(&lan, LAPTOP);
    let dirs = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_on(&lan, LAPTOP, "laptop", &dirs.path().join("l"), &[]);
    let line = laptop.wait_err(WAIT, |l| l.contains("mDNS"));
    assert_eq!(
        line,
        format!(
            "lantalk: mDNS: no network (only loopback is up); peers can still connect to port {port} directly"
        )
    );
    let out = run_on(
        &lan,
        LAPTOP,
        "phone",
        &dirs.path().join("p"),
        &["send", &format!("127.0.0.1:{port}"), "direct"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    laptop.wait_out(WAIT, |l| l == "phone: direct");

    // Looking for peers says why nobody from elsewhere will show up.
    let out = run_on(
        &lan,
        LAPTOP,
        "phone",
        &dirs.path().join("p"),
        &["peers", "--timeout", "1"],
    );
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("lantalk: mDNS: no network (only loopback is up)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn without_a_network_the_chat_screen_says_so_and_takes_direct_connections() {
    let lan = Lan::new("no_network_tui", 1);
    unplug(&lan, LAPTOP);
    let dirs = tempfile::tempdir().unwrap();
    let mut tmux = Tmux::new();
    let dir = dirs.path().join("l");
    start_tui(
        &mut tmux,
        "laptop",
        &lan.shell_command(LAPTOP, "laptop", &["--data-dir", dir.to_str().unwrap()]),
    );
    let screen = tmux.wait_screen(
        "laptop",
        "\"mDNS: no network\" in the status bar",
        WAIT,
        |s| status_bar(s).contains("mDNS: no network (only loopback is up)"),
    );
    assert!(
        status_bar(&screen).contains("no network :7342"),
        "{}",
        framed(&screen)
    );
    let out = run_on(
        &lan,
        LAPTOP,
        "phone",
        &dirs.path().join("p"),
        &["send", "127.0.0.1:7342", "direct"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmux.wait_for("laptop", "phone: direct", WAIT);
}

/// A laptop started before its network: discovery starts by itself once an
/// interface comes up (the daemon looks every 30 s).
#[test]
#[ignore = "needs root (network namespaces)"]
fn discovery_starts_when_the_network_comes_up() {
    let lan = Lan::new("network_comes_up", 2);
    unplug(&lan, LAPTOP);
    let dirs = tempfile::tempdir().unwrap();
    let (mut laptop, _) = listen_on(&lan, LAPTOP, "laptop", &dirs.path().join("l"), &[]);
    laptop.wait_err(WAIT, |l| l.contains("mDNS: no network"));
    let status = lan
        .command_raw(LAPTOP, &["ip", "link", "set", "eth0", "up"])
        .status()
        .unwrap();
    assert!(status.success());
    let plugged = Instant::now();
    laptop.wait_err(SECS(45), |l| {
        l == "lantalk: mDNS: the network is up; discovery is on"
    });
    println!(
        "discovery on {:?} after the network came up",
        plugged.elapsed()
    );
    let out = run_on(
        &lan,
        PHONE,
        "phone",
        &dirs.path().join("p"),
        &["send", "laptop", "found you"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    laptop.wait_out(WAIT, |l| l == "phone: found you");
}

// ---------------------------------------------------------------------------
// UDP 5353 held by another responder
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn mdns_port_held_exclusively_is_named_and_direct_connections_work() {
    let lan = Lan::new("mdns_port_held", 2);
    let holder = python(&lan, LAPTOP, HOLD_5353_EXCLUSIVELY);
    let held_by = format!("UDP port 5353 is held by python3 (pid {})", holder.pid());
    let dirs = tempfile::tempdir().unwrap();

    // listen: says who holds the port, and keeps listening.
    let (mut laptop, port) = listen_on(
        &lan,
        LAPTOP,
        "laptop",
        &dirs.path().join("l"),
        &["--port", "0"],
    );
    let line = laptop.wait_err(WAIT, |l| l.contains("mDNS"));
    assert_eq!(
        line,
        format!(
            "lantalk: mDNS unavailable: {held_by}; discovery is off, peers can still connect to port {port} directly"
        )
    );
    let phone_dir = dirs.path().join("p");
    let out = run_on(
        &lan,
        PHONE,
        "phone",
        &phone_dir,
        &["send", &format!("10.77.0.1:{port}"), "direct"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    laptop.wait_out(WAIT, |l| l == "phone: direct");

    // peers and send by name: an error that says why, at once.
    let started = Instant::now();
    let out = run_on(&lan, LAPTOP, "laptop", &phone_dir, &["peers"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!(
            "lantalk: mDNS unavailable: {held_by}; cannot look for peers (give the peer as HOST:PORT)"
        )
    );
    let out = run_on(&lan, LAPTOP, "laptop", &phone_dir, &["send", "phone", "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&held_by),
        "{}",
        text(&out.stderr)
    );
    println!("peers and send failed in {:?}", started.elapsed());

    // The chat screen: the reason in the status bar, direct sessions work.
    let mut tmux = Tmux::new();
    let dir = dirs.path().join("tui");
    start_tui(
        &mut tmux,
        "laptop",
        &lan.shell_command(LAPTOP, "laptop", &["--data-dir", dir.to_str().unwrap()]),
    );
    let screen = tmux.wait_screen("laptop", "the reason in the status bar", WAIT, |s| {
        status_bar(s).contains("mDNS unavailable: UDP port 5353 is held by python3")
    });
    let port = port_in_status_bar(&screen);
    // A phone that never met the laptop's other data directory: this
    // laptop has a key of its own, which the first phone would refuse as
    // a changed key for "laptop".
    let out = run_on(
        &lan,
        PHONE,
        "phone",
        &dirs.path().join("p2"),
        &["send", &format!("10.77.0.1:{port}"), "to the screen"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmux.wait_for("laptop", "phone: to the screen", WAIT);
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn mdns_port_shared_like_avahi_does_leaves_discovery_working() {
    let lan = Lan::new("mdns_port_shared", 2);
    let _holder = python(&lan, LAPTOP, HOLD_5353_SHARED);
    let dirs = tempfile::tempdir().unwrap();
    let (mut laptop, _) = listen_on(&lan, LAPTOP, "laptop", &dirs.path().join("l"), &[]);
    let (_phone, _) = listen_on(&lan, PHONE, "phone", &dirs.path().join("p"), &[]);
    // Both ways: the laptop is found, and finds.
    let out = run_on(
        &lan,
        PHONE,
        "phone",
        &dirs.path().join("p2"),
        &["send", "laptop", "found you"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    laptop.wait_out(WAIT, |l| l == "phone: found you");
    let out = run_on(
        &lan,
        LAPTOP,
        "laptop",
        &dirs.path().join("l2"),
        &["peers", "--json", "--timeout", "3"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(r#""name":"phone""#),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&out.stderr).contains("mDNS"), "{}", text(&out.stderr));
    assert!(
        !laptop.drain_err().iter().any(|l| l.contains("mDNS")),
        "{:?}",
        laptop.err
    );
}

// ---------------------------------------------------------------------------
// A data directory that cannot be written
// ---------------------------------------------------------------------------

/// `lantalk --no-mdns ARGS` on this machine (no discovery: loopback only).
fn local(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1);
    cmd.arg("--no-mdns").arg("--data-dir").arg(dir).args(args);
    cmd
}

fn local_listen(cmd: Command) -> (Proc, u16) {
    let mut proc = Proc::spawn(cmd);
    let line = proc.wait_err(WAIT, |l| l.contains("listening on port"));
    (proc, port_of(&line))
}

/// A data directory below a regular file: creating it fails with "Not a
/// directory", for root too.
fn under_a_file(tmp: &Path) -> PathBuf {
    let file = tmp.join("a-file");
    std::fs::write(&file, "").unwrap();
    file.join("lantalk")
}

#[test]
fn unwritable_data_dir_send_and_listen_work_with_a_temporary_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = under_a_file(tmp.path());
    let warning = format!(
        "lantalk: cannot create {}: Not a directory (os error 20); using a temporary identity for this run (peers will not recognise this lantalk after a restart)",
        dir.display()
    );
    let (mut laptop, port) = local_listen(local(&dir, &["--port", "0", "listen", "--json"]));
    assert_eq!(laptop.err[0], warning, "{:?}", laptop.err);

    let mut ids = Vec::new();
    for body in ["one", "two"] {
        let out = local(&dir, &["send", &format!("127.0.0.1:{port}"), body])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        // The warning, then what the typed address reached (a first key).
        let said = text(&out.stderr);
        assert_eq!(said.lines().next(), Some(warning.as_str()), "{said}");
        assert!(
            said.lines()
                .skip(1)
                .all(|l| l.starts_with("lantalk: reached ")),
            "nothing else to say: {said}"
        );
        let line = laptop.wait_out(WAIT, |l| l.contains(body));
        let msg: Value = serde_json::from_str(&line).unwrap();
        ids.push(msg["from_id"].as_str().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1], "a temporary id is new each run");
}

/// Root ignores permission bits: a read-only bind mount (in a mount
/// namespace of its own) really refuses writes. Needs root.
fn read_only(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "sh",
        "-c",
        r#"mount --bind -o ro "$0" "$0" && shift && exec "$@""#,
    ])
    .arg(dir)
    .arg("ignored")
    .arg(BIN)
    .args(["--no-mdns", "--data-dir"])
    .arg(dir)
    .args(args);
    cmd
}

#[test]
#[ignore = "needs root (read-only bind mounts)"]
fn read_only_data_dir_keeps_its_id_and_its_lock() {
    require_root("read_only_data_dir", "read-only bind mounts");
    let tmp = tempfile::tempdir().unwrap();
    let (mut laptop, port) = local_listen(local(
        &tmp.path().join("laptop"),
        &["--port", "0", "listen", "--json"],
    ));
    let to = format!("127.0.0.1:{port}");

    // A directory made on an earlier run, read-only now: its id is used.
    let kept = tmp.path().join("kept");
    let out = local(&kept, &["send", &to, "first"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = std::fs::read_to_string(kept.join("id")).unwrap();
    let out = read_only(&kept, &["send", &to, "read-only"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The id is there; only the history, which cannot be written, is worth a word.
    let warnings = text(&out.stderr);
    assert!(
        warnings.lines().all(|l| (l.contains("history database")
            && l.contains("readonly")
            && l.contains("not completely recorded"))
            // What the typed address reached.
            || l.starts_with("lantalk: reached ")),
        "nothing else to warn about: {warnings}"
    );
    let line = laptop.wait_out(WAIT, |l| l.contains("read-only"));
    let msg: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(msg["from_id"], id.trim());

    // A listener there: the lock file an earlier listener left still locks.
    std::fs::write(kept.join("lock"), "").unwrap();
    let (mut first, _) = local_listen(read_only(&kept, &["--port", "0", "listen"]));
    // (Only the web client's join token, which cannot be made there, is
    // worth a word.)
    assert!(
        !first
            .drain_err()
            .iter()
            .any(|l| l.contains("cannot") && !l.contains("web-token")),
        "{:?}",
        first.err
    );
    let second = read_only(&kept, &["--port", "0", "listen"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("another lantalk is already running"),
        "{}",
        text(&second.stderr)
    );
    first.terminate();
    first.wait_exit(WAIT);

    // An empty read-only directory: a temporary id, and it works.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // Another name: the laptop pinned this host's name to the key in `kept`.
    let out = read_only(&empty, &["--name", "empty", "send", &to, "from empty"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Read-only file system")
            && stderr.contains("using a temporary identity for this run"),
        "{stderr}"
    );
    laptop.wait_out(WAIT, |l| l.contains("from empty"));
}

#[test]
#[ignore = "needs tmux"]
fn unwritable_data_dir_chat_screen_works_and_says_so_on_leaving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = under_a_file(tmp.path());
    let mut tmux = Tmux::new();
    let cmd = format!(
        "{BIN} --no-mdns --port 0 --name laptop --data-dir {}",
        common::lan::shell_quote(dir.to_str().unwrap())
    );
    // Under a shell that stays, so the terminal after lantalk can be read.
    tmux.new_session(
        "laptop",
        120,
        30,
        &format!("{cmd}; echo exited $?; exec cat"),
    );
    let screen = tmux.wait_screen("laptop", "the port in the status bar", WAIT, |s| {
        try_port_in_status_bar(s).is_some()
    });
    let port = port_in_status_bar(&screen);
    let out = local(
        &tmp.path().join("phone"),
        &[
            "--name",
            "phone",
            "send",
            &format!("127.0.0.1:{port}"),
            "hi",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmux.wait_for("laptop", "phone: hi", WAIT);
    tmux.keys("laptop", &["C-c"]);
    tmux.wait_for("laptop", "exited 0", WAIT);
    // Wrapped rows joined: the warning is longer than the terminal is wide.
    let screen = tmux.ok(&["capture-pane", "-p", "-J", "-t", "laptop"]);
    assert!(
        screen.contains(&format!(
            "lantalk: cannot create {}: Not a directory (os error 20); using a temporary identity for this run",
            dir.display()
        )),
        "{}",
        framed(&screen)
    );
}

// ---------------------------------------------------------------------------
// Port 7342 busy, and the terminal closing (SIGHUP)
// ---------------------------------------------------------------------------

/// `busy_default_port_falls_back` (tests/loopback.rs) covers `listen`; this
/// is the chat screen, found by name on its fallback port.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn chat_screen_on_a_busy_7342_falls_back_and_is_found_there() {
    let lan = Lan::new("tui_port_busy", 2);
    let _holder = python(&lan, LAPTOP, HOLD_7342);
    let dirs = tempfile::tempdir().unwrap();
    let mut tmux = Tmux::new();
    let dir = dirs.path().join("l");
    start_tui(
        &mut tmux,
        "laptop",
        &lan.shell_command(LAPTOP, "laptop", &["--data-dir", dir.to_str().unwrap()]),
    );
    let screen = tmux.wait_screen("laptop", "the fallback notice", WAIT, |s| {
        s.contains("port 7342 is busy; listening on ") && status_bar(s).contains("mDNS on")
    });
    let port = port_in_status_bar(&screen);
    assert_ne!(port, 7342);
    assert!(
        screen.contains(&format!("port 7342 is busy; listening on {port} instead")),
        "{}",
        framed(&screen)
    );
    let out = run_on(
        &lan,
        PHONE,
        "phone",
        &dirs.path().join("p"),
        &["send", "laptop", "found you"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmux.wait_for("laptop", "phone: found you", WAIT);
}

/// The chat screen told to listen on a port that is taken (`--port 7342`,
/// no fallback for a port asked for): nobody can connect to it, and the
/// status bar says so, but everything else works: it finds the phone,
/// sends to it (✓), and answers `/search` from its history.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn chat_screen_with_its_port_taken_works_but_for_incoming_sessions() {
    let lan = Lan::new("tui_port_taken", 2);
    let _holder = python(&lan, LAPTOP, HOLD_7342);
    let dirs = tempfile::tempdir().unwrap();
    let (mut phone, _) = listen_on(&lan, PHONE, "phone", &dirs.path().join("p"), &[]);
    let mut tmux = Tmux::new();
    let dir = dirs.path().join("l");
    start_tui(
        &mut tmux,
        "laptop",
        &lan.shell_command(
            LAPTOP,
            "laptop",
            &["--data-dir", dir.to_str().unwrap(), "--port", "7342"],
        ),
    );
    let screen = tmux.wait_screen("laptop", "the status bar and the phone", WAIT, |s| {
        status_bar(s).contains("not listening (port 7342 is already in use")
            && s.contains("Message to phone")
    });
    assert!(
        status_bar(&screen).contains("outgoing only"),
        "{}",
        framed(&screen)
    );
    tmux.type_text("laptop", "from a taken port");
    tmux.keys("laptop", &["Enter"]);
    phone.wait_out(WAIT, |l| l == "laptop: from a taken port");
    tmux.wait_for("laptop", "from a taken port ✓", WAIT);
    tmux.type_text("laptop", "/search taken");
    tmux.keys("laptop", &["Enter"]);
    tmux.wait_screen("laptop", "the search results", WAIT, |s| {
        s.contains("phone") && s.contains("· from a taken port")
    });
}

/// The terminal closes under the chat screen (tmux kills the session: the
/// pane's process gets SIGHUP): lantalk exits, says bye to its session and
/// goodbye on mDNS, so the peer sees it offline at once rather than after
/// the records expire (120 s).
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn closing_the_terminal_ends_the_chat_screen_with_goodbyes() {
    let lan = Lan::new("terminal_closed", 2);
    let dirs = tempfile::tempdir().unwrap();
    let mut tmux = Tmux::new();
    for (i, name) in [(LAPTOP, "laptop"), (PHONE, "phone")] {
        let dir = dirs.path().join(name);
        start_tui(
            &mut tmux,
            name,
            &lan.shell_command(i, name, &["--data-dir", dir.to_str().unwrap()]),
        );
    }
    // phone writes to laptop: a session is open both ways.
    tmux.wait_for("phone", "Message to laptop", WAIT);
    tmux.type_text("phone", "still there?");
    tmux.keys("phone", &["Enter"]);
    tmux.wait_for("laptop", "phone: still there?", WAIT);
    tmux.wait_screen("phone", "laptop connected (●)", WAIT, |s| {
        s.contains("● laptop")
    });

    let pid = tmux.display("laptop", "#{pane_pid}");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "lantalk"
    );
    let closed = Instant::now();
    tmux.ok(&["kill-session", "-t", "laptop"]);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            closed.elapsed() < WAIT,
            "lantalk {pid} still running {WAIT:?} after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("lantalk exited {:?} after SIGHUP", closed.elapsed());
    let screen = tmux.wait_screen(
        "phone",
        "laptop offline (bye and mDNS goodbye)",
        WAIT,
        |s| s.contains("laptop is offline") && status_bar(s).contains("0 online"),
    );
    println!(
        "phone saw laptop offline {:?} after SIGHUP:\n{}",
        closed.elapsed(),
        framed(&screen)
    );
}

/// One frame: u32 big-endian length, then JSON.
fn frame(msg: &Value) -> Vec<u8> {
    let payload = msg.to_string();
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload.as_bytes());
    bytes
}

fn read_frame(stream: &mut TcpStream) -> Option<Value> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut payload).ok()?;
    serde_json::from_slice(&payload).ok()
}

#[test]
fn sighup_makes_listen_say_bye_and_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut laptop, port) = local_listen(local(tmp.path(), &["--port", "0", "listen"]));
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let hello = json!({"type": "hello", "proto": 1, "id": "0123456789abcdef0123456789abcdef",
                       "name": "phone", "app": "faults/0"});
    stream.write_all(&frame(&hello)).unwrap();
    assert_eq!(read_frame(&mut stream).expect("hello")["type"], "hello");
    laptop.wait_err(WAIT, |l| l.contains("phone connected"));

    let hup = Command::new("kill")
        .args(["-HUP", &laptop.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert_eq!(read_frame(&mut stream).expect("bye")["type"], "bye");
    let status = laptop.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{:?}", laptop.err);
}

/// What follows `needle` on its row, up to the pane's right border.
fn rest_of_row<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    let line = screen.lines().find(|l| l.contains(needle))?;
    let rest = &line[line.find(needle)? + needle.len()..];
    Some(rest.trim_end().trim_end_matches(['│', '┃']).trim())
}

/// A text typed just after the peer's link was cut goes out on the
/// session that is still open (the cut is not noticed before the 12 s
/// heartbeat): it arrives when TCP retransmits it, and TCP waits twice as
/// long after each lost try, so the later the link comes back, the longer
/// after its return the text arrives: at most about as long again as the
/// cut lasted. Prints the figures the README gives.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn a_text_typed_during_a_link_cut_goes_out_when_tcp_retransmits_it() {
    require_root("link cut", "network namespaces");
    let lan = Lan::new("cut_return", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let (mut laptop, _) = listen_on(&lan, LAPTOP, "laptop", &laptop_dir, &[]);
    let mut tmux = Tmux::new();
    let cmd = lan.shell_command(PHONE, "phone", &["--data-dir", phone_dir.to_str().unwrap()]);
    start_tui(&mut tmux, "phone", &cmd);
    tmux.wait_screen("phone", "laptop online", SECS(15), |s| {
        status_bar(s).contains("1 online")
    });
    tmux.keys("phone", &["Tab", "Enter"]);
    tmux.wait_for("phone", "Message to laptop", WAIT);
    tmux.type_text("phone", "before the cuts");
    tmux.keys("phone", &["Enter"]);
    laptop.wait_out(WAIT, |l| l == "phone: before the cuts");

    for cut_secs in [2, 5, 9] {
        lan.set_link(LAPTOP, false);
        let text = format!("typed during a {cut_secs} s cut");
        tmux.type_text("phone", &text);
        tmux.keys("phone", &["Enter"]);
        tmux.wait_for("phone", &format!("phone: {text}"), WAIT);
        // The length of the cut is the scenario, not a wait for anything.
        std::thread::sleep(SECS(cut_secs));
        lan.set_link(LAPTOP, true);
        let back = Instant::now();
        laptop.wait_out(SECS(40), |l| l == format!("phone: {text}"));
        let delivered = back.elapsed();
        tmux.wait_screen("phone", "a ✓ for the text", WAIT, |s| {
            rest_of_row(s, &format!("phone: {text}")) == Some("✓")
        });
        println!("figure: {cut_secs} s cut: delivered {delivered:.1?} after the link came back");
        assert!(
            delivered < SECS(cut_secs + 1),
            "after a {cut_secs} s cut the text went out {delivered:?} after the link came back"
        );
    }
}
