//! End-to-end tests of the real `lantalk` binary over loopback, in this
//! machine's network namespace.
//!
//! mDNS is never started here: every `lantalk` run gets `--no-mdns`, every
//! `send` is given `127.0.0.1:PORT`, and only 127.0.0.1 is used. Each process
//! gets its own `--data-dir` (so its own peer id) from a temporary directory.
//! Every wait has a timeout, so a broken binary fails a test instead of hanging it.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::local::*;
use serde_json::{Value, json};

/// The port `listen` uses when `--port` is not given.
const DEFAULT_PORT: u16 = 7342;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn send_text_is_printed_and_acked() {
    let listen = Listen::start(false);
    let d2 = data_dir();
    let out = send(
        &listen.addr(),
        d2.path(),
        "phone",
        &["Hey there, Rodrigo's laptop."],
    );
    out.assert_success();
    assert_eq!(
        listen.next_stdout_line(),
        "phone: Hey there, Rodrigo's laptop."
    );
    assert_eq!(out.stdout, "", "send prints nothing on stdout");
}

#[test]
fn listen_json_prints_one_object_per_message() {
    let listen = Listen::start(true);
    let d2 = data_dir();
    let before = now_ms();
    send(&listen.addr(), d2.path(), "phone", &["hello", "json"]).assert_success();
    send(&listen.addr(), d2.path(), "phone", &["second"]).assert_success();
    let sender_id = fs::read_to_string(d2.path().join("id")).expect("send wrote its id");
    let sender_id = sender_id.trim();
    assert!(is_peer_id(sender_id), "{sender_id:?}");

    for body in ["hello json", "second"] {
        let line = listen.next_stdout_line();
        let obj: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
        assert_eq!(obj["from"], "phone", "{obj}");
        assert_eq!(obj["from_id"], sender_id, "{obj}");
        assert_eq!(obj["body"], body, "{obj}");
        assert!(obj["id"].as_str().is_some_and(|id| !id.is_empty()), "{obj}");
        let ts = obj["ts"].as_u64().expect("ts is a number");
        assert!(
            ts + 60_000 >= before && ts <= now_ms() + 60_000,
            "ts {ts} is not close to now"
        );
        assert!(
            obj["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{obj}"
        );
    }
}

#[test]
fn pipelined_burst_arrives_complete_and_in_order() {
    const N: usize = 10_000;
    let listen = Listen::start(false);
    let d2 = data_dir();
    let input: String = (1..=N).map(|i| format!("line {i}\n")).collect();
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(d2.path())
        .args(["--name", "burst", "send", &listen.addr()]);

    let started = Instant::now();
    let out = run(cmd, Some(input.into_bytes()), Duration::from_secs(20));
    let send_time = started.elapsed();
    out.assert_success();
    for i in 1..=N {
        assert_eq!(listen.next_stdout_line(), format!("burst: line {i}"));
    }
    eprintln!(
        "burst of {N} lines: send exited after {send_time:?}, all printed after {:?}",
        started.elapsed()
    );
    assert_eq!(listen.stdout.next(Duration::from_millis(200)), None);
}

#[test]
fn raw_client_speaks_protocol_v1() {
    let listen = Listen::start(false);
    let (mut raw, theirs) = Raw::handshake(listen.port, "raw");
    assert_eq!(theirs["proto"], 1, "{theirs}");
    assert!(theirs["id"].as_str().is_some_and(is_peer_id), "{theirs}");
    assert_eq!(theirs["name"], "laptop", "{theirs}");
    assert!(
        theirs["app"]
            .as_str()
            .is_some_and(|a| a.starts_with("lantalk/")),
        "{theirs}"
    );

    raw.send(&text("t1", "first"));
    assert_eq!(raw.expect("ack")["id"], "t1");
    assert_eq!(listen.next_stdout_line(), "raw: first");

    raw.send(&json!({"type": "ping", "nonce": 42}));
    assert_eq!(raw.expect("pong")["nonce"], 42);

    // Unknown types are skipped and unknown fields ignored (forward compatibility).
    raw.send(&json!({"type": "wave"}));
    let mut extra = text("t2", "second");
    extra["colour"] = json!("blue");
    raw.send(&extra);
    assert_eq!(raw.expect("ack")["id"], "t2");
    assert_eq!(listen.next_stdout_line(), "raw: second");

    raw.send(&json!({"type": "bye"}));
    raw.expect("bye");
    raw.expect_eof();
    listen.wait_for_stderr_line(|l| l == "lantalk: raw left", WAIT);
}

/// Connects, writes `bytes`, and expects listen's hello, an `error` with
/// `code`, then the end of the stream.
#[track_caller]
fn expect_error(port: u16, bytes: &[u8], code: &str) {
    let mut raw = Raw::connect(port);
    raw.write(bytes);
    raw.expect("hello");
    let error = raw.expect("error");
    assert_eq!(error["code"], code, "{error}");
    assert!(error["message"].is_string(), "{error}");
    raw.expect_eof();
}

#[test]
fn protocol_errors_are_reported_and_listener_survives() {
    let listen = Listen::start(false);
    let port = listen.port;

    // The slow one runs alongside the others: one 0x00 byte, then nothing.
    let timeout_check = thread::spawn(move || {
        let mut raw = Raw::connect(port);
        let started = Instant::now();
        raw.write(&[0x00]);
        raw.expect("hello");
        let error = raw.expect("error");
        assert_eq!(error["code"], "handshake_timeout", "{error}");
        raw.expect_eof();
        started.elapsed()
    });

    let mut too_large = 0x0010_0001u32.to_be_bytes().to_vec();
    too_large.extend_from_slice(&[b'x'; 1000]);
    expect_error(port, &too_large, "frame_too_large");
    expect_error(port, &[0, 0, 0, 0], "frame_too_large");
    expect_error(port, &frame(&text("t1", "too early")), "bad_hello");
    let mut proto2 = hello("future");
    proto2["proto"] = json!(2);
    expect_error(port, &frame(&proto2), "unsupported_proto");
    let mut bad_json = frame(&hello("raw"));
    bad_json.extend(frame_of(b"{not json"));
    expect_error(port, &bad_json, "bad_json");

    // Not a lantalk frame but HTTP: the web client answers it (with
    // `--no-web` it is closed without a word: tests/web.rs).
    let mut http = Raw::connect(port);
    http.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    http.write(b"GET / HTTP/1.0\r\n\r\n");
    let mut buf = [0u8; 64];
    match http.stream.read(&mut buf) {
        Ok(n) => assert!(
            buf[..n].starts_with(b"HTTP/1."),
            "not an HTTP answer: {:?}",
            &buf[..n]
        ),
        Err(e) => panic!("HTTP not answered: {e}"),
    }

    let waited = timeout_check.join().expect("handshake timeout check");
    assert!(
        waited >= Duration::from_millis(4500),
        "handshake_timeout after only {waited:?}"
    );

    let d2 = data_dir();
    send(&listen.addr(), d2.path(), "phone", &["still", "here"]).assert_success();
    listen.wait_for_stdout_line(|l| l == "phone: still here", WAIT);
}

#[test]
fn send_says_bye() {
    let listen = Listen::start(false);
    let d2 = data_dir();
    send(&listen.addr(), d2.path(), "phone", &["goodbye"]).assert_success();
    let line = listen.wait_for_stderr_line(|l| l.starts_with("lantalk: phone "), WAIT);
    assert_eq!(
        line.split(" from ").next().unwrap(),
        "lantalk: phone connected"
    );
    let line = listen.wait_for_stderr_line(|l| l.starts_with("lantalk: phone "), WAIT);
    assert_eq!(line, "lantalk: phone left");
}

#[test]
fn send_to_closed_port_exits_4() {
    let d2 = data_dir();
    let out = send(
        &format!("127.0.0.1:{}", dead_port()),
        d2.path(),
        "phone",
        &["hi"],
    );
    assert_eq!(out.code(), Some(4), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("could not connect"), "{}", out.stderr);
}

#[test]
fn sigterm_says_bye_and_exits_0() {
    let mut listen = Listen::start(false);
    let (mut raw, _) = Raw::handshake(listen.port, "raw");
    // Once the session is reported, listen's main loop (and its signal handler) runs.
    listen.wait_for_stderr_line(|l| l.starts_with("lantalk: raw connected"), WAIT);

    let kill = Command::new("kill")
        .args(["-TERM", &listen.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let started = Instant::now();
    raw.expect("bye");
    raw.expect_eof();
    drop(raw);
    let status = listen
        .wait_exit(Duration::from_secs(3))
        .expect("listen still running 3 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    eprintln!("listen exited {:?} after SIGTERM", started.elapsed());
}

#[test]
fn usage_errors_and_help() {
    let d = data_dir();
    let listen = Listen::start(false);

    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(d.path()).arg("send");
    let out = run(cmd, None, WAIT);
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);

    let out = send("laptop", d.path(), "phone", &["hi"]);
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("HOST:PORT"), "{}", out.stderr);

    let out = send(&listen.addr(), d.path(), "phone", &[""]);
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("empty"), "{}", out.stderr);

    let mut cmd = lantalk();
    cmd.arg("--help");
    let out = run(cmd, None, WAIT);
    out.assert_success();
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
    assert!(out.stdout.contains("3  peer not found"), "{}", out.stdout);
    assert!(
        out.stdout.contains("4  could not connect"),
        "{}",
        out.stdout
    );

    // Global flags after the subcommand.
    let after = data_dir();
    let mut cmd = lantalk();
    cmd.args([
        "send",
        &listen.addr(),
        "hi",
        "--name",
        "phone",
        "--data-dir",
    ])
    .arg(after.path());
    run(cmd, None, WAIT).assert_success();
    assert_eq!(listen.next_stdout_line(), "phone: hi");
    assert!(after.path().join("id").is_file(), "--data-dir was not used");
}

/// Holds the default port, dual-stack like lantalk binds it. `None` if the
/// port is already taken by someone else (which makes it just as busy).
fn occupy_default_port() -> Option<TcpListener> {
    TcpListener::bind(("::", DEFAULT_PORT))
        .or_else(|_| TcpListener::bind(("0.0.0.0", DEFAULT_PORT)))
        .ok()
}

#[test]
fn busy_default_port_falls_back() {
    let _holder = occupy_default_port();
    let listen = Listen::start_with(&["--name", "laptop", "listen"]);
    let busy = format!(
        "lantalk: port {DEFAULT_PORT} is busy; listening on port {} instead",
        listen.port
    );
    assert!(
        listen.startup.contains(&busy),
        "expected {busy:?} in {:#?}",
        listen.startup
    );
    assert_ne!(listen.port, DEFAULT_PORT);

    let d2 = data_dir();
    send(&listen.addr(), d2.path(), "phone", &["fallback", "works"]).assert_success();
    assert_eq!(listen.next_stdout_line(), "phone: fallback works");

    // An explicit port is not replaced.
    let d3 = data_dir();
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(d3.path())
        .args(["--port", &DEFAULT_PORT.to_string(), "listen"]);
    let out = run(cmd, None, WAIT);
    assert_eq!(out.code(), Some(1), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("already in use"), "{}", out.stderr);
}

/// A SIGTERM sent as soon as the port line appears must still be a clean exit:
/// the signal handlers are registered before that line is printed.
#[test]
fn sigterm_right_after_startup_exits_0() {
    for _ in 0..20 {
        let data = data_dir();
        let mut child = lantalk()
            .arg("--data-dir")
            .arg(data.path())
            .args(["--port", "0", "listen"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start lantalk listen");
        // A shell waiting to run its builtin `kill`: much quicker than spawning `kill` then.
        let mut killer = Command::new("sh")
            .args(["-c", &format!("read _ && kill -TERM {}", child.id())])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run sh");
        let stderr = Lines::new(child.stderr.take().unwrap(), "listen stderr");
        stderr.wait_for(STARTUP, |l| l.contains("listening on port"));
        killer.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let killed = wait_child(&mut killer, WAIT).expect("sh did not finish");
        let status = wait_child(&mut child, Duration::from_secs(3));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(killed.success());
        let status = status.expect("listen still running 3 s after SIGTERM");
        assert_eq!(status.code(), Some(0), "{status}");
    }
}

/// A peer that takes texts but closes without acknowledging them: `send` must
/// not report success.
#[test]
fn unacknowledged_text_makes_send_exit_4() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let stream = accept_plaintext(&listener);
        let mut raw = Raw { stream };
        raw.expect("hello");
        raw.send(&hello("blackhole"));
        let text = raw.expect("text");
        // Close without an ack.
        drop(raw);
        text
    });
    let dir = data_dir();
    let out = send(
        &format!("127.0.0.1:{port}"),
        dir.path(),
        "phone",
        &["lost?"],
    );
    let text = fake.join().unwrap();
    assert_eq!(text["body"], "lost?");
    assert_eq!(out.code(), Some(4), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("1 of 1 message(s) were not acknowledged"),
        "{}",
        out.stderr
    );
}

/// A line too long for one frame is refused with a message; the lines around
/// it still go out, and the exit status says something was not delivered.
#[test]
fn too_long_a_line_is_refused_and_the_rest_delivered() {
    let listen = Listen::start(false);
    let d2 = data_dir();
    let mut input = b"before\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 2 << 20));
    input.extend_from_slice(b"\nafter\n");
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(d2.path())
        .args(["--name", "phone", "send", &listen.addr()]);
    let out = run(cmd, Some(input), WAIT);
    assert_eq!(out.code(), Some(4), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("message too long to send (2097152 bytes"),
        "{}",
        out.stderr
    );
    assert_eq!(listen.next_stdout_line(), "phone: before");
    assert_eq!(listen.next_stdout_line(), "phone: after");
}

/// Two listeners cannot share one identity: the second says why and exits 1.
#[test]
fn second_listener_on_the_same_data_dir_is_refused() {
    let first = Listen::start(false);
    let mut second = lantalk();
    second
        .arg("--data-dir")
        .arg(first._data.as_ref().unwrap().path())
        .args(["--port", "0", "listen"]);
    let out = run(second, None, WAIT);
    assert_eq!(out.code(), Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("another lantalk is already running with the data directory"),
        "{}",
        out.stderr
    );
    // The first one is unaffected.
    let d2 = data_dir();
    send(&first.addr(), d2.path(), "phone", &["still here"]).assert_success();
    assert_eq!(first.next_stdout_line(), "phone: still here");
}

/// A closed or full stderr must not crash `listen` (status lines are optional).
#[test]
fn listen_survives_a_full_stderr() {
    let data = data_dir();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = lantalk()
        .arg("--data-dir")
        .arg(data.path())
        .args(["--port", "0", "listen"])
        .stderr(full)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(child.try_wait().unwrap(), None, "listen died");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_child(&mut child, WAIT).expect("listen did not exit");
    assert_eq!(status.code(), Some(0));
}

/// Without a terminal the chat screen explains what to use instead.
#[test]
fn chat_screen_without_a_terminal_points_to_the_headless_commands() {
    let data = data_dir();
    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(data.path());
    let out = run(cmd, Some(Vec::new()), WAIT);
    assert_eq!(out.code(), Some(1), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("needs a terminal"), "{}", out.stderr);
    assert!(out.stderr.contains("lantalk listen"), "{}", out.stderr);
}

/// The tutorial's exact send: a plain socket, no framing, no newline. It
/// shows up as a message from a raw peer named after its address, within
/// the partial-line delay, while the connection is still open.
#[test]
fn raw_text_the_tutorial_exchange() {
    let listen = Listen::start(false);
    let mut sock = TcpStream::connect(("127.0.0.1", listen.port)).unwrap();
    sock.write_all(b"Hey there, Rodrigo's laptop.").unwrap();
    let me = sock.local_addr().unwrap();
    let started = Instant::now();
    let line = listen.wait_for_stdout_line(|l| l.contains("Hey there"), WAIT);
    assert_eq!(line, format!("raw {me}: Hey there, Rodrigo's laptop."));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Nothing binary came back: the listener never sent a hello to a raw peer.
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(sock.read(&mut buf), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the raw peer received bytes"
    );
}

/// Lines (CR LF or LF), invalid UTF-8 replaced, a partial line delivered at
/// close; `--json` marks the peer raw and gives it no id.
#[test]
fn raw_text_lines_in_json() {
    let listen = Listen::start(true);
    let mut sock = TcpStream::connect(("127.0.0.1", listen.port)).unwrap();
    sock.write_all(b"first\r\nsecond caf\xc3\xa9 \xff\nlast, no newline")
        .unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let bodies: Vec<Value> = (0..3)
        .map(|_| serde_json::from_str(&listen.next_stdout_line()).unwrap())
        .collect();
    assert_eq!(bodies[0]["body"], "first");
    assert_eq!(bodies[1]["body"], "second café \u{fffd}");
    assert_eq!(bodies[2]["body"], "last, no newline");
    for b in &bodies {
        assert_eq!(b["raw"], true, "{b}");
        assert!(b["from_id"].is_null(), "{b}");
        assert!(
            b["from"].as_str().unwrap().starts_with("raw 127.0.0.1:"),
            "{b}"
        );
    }
}

/// A client may say bye right after its last texts (it only closes its write
/// side): those texts are still acknowledged before listen's own bye.
#[test]
fn texts_sent_with_the_bye_are_still_acknowledged() {
    let listen = Listen::start(false);
    let (mut raw, _) = Raw::handshake(listen.port, "hasty");
    let mut burst = frame(&text("h1", "one"));
    burst.extend(frame(&text("h2", "two")));
    burst.extend(frame(&json!({"type": "bye"})));
    raw.write(&burst);
    raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut acked = Vec::new();
    loop {
        let msg = raw.recv().expect("acks, then bye, then the end");
        match msg["type"].as_str() {
            Some("ack") => acked.push(msg["id"].as_str().unwrap().to_owned()),
            Some("bye") => break,
            other => panic!("unexpected {other:?}: {msg}"),
        }
    }
    assert_eq!(acked, ["h1", "h2"]);
    raw.expect_eof();
    assert_eq!(listen.next_stdout_line(), "hasty: one");
    assert_eq!(listen.next_stdout_line(), "hasty: two");
}

/// The tutorial's exact REPL lines, from a real Python: the socket stays
/// open and the message still shows up within a second.
#[test]
fn raw_text_from_the_tutorials_python_repl() {
    let listen = Listen::start(false);
    let script = format!(
        "import socket, time\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         s.sendall(b\"Hey there, Rodrigo's laptop.\")\n\
         print(s.getsockname()[1], flush=True)\n\
         time.sleep(5)\n",
        listen.port
    );
    let mut python = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut port = String::new();
    BufReader::new(python.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let sent = Instant::now();
    let line = listen.wait_for_stdout_line(|l| l.contains("Hey there"), WAIT);
    let shown = sent.elapsed();
    let _ = python.kill();
    let _ = python.wait();
    assert_eq!(
        line,
        format!(
            "raw 127.0.0.1:{}: Hey there, Rodrigo's laptop.",
            port.trim()
        )
    );
    assert!(shown < Duration::from_secs(1), "shown after {shown:?}");
}
