//! A hostile or broken peer against the real `lantalk listen`, over loopback
//! in this machine's namespace (`--no-mdns`): oversized and malformed frames,
//! slow and silent peers, dead sessions, and texts whose ack was lost.
//!
//! Each test prints what it measured on lines starting with `figure:`
//! (`cargo test --test hostile -- --nocapture` shows them); the README's
//! Reliability table is made of them. Timings are printed, never asserted,
//! except as generous bounds that tell a timeout from a hang.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::local::*;
use serde_json::{Value, json};

/// Resident memory of a running process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    common::proc::rss_kib(pid).expect("VmRSS of a running process")
}

/// Reads frames until the end of the stream, answering nothing; returns them.
/// A reset after the last frame counts as the end.
fn frames_until_eof(raw: &mut Raw, timeout: Duration) -> Vec<Value> {
    raw.stream.set_read_timeout(Some(timeout)).unwrap();
    let mut got = Vec::new();
    loop {
        let mut header = [0u8; 4];
        match raw.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                return got;
            }
            Err(e) => panic!("no end of stream within {timeout:?} ({e}); got {got:?}"),
        }
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        raw.stream.read_exact(&mut payload).expect("a payload");
        got.push(serde_json::from_slice(&payload).expect("JSON from listen"));
    }
}

// ---------------------------------------------------------------------------
// 1. Frame limits
// ---------------------------------------------------------------------------

/// A length header claiming 2 GiB (inside a session) or 16 MiB (as the very
/// first frame: a first byte other than 0x00 would start a raw text session),
/// followed by a stream of bytes: refused with `frame_too_large` from the
/// header alone, and nothing is buffered.
#[test]
fn an_oversized_length_header_is_refused_without_buffering() {
    let listen = Listen::start(false);
    let pid = listen.child.id();
    let before = rss_kib(pid);
    for (after_hello, claim) in [(false, 0x00ff_ffffu32), (true, 0x8000_0000)] {
        let mut raw = Raw::connect(listen.port);
        if after_hello {
            raw.send(&hello("bigmouth"));
            raw.expect("hello");
        }
        let mut writer = raw.stream.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_writer = Arc::clone(&stop);
        // The header, then bytes for as long as listen takes them (up to 64 MiB).
        let pump = thread::spawn(move || {
            let mut sent = 0usize;
            if writer.write_all(&claim.to_be_bytes()).is_err() {
                return sent;
            }
            let chunk = vec![b'x'; 64 * 1024];
            while sent < 64 << 20 && !stop_writer.load(Ordering::Relaxed) {
                match writer.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            sent
        });
        if !after_hello {
            raw.expect("hello");
        }
        let error = raw.expect("error");
        assert_eq!(error["code"], "frame_too_large", "{error}");
        let rest = frames_until_eof(&mut raw, WAIT);
        assert!(rest.is_empty(), "nothing after the error: {rest:?}");
        stop.store(true, Ordering::Relaxed);
        let sent = pump.join().unwrap();
        println!(
            "figure: frame limit ({}): a {claim}-byte header refused, connection closed after the peer pushed {} KiB",
            if after_hello {
                "after hello"
            } else {
                "as first frame"
            },
            sent / 1024
        );
    }
    let after = rss_kib(pid);
    println!("figure: frame limit: listen RSS {before} KiB before, {after} KiB after");
    assert!(
        after < before + 4 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    // Still serving.
    let dir = data_dir();
    send(&listen.addr(), dir.path(), "phone", &["still", "fine"]).assert_success();
    listen.wait_for_stdout_line(|l| l == "phone: still fine", WAIT);
}

// ---------------------------------------------------------------------------
// 2. Malformed frames
// ---------------------------------------------------------------------------

/// Each malformed frame closes its own session with `bad_json`; a session
/// opened before them carries on, its texts printed and acknowledged.
#[test]
fn malformed_frames_close_only_their_own_session() {
    let listen = Listen::start(false);
    let (mut good, _) = Raw::handshake(listen.port, "good");
    let cases: [(&str, Vec<u8>); 5] = [
        ("invalid JSON", b"{\"type\":\"text\",".to_vec()),
        (
            "invalid UTF-8",
            b"{\"type\":\"text\",\"id\":\"1\",\"ts\":1,\"body\":\"\xff\xfe\"}".to_vec(),
        ),
        (
            "a number where a string belongs",
            br#"{"type":"text","id":5,"ts":1,"body":"x"}"#.to_vec(),
        ),
        (
            "a text without id",
            br#"{"type":"text","ts":1,"body":"x"}"#.to_vec(),
        ),
        ("not an object", b"[1,2,3]".to_vec()),
    ];
    for (i, (what, payload)) in cases.iter().enumerate() {
        let (mut bad, _) = Raw::handshake(listen.port, "bad");
        bad.write(&frame_of(payload));
        let error = bad.expect("error");
        assert_eq!(error["code"], "bad_json", "{what}: {error}");
        bad.expect_eof();
        // The other session is unaffected.
        let id = format!("g{i}");
        good.send(&text(&id, &format!("after {what}")));
        let ack = good.expect("ack");
        assert_eq!(ack["id"], id.as_str());
        listen.wait_for_stdout_line(|l| l == format!("good: after {what}"), WAIT);
    }
    println!(
        "figure: malformed frames: {} kinds, each answered bad_json and closed; the concurrent session got all {} acks",
        cases.len(),
        cases.len()
    );
}

// ---------------------------------------------------------------------------
// 3. Slow and silent peers
// ---------------------------------------------------------------------------

/// A hello trickled one byte per second is cut off by the 5-s handshake timeout.
#[test]
fn a_trickled_hello_hits_the_handshake_timeout() {
    let listen = Listen::start(false);
    let mut raw = Raw::connect(listen.port);
    let bytes = frame(&hello("slowpoke"));
    let mut writer = raw.stream.try_clone().unwrap();
    let started = Instant::now();
    let trickle = thread::spawn(move || {
        for b in bytes {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_secs(1));
        }
    });
    raw.expect("hello");
    let error = raw.expect("error");
    assert_eq!(error["code"], "handshake_timeout", "{error}");
    let closed = started.elapsed();
    let _ = raw.stream.shutdown(Shutdown::Both);
    let _ = trickle.join();
    println!("figure: trickled hello (1 byte/s): handshake_timeout after {closed:.1?}");
    assert!(closed < Duration::from_secs(15), "took {closed:?}");
}

/// After the handshake, a peer that goes silent (here: half a frame, then
/// nothing, and no answer to pings) is pinged and then dropped.
#[test]
fn a_silent_session_is_pinged_then_dropped() {
    let listen = Listen::start(false);
    let (mut raw, _) = Raw::handshake(listen.port, "stalled");
    let mut half = frame(&text("s1", "never finished"));
    half.truncate(half.len() / 2);
    raw.write(&half);
    let started = Instant::now();
    let got = frames_until_eof(&mut raw, Duration::from_secs(30));
    let closed = started.elapsed();
    let pings = got.iter().filter(|m| m["type"] == "ping").count();
    assert!(pings >= 1, "pinged before giving up: {got:?}");
    assert!(
        got.iter().all(|m| m["type"] == "ping"),
        "only pings: {got:?}"
    );
    listen.wait_for_stderr_line(|l| l.contains("stopped responding"), WAIT);
    println!(
        "figure: silent session: {pings} ping(s), closed after {closed:.1?} of silence (limit 12 s)"
    );
    assert!(closed < Duration::from_secs(25), "took {closed:?}");
}

/// A frame whose bytes keep coming, one per second, never completes: it is
/// closed by the 30-s frame deadline with an `error` of code `timeout`.
#[test]
fn a_frame_trickled_byte_by_byte_hits_the_frame_deadline() {
    let listen = Listen::start(false);
    let (mut raw, _) = Raw::handshake(listen.port, "trickler");
    let body = "y".repeat(200);
    let bytes = frame(&text("t1", &body));
    let mut writer = raw.stream.try_clone().unwrap();
    let started = Instant::now();
    let trickle = thread::spawn(move || {
        for b in bytes {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_secs(1));
        }
    });
    let got = frames_until_eof(&mut raw, Duration::from_secs(60));
    let closed = started.elapsed();
    let error = got
        .iter()
        .find(|m| m["type"] == "error")
        .unwrap_or_else(|| panic!("an error frame: {got:?}"));
    assert_eq!(error["code"], "timeout", "{error}");
    let _ = raw.stream.shutdown(Shutdown::Both);
    let _ = trickle.join();
    println!(
        "figure: frame trickled at 1 byte/s: closed with error timeout after {closed:.1?} (limit 30 s)"
    );
    assert!(
        (Duration::from_secs(25)..Duration::from_secs(50)).contains(&closed),
        "took {closed:?}"
    );
}

/// A quiet but healthy peer, one that answers pings, keeps its session.
#[test]
fn a_quiet_peer_that_answers_pings_stays_connected() {
    let listen = Listen::start(false);
    let (mut raw, _) = Raw::handshake(listen.port, "quiet");
    raw.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let mut pings = 0;
    while Instant::now() < until {
        let mut header = [0u8; 4];
        match raw.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => panic!("session closed after {pings} pings: {e}"),
        }
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        raw.stream.read_exact(&mut payload).unwrap();
        let msg: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(msg["type"], "ping", "{msg}");
        pings += 1;
        raw.send(&json!({"type": "pong", "nonce": msg["nonce"]}));
    }
    raw.stream.set_read_timeout(Some(WAIT)).unwrap();
    raw.send(&text("q1", "still here"));
    assert_eq!(raw.expect("ack")["id"], "q1");
    println!("figure: idle healthy session: {pings} pings in 20 s, still open");
    assert!(pings >= 2, "pinged while idle: {pings}");
}

// ---------------------------------------------------------------------------
// 7. Nothing lost: retries after a dropped connection, duplicates dropped
// ---------------------------------------------------------------------------

/// A TCP relay between `send` and `listen` whose connections the test can
/// cut at any moment, as a failing link would.
struct Relay {
    port: u16,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let held = Arc::clone(&conns);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let mut list = held.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Relay { port, conns }
    }

    /// Cuts every relayed connection at once, in both directions.
    fn cut(&self) -> usize {
        let mut list = self.conns.lock().unwrap();
        for conn in list.iter() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        let n = list.len() / 2;
        list.clear();
        n
    }
}

/// A burst from `send` through a link that is cut twice mid-way: `send`
/// connects again and resends what was not acknowledged; `listen` prints
/// every line exactly once, in order, and `send` exits 0.
#[test]
fn a_burst_survives_cut_connections_without_loss_or_duplicates() {
    const LINES: usize = 20_000;
    let listen = Listen::start(false);
    let relay = Relay::start(listen.port);
    let input: String = (1..=LINES).map(|i| format!("line {i}\n")).collect();
    let dir = data_dir();
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(dir.path())
        .args(["--name", "phone", "send"])
        .arg(format!("127.0.0.1:{}", relay.port));
    let sender = thread::spawn(move || run(cmd, Some(input.into_bytes()), Duration::from_secs(60)));
    let mut printed = Vec::with_capacity(LINES);
    let mut cuts = 0;
    let started = Instant::now();
    while printed.len() < LINES {
        let line = listen.next_stdout_line();
        printed.push(line);
        // Cut the link after a third and after two thirds of the lines.
        if (printed.len() == LINES / 3 || printed.len() == 2 * LINES / 3) && relay.cut() > 0 {
            cuts += 1;
        }
    }
    let finished = sender.join().unwrap();
    finished.assert_success();
    let elapsed = started.elapsed();
    for (i, line) in printed.iter().enumerate() {
        assert_eq!(*line, format!("phone: line {}", i + 1), "line {i}");
    }
    // Nothing more arrives: no duplicate was printed late.
    thread::sleep(Duration::from_millis(300));
    assert!(listen.stdout.next(Duration::ZERO).is_none());
    let reconnects = finished.stderr.matches("connecting again").count();
    assert_eq!(cuts, 2, "the link was cut twice");
    assert!(reconnects >= 2, "send reconnected: {}", finished.stderr);
    println!(
        "figure: {LINES} texts through a link cut {cuts} times: {reconnects} reconnects, {} printed once each, in order, 0 lost, in {elapsed:.1?}",
        printed.len()
    );
}

/// A text whose ack is lost is sent again, and the receiver acknowledges the
/// copy without printing it twice (the same id from the same peer).
#[test]
fn a_resent_text_is_acknowledged_but_printed_once() {
    let listen = Listen::start(false);
    let (mut first, _) = Raw::handshake(listen.port, "phone");
    first.send(&text("dup-1", "only once"));
    assert_eq!(first.expect("ack")["id"], "dup-1");
    drop(first);
    // The same peer (same id in its hello) sends it again on a new session.
    let (mut second, _) = Raw::handshake(listen.port, "phone");
    second.send(&text("dup-1", "only once"));
    second.send(&text("dup-2", "and the next"));
    assert_eq!(second.expect("ack")["id"], "dup-1");
    assert_eq!(second.expect("ack")["id"], "dup-2");
    listen.wait_for_stdout_line(|l| l == "phone: only once", WAIT);
    assert_eq!(listen.next_stdout_line(), "phone: and the next");
}

/// A peer's `error` message quoted in `send`'s failure line is escaped: it
/// cannot retitle the terminal or write the clipboard.
#[test]
fn a_peers_error_message_reaches_the_terminal_escaped() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let fake = thread::spawn(move || {
        let stream = accept_plaintext(&server);
        let mut raw = Raw { stream };
        raw.expect("hello");
        raw.send(&hello("evil"));
        raw.send(&json!({"type": "error", "code": "x",
            "message": "\u{1b}]2;pwned\u{7} \u{1b}]52;c;cHduZWQ=\u{7} gotcha"}));
        let _ = raw.stream.shutdown(Shutdown::Write);
        thread::sleep(Duration::from_millis(500));
    });
    let dir = data_dir();
    let done = send(&format!("127.0.0.1:{port}"), dir.path(), "phone", &["hi"]);
    fake.join().unwrap();
    assert_eq!(done.code(), Some(4), "{}", done.stderr);
    assert!(done.stderr.contains("gotcha"), "{}", done.stderr);
    assert!(
        !done.stderr.contains('\u{1b}') && !done.stderr.contains('\u{7}'),
        "raw control characters on stderr: {:?}",
        done.stderr
    );
    assert!(done.stderr.contains("^[]2;pwned^G"), "{}", done.stderr);
}
