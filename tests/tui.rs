//! The chat screen end to end: real `lantalk` TUIs running in a private tmux
//! server, each on its own host of a namespace LAN (see `common/lan.rs`)
//! with its own hostname and data directory, driven with keys and pastes and
//! read back from the screen.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::lan::Lan;
use common::tmux::{Tmux, framed};
use serde_json::Value;

const LAPTOP: usize = 0;
const PHONE: usize = 1;

/// How long any one thing may take to show up.
const WAIT: Duration = Duration::from_secs(10);

/// Columns of the peers pane, borders included, on a 100-column screen.
const PEERS_WIDTH: usize = 26;

/// Starts the TUI on host `i` named `name`, in tmux session `name`.
fn start_tui(tmux: &mut Tmux, lan: &Lan, i: usize, name: &str, dir: &Path, size: (u16, u16)) {
    let cmd = lan.shell_command(i, name, &["--data-dir", dir.to_str().unwrap()]);
    // `exec`: the pane's process is lantalk itself, and the pane dies with it.
    tmux.new_session(name, size.0, size.1, &format!("exec {cmd}"));
}

/// Runs the chat screen of session `name` again, in its (dead) pane.
fn restart_tui(tmux: &Tmux, lan: &Lan, i: usize, name: &str, dir: &Path) {
    let cmd = lan.shell_command(i, name, &["--data-dir", dir.to_str().unwrap()]);
    tmux.respawn(name, &format!("exec {cmd}"));
}

/// Prints the TUIs' log files if the test fails, for the cause behind a screen.
struct LogsOnFailure(Vec<PathBuf>);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for dir in &self.0 {
                let log = dir.join("lantalk.log");
                let text = std::fs::read_to_string(&log).unwrap_or_else(|e| format!("({e})"));
                eprintln!("--- {} ---\n{text}", log.display());
            }
        }
    }
}

/// The peers pane's row for `name` (`● name`, `○ name` or `· name` after the border).
fn peer_row(screen: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = screen.lines().collect();
    // The last row is the status bar.
    lines[..lines.len().saturating_sub(1)]
        .iter()
        .map(|l| l.chars().take(PEERS_WIDTH).collect::<String>())
        .find(|row| {
            let inner: String = row.chars().skip(1).collect();
            ["●", "○", "·"]
                .iter()
                .any(|mark| inner.starts_with(&format!("{mark} {name}")))
        })
}

/// The status bar: the last row drawn.
fn status_bar(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// What follows `needle` on its row, up to the pane's right border.
fn rest_of_row<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    let line = screen.lines().find(|l| l.contains(needle))?;
    let rest = &line[line.find(needle)? + needle.len()..];
    Some(rest.trim_end().trim_end_matches(['│', '┃']).trim())
}

/// Waits until `name`'s screen lists `peer` online with one peer online and mDNS on.
fn wait_peer_online(tmux: &Tmux, name: &str, peer: &str) -> String {
    tmux.wait_screen(
        name,
        &format!("{peer} online in the peers pane, \"1 online\" and \"mDNS on\""),
        WAIT,
        |s| {
            peer_row(s, peer).is_some_and(|r| !r.contains("offline"))
                && status_bar(s).contains("1 online")
                && status_bar(s).contains("mDNS on")
        },
    )
}

/// In `name`'s TUI: focus the peers pane, open the highlighted (only) peer's
/// conversation, and check the input is now addressed to `peer`.
fn open_conversation(tmux: &Tmux, name: &str, peer: &str) {
    tmux.keys(name, &["Tab", "Enter"]);
    tmux.wait_for(name, &format!("Message to {peer}"), WAIT);
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn two_tuis_chat() {
    let lan = Lan::new("two_tuis_chat", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let _logs = LogsOnFailure(vec![laptop_dir.clone(), phone_dir.clone()]);
    let mut tmux = Tmux::new();
    start_tui(&mut tmux, &lan, LAPTOP, "laptop", &laptop_dir, (100, 30));
    start_tui(&mut tmux, &lan, PHONE, "phone", &phone_dir, (100, 30));

    wait_peer_online(&tmux, "laptop", "phone");
    wait_peer_online(&tmux, "phone", "laptop");

    // Phone opens laptop's conversation from the peers pane and writes.
    open_conversation(&tmux, "phone", "laptop");
    tmux.type_text("phone", "Hey there, Rodrigo's laptop.");
    tmux.keys("phone", &["Enter"]);

    // Nothing was open on the laptop: the arriving conversation opens itself.
    let screen = tmux.wait_screen(
        "laptop",
        "phone's message, or an unread badge for it",
        WAIT,
        |s| {
            s.contains("phone: Hey there, Rodrigo's laptop.")
                || peer_row(s, "phone").is_some_and(|r| r.contains("(1)"))
        },
    );
    if !screen.contains("phone: Hey there, Rodrigo's laptop.") {
        eprintln!(
            "the conversation did not open by itself on the laptop:\n{}",
            framed(&screen)
        );
        open_conversation(&tmux, "laptop", "phone");
        tmux.wait_for("laptop", "phone: Hey there, Rodrigo's laptop.", WAIT);
    }
    let screen = tmux.wait_for("laptop", "Message to phone", WAIT);
    assert!(
        peer_row(&screen, "phone").is_some_and(|r| !r.contains("(1)")),
        "the message on screen is still counted unread:\n{}",
        framed(&screen)
    );

    // The laptop answers in the open conversation.
    tmux.type_text("laptop", "hi phone 👋");
    tmux.keys("laptop", &["Enter"]);
    let screen = tmux.wait_screen(
        "phone",
        "laptop's reply and a ✓ after phone's own message",
        WAIT,
        |s| {
            s.contains("laptop: hi phone")
                && rest_of_row(s, "phone: Hey there, Rodrigo's laptop.") == Some("✓")
        },
    );
    assert!(
        screen.contains("laptop: hi phone 👋"),
        "the emoji did not arrive intact:\n{}",
        framed(&screen)
    );
    // And the laptop sees its own reply acknowledged.
    tmux.wait_screen("laptop", "a ✓ after laptop's reply", WAIT, |s| {
        rest_of_row(s, "laptop: hi phone 👋") == Some("✓")
    });

    // The laptop quits with Ctrl+C: cleanly, and the phone sees it go.
    tmux.keys("laptop", &["C-c"]);
    let status = tmux.wait_dead("laptop", WAIT);
    assert_eq!(
        status,
        Some(0),
        "lantalk on the laptop did not exit 0; screen:\n{}",
        framed(&tmux.capture("laptop"))
    );
    tmux.wait_screen(
        "phone",
        "\"laptop is offline\", laptop offline in the peers pane and \"0 online\"",
        WAIT,
        |s| {
            s.contains("laptop is offline")
                && peer_row(s, "laptop").is_some_and(|r| {
                    r.trim_end_matches(['│', '┃'])
                        .trim_end()
                        .ends_with("offline")
                })
                && status_bar(s).contains("0 online")
        },
    );
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn paste_of_10_kib_is_one_message() {
    let lan = Lan::new("paste_of_10_kib", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let _logs = LogsOnFailure(vec![phone_dir.clone()]);
    // The receiver is headless, so what arrives is seen exactly, not as drawn.
    let mut laptop = lan.spawn(
        LAPTOP,
        "laptop",
        &[
            "--data-dir",
            laptop_dir.to_str().unwrap(),
            "listen",
            "--json",
        ],
    );
    laptop.wait_err(WAIT, |l| l.contains("listening on port"));
    let mut tmux = Tmux::new();
    start_tui(&mut tmux, &lan, PHONE, "phone", &phone_dir, (100, 30));
    wait_peer_online(&tmux, "phone", "laptop");
    open_conversation(&tmux, "phone", "laptop");

    // 100 lines of 102 characters: 10,299 bytes.
    let text: String = (0..100)
        .map(|i| format!("line {i:04} {}", "y".repeat(92)))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.len() > 10 * 1024);
    tmux.paste("phone", &text);

    // All of it lands in the input (which shows its last rows), none of it is sent.
    let screen = tmux.wait_for("phone", "line 0099 yyy", WAIT);
    assert!(
        !screen.contains("phone:"),
        "the paste sent something before Enter:\n{}",
        framed(&screen)
    );
    tmux.keys("phone", &["Enter"]);

    let line = laptop.wait_out(WAIT, |l| l.starts_with('{'));
    // Acknowledged means laptop has printed it: anything sent before the ack is out too.
    tmux.wait_screen("phone", "a ✓ after the pasted message", WAIT, |s| {
        s.lines()
            .any(|l| l.trim_end_matches(['│', '┃', ' ']).ends_with("yyy ✓"))
    });
    let out = laptop.drain_out();
    assert_eq!(
        out.len(),
        1,
        "the paste arrived as {} messages: {out:#?}",
        out.len()
    );
    let msg: Value = serde_json::from_str(&line).expect("listen --json line is JSON");
    assert_eq!(msg["from"], "phone", "{msg}");
    let body = msg["body"].as_str().expect("body is a string");
    assert_eq!(body.lines().count(), 100, "{body:?}");
    assert!(
        body == text,
        "the body differs from the paste\n sent: {text:?}\n  got: {body:?}"
    );
}

/// The terminal modes tmux knows for the pane of `name`.
fn modes(tmux: &Tmux, name: &str) -> String {
    tmux.display(
        name,
        "alternate_on=#{alternate_on} mouse_any_flag=#{mouse_any_flag} \
         mouse_all_flag=#{mouse_all_flag} mouse_sgr_flag=#{mouse_sgr_flag} \
         cursor_flag=#{cursor_flag}",
    )
}

/// Modes while the chat screen is up: alternate screen, mouse reporting
/// (any motion, SGR), cursor shown at the input.
const MODES_IN_TUI: &str =
    "alternate_on=1 mouse_any_flag=1 mouse_all_flag=1 mouse_sgr_flag=1 cursor_flag=1";

/// Modes of a restored terminal.
const MODES_RESTORED: &str =
    "alternate_on=0 mouse_any_flag=0 mouse_all_flag=0 mouse_sgr_flag=0 cursor_flag=1";

fn kill_term(pid: &str) {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "lantalk", "pid {pid} is not lantalk");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", pid])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -TERM {pid} failed");
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn sigterm_restores_the_terminal() {
    let lan = Lan::new("sigterm_restores", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let _logs = LogsOnFailure(vec![laptop_dir.clone(), phone_dir.clone()]);
    let mut tmux = Tmux::new();

    // laptop: lantalk is the pane's process; the pane dies with it, keeping
    // its exit status and the modes it left (all but the cursor: tmux hides
    // the cursor of every dead pane).
    start_tui(&mut tmux, &lan, LAPTOP, "laptop", &laptop_dir, (100, 30));
    // phone: lantalk runs under a shell that stays, so the terminal after it
    // can be examined alive: cursor, line discipline, bracketed paste.
    let lantalk = lan.shell_command(PHONE, "phone", &["--data-dir", phone_dir.to_str().unwrap()]);
    let report = r#"s=$?; if [ "$(stty -g)" = "$t" ]; then m=restored; else m=changed; fi"#;
    tmux.new_session(
        "phone",
        100,
        30,
        &format!(
            "t=$(stty -g); {lantalk}; {report}; \
             printf '\nlantalk exited %s, termios %s\n' $s $m; exec cat -v"
        ),
    );

    for name in ["laptop", "phone"] {
        tmux.wait_screen(name, "the status bar", WAIT, |s| {
            status_bar(s).contains("F1 help") && status_bar(s).contains("mDNS on")
        });
        // What the TUI turns on, so that seeing it off afterwards means something.
        assert_eq!(modes(&tmux, name), MODES_IN_TUI, "{name}");
    }

    // Every layer of the laptop pane's command execs: its pid is lantalk's.
    let laptop_pid = tmux.display("laptop", "#{pane_pid}");
    kill_term(&laptop_pid);
    // On the phone, lantalk is the shell's only child.
    let sh = tmux.display("phone", "#{pane_pid}");
    let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap();
    kill_term(children.trim());

    let status = tmux.wait_dead("laptop", WAIT);
    let screen = tmux.capture("laptop");
    assert_eq!(
        status,
        Some(0),
        "lantalk did not exit 0 on SIGTERM; screen:\n{}",
        framed(&screen)
    );
    assert_eq!(
        modes(&tmux, "laptop"),
        MODES_RESTORED.replace("cursor_flag=1", "cursor_flag=0"),
        "terminal modes left on; screen:\n{}",
        framed(&screen)
    );
    assert!(
        !screen.contains("F1 help"),
        "the chat screen is still showing:\n{}",
        framed(&screen)
    );

    let screen = tmux.wait_for("phone", "lantalk exited", WAIT);
    assert!(
        screen.contains("lantalk exited 0, termios restored"),
        "{}",
        framed(&screen)
    );
    assert_eq!(
        modes(&tmux, "phone"),
        MODES_RESTORED,
        "terminal modes left on; screen:\n{}",
        framed(&screen)
    );
    // Bracketed paste is off: a paste reaches `cat -v` without ESC[200~ … ESC[201~.
    tmux.paste("phone", "pasted");
    tmux.keys("phone", &["Enter"]);
    let screen = tmux.wait_screen("phone", "the paste echoed back by cat", WAIT, |s| {
        s.matches("pasted").count() >= 2
    });
    assert!(
        !screen.contains("200~"),
        "bracketed paste left on:\n{}",
        framed(&screen)
    );
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn tiny_terminal_shows_enlarge_message() {
    let lan = Lan::new("tiny_terminal", 1);
    let dir = tempfile::tempdir().unwrap();
    let _logs = LogsOnFailure(vec![dir.path().to_owned()]);
    let mut tmux = Tmux::new();
    start_tui(&mut tmux, &lan, 0, "laptop", dir.path(), (30, 8));
    let screen = tmux.wait_for("laptop", "enlarge", WAIT);
    assert!(
        !screen.contains("F1 help"),
        "a squeezed chat screen instead of the request to enlarge:\n{}",
        framed(&screen)
    );

    tmux.ok(&["resize-window", "-t", "laptop", "-x", "100", "-y", "30"]);
    tmux.wait_screen(
        "laptop",
        "the status bar with \"F1 help\" (and no \"enlarge\")",
        WAIT,
        |s| status_bar(s).contains("F1 help") && !s.contains("enlarge"),
    );
}

/// `nc laptop.local 7342` as a two-way chat: a plain socket (no framing) on
/// another host talks to the TUI, which lists it as a raw peer and writes
/// replies back as lines.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn a_plain_socket_chats_with_the_tui() {
    let lan = Lan::new("plain_socket_tui", 2);
    let dirs = tempfile::tempdir().unwrap();
    let mut tmux = Tmux::new();
    let laptop_dir = dirs.path().join("laptop");
    let _logs = LogsOnFailure(vec![laptop_dir.clone()]);
    start_tui(&mut tmux, &lan, LAPTOP, "laptop", &laptop_dir, (100, 30));
    tmux.wait_for("laptop", "mDNS on", WAIT);
    // The socket says hello, then prints the first line it receives.
    let client = format!(
        "import socket; s = socket.create_connection(('{}', 7342), timeout=10); \
         s.sendall(b'hello from a plain socket\\n'); \
         print(s.makefile('rb').readline().decode().rstrip())",
        lan.addr(LAPTOP)
    );
    let mut python = lan.command_raw(PHONE, &["python3", "-c", &client]);
    let mut child = common::proc::Proc::spawn({
        python.env_remove("PYTHONSTARTUP");
        python
    });
    let screen = tmux.wait_for("laptop", "hello from a plain socket", WAIT);
    let raw_name = format!("raw {}:", lan.addr(PHONE));
    assert!(screen.contains(&raw_name), "{}", framed(&screen));
    // The raw peer's conversation opened by itself: reply in it.
    tmux.wait_for("laptop", "Message to raw", WAIT);
    tmux.type_text("laptop", "hi plain socket, 你好 👋");
    tmux.keys("laptop", &["Enter"]);
    child.wait_out(WAIT, |l| l == "hi plain socket, 你好 👋");
    assert!(child.wait_exit(WAIT).success());
    // No ✓ for a raw peer: it never acknowledges; the line is marked sent.
    let screen = tmux.wait_for("laptop", "(sent)", WAIT);
    let row = screen
        .lines()
        .find(|l| l.contains("laptop: hi plain socket"))
        .unwrap_or("");
    assert!(
        row.contains("(sent)") && !row.contains('✓'),
        "{}",
        framed(&screen)
    );
}

/// Whether `name`'s peers pane shows `peer` offline.
fn shown_offline(screen: &str, peer: &str) -> bool {
    peer_row(screen, peer).is_some_and(|r| {
        r.trim_end_matches(['│', '┃'])
            .trim_end()
            .ends_with("offline")
    })
}

/// The phone's TUI chats with `lantalk listen` on the laptop; then the
/// laptop's link is cut. The open session notices within 15 s (heartbeat),
/// the laptop is shown offline (discovery drops it), a text typed meanwhile
/// waits, and when the link is back it is delivered exactly once and the
/// laptop reappears.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn a_cut_link_is_noticed_and_waiting_texts_follow_the_peer_back() {
    let lan = Lan::new("cut_link", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let _logs = LogsOnFailure(vec![phone_dir.clone()]);
    let mut listen = lan.spawn(
        LAPTOP,
        "laptop",
        &["--data-dir", laptop_dir.to_str().unwrap(), "listen"],
    );
    let mut tmux = Tmux::new();
    start_tui(&mut tmux, &lan, PHONE, "phone", &phone_dir, (100, 30));
    wait_peer_online(&tmux, "phone", "laptop");
    open_conversation(&tmux, "phone", "laptop");
    tmux.type_text("phone", "before the cut");
    tmux.keys("phone", &["Enter"]);
    listen.wait_out(WAIT, |l| l == "phone: before the cut");
    tmux.wait_screen("phone", "a ✓ for the first text", WAIT, |s| {
        rest_of_row(s, "phone: before the cut") == Some("✓")
    });

    lan.set_link(LAPTOP, false);
    let cut = std::time::Instant::now();
    tmux.wait_for("phone", "stopped responding", Duration::from_secs(25));
    let noticed = cut.elapsed();
    tmux.wait_screen("phone", "laptop offline", Duration::from_secs(25), |s| {
        shown_offline(s, "laptop")
    });
    let offline = cut.elapsed();

    tmux.type_text("phone", "typed while cut");
    tmux.keys("phone", &["Enter"]);
    tmux.wait_screen("phone", "the text waiting, not ✓", WAIT, |s| {
        rest_of_row(s, "phone: typed while cut")
            .is_some_and(|r| r.starts_with('…') || r.starts_with('◷'))
    });

    lan.set_link(LAPTOP, true);
    let back = std::time::Instant::now();
    listen.wait_out(Duration::from_secs(40), |l| l == "phone: typed while cut");
    let delivered = back.elapsed();
    tmux.wait_screen("phone", "a ✓ for the waiting text", WAIT, |s| {
        rest_of_row(s, "phone: typed while cut") == Some("✓")
    });
    tmux.wait_screen(
        "phone",
        "laptop online again",
        Duration::from_secs(60),
        |s| peer_row(s, "laptop").is_some_and(|r| r.contains('●')),
    );
    let reappeared = back.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let copies = listen
        .drain_out()
        .iter()
        .filter(|l| *l == "phone: typed while cut")
        .count();
    assert_eq!(copies, 1, "printed once: {:?}", listen.out);
    println!(
        "figure: link cut: session closed after {noticed:.1?}, peer offline after {offline:.1?}; \
         link back: waiting text delivered after {delivered:.1?}, peer online after {reappeared:.1?}"
    );
}

/// A peer killed with SIGKILL is offline at once; a text typed meanwhile
/// reaches it, once, when it is started again.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn a_killed_peer_goes_offline_and_gets_the_waiting_text_when_back() {
    let lan = Lan::new("killed_peer", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let _logs = LogsOnFailure(vec![phone_dir.clone()]);
    let args = ["--data-dir", laptop_dir.to_str().unwrap(), "listen"];
    let mut listen = lan.spawn(LAPTOP, "laptop", &args);
    let mut tmux = Tmux::new();
    start_tui(&mut tmux, &lan, PHONE, "phone", &phone_dir, (100, 30));
    wait_peer_online(&tmux, "phone", "laptop");
    open_conversation(&tmux, "phone", "laptop");
    tmux.type_text("phone", "are you there");
    tmux.keys("phone", &["Enter"]);
    listen.wait_out(WAIT, |l| l == "phone: are you there");

    let status = std::process::Command::new("kill")
        .args(["-KILL", &listen.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let killed = std::time::Instant::now();
    listen.wait_exit(WAIT);
    tmux.wait_screen("phone", "laptop offline", WAIT, |s| {
        shown_offline(s, "laptop")
    });
    let offline = killed.elapsed();
    tmux.type_text("phone", "while you were gone");
    tmux.keys("phone", &["Enter"]);
    tmux.wait_for("phone", "phone: while you were gone", WAIT);

    let mut again = lan.spawn(LAPTOP, "laptop", &args);
    let restarted = std::time::Instant::now();
    again.wait_out(Duration::from_secs(30), |l| {
        l == "phone: while you were gone"
    });
    let delivered = restarted.elapsed();
    tmux.wait_screen("phone", "a ✓ for the waiting text", WAIT, |s| {
        rest_of_row(s, "phone: while you were gone") == Some("✓")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        again.drain_out(),
        vec!["phone: while you were gone".to_owned()],
        "only the waiting text, once"
    );
    println!(
        "figure: SIGKILL: peer offline after {offline:.1?}; restarted: waiting text delivered after {delivered:.1?}"
    );
}

/// Texts typed to a peer that is away wait in the history database: they
/// survive a restart of the chat screen, show as waiting, and go out in
/// order, once each, when the peer comes back. The conversation itself is
/// back after the restart, keyed by the peer's id even though it now has
/// another name.
#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn waiting_texts_survive_a_restart_and_reach_the_peer_once_in_order() {
    let lan = Lan::new("outbox_restart", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    let _logs = LogsOnFailure(vec![phone_dir.clone()]);
    let laptop_dir = laptop_dir.to_str().unwrap().to_owned();
    let mut listen = lan.spawn(LAPTOP, "laptop", &["--data-dir", &laptop_dir, "listen"]);
    let mut tmux = Tmux::new();
    start_tui(&mut tmux, &lan, PHONE, "phone", &phone_dir, (100, 30));
    wait_peer_online(&tmux, "phone", "laptop");
    open_conversation(&tmux, "phone", "laptop");
    tmux.type_text("phone", "first, while you are here");
    tmux.keys("phone", &["Enter"]);
    listen.wait_out(WAIT, |l| l == "phone: first, while you are here");

    // The laptop leaves; the phone writes three texts to it.
    listen.terminate();
    listen.wait_exit(WAIT);
    tmux.wait_screen("phone", "laptop offline", WAIT, |s| {
        shown_offline(s, "laptop")
    });
    for n in ["one", "two", "three"] {
        tmux.type_text("phone", &format!("waiting {n}"));
        tmux.keys("phone", &["Enter"]);
    }
    tmux.wait_screen("phone", "three waiting texts", WAIT, |s| {
        ["one", "two", "three"].iter().all(|n| {
            rest_of_row(s, &format!("phone: waiting {n}")).is_some_and(|r| r.starts_with('◷'))
        })
    });

    // The phone's chat screen quits and starts again: the conversation and
    // its waiting texts are back from history.
    tmux.keys("phone", &["C-c"]);
    assert_eq!(tmux.wait_dead("phone", WAIT), Some(0));
    restart_tui(&tmux, &lan, PHONE, "phone", &phone_dir);
    let screen = tmux.wait_screen(
        "phone",
        "the old conversation with its waiting texts",
        WAIT,
        |s| {
            s.contains("phone: first, while you are here")
                && rest_of_row(s, "phone: waiting three").is_some_and(|r| r.starts_with('◷'))
        },
    );
    assert!(
        peer_row(&screen, "laptop").is_some(),
        "the laptop is listed although offline:\n{}",
        framed(&screen)
    );

    // The laptop comes back under another name: same id, same conversation.
    let mut back = lan.spawn(
        LAPTOP,
        "laptop",
        &["--data-dir", &laptop_dir, "--name", "big laptop", "listen"],
    );
    for n in ["one", "two", "three"] {
        back.wait_out(Duration::from_secs(30), |l| {
            l == format!("phone: waiting {n}")
        });
    }
    tmux.wait_screen("phone", "✓ on the three texts", WAIT, |s| {
        ["one", "two", "three"]
            .iter()
            .all(|n| rest_of_row(s, &format!("phone: waiting {n}")) == Some("✓"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let printed = back.drain_out();
    assert_eq!(
        printed,
        vec![
            "phone: waiting one".to_owned(),
            "phone: waiting two".to_owned(),
            "phone: waiting three".to_owned()
        ],
        "each once, in order, and nothing already delivered"
    );
    let screen = tmux.wait_screen("phone", "one conversation, renamed", WAIT, |s| {
        peer_row(s, "big laptop").is_some()
    });
    assert!(
        peer_row(&screen, "laptop").is_none_or(|r| r.contains("big laptop")),
        "no second conversation under the old name:\n{}",
        framed(&screen)
    );
}

/// The peers pane's row for `name`, without its borders and trailing blanks.
fn peer_row_text(screen: &str, name: &str) -> Option<String> {
    peer_row(screen, name).map(|r| {
        r.trim_end_matches(['│', '┃'])
            .trim_end()
            .trim_start_matches(['│', '┃'])
            .to_owned()
    })
}

/// The conversation pane's title row: the first row, right of the peers pane.
fn title_row(screen: &str) -> String {
    let first = screen.lines().next().unwrap_or("");
    first.chars().skip(PEERS_WIDTH).collect()
}

/// Encrypted sessions on the chat screen, over loopback in this machine's
/// namespace (no mDNS): the TUI connects to `lantalk listen` by address;
/// the session is marked encrypted; `/verify` shows the code derived from
/// both keys (computed here from the two data directories); `/verify yes`
/// marks it verified, on screen and in the known peers; and a client
/// speaking the framed protocol in clear is marked plaintext.
#[test]
#[ignore = "needs tmux"]
fn verify_shows_the_code_of_both_keys_and_plaintext_is_marked() {
    use common::local::{Listen, Raw, fixed_port};
    use lantalk::identity::load_or_create_keys;
    use lantalk::protocol::verification_code;
    let dirs = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (dirs.path().join("laptop"), dirs.path().join("phone"));
    std::fs::create_dir_all(&phone_dir).unwrap();
    let _logs = LogsOnFailure(vec![laptop_dir.clone()]);
    let phone = Listen::start_in(&phone_dir, &["--port", "0", "--name", "phone", "listen"]);

    let port = fixed_port();
    let mut tmux = Tmux::new();
    tmux.start_local_chat("laptop", &laptop_dir, port, (100, 30));

    tmux.type_text("laptop", &format!("/connect 127.0.0.1:{}", phone.port));
    tmux.keys("laptop", &["Enter"]);
    phone.wait_for_stderr_line(|l| l.contains("laptop connected from"), WAIT);
    // The conversation opens by itself; list and title say it is encrypted.
    let screen = tmux.wait_screen(
        "laptop",
        "phone connected, marked encrypted in the list and the title",
        WAIT,
        |s| {
            s.contains("Message to phone")
                && peer_row_text(s, "phone").is_some_and(|r| r.ends_with(" enc"))
                && title_row(s).contains(" encrypted ")
        },
    );
    let text = conversation_text(&screen);
    assert!(
        text.contains("this conversation belongs to its key"),
        "no word of the key on first contact:\n{}",
        framed(&screen)
    );
    // What /connect reached: the name, the link, the key.
    let theirs = load_or_create_keys(&phone_dir).unwrap().fingerprint;
    assert!(
        text.contains(&format!("reached phone#{}", &theirs.peer_id()[..4]))
            && text.contains(&theirs.grouped()),
        "/connect did not say what it reached:\n{}",
        framed(&screen)
    );

    tmux.type_text("laptop", "hello over TLS");
    tmux.keys("laptop", &["Enter"]);
    phone.wait_for_stdout_line(|l| l == "laptop: hello over TLS", WAIT);
    tmux.wait_screen("laptop", "a ✓ after the text", WAIT, |s| {
        rest_of_row(s, "laptop: hello over TLS") == Some("✓")
    });

    // The code from both keys, as each side would compute it.
    let ours = load_or_create_keys(&laptop_dir).unwrap().fingerprint;
    let theirs = load_or_create_keys(&phone_dir).unwrap().fingerprint;
    assert_ne!(ours, theirs);
    let code = verification_code(&ours, &theirs);
    assert_eq!(code, verification_code(&theirs, &ours), "the same on both");
    assert!(!tmux.capture("laptop").contains(&code));
    tmux.type_text("laptop", "/verify");
    tmux.keys("laptop", &["Enter"]);
    let screen = tmux.wait_screen("laptop", "the verification code", WAIT, |s| {
        conversation_text(s).contains(&format!("verification code: {code}"))
    });
    assert!(
        screen.contains("/verify yes") && !title_row(&screen).contains("verified"),
        "{}",
        framed(&screen)
    );

    tmux.type_text("laptop", "/verify yes");
    tmux.keys("laptop", &["Enter"]);
    tmux.wait_screen(
        "laptop",
        "phone marked verified in the list and the title",
        WAIT,
        |s| {
            title_row(s).contains("encrypted, verified ✓")
                && peer_row_text(s, "phone").is_some_and(|r| r.ends_with(" enc✓"))
        },
    );
    let known = common::pinned(&laptop_dir, "phone").expect("phone is pinned");
    assert_eq!((known.fp, known.verified), (theirs, true));

    // A client speaking the framed protocol in clear.
    let (_plain, hello) = Raw::handshake(port, "oldtalk");
    assert_eq!(hello["name"], "laptop");
    let screen = tmux.wait_screen("laptop", "oldtalk marked plaintext", WAIT, |s| {
        peer_row_text(s, "oldtalk").is_some_and(|r| r.ends_with(" plain"))
    });
    // Its conversation's title says so in words.
    let row = screen
        .lines()
        .position(|l| l.contains("● oldtalk"))
        .unwrap();
    let phone_row = screen.lines().position(|l| l.contains("● phone")).unwrap();
    let moves = if row > phone_row { "Down" } else { "Up" };
    tmux.keys("laptop", &["Tab", moves, "Enter"]);
    let screen = tmux.wait_for("laptop", "Message to oldtalk", WAIT);
    assert!(
        title_row(&screen).contains("plaintext, not encrypted"),
        "{}",
        framed(&screen)
    );
}

/// The conversation pane's text, its rows joined by single spaces (so
/// that a fingerprint wrapped over two rows reads whole).
fn conversation_text(screen: &str) -> String {
    let rows: Vec<String> = screen
        .lines()
        .map(|l| {
            l.chars()
                .skip(PEERS_WIDTH)
                .collect::<String>()
                .trim_matches(['│', '┃', ' '])
                .to_owned()
        })
        .collect();
    rows.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A peer comes back under its name with another key (reinstalled): a new
/// key is another peer, so it gets a row of its own and the two rows are
/// told apart by the start of their ids; the old conversation says once
/// what connected and the exact `/trust KEY` that moves it there; nothing
/// is refused, nothing moves by itself. `/trust` with that key makes them
/// one conversation, one row, under the new key.
#[test]
#[ignore = "needs tmux"]
fn a_new_key_under_a_known_name_is_another_peer_until_trust_moves_the_conversation() {
    use common::local::{Listen, fixed_port};
    use lantalk::identity::load_or_create_keys;
    let dirs = tempfile::tempdir().unwrap();
    let laptop_dir = dirs.path().join("laptop");
    let (before_dir, after_dir) = (dirs.path().join("phone"), dirs.path().join("reinstalled"));
    let _logs = LogsOnFailure(vec![laptop_dir.clone()]);
    let mut tmux = Tmux::new();
    tmux.start_local_chat("laptop", &laptop_dir, fixed_port(), (100, 30));

    let phone = Listen::start_in(&before_dir, &["--port", "0", "--name", "phone", "listen"]);
    tmux.type_text("laptop", &format!("/connect 127.0.0.1:{}", phone.port));
    tmux.keys("laptop", &["Enter"]);
    tmux.wait_for("laptop", "Message to phone", WAIT);
    tmux.type_text("laptop", "before the reinstall");
    tmux.keys("laptop", &["Enter"]);
    phone.wait_for_stdout_line(|l| l == "laptop: before the reinstall", WAIT);
    tmux.wait_screen("laptop", "a ✓ after the text", WAIT, |s| {
        rest_of_row(s, "laptop: before the reinstall") == Some("✓")
    });
    // Killed (SIGKILL): the TLS session ends without close_notify, which
    // is a peer gone like any other, not an error to quote.
    drop(phone);
    tmux.wait_for("laptop", "phone is offline", WAIT);

    // The same name, a new key.
    let phone = Listen::start_in(&after_dir, &["--port", "0", "--name", "phone", "listen"]);
    let old = load_or_create_keys(&before_dir).unwrap().fingerprint;
    let new = load_or_create_keys(&after_dir).unwrap().fingerprint;
    let (old_tag, new_tag) = (&old.peer_id()[..4], &new.peer_id()[..4]);
    tmux.type_text("laptop", &format!("/connect 127.0.0.1:{}", phone.port));
    tmux.keys("laptop", &["Enter"]);
    phone.wait_for_stderr_line(|l| l.contains("laptop connected from"), WAIT);
    let start: String = new.to_string().chars().take(8).collect();
    let screen = tmux.wait_screen(
        "laptop",
        "two rows told apart, the old conversation told how to move",
        WAIT,
        |s| {
            peer_row_text(s, &format!("phone#{new_tag}")).is_some_and(|r| r.ends_with(" enc"))
                && peer_row_text(s, &format!("phone#{old_tag}")).is_some()
                && conversation_text(s).contains(&format!("/trust {start} here"))
        },
    );
    let text = conversation_text(&screen);
    assert!(text.contains(&new.grouped()), "{}", framed(&screen));
    assert!(
        !screen.contains("WARNING"),
        "a new key is not an alarm:\n{}",
        framed(&screen)
    );
    // Only the exact key moves it: too short a start is refused.
    tmux.type_text("laptop", "/trust 12ab");
    tmux.keys("laptop", &["Enter"]);
    tmux.wait_screen("laptop", "too short a key refused", WAIT, |s| {
        conversation_text(s).contains("at least its first 8 hex digits")
    });
    tmux.type_text("laptop", &format!("/trust {start}"));
    tmux.keys("laptop", &["Enter"]);
    let screen = tmux.wait_screen(
        "laptop",
        "one row for phone, the conversation under the new key",
        WAIT,
        |s| {
            conversation_text(s).contains("this conversation continues with the key")
                && peer_row_text(s, "phone").is_some_and(|r| r.ends_with(" enc"))
                && peer_row_text(s, &format!("phone#{old_tag}")).is_none()
        },
    );
    assert!(
        screen.contains("laptop: before the reinstall"),
        "{}",
        framed(&screen)
    );
    let rows = screen
        .lines()
        .filter(|l| {
            l.chars()
                .take(PEERS_WIDTH)
                .collect::<String>()
                .contains(" phone")
        })
        .count();
    assert_eq!(rows, 1, "one row for phone:\n{}", framed(&screen));
    let keys = common::named(&laptop_dir, "phone");
    let current: Vec<_> = keys.iter().filter(|k| k.replaced_by.is_none()).collect();
    assert_eq!(current.len(), 1, "{keys:#?}");
    assert_eq!((current[0].fp, current[0].verified), (new, false));
}

/// `/name` reaches the sessions that are open (the other side prints the
/// new name at once), and is kept: the next start without `--name` uses it.
#[test]
#[ignore = "needs tmux"]
fn a_new_name_reaches_open_sessions_and_survives_a_restart() {
    use common::local::{Listen, fixed_port};
    let dirs = tempfile::tempdir().unwrap();
    let laptop_dir = dirs.path().join("laptop");
    let phone_dir = dirs.path().join("phone");
    let _logs = LogsOnFailure(vec![laptop_dir.clone()]);
    let phone = Listen::start_in(&phone_dir, &["--port", "0", "--name", "phone", "listen"]);
    let port = fixed_port();
    let mut tmux = Tmux::new();
    tmux.start_local_chat("laptop", &laptop_dir, port, (100, 30));
    tmux.type_text("laptop", &format!("/connect 127.0.0.1:{}", phone.port));
    tmux.keys("laptop", &["Enter"]);
    tmux.wait_for("laptop", "Message to phone", WAIT);
    tmux.type_text("laptop", "/name desk");
    tmux.keys("laptop", &["Enter"]);
    phone.wait_for_stderr_line(|l| l == "lantalk: laptop is now called desk", WAIT);
    tmux.type_text("laptop", "after the rename");
    tmux.keys("laptop", &["Enter"]);
    phone.wait_for_stdout_line(|l| l == "desk: after the rename", WAIT);
    tmux.keys("laptop", &["C-c"]);
    assert_eq!(tmux.wait_dead("laptop", WAIT), Some(0));

    // Again, without --name: the name chosen is the name.
    let cmd = [
        env!("CARGO_BIN_EXE_lantalk"),
        "--no-mdns",
        "--port",
        &port.to_string(),
        "--data-dir",
        laptop_dir.to_str().unwrap(),
    ]
    .map(common::lan::shell_quote)
    .join(" ");
    tmux.new_session("again", 100, 30, &format!("exec {cmd}"));
    tmux.wait_screen("again", "the status bar with the kept name", WAIT, |s| {
        status_bar(s).contains("desk")
    });
}
