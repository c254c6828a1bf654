//! Terminal injection: a peer that puts escape sequences, OSC 52 clipboard
//! writes, title changes, BEL floods, C1 controls, bidi overrides, zero-width
//! characters and combining floods in its hello `name`, its texts and its
//! `error` message gets them shown as visible escapes, on the chat screen and
//! in `listen`'s output, and the terminal is not touched: the pane title
//! stays, no paste buffer appears, no bell rings.
//!
//! The terminals are real: tmux servers with `set-clipboard on`, so an OSC 52
//! that got through would create a paste buffer. Every test first proves, in
//! a server configured the same way, that the same bytes printed raw do set
//! the title, create a buffer and ring the bell ([`raw_bytes_do_act`]):
//! otherwise "nothing happened" would prove nothing.
//!
//! No mDNS here: lantalk runs with `--no-mdns` in this machine's network
//! namespace, and the hostile peer is this test, a raw protocol client on
//! 127.0.0.1 (frames: 4-byte big-endian length + JSON, `assets/PROTOCOL.md`).
//! Hostile mDNS names (TXT `nick`, instance, host) take the same display
//! path; they are covered by unit tests in `src/ui/tests.rs` and
//! `src/headless/peers.rs`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::proc::{BIN, Proc, port_of};
use common::tmux::{Tmux, framed};
use serde_json::{Value, json};

/// How long any one thing may take to show up.
const WAIT: Duration = Duration::from_secs(10);

/// The tmux servers: OSC 52 creates a paste buffer, BEL flags the window.
const CONF: &str = "set-option -s set-clipboard on\n\
                    set-option -g bell-action any\n\
                    set-option -wg monitor-bell on";

/// The hostile peer's hello `name`: a title change, a clipboard write, a
/// right-to-left override and a zero-width space.
const NAME: &str = "evil\x1b]2;pwned-name\x07\x1b]52;c;cHduZWQ=\x07\u{202e}\u{200b}";

/// How the name must show.
const NAME_SHOWN: &str = "evil^[]2;pwned-name^G^[]52;c;cHduZWQ=^G\\u{202e}\\u{200b}";

/// The hostile texts, each with what the screen must show for it. No spaces
/// in what is shown, so the chat screen's word wrap keeps each on one row.
const TEXTS: &[(&str, &str)] = &[
    ("title:\x1b]2;pwned-title\x07.", "title:^[]2;pwned-title^G."),
    (
        "title0:\x1b]0;pwned-title0\x1b\\.",
        "title0:^[]0;pwned-title0^[\\.",
    ),
    (
        "clipboard:\x1b]52;c;cHduZWQ=\x07.",
        "clipboard:^[]52;c;cHduZWQ=^G.",
    ),
    ("clear:\x1b[2J\x1b[H\x1bc.", "clear:^[[2J^[[H^[c."),
    (
        "bells:\x07\x07\x07\x07\x07\x07\x07\x07.",
        "bells:^G^G^G^G^G^G^G^G.",
    ),
    (
        "c1:\u{9b}2J\u{9d}2;pwned-c1\u{9c}.",
        "c1:\\u{9b}2J\\u{9d}2;pwned-c1\\u{9c}.",
    ),
    (
        "bidi:\u{202e}desrever\u{202c}\u{2067}x\u{2069}.",
        "bidi:\\u{202e}desrever\\u{202c}\\u{2067}x\\u{2069}.",
    ),
    (
        "zw:a\u{200b}b\u{2060}c\u{feff}d\u{200e}e.",
        "zw:a\\u{200b}b\\u{2060}c\\u{feff}d\\u{200e}e.",
    ),
];

/// A combining flood: 12 acute accents on one Z. Four stay as marks, the
/// rest show as escapes.
fn zalgo() -> (String, String) {
    let sent = format!("zalgo:Z{}.", "\u{301}".repeat(12));
    let shown = format!("zalgo:Z{}{}.", "\u{301}".repeat(4), "\\u{301}".repeat(8));
    (sent, shown)
}

/// The `error` the peer closes with: code and message are the peer's too.
fn error_frame() -> Value {
    json!({
        "type": "error",
        "code": "c\x1b]2;pwned-code\x07",
        "message": "m\x1b]52;c;cHduZWQ=\x07\nfake",
    })
}

/// How the error shows (after "the peer reported ").
const ERROR_SHOWN: [&str; 2] = ["c^[]2;pwned-code^G:", "m^[]52;c;cHduZWQ=^G^Jfake"];

/// Characters that must never be on screen or in human output as themselves.
fn forbidden(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

// ---------------------------------------------------------------------------
// The hostile peer
// ---------------------------------------------------------------------------

/// A protocol v1 client written frame by frame.
struct Peer {
    stream: TcpStream,
}

impl Peer {
    /// Connects to 127.0.0.1:`port` and says hello as `name`.
    fn connect(port: u16, name: &str) -> Peer {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to lantalk");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut peer = Peer { stream };
        peer.send(&json!({
            "type": "hello", "proto": 1, "id": "0123456789abcdef0123456789abcdef",
            "name": name, "app": "hostile/0",
        }));
        let hello = peer.recv();
        assert_eq!(hello["type"], "hello", "{hello}");
        peer
    }

    fn send(&mut self, msg: &Value) {
        let payload = msg.to_string();
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload.as_bytes());
        self.stream.write_all(&frame).expect("write a frame");
    }

    fn recv(&mut self) -> Value {
        let mut header = [0u8; 4];
        self.stream
            .read_exact(&mut header)
            .expect("read a frame header");
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        self.stream
            .read_exact(&mut payload)
            .expect("read a frame payload");
        serde_json::from_slice(&payload).expect("a JSON frame")
    }

    /// Sends every body as a text and waits until each is acknowledged
    /// (`listen` acknowledges only what it has printed).
    fn send_texts(&mut self, bodies: &[String]) {
        for (i, body) in bodies.iter().enumerate() {
            self.send(&json!({"type": "text", "id": format!("h{i}"), "ts": 1, "body": body}));
        }
        let mut acked = 0;
        while acked < bodies.len() {
            let msg = self.recv();
            match msg["type"].as_str() {
                Some("ack") => acked += 1,
                Some("ping") => self.send(&json!({"type": "pong", "nonce": msg["nonce"]})),
                _ => panic!("expected acks, got {msg}"),
            }
        }
    }

    /// Sends the hostile `error` and hangs up.
    fn close_with_error(mut self) {
        self.send(&error_frame());
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        // Whatever lantalk says back until it closes.
        let mut sink = Vec::new();
        let _ = self.stream.read_to_end(&mut sink);
    }
}

/// Every hostile body: the texts, then the combining flood.
fn bodies() -> Vec<String> {
    let mut all: Vec<String> = TEXTS.iter().map(|(sent, _)| (*sent).to_owned()).collect();
    all.push(zalgo().0);
    all
}

// ---------------------------------------------------------------------------
// What the terminal did
// ---------------------------------------------------------------------------

/// Title, paste buffers and bell of session `name`.
#[derive(Debug, PartialEq, Eq)]
struct Effects {
    title: String,
    buffers: String,
    bell: String,
}

fn effects(tmux: &Tmux, name: &str) -> Effects {
    Effects {
        title: tmux.display(name, "#{pane_title}"),
        buffers: tmux.ok(&["list-buffers"]),
        bell: tmux.display(name, "#{window_bell_flag}"),
    }
}

/// The screen of `name` with wrapped lines joined.
fn joined(tmux: &Tmux, name: &str) -> String {
    tmux.ok(&["capture-pane", "-p", "-J", "-t", name])
}

/// The checks below mean something only if this tmux acts on these bytes
/// when they arrive raw: in a server configured like the tests' ones, `cat`
/// of the hostile name, texts and error must set the pane title, create a
/// paste buffer (OSC 52) and ring the bell.
fn raw_bytes_do_act() {
    let mut tmux = Tmux::with_config(CONF);
    let file = tmux.dir().join("raw");
    let mut raw = String::from(NAME);
    for body in bodies() {
        raw.push_str(&body);
    }
    raw.push_str(error_frame()["code"].as_str().unwrap());
    std::fs::write(&file, raw).unwrap();
    tmux.new_session(
        "raw",
        120,
        40,
        &format!("cat {}; exec sleep 60", file.display()),
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = effects(&tmux, "raw");
        if now.title.contains("pwned") && !now.buffers.is_empty() && now.bell == "1" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "this tmux does not act on raw title, OSC 52 or BEL bytes ({now:?}), \
             so seeing none of it would prove nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that `screen` shows every escape and no raw unsafe character,
/// at most four combining marks in a row.
fn assert_shown_harmless(screen: &str, must_show: &[&str]) {
    for needle in must_show {
        assert!(
            screen.contains(needle),
            "{needle:?} is not on screen:\n{}",
            framed(screen)
        );
    }
    if let Some(c) = screen.chars().find(|&c| forbidden(c) && c != '\n') {
        panic!("{c:?} reached the screen as itself:\n{}", framed(screen));
    }
    assert!(
        !screen.contains(&"\u{301}".repeat(5)),
        "a pile of combining marks reached the screen:\n{}",
        framed(screen)
    );
}

fn lantalk_in(dir: &Path, args: &str) -> String {
    format!(
        "exec {BIN} --no-mdns --port 0 --name me --data-dir {} {args}",
        dir.display()
    )
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs tmux"]
fn hostile_peer_cannot_touch_the_chat_screen() {
    raw_bytes_do_act();
    let dir = tempfile::tempdir().unwrap();
    let mut tmux = Tmux::with_config(CONF);
    tmux.new_session("tui", 120, 40, &lantalk_in(dir.path(), ""));
    // The status bar says where we listen: " me · ADDR:PORT · …".
    let screen = tmux.wait_screen("tui", "the port in the status bar", WAIT, |s| {
        status_port(s).is_some()
    });
    let port = status_port(&screen).unwrap();
    let before = effects(&tmux, "tui");
    assert_eq!(
        before.title, "lantalk",
        "the chat screen sets its own title"
    );

    let mut peer = Peer::connect(port, NAME);
    peer.send_texts(&bodies());
    let (_, zalgo_shown) = zalgo();
    let mut must_show: Vec<&str> = TEXTS.iter().map(|(_, shown)| *shown).collect();
    must_show.push(&zalgo_shown);
    // The conversation opened by itself; its name is in the input's title.
    let message_to = format!("Message to {NAME_SHOWN}");
    must_show.push(&message_to);
    let screen = tmux.wait_screen("tui", "every hostile text, escaped", WAIT, |s| {
        must_show.iter().all(|n| s.contains(n))
    });
    assert_shown_harmless(&screen, &must_show);

    peer.close_with_error();
    must_show.extend(ERROR_SHOWN);
    let screen = tmux.wait_screen("tui", "the peer's error, escaped", WAIT, |s| {
        ERROR_SHOWN.iter().all(|n| s.contains(n))
    });
    assert_shown_harmless(&screen, &must_show);
    assert_eq!(
        effects(&tmux, "tui"),
        Effects {
            title: "lantalk".into(),
            buffers: String::new(),
            bell: "0".into(),
        },
        "the terminal was touched; screen:\n{}",
        framed(&screen)
    );
}

/// The port in the chat screen's status bar, once known.
fn status_port(screen: &str) -> Option<u16> {
    let bar = screen.lines().rev().find(|l| !l.trim().is_empty())?;
    let addr = bar.split(" · ").nth(1)?;
    addr.rsplit(':').next()?.trim().parse().ok()
}

#[test]
#[ignore = "needs tmux"]
fn hostile_peer_cannot_touch_the_terminal_of_listen() {
    raw_bytes_do_act();
    let dir = tempfile::tempdir().unwrap();
    let mut tmux = Tmux::with_config(CONF);
    // stdout and stderr both on the terminal, as when run by hand.
    tmux.new_session("listen", 200, 40, &lantalk_in(dir.path(), "listen"));
    let screen = tmux.wait_for("listen", "listening on port", WAIT);
    let line = screen
        .lines()
        .find(|l| l.contains("listening on port"))
        .unwrap();
    let port = port_of(line);
    tmux.ok(&["select-pane", "-t", "listen", "-T", "calm"]);

    let mut peer = Peer::connect(port, NAME);
    peer.send_texts(&bodies());
    peer.close_with_error();

    let (_, zalgo_shown) = zalgo();
    let lines: Vec<String> = TEXTS
        .iter()
        .map(|(_, shown)| format!("{NAME_SHOWN}: {shown}"))
        .chain([
            format!("{NAME_SHOWN}: {zalgo_shown}"),
            format!("lantalk: {NAME_SHOWN} connected from 127.0.0.1:"),
            format!(
                "lantalk: {NAME_SHOWN} disconnected: the peer reported {} {}",
                ERROR_SHOWN[0], ERROR_SHOWN[1]
            ),
        ])
        .collect();
    let must_show: Vec<&str> = lines.iter().map(String::as_str).collect();
    tmux.wait_screen("listen", "the disconnection", WAIT, |s| {
        s.contains("disconnected")
    });
    let screen = joined(&tmux, "listen");
    assert_shown_harmless(&screen, &must_show);
    assert_eq!(
        effects(&tmux, "listen"),
        Effects {
            title: "calm".into(),
            buffers: String::new(),
            bell: "0".into(),
        },
        "the terminal was touched; screen:\n{}",
        framed(&screen)
    );
}

/// `listen | tee log` shows the output on a terminal through `tee`, and
/// `cat log` later: the plain output is escaped in a pipe too.
#[test]
fn listen_escapes_in_a_pipe_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut listen = start_listen(dir.path(), &[]);
    let port = port_of(&listen.wait_err(WAIT, |l| l.contains("listening on port")));
    let mut peer = Peer::connect(port, NAME);
    peer.send_texts(&bodies());
    peer.close_with_error();
    let (_, zalgo_shown) = zalgo();
    listen.wait_out(WAIT, |l| l.contains(&zalgo_shown));
    listen.wait_err(WAIT, |l| l.contains("disconnected"));
    let out = listen.drain_out().join("\n");
    let err = listen.drain_err().join("\n");
    for (_, shown) in TEXTS {
        assert!(out.contains(&format!("{NAME_SHOWN}: {shown}")), "{out}");
    }
    assert!(out.contains(&zalgo_shown), "{out}");
    assert!(err.contains(ERROR_SHOWN[1]), "{err}");
    for text in [&out, &err] {
        if let Some(c) = text.chars().find(|&c| forbidden(c) && c != '\n') {
            panic!("{c:?} printed as itself:\n{text}");
        }
    }
}

/// `listen --json` is for programs: every string decodes to exactly what the
/// peer sent, and the line itself is still harmless on a terminal.
#[test]
fn listen_json_is_faithful_and_inert() {
    let dir = tempfile::tempdir().unwrap();
    let mut listen = start_listen(dir.path(), &["--json"]);
    let port = port_of(&listen.wait_err(WAIT, |l| l.contains("listening on port")));
    let mut peer = Peer::connect(port, NAME);
    let sent = bodies();
    peer.send_texts(&sent);
    for i in 0..sent.len() {
        let id = format!("\"id\":\"h{i}\"");
        listen.wait_out(WAIT, |l| l.contains(&id));
    }
    let out = listen.drain_out();
    assert_eq!(out.len(), sent.len(), "{out:#?}");
    for (line, body) in out.iter().zip(&sent) {
        if let Some(c) = line.chars().find(|&c| forbidden(c)) {
            panic!("{c:?} printed as itself: {line}");
        }
        let msg: Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(msg["from"], NAME, "{line}");
        assert_eq!(msg["body"].as_str(), Some(body.as_str()), "{line}");
    }
}

fn start_listen(dir: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1);
    cmd.args(["--no-mdns", "--port", "0", "--name", "me", "--data-dir"])
        .arg(dir)
        .arg("listen")
        .args(args)
        .env_remove("LANTALK_LOG")
        .stdin(Stdio::null());
    Proc::spawn(cmd)
}
