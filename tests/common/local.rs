//! Running the real binary in this machine's network namespace over
//! loopback: `lantalk --no-mdns` processes, their output line by line, and a
//! hand-written protocol client ([`Raw`]) for feeding them exact bytes.
//!
//! mDNS is never started here: every `lantalk` run gets `--no-mdns` and only
//! 127.0.0.1 is used. Every wait has a timeout, so a broken binary fails a
//! test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tempfile::TempDir;

/// How long `listen` gets to print its port.
pub const STARTUP: Duration = Duration::from_secs(10);
/// How long any single expected event (a line, a frame, an exit) may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Accepts the next connection that speaks in clear, as a plaintext-only
/// server would: `lantalk send HOST:PORT` tries TLS first (first byte
/// 0x16) and comes back in clear when the server closes that attempt.
/// Panics, instead of hanging the test, when no such connection comes
/// within [`WAIT`].
#[track_caller]
pub fn accept_plaintext(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection in clear within {WAIT:?}"
                );
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => panic!("accept: {e}"),
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut first = [0u8; 1];
        match stream.peek(&mut first) {
            Ok(1) if first[0] == 0x16 => {
                // What a lantalk from before TLS does: close politely and
                // drain (dropping unread input would reset the connection,
                // which `send` rightly takes for an attack, not for an old
                // peer).
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = std::io::copy(&mut &stream, &mut std::io::sink());
                continue;
            }
            _ => return stream,
        }
    }
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// `lantalk --no-mdns` with a clean logging environment and no stdin.
pub fn lantalk() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lantalk"));
    cmd.arg("--no-mdns")
        .env_remove("LANTALK_LOG")
        .env(super::NO_USER_CONFIG.0, super::NO_USER_CONFIG.1)
        .stdin(Stdio::null());
    cmd
}

/// A fresh data directory (and so a fresh peer id).
pub fn data_dir() -> TempDir {
    tempfile::tempdir().expect("cannot create a temporary directory")
}

/// Lines read from a child's pipe by a background thread.
pub struct Lines {
    pub rx: Receiver<String>,
    pub what: &'static str,
}

impl Lines {
    pub fn new(pipe: impl Read + Send + 'static, what: &'static str) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx, what }
    }

    /// The next line, or `None` on timeout or end of the stream.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Skips lines until one matches `pred`; panics (showing what was skipped)
    /// if none does within `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => skipped.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no matching {} line within {timeout:?}; got {skipped:#?}",
                    self.what
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{} closed before a matching line; got {skipped:#?}",
                    self.what
                ),
            }
        }
    }
}

/// The port in a `listening on port N ...` status line.
pub fn port_in(line: &str) -> Option<u16> {
    let rest = line.split("listening on port ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A running `lantalk listen`, killed when dropped.
pub struct Listen {
    pub child: Child,
    pub port: u16,
    /// Everything `listen` wrote to stderr up to and including the port line.
    pub startup: Vec<String>,
    pub stdout: Lines,
    pub stderr: Lines,
    /// The data directory, when this `Listen` made it (removed on drop).
    pub _data: Option<TempDir>,
}

impl Listen {
    /// `lantalk --no-mdns --port 0 --data-dir D --name laptop listen [--json]`.
    pub fn start(json: bool) -> Self {
        let mut args = vec!["--port", "0", "--name", "laptop", "listen"];
        if json {
            args.push("--json");
        }
        Self::start_with(&args)
    }

    /// `lantalk --no-mdns --data-dir D ARGS...` in a fresh directory D;
    /// waits for the port line.
    pub fn start_with(args: &[&str]) -> Self {
        let data = data_dir();
        let mut listen = Self::start_in(data.path(), args);
        listen._data = Some(data);
        listen
    }

    /// `lantalk --no-mdns --data-dir DIR ARGS...`; waits for the port line.
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Self {
        let mut child = lantalk()
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start lantalk listen");
        let stdout = Lines::new(child.stdout.take().unwrap(), "listen stdout");
        let stderr = Lines::new(child.stderr.take().unwrap(), "listen stderr");
        let mut listen = Self {
            child,
            port: 0,
            startup: Vec::new(),
            stdout,
            stderr,
            _data: None,
        };
        let deadline = Instant::now() + STARTUP;
        while listen.port == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = listen.stderr.next(left) else {
                panic!(
                    "listen printed no port within {STARTUP:?} (exit: {:?}); stderr: {:#?}",
                    listen.child.try_wait(),
                    listen.startup
                );
            };
            if line.contains("lantalk: listening on port ") {
                listen.port = port_in(&line).expect("a port number");
            }
            listen.startup.push(line);
        }
        listen
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn wait_for_stdout_line(
        &self,
        pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> String {
        self.stdout.wait_for(timeout, pred)
    }

    pub fn wait_for_stderr_line(
        &self,
        pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> String {
        self.stderr.wait_for(timeout, pred)
    }

    /// The next stdout line, which must come within [`WAIT`].
    pub fn next_stdout_line(&self) -> String {
        self.stdout
            .next(WAIT)
            .unwrap_or_else(|| panic!("listen printed nothing on stdout within {WAIT:?}"))
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The outcome of a command run to completion.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    #[track_caller]
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "{}; stderr: {}",
            self.status,
            self.stderr
        );
    }
}

/// Runs `cmd` with `stdin` (or no stdin) and waits for it to exit; kills it and
/// panics if it takes longer than `timeout`.
pub fn run(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Finished {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start lantalk");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A write error means lantalk exited early; its status tells why.
        thread::spawn(move || pipe.write_all(&bytes));
    }
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let Some(status) = wait_child(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "lantalk did not exit within {timeout:?}; stderr: {}",
            stderr.join().unwrap()
        );
    };
    Finished {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `lantalk --no-mdns --data-dir DIR --name NAME send ADDR TEXT...`
pub fn send(addr: &str, dir: &Path, name: &str, text: &[&str]) -> Finished {
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--name", name, "send", addr]);
    cmd.args(text);
    run(cmd, None, WAIT)
}

/// `lantalk --no-mdns --data-dir DIR ARGS...` run to completion, with
/// `TZ=UTC` (so that `history` prints times the test can predict).
pub fn lantalk_in(dir: &Path, args: &[&str]) -> Finished {
    let mut cmd = lantalk();
    cmd.env("TZ", "UTC").arg("--data-dir").arg(dir).args(args);
    run(cmd, None, WAIT)
}

/// `history PEER --json ARGS...` on `dir`, parsed; it must succeed.
pub fn history_json(dir: &Path, peer: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["history", peer, "--json"];
    all.extend_from_slice(args);
    let out = lantalk_in(dir, &all);
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// The `body` of each history record.
pub fn bodies(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["body"].as_str().expect("a body").to_owned())
        .collect()
}

/// `lantalk --no-mdns --data-dir DIR ARGS...` (ARGS include `listen`) as a
/// [`Proc`], once it has said its port. The data directory is the caller's,
/// so a listener can be stopped and started again on it.
pub fn listen_in(dir: &Path, args: &[&str]) -> (super::proc::Proc, u16) {
    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(dir).args(args);
    let mut proc = super::proc::Proc::spawn(cmd);
    let line = proc.wait_err(STARTUP, |l| l.contains("listening on port "));
    (proc, port_in(&line).expect("a port number"))
}

/// A free port for a listener that must get exactly it (to be restarted
/// on it, say): below the kernel's ephemeral range (32768 and up), so that
/// neither `--port 0` nor the local end of some other test's connection
/// can take it between now and the listener's bind.
pub fn fixed_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let step = u32::from(NEXT.fetch_add(1, Ordering::Relaxed));
        let port = (LOW + (start + step * 131) % SPAN) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}

/// A loopback port on which nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn is_peer_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

// ---------------------------------------------------------------------------
// A raw protocol client: frames written and read by hand
// ---------------------------------------------------------------------------

/// A TCP connection speaking protocol v1 frame by frame: u32 BE length + JSON.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to listen");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream }
    }

    /// Connects and completes the handshake as `name`; returns listen's hello.
    pub fn handshake(port: u16, name: &str) -> (Self, Value) {
        let mut raw = Self::connect(port);
        raw.send(&hello(name));
        let theirs = raw.recv().expect("listen's hello");
        (raw, theirs)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to listen");
    }

    pub fn send(&mut self, msg: &Value) {
        self.write(&frame(msg));
    }

    /// The next frame, or `None` on a clean end of stream between frames.
    #[track_caller]
    pub fn recv(&mut self) -> Option<Value> {
        let mut header = [0u8; 4];
        let n = self.stream.read(&mut header).expect("read a frame header");
        if n == 0 {
            return None;
        }
        self.stream
            .read_exact(&mut header[n..])
            .expect("read a frame header");
        let len = u32::from_be_bytes(header) as usize;
        assert!(
            (1..=1_048_576).contains(&len),
            "listen sent a frame of length {len}"
        );
        let mut payload = vec![0u8; len];
        self.stream
            .read_exact(&mut payload)
            .expect("read a frame payload");
        let msg: Value = serde_json::from_slice(&payload).expect("listen sent invalid JSON");
        assert!(msg["type"].is_string(), "frame without a type: {msg}");
        Some(msg)
    }

    /// The next frame, which must exist and have this type.
    #[track_caller]
    pub fn expect(&mut self, kind: &str) -> Value {
        let msg = self
            .recv()
            .unwrap_or_else(|| panic!("end of stream, expected {kind}"));
        assert_eq!(msg["type"], kind, "expected {kind}, got {msg}");
        msg
    }

    #[track_caller]
    pub fn expect_eof(&mut self) {
        if let Some(msg) = self.recv() {
            panic!("expected the end of the stream, got {msg}");
        }
    }
}

/// One frame: the payload's length as u32 big-endian, then the payload.
pub fn frame_of(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

pub fn frame(msg: &Value) -> Vec<u8> {
    frame_of(msg.to_string().as_bytes())
}

pub fn hello(name: &str) -> Value {
    json!({"type": "hello", "proto": 1, "id": "0123456789abcdef0123456789abcdef", "name": name, "app": "rawtest/0"})
}

pub fn text(id: &str, body: &str) -> Value {
    json!({"type": "text", "id": id, "ts": now_ms(), "body": body})
}
