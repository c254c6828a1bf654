//! Whole-process benchmarks: the release `lantalk` binary run as a user would
//! run it, headless and as a real TUI under a private tmux server.
//!
//! * #4 headless pipeline: lines piped into `send` to a running `listen`,
//!   against the same bytes through a plain TCP socket to a plain sink.
//! * #7 TUI ingest: messages from `send` until the TUI shows the last one.
//! * #8 TUI idle: CPU and wake-ups of a TUI with nothing happening, in this
//!   namespace with `--no-mdns` and, as root, in a namespace of its own with
//!   mDNS on.
//! * #9 TUI typing: CPU per keystroke with 100 and with 100,000 messages in
//!   the open conversation.
//! * #10 memory: the TUI's resident set at start and after 100,000 messages.
//!
//! Every lantalk started in this machine's own network namespace runs with
//! `--no-mdns` and talks to 127.0.0.1 only. Every wait has a timeout; a
//! failure panics with what was seen (exit code non-zero), and the guards
//! (processes, tmux servers, namespaces, temporary directories) clean up.
//! `LANTALK_BENCH_QUICK=1`: small counts, one repetition.

mod support;

// The tests' helpers: tmux driving, and the namespace LAN.
#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/procs.rs"]
mod procs;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::lan::{self, Lan, shell_quote};
use common::tmux::{Tmux, framed};
use procs::{BIN, Delta, Running, Watch, per_thread, rss_bytes, sample};
use support::{Stats, num, pick, row, secs};

/// How often the TUI's screen is captured while waiting for it.
const POLL: Duration = Duration::from_millis(10);

/// How long the TUI gets to show its first screen.
const START_WAIT: Duration = Duration::from_secs(15);

/// The TUI's terminal size.
const SIZE: (u16, u16) = (120, 40);

/// Columns of the peers pane at 120 columns (`(120 / 3).clamp(16, 26)`).
const PEERS_WIDTH: usize = 26;

/// The placeholder of an empty input with a conversation open.
const EMPTY_INPUT: &str = "Type a message, Enter to send";

fn main() {
    let reps = pick(3, 1);
    eprintln!(
        "processes bench: {} mode, {reps} repetition(s), binary {BIN}",
        if support::quick() { "quick" } else { "full" }
    );
    let tck = procs::clk_tck();
    eprintln!(
        "clock ticks: {tck}/s (CPU time from utime+stime has a {} ms resolution)",
        1000 / tck
    );

    load("start");
    pipeline(reps);
    load("after #4");
    let ingest = ingest(reps, tck);
    load("after #7");
    idle_rows(reps, tck);
    load("after #8");
    typing_rows(reps, tck, &ingest.typing);
    load("after #9");
    memory_rows(&ingest);
}

/// Prints the load average: other work on the machine skews these numbers.
fn load(when: &str) {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("load average {when}: {} ({cores} cores)", avg.trim());
}

// ---------------------------------------------------------------------------
// #4 headless pipeline

/// `n` lines of exactly `len` bytes (newline included), numbered.
fn numbered_lines(n: usize, len: usize, label: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * len);
    let filler = "the quick brown fox jumps over the lazy dog ".repeat(1 + len / 40);
    for i in 1..=n {
        let mut line = format!("{label} {i:06} ");
        let room = len - 1 - line.len();
        line.push_str(&filler[..room]);
        line.push('\n');
        debug_assert_eq!(line.len(), len);
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn lantalk(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--no-mdns")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("LANTALK_LOG")
        .env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1);
    cmd
}

/// `listen` on port 0 in `dir`, stdout to /dev/null; returns it and its port.
fn start_listen(dir: &Path) -> (Running, u16) {
    let mut listen = Running::spawn(
        lantalk(dir, &["--port", "0", "--name", "sink", "listen"]),
        Stdio::null(),
        Stdio::null(),
    );
    let line = listen.wait_err(START_WAIT, |l| l.contains("listening on port "));
    let port = line
        .split("listening on port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (listen, port)
}

/// `send 127.0.0.1:PORT` with stdin from `file`, started now.
fn start_send(dir: &Path, port: u16, file: &Path) -> Running {
    let stdin = std::fs::File::open(file).expect("open the lines file");
    Running::spawn(
        lantalk(
            dir,
            &["--name", "bench", "send", &format!("127.0.0.1:{port}")],
        ),
        Stdio::from(stdin),
        Stdio::null(),
    )
}

fn pipeline(reps: usize) {
    let n = pick(100_000, 10_000);
    let tmp = tempdir("pipeline");
    let file = tmp.path().join("lines.txt");
    let bytes = numbered_lines(n, 100, "line");
    std::fs::write(&file, &bytes).expect("write the lines file");
    eprintln!("#4 headless pipeline: {n} lines of 100 bytes");

    let mut ours = Vec::new();
    for rep in 0..reps {
        let (mut listen, port) = start_listen(&tmp.path().join(format!("listen{rep}")));
        let start = Instant::now();
        let mut send = start_send(&tmp.path().join(format!("send{rep}")), port, &file);
        let status = send.wait_exit(Duration::from_secs(300));
        let took = start.elapsed();
        send.expect_success(status);
        let rate = n as f64 / secs(took);
        eprintln!("  lantalk rep {rep}: {took:.3?}, {} lines/s", num(rate));
        ours.push(rate);
        // Still running after `send` exited, or it failed.
        assert!(
            listen.try_wait().is_none(),
            "listen exited; stderr: {:?}",
            listen.drain_err()
        );
    }

    let mut raw = Vec::new();
    for rep in 0..reps {
        let took = raw_socket(&bytes);
        let rate = n as f64 / secs(took);
        eprintln!("  raw socket rep {rep}: {took:.3?}, {} lines/s", num(rate));
        raw.push(rate);
    }
    let (ours, raw) = (Stats::of(&ours), Stats::of(&raw));
    let ratio = ours.median / raw.median;
    row(
        "4",
        &format!(
            "headless pipeline: {} lines of 100 B, `send` (stdin) → `listen` (stdout /dev/null), until `send` exits (all acked)",
            num(n as f64)
        ),
        &ours.show("lines/s"),
        &format!("plain TCP socket → sink thread: {}", raw.show("lines/s")),
        &format!("{ratio:.4}"),
        "≥ 0.25",
        Some(ratio >= 0.25),
    );
}

/// The same bytes through a std TcpStream to a sink thread reading to EOF;
/// from connecting until the sink has them all.
fn raw_socket(bytes: &[u8]) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let addr = listener.local_addr().expect("sink address");
    let (tx, rx) = mpsc::channel();
    let sink = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => total += k,
                Err(e) => panic!("sink read: {e}"),
            }
        }
        let _ = tx.send((total, Instant::now()));
    });
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect to the sink");
    stream.write_all(bytes).expect("write to the sink");
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let (total, end) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the sink did not finish in 60 s");
    sink.join().expect("sink thread");
    assert_eq!(total, bytes.len(), "the sink got a different byte count");
    end.duration_since(start)
}

// ---------------------------------------------------------------------------
// The TUI under tmux

fn tempdir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("lantalk-bench-{what}"))
        .tempdir()
        .expect("temporary directory")
}

/// A TUI running in its own tmux server. Drop order: the tmux server (and
/// with it the TUI) goes first, then the data directory.
struct Tui {
    tmux: Tmux,
    name: &'static str,
    pid: u32,
    port: u16,
    started: Instant,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Tui {
    /// Starts `lantalk --no-mdns --port 0 --data-dir D --name tui` (or, on
    /// host 0 of `lan`, the same with mDNS on) and waits for its status bar
    /// to show the port.
    fn start(lan: Option<&Lan>) -> Tui {
        let tmp = tempdir("tui");
        let dir = tmp.path().join("data");
        let mut tmux = Tmux::new();
        let name = "tui";
        let dir = dir.to_str().expect("utf-8 temp path");
        let args = ["--port", "0", "--name", "tui", "--data-dir", dir];
        let cmd = match lan {
            Some(lan) => lan.shell_command(0, "tui", &args),
            None => std::iter::once(BIN)
                .chain(std::iter::once("--no-mdns"))
                .chain(args)
                .map(shell_quote)
                .collect::<Vec<_>>()
                .join(" "),
        };
        // `exec`: the pane's process is lantalk itself (every layer execs).
        let started = Instant::now();
        tmux.new_session(name, SIZE.0, SIZE.1, &format!("exec {cmd}"));
        let size = tmux.display(name, "#{pane_width}x#{pane_height}");
        assert_eq!(
            size,
            format!("{}x{}", SIZE.0, SIZE.1),
            "unexpected pane size"
        );
        let pid: u32 = tmux
            .display(name, "#{pane_pid}")
            .parse()
            .expect("numeric pane_pid");
        let mut tui = Tui {
            tmux,
            name,
            pid,
            port: 0,
            started,
            dir: dir.into(),
            _tmp: tmp,
        };
        let mdns = lan.is_some();
        let screen = tui.wait("the status bar with our port", START_WAIT, |s| {
            port_in(s).is_some() && (!mdns || status_bar(s).contains("mDNS on"))
        });
        tui.port = port_in(&screen).expect("checked");
        if lan.is_some() {
            let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
            let its = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("its netns");
            assert_ne!(ours, its, "the mDNS TUI is not in a namespace of its own");
        }
        tui
    }

    fn capture(&self) -> String {
        self.tmux.capture(self.name)
    }

    /// Polls the screen every [`POLL`] until `pred` holds; panics with the
    /// last capture (and the log) after `timeout` or if the TUI exited.
    fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut last_alive_check = Instant::now();
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            let dead = if last_alive_check.elapsed() > Duration::from_millis(500) {
                last_alive_check = Instant::now();
                self.tmux.display(self.name, "#{pane_dead}") == "1"
            } else {
                false
            };
            if dead || Instant::now() >= deadline {
                self.fail(&format!(
                    "no {what} on screen {}",
                    if dead {
                        "(the TUI exited)".to_owned()
                    } else {
                        format!("after {timeout:?}")
                    }
                ));
            }
            thread::sleep(POLL);
        }
    }

    fn fail(&self, why: &str) -> ! {
        let exit = self.tmux.display(
            self.name,
            "pane_dead=#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal}",
        );
        let log = std::fs::read_to_string(self.dir.join("lantalk.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "TUI: {why} ({exit}); last capture:\n{}--- log tail ---\n{}",
            framed(&self.capture()),
            tail.join("\n")
        );
    }

    /// Sends `file` to the TUI with `lantalk send` and waits until `last`
    /// is on screen and `send` exited 0. Returns (time until on screen,
    /// time until `send` exited), both from spawning `send`.
    fn fill(
        &self,
        sender_dir: &Path,
        file: &Path,
        last: &str,
        timeout: Duration,
    ) -> (Duration, Duration) {
        let start = Instant::now();
        let send = Watch::new(start_send(sender_dir, self.port, file));
        let deadline = start + timeout;
        let shown = loop {
            let screen = self.capture();
            let now = Instant::now();
            if screen.contains(last) {
                break now.duration_since(start);
            }
            if now >= deadline {
                let exited = send.exited_at().map(|t| t.duration_since(start));
                self.fail(&format!(
                    "{last:?} not shown after {timeout:?}; send exited after {exited:?}"
                ));
            }
            thread::sleep(POLL);
        };
        let exited = send.finish(timeout.saturating_sub(start.elapsed()));
        (shown, exited.duration_since(start))
    }
}

/// The status bar: the last row drawn.
fn status_bar(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// The port in the status bar (` tui · 10.0.0.5:PORT · …` or ` tui · no network :PORT · …`).
fn port_in(screen: &str) -> Option<u16> {
    let addr = status_bar(screen).split(" · ").nth(1)?;
    addr.rsplit(':')
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p != 0)
}

// ---------------------------------------------------------------------------
// #7 ingest (and, on the same TUI, #10 memory and #9 typing at 100,000)

/// Typing costs on one TUI: ms of CPU per keystroke.
#[derive(Debug, Default)]
struct Typing {
    /// 10-char chunks: (utime+stime, schedstat) ms per keystroke, per rep.
    chunked: Vec<(f64, Option<f64>)>,
    /// One key per send-keys call.
    single: Vec<(f64, Option<f64>)>,
}

#[derive(Debug, Default)]
struct Ingest {
    rss_start: Vec<f64>,
    rss_after: Vec<f64>,
    typing: Typing,
}

fn ingest(reps: usize, tck: u64) -> Ingest {
    let n = pick(100_000, 10_000);
    let tmp = tempdir("ingest");
    let file = tmp.path().join("msgs.txt");
    std::fs::write(&file, numbered_lines(n, 64, "msg")).expect("write the messages file");
    let last = format!("msg {n:06} ");
    eprintln!(
        "#7 TUI ingest: {n} messages of 64 bytes into a TUI at {}x{}",
        SIZE.0, SIZE.1
    );

    let mut rates = Vec::new();
    let mut acked = Vec::new();
    let mut out = Ingest::default();
    for rep in 0..reps {
        let tui = Tui::start(None);
        let rss0 = rss_bytes(tui.pid) as f64;
        let (shown, exited) = tui.fill(
            &tmp.path().join(format!("send{rep}")),
            &file,
            &last,
            Duration::from_secs(600),
        );
        let rss1 = rss_bytes(tui.pid) as f64;
        let rate = n as f64 / secs(shown);
        eprintln!(
            "  rep {rep}: last message on screen after {shown:.3?} ({} texts/s); send exited after {exited:.3?}; RSS {} → {} MB",
            num(rate),
            num(rss0 / 1e6),
            num(rss1 / 1e6)
        );
        rates.push(rate);
        acked.push(secs(exited));
        out.rss_start.push(rss0);
        out.rss_after.push(rss1);

        thread::sleep(Duration::from_millis(300));
        let (chunked, single) = typing(&tui, tck);
        out.typing.chunked.push(chunked);
        out.typing.single.push(single);
    }
    let rates = Stats::of(&rates);
    let acked = Stats::of(&acked);
    row(
        "7",
        &format!(
            "TUI ingest: {} texts from `send` until the last is on screen (tmux {}x{}, polled every 10 ms); `send` exited (all acked) after {}",
            num(n as f64),
            SIZE.0,
            SIZE.1,
            acked.show("s")
        ),
        &rates.show("texts/s"),
        "termchat ≈ 1,000 texts/s",
        &format!("{}×", num(rates.median / 1000.0)),
        "≥ 50,000 texts/s",
        Some(rates.median >= 50_000.0),
    );
    out
}

/// Types into the TUI's (empty) input: K keys in 10-char chunks, then 100
/// keys one per send-keys call. Returns ms of CPU per keystroke for each as
/// (utime+stime, schedstat).
fn typing(tui: &Tui, tck: u64) -> ((f64, Option<f64>), (f64, Option<f64>)) {
    let k = pick(500, 100);
    let chunked = type_keys(tui, tck, k, 10, Duration::from_millis(5));
    let single = type_keys(tui, tck, 100, 1, Duration::from_millis(5));
    eprintln!(
        "  typing: {k} keys in 10-char chunks: {} ms/key (schedstat {}); 100 single keys: {} ms/key (schedstat {})",
        num(chunked.0),
        chunked.1.map_or("n/a".into(), num),
        num(single.0),
        single.1.map_or("n/a".into(), num)
    );
    (chunked, single)
}

/// Types `k` keys, `chunk` per `send-keys -l` call with `pause` between
/// calls, waits until the input shows the end, and returns the TUI's CPU
/// time per key in ms: (utime+stime, schedstat). Clears the input after.
fn type_keys(tui: &Tui, tck: u64, k: usize, chunk: usize, pause: Duration) -> (f64, Option<f64>) {
    tui.wait("an empty input", Duration::from_secs(10), |s| {
        s.contains(EMPTY_INPUT)
    });
    // Ten-char pieces: `q00042xxx ` (nothing that opens the help, `?`).
    let text: String = (0..k.div_ceil(10))
        .map(|i| format!("q{i:05}xxx "))
        .collect();
    let text = &text[..k];
    let marker = text
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("a piece")
        .to_owned();
    let before = sample(tui.pid);
    let mut at = 0;
    while at < k {
        let end = (at + chunk).min(k);
        tui.tmux.type_text(tui.name, &text[at..end]);
        at = end;
        thread::sleep(pause);
    }
    tui.wait(
        &format!("the typed text ending {marker:?}"),
        Duration::from_secs(30),
        |s| input_text(s).contains(&marker),
    );
    // The draw that showed it is done; let the loop go back to sleep.
    thread::sleep(Duration::from_millis(30));
    let after = sample(tui.pid);
    let d = Delta::between(&before, &after);
    tui.tmux.keys(tui.name, &["C-u"]);
    tui.wait("the input cleared", Duration::from_secs(10), |s| {
        s.contains(EMPTY_INPUT)
    });
    let per_key_ticks = d.ticks as f64 * 1000.0 / tck as f64 / k as f64;
    let per_key_ns = d.run_ns.map(|ns| ns as f64 / 1e6 / k as f64);
    (per_key_ticks, per_key_ns)
}

/// The input box's rows joined (it wraps anywhere, even inside a word).
fn input_text(screen: &str) -> String {
    // Right of the peers pane (26 columns at 120) and the input's left border.
    let inner = usize::from(SIZE.0) - PEERS_WIDTH - 2;
    screen
        .lines()
        .skip_while(|l| !l.contains("Message to "))
        .skip(1)
        .take_while(|l| !l.contains('┗') && !l.contains('└'))
        .map(|l| {
            l.chars()
                .skip(PEERS_WIDTH + 1)
                .take(inner)
                .collect::<String>()
        })
        .collect()
}

fn typing_rows(reps: usize, tck: u64, at_100k: &Typing) {
    let n = 100;
    let tmp = tempdir("typing");
    let file = tmp.path().join("msgs.txt");
    std::fs::write(&file, numbered_lines(n, 64, "msg")).expect("write the messages file");
    eprintln!("#9 TUI typing with {n} messages open");
    let mut at_100 = Typing::default();
    for rep in 0..reps {
        let tui = Tui::start(None);
        tui.fill(
            &tmp.path().join(format!("send{rep}")),
            &file,
            &format!("msg {n:06} "),
            Duration::from_secs(60),
        );
        thread::sleep(Duration::from_millis(300));
        let (chunked, single) = typing(&tui, tck);
        at_100.chunked.push(chunked);
        at_100.single.push(single);
    }
    let k = pick(500, 100);
    let big = pick(100_000, 10_000);
    // The precise figure (schedstat, ns) when the kernel has it, else ticks.
    let best = |v: &[(f64, Option<f64>)]| -> Stats {
        let vals: Vec<f64> = v.iter().map(|(t, ns)| ns.unwrap_or(*t)).collect();
        Stats::of(&vals)
    };
    let ticks = |v: &[(f64, Option<f64>)]| -> Stats {
        Stats::of(&v.iter().map(|(t, _)| *t).collect::<Vec<_>>())
    };
    let small = best(&at_100.chunked);
    for (label, t) in [(num(n as f64), &at_100), (num(big as f64), at_100k)] {
        let chunked = best(&t.chunked);
        let single = best(&t.single);
        let flat = chunked.median / small.median;
        let met = chunked.median <= 0.3 && (std::ptr::eq(t, &at_100) || flat <= 1.5);
        row(
            "9",
            &format!(
                "TUI typing, {label} messages open: CPU per keystroke, {k} keys as 10-char `send-keys -l` chunks 5 ms apart (one redraw per chunk); on-CPU time from schedstat, utime+stime (10 ms ticks) in brackets"
            ),
            &format!(
                "{} [{}]",
                chunked.show("ms/key"),
                ticks(&t.chunked).show("ms")
            ),
            &format!(
                "worst case, 1 key per call (redraw per key), 100 keys: {} [{}]",
                single.show("ms/key"),
                ticks(&t.single).show("ms")
            ),
            &format!("{flat:.2} (vs 100 messages)"),
            "≤ 0.3 ms/key, flat",
            Some(met),
        );
    }
}

// ---------------------------------------------------------------------------
// #8 idle

fn idle_rows(reps: usize, tck: u64) {
    let window = Duration::from_secs(pick(10, 3));
    eprintln!("#8 TUI idle, {window:?} windows");
    let root = idle_reps(reps, tck, window, false, Duration::from_secs(2));
    idle_row("TUI idle, this namespace, --no-mdns", &root, tck, window);
    // The namespace row needs root. Benchmarks never fail on a timing, and
    // this one is not a test: without root it is left out, with a note.
    if let Some(why) = lan::unavailable() {
        eprintln!("#8 TUI idle in its own network namespace: skipped, {why}");
    } else {
        // mDNS announces, probes and queries with back-off for the first
        // tens of seconds (RFC 6762); "idle" starts once that is over.
        let settle = Duration::from_secs(pick(40, 3));
        let ns = idle_reps(pick(2, 1), tck, window, true, settle);
        idle_row(
            &format!(
                "TUI idle, own network namespace (one host on a bridge, 10.77.0.1/24), mDNS on, window starting {} s after start",
                settle.as_secs()
            ),
            &ns,
            tck,
            window,
        );
    }
}

/// Per rep: (CPU % from ticks, CPU % from schedstat, wake-ups/s).
fn idle_reps(
    reps: usize,
    tck: u64,
    window: Duration,
    in_netns: bool,
    settle: Duration,
) -> Vec<(f64, Option<f64>, f64)> {
    let mut out = Vec::new();
    for rep in 0..reps {
        // Declared first, dropped last: the TUI (tmux) goes before its namespace.
        let ns = in_netns.then(|| Lan::new(&format!("bench_idle_{rep}"), 1));
        let tui = Tui::start(ns.as_ref());
        let up = tui.started.elapsed();
        if up < settle {
            thread::sleep(settle - up);
        }
        let before = sample(tui.pid);
        thread::sleep(window);
        let after = sample(tui.pid);
        let d = Delta::between(&before, &after);
        let cpu = d.ticks as f64 / tck as f64 / d.secs * 100.0;
        let cpu_ns = d.run_ns.map(|ns| ns as f64 / 1e9 / d.secs * 100.0);
        let wakeups = d.switches as f64 / d.secs;
        eprintln!(
            "  rep {rep}{}: {} ticks ({} summed over threads) in {:.2} s = {} % CPU; schedstat {} %; {} context switches = {} /s; threads {} (+{} −{})",
            if ns.is_some() {
                " (netns, mDNS on)"
            } else {
                ""
            },
            d.ticks,
            d.task_ticks,
            d.secs,
            num(cpu),
            cpu_ns.map_or("n/a".into(), |c| format!("{c:.4}")),
            d.switches,
            num(wakeups),
            after.tasks.len(),
            d.new,
            d.gone
        );
        let threads: Vec<String> = per_thread(&before, &after)
            .into_iter()
            .map(|(name, switches, ms)| format!("{name}: {switches} switches, {ms:.2} ms"))
            .collect();
        eprintln!("    by thread: {}", threads.join("; "));
        if ns.is_some() {
            let screen = tui.capture();
            assert!(
                status_bar(&screen).contains("mDNS on"),
                "mDNS no longer on:\n{}",
                framed(&screen)
            );
        }
        out.push((cpu, cpu_ns, wakeups));
        drop(tui);
        drop(ns);
    }
    out
}

fn idle_row(name: &str, v: &[(f64, Option<f64>, f64)], tck: u64, window: Duration) {
    let ticks = Stats::of(&v.iter().map(|x| x.0).collect::<Vec<_>>());
    let wake = Stats::of(&v.iter().map(|x| x.2).collect::<Vec<_>>());
    let precise: Option<Vec<f64>> = v.iter().map(|x| x.1).collect();
    let resolution = 100.0 / tck as f64 / secs(window);
    let (cpu_text, cpu) = match precise {
        Some(p) => {
            let s = Stats::of(&p);
            (
                format!(
                    "{} % CPU (schedstat) [utime+stime: {} %, resolution {resolution:.3} %]",
                    pct(&s),
                    pct(&ticks)
                ),
                s.median,
            )
        }
        None => (
            format!(
                "{} % CPU [utime+stime, resolution {resolution:.3} %]",
                pct(&ticks)
            ),
            ticks.median,
        ),
    };
    row(
        "8",
        &format!(
            "{name}: CPU of one core and wake-ups (context switches, all threads) over {} s",
            window.as_secs()
        ),
        &format!("{cpu_text}; {}", wake.show("wake-ups/s")),
        "—",
        "—",
        "≤ 0.05 % CPU, ≤ 1 wake-up/s",
        Some(cpu <= 0.05 && wake.median <= 1.0),
    );
}

/// Percentages with four decimals (they are tiny).
fn pct(s: &Stats) -> String {
    format!("{:.4} ({:.4}–{:.4})", s.median, s.min, s.max)
}

// ---------------------------------------------------------------------------
// #10 memory

fn memory_rows(ingest: &Ingest) {
    let n = pick(100_000, 10_000);
    let start = Stats::of(&ingest.rss_start.iter().map(|b| b / 1e6).collect::<Vec<_>>());
    let after = Stats::of(&ingest.rss_after.iter().map(|b| b / 1e6).collect::<Vec<_>>());
    row(
        "10",
        "TUI memory at start (VmRSS after the first draw)",
        &start.show("MB"),
        "—",
        "—",
        "≤ 12 MB",
        Some(start.median <= 12.0),
    );
    row(
        "10",
        &format!(
            "TUI memory after {} messages of 64 B (VmRSS)",
            num(n as f64)
        ),
        &after.show("MB"),
        "—",
        "—",
        "≤ 80 MB",
        Some(after.median <= 80.0),
    );
}
