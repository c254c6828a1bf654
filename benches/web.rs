//! Benchmarks #13a–#13c: the web client (issue #18), against the release
//! `lantalk` binary.
//!
//! * #13a round trip over the browser protocol: one text over the WebSocket
//!   at `/ws` (joined with the token), wait for its `ack`, the next; next to
//!   the same over a native framed session in clear (`hello`, then `text`,
//!   wait for the `ack` frame) to the same `listen` process, in alternating
//!   blocks, as #3 does.
//! * #13b 100 WebSocket clients × 100 texts (pipelined) into one
//!   `listen --json`: every text acked once per client and printed exactly
//!   once, the throughput from "go" to the last ack, and the resident memory
//!   of `listen` per joined, idle client.
//! * #13c the page `/` loaded by headless Chromium, from the Navigation
//!   Timing API, and its size.
//!
//! #13a and #13b run `listen --no-mdns` in this machine's own network
//! namespace and talk to 127.0.0.1 only. `listen` takes at most 32
//! connections from one source address (`MAX_PER_SOURCE` in
//! src/net/listener.rs), so each client of #13b binds an address of its own
//! in 127.0.1.0/24 (all of 127.0.0.0/8 is loopback on Linux), as 100 phones
//! on a LAN would each have their own. #13c runs lantalk (`--no-mdns`) on
//! host 0 and Chromium on host 1 of a two-host LAN of network namespaces
//! (tests/common/lan.rs, tests/common/browser.rs): Chromium never runs in
//! this machine's namespace. It needs root and Debian's `chromium` and
//! `chromium-driver`; without them its row says it was skipped and why.
//!
//! Every wait has a deadline; a failure panics with what was seen, and the
//! guards (processes, namespaces, browsers, temporary directories) clean up.
//! `LANTALK_BENCH_QUICK=1`: small counts. Without `--bench` (as in
//! `cargo test --benches`) it is a smoke test: tiny counts, no table rows,
//! no browser. `cargo bench --bench web -- page` (or `rtt`, or `clients`)
//! runs some of them.

mod support;

// The tests' helpers: the namespace LAN and the browser.
#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/procs.rs"]
mod procs;

use std::collections::HashSet;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use common::browser::{Browser, CHROMEDRIVER, CHROMIUM};
use common::lan::{self, Lan};
use futures_util::{SinkExt, StreamExt};
use procs::{BIN, Running, rss_bytes};
use serde_json::{Value, json};
use support::{Stats, num, pick, row};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// No single step may take longer than this without progress.
const STEP: Duration = Duration::from_secs(60);

/// How long `listen` gets to say it listens.
const START_WAIT: Duration = Duration::from_secs(15);

/// Body length of every text.
const BODY_LEN: usize = 100;

/// Unrecorded round trips on each connection before #13a measures.
const WARMUP: usize = 200;

/// How long the clients of #13b stay idle, all joined, before the RSS is read.
const IDLE: Duration = Duration::from_millis(500);

/// The port lantalk serves the page on in #13c (its own namespace: free).
const PAGE_PORT: u16 = 7342;

/// Read buffer of both clients of #13a (and of those of #13b).
const CLIENT_READ_BUFFER: usize = 8 * 1024;

type Ws = WebSocketStream<TcpStream>;

/// How much to measure.
struct Plan {
    /// Whether to write table rows (not in the smoke test).
    rows: bool,
    /// Repetitions of #13a, each with a `listen` of its own.
    rtt_reps: usize,
    /// Round trips per side and repetition in #13a.
    round_trips: usize,
    /// Repetitions of #13b, each with a `listen` of its own.
    fan_reps: usize,
    /// WebSocket clients in #13b.
    clients: usize,
    /// Texts per client in #13b.
    texts: usize,
    /// Page loads measured in #13c (after one unrecorded load); 0: none.
    loads: usize,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let plan = if smoke {
        Plan {
            rows: false,
            rtt_reps: 1,
            round_trips: 20,
            fan_reps: 1,
            clients: 3,
            texts: 3,
            loads: 0,
        }
    } else {
        Plan {
            rows: true,
            rtt_reps: pick(5, 2),
            round_trips: pick(2000, 200),
            fan_reps: pick(5, 2),
            clients: pick(100, 10),
            texts: pick(100, 10),
            loads: pick(10, 2),
        }
    };
    eprintln!(
        "web bench: {}, binary {BIN}",
        if smoke {
            "smoke test (no --bench): no table rows"
        } else if support::quick() {
            "quick mode"
        } else {
            "full run"
        }
    );
    // The clients on one thread, as the `lantalk` binary runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    load("start");
    if wanted("rtt") {
        round_trips(&rt, &plan)?;
        load("after #13a");
    }
    if wanted("clients") {
        many_clients(&rt, &plan)?;
        load("after #13b");
    }
    if wanted("page") && plan.loads > 0 {
        page_load(&plan);
        load("after #13c");
    }
    Ok(())
}

/// Prints the load average: other work on the machine skews these numbers.
fn load(when: &str) {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("load average {when}: {} ({cores} cores)", avg.trim());
}

/// Fails with a message naming `what` if `fut` takes longer than [`STEP`].
async fn within<F: Future>(what: &str, fut: F) -> Result<F::Output> {
    tokio::time::timeout(STEP, fut)
        .await
        .map_err(|_| anyhow!("{what}: no progress in {} s", STEP.as_secs()))
}

fn tempdir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("lantalk-bench-{what}"))
        .tempdir()
        .expect("temporary directory")
}

/// 100 bytes of plain ASCII text.
fn body() -> String {
    let body: String = "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(BODY_LEN)
        .collect();
    assert_eq!(body.len(), BODY_LEN);
    body
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The join token of the data directory `dir` (made now, as lantalk would).
fn join_token(dir: &Path) -> String {
    std::fs::create_dir_all(dir).expect("the data directory");
    lantalk::web::token::load_or_create(dir).expect("a join token")
}

// ---------------------------------------------------------------------------
// `listen` in this namespace

/// `lantalk --no-mdns --data-dir D --port 0 --name laptop listen [--json]`
/// in a fresh data directory, history on; stdout to a file with `--json`,
/// else to /dev/null.
struct Listen {
    run: Running,
    port: u16,
    token: String,
    /// Where `--json` prints.
    out: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

impl Listen {
    fn start(what: &str, json: bool) -> Listen {
        let tmp = tempdir(what);
        let dir = tmp.path().join("data");
        let token = join_token(&dir);
        let mut cmd = Command::new(BIN);
        cmd.arg("--no-mdns")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--port", "0", "--name", "laptop", "listen"])
            .env_remove("LANTALK_LOG")
            .env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1);
        let (stdout, out) = if json {
            cmd.arg("--json");
            let path = tmp.path().join("listen.jsonl");
            let file = std::fs::File::create(&path).expect("the output file");
            (Stdio::from(file), Some(path))
        } else {
            (Stdio::null(), None)
        };
        let mut run = Running::spawn(cmd, Stdio::null(), stdout);
        let line = run.wait_err(START_WAIT, |l| l.contains("listening on port "));
        let port = line
            .split("listening on port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Listen {
            run,
            port,
            token,
            out,
            _tmp: tmp,
        }
    }

    fn pid(&self) -> u32 {
        self.run.pid()
    }

    /// Panics (with its stderr) if `listen` is no longer running.
    fn check_alive(&mut self) {
        if let Some(status) = self.run.try_wait() {
            panic!(
                "listen exited ({status}); stderr: {:?}",
                self.run.drain_err()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The two clients: the page's WebSocket protocol and the native framed one

/// A WebSocket to `/ws` from `source` (a loopback address), no `Origin`
/// (not a browser, so not another site's page), TCP_NODELAY as browsers set
/// it. Its read buffer is 8 KiB, as the native client's: with tungstenite's
/// default (128 KiB, zeroed before every read) the client alone would add
/// microseconds to each round trip that a browser does not.
async fn ws_connect(port: u16, source: Ipv4Addr) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::from((source, 0)))
        .with_context(|| format!("bind {source}"))?;
    let stream = within(
        "connect",
        socket.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
    )
    .await?
    .context("connect")?;
    stream.set_nodelay(true)?;
    let request = format!("ws://127.0.0.1:{port}/ws").into_client_request()?;
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (ws, _) = within(
        "WebSocket handshake",
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await?
    .context("WebSocket handshake")?;
    Ok(ws)
}

async fn ws_put(ws: &mut Ws, value: &Value) -> Result<()> {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .context("WebSocket send")
}

/// The next JSON frame from lantalk (pings are answered by tungstenite).
async fn ws_next(ws: &mut Ws) -> Result<Value> {
    loop {
        match within("a WebSocket frame", ws.next()).await? {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .with_context(|| format!("not JSON: {}", t.as_str()));
            }
            Some(Ok(Message::Close(frame))) => bail!("closed by lantalk: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("WebSocket: {e}"),
            None => bail!("the WebSocket ended"),
        }
    }
}

/// `join` with the token; expects `welcome`, then `history`.
async fn ws_join(ws: &mut Ws, id: &str, name: &str, token: &str) -> Result<()> {
    ws_put(
        ws,
        &json!({"type": "join", "id": id, "name": name, "token": token}),
    )
    .await?;
    let welcome = ws_next(ws).await?;
    if welcome["type"] != "welcome" {
        bail!("expected welcome, got {welcome}");
    }
    let history = ws_next(ws).await?;
    if history["type"] != "history" {
        bail!("expected history, got {history}");
    }
    Ok(())
}

/// A text as the page sends it.
fn ws_text(id: &str, body: &str) -> Value {
    json!({"type": "text", "id": id, "body": body, "ts": now_ms()})
}

/// #13a over the WebSocket: one text, wait for its ack, the next.
struct WsPinger {
    ws: Ws,
    body: String,
    seq: usize,
}

impl WsPinger {
    async fn open(port: u16, token: &str) -> Result<Self> {
        let mut ws = ws_connect(port, Ipv4Addr::LOCALHOST).await?;
        ws_join(&mut ws, &"ab".repeat(16), "phone", token).await?;
        Ok(WsPinger {
            ws,
            body: body(),
            seq: 0,
        })
    }

    /// One text and its ack; the round trip in µs.
    async fn round_trip(&mut self) -> Result<f64> {
        let id = format!("w-{}", self.seq);
        let frame = ws_text(&id, &self.body);
        let t0 = Instant::now();
        ws_put(&mut self.ws, &frame).await?;
        loop {
            let got = ws_next(&mut self.ws).await?;
            match got["type"].as_str() {
                Some("ack")
                    if got["ids"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!(id))) =>
                {
                    break;
                }
                Some("error") => bail!("WebSocket: {got}"),
                _ => {}
            }
        }
        let rtt = t0.elapsed().as_secs_f64() * 1e6;
        self.seq += 1;
        Ok(rtt)
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.ws.close(None)).await;
    }
}

/// #13a over a native framed session in clear: `hello`, then one `text`,
/// wait for its `ack` frame, the next. Buffered reads, as tungstenite's.
struct NativePinger {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    body: String,
    seq: usize,
}

impl NativePinger {
    async fn open(port: u16) -> Result<Self> {
        let stream = within(
            "connect",
            TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        )
        .await?
        .context("connect")?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let mut pinger = NativePinger {
            reader: BufReader::with_capacity(CLIENT_READ_BUFFER, reader),
            writer,
            body: body(),
            seq: 0,
        };
        // A framed client speaks first (PROTOCOL.md, section 4.2).
        let hello = json!({
            "type": "hello", "proto": 1, "id": "cd".repeat(16),
            "name": "native", "app": "lantalk-bench/0",
        });
        pinger.put(&hello).await?;
        let theirs = pinger.next().await?;
        if theirs["type"] != "hello" {
            bail!("expected lantalk's hello, got {theirs}");
        }
        Ok(pinger)
    }

    async fn put(&mut self, value: &Value) -> Result<()> {
        let payload = value.to_string();
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload.as_bytes());
        within("write a frame", self.writer.write_all(&frame))
            .await?
            .context("write a frame")
    }

    /// The next frame (a `ping` is answered and skipped).
    async fn next(&mut self) -> Result<Value> {
        loop {
            let mut head = [0u8; 4];
            within("a frame", self.reader.read_exact(&mut head))
                .await?
                .context("read a frame")?;
            let len = u32::from_be_bytes(head) as usize;
            if len == 0 || len > 1 << 20 {
                bail!("bad frame length {len}");
            }
            let mut payload = vec![0u8; len];
            within("a frame", self.reader.read_exact(&mut payload))
                .await?
                .context("read a frame")?;
            let value: Value = serde_json::from_slice(&payload)
                .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&payload)))?;
            if value["type"] == "ping" {
                self.put(&json!({"type": "pong", "nonce": value["nonce"]}))
                    .await?;
                continue;
            }
            return Ok(value);
        }
    }

    /// One text and its ack; the round trip in µs.
    async fn round_trip(&mut self) -> Result<f64> {
        let id = format!("n-{}", self.seq);
        let frame = json!({"type": "text", "id": id, "ts": now_ms(), "body": self.body});
        let t0 = Instant::now();
        self.put(&frame).await?;
        loop {
            let got = self.next().await?;
            match got["type"].as_str() {
                Some("ack") if got["id"] == id.as_str() => break,
                Some("error") => bail!("native session: {got}"),
                _ => {}
            }
        }
        let rtt = t0.elapsed().as_secs_f64() * 1e6;
        self.seq += 1;
        Ok(rtt)
    }

    async fn close(mut self) {
        let _ = self.put(&json!({"type": "bye"})).await;
        let _ = self.writer.shutdown().await;
    }
}

// ---------------------------------------------------------------------------
// #13a round trips

/// A round trip longer than this (µs) waited for something else: on this
/// machine, a WAL checkpoint of the history (an fsync, 5–20 ms).
const STALL_US: f64 = 5000.0;

/// Round trips of one side in one repetition.
#[derive(Debug, Clone, Copy)]
struct Rtts {
    /// Median, µs.
    median: f64,
    /// 99th percentile, µs.
    p99: f64,
    /// How many took longer than [`STALL_US`].
    stalls: usize,
}

impl Rtts {
    fn of(rtts: &mut [f64]) -> Rtts {
        rtts.sort_by(|a, b| a.total_cmp(b));
        let n = rtts.len();
        Rtts {
            median: Stats::of(rtts).median,
            p99: rtts[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1],
            stalls: rtts.iter().filter(|r| **r > STALL_US).count(),
        }
    }
}

/// One repetition: both connections to the same `listen`, a warm-up, then
/// `count` round trips on each in alternating blocks of `count / 10`.
/// Returns (WebSocket, native).
async fn rtt_rep(port: u16, token: &str, count: usize, warmup: usize) -> Result<(Rtts, Rtts)> {
    let mut ws = WsPinger::open(port, token).await?;
    let mut native = NativePinger::open(port).await?;
    for _ in 0..warmup {
        ws.round_trip().await?;
        native.round_trip().await?;
    }
    let block = (count / 10).max(1);
    let (mut ws_rtts, mut native_rtts) = (Vec::with_capacity(count), Vec::with_capacity(count));
    while ws_rtts.len() < count {
        let k = block.min(count - ws_rtts.len());
        for _ in 0..k {
            ws_rtts.push(ws.round_trip().await?);
        }
        for _ in 0..k {
            native_rtts.push(native.round_trip().await?);
        }
    }
    ws.close().await;
    native.close().await;
    Ok((Rtts::of(&mut ws_rtts), Rtts::of(&mut native_rtts)))
}

fn round_trips(rt: &tokio::runtime::Runtime, plan: &Plan) -> Result<()> {
    let (count, reps) = (plan.round_trips, plan.rtt_reps);
    let warmup = if plan.rows { WARMUP } else { 10 };
    eprintln!(
        "#13a round trips: {count} per side and repetition (after {warmup} unrecorded), {reps} repetitions, a fresh `listen` each"
    );
    let (mut ws, mut native, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        let mut listen = Listen::start("rtt", false);
        let (w, n) = rt.block_on(rtt_rep(listen.port, &listen.token, count, warmup))?;
        listen.check_alive();
        eprintln!(
            "  rep {rep}/{reps}: WebSocket median {:.1} µs p99 {:.1} µs, {} over {STALL_US} µs; native median {:.1} µs p99 {:.1} µs, {} over {STALL_US} µs; ratio {:.2}",
            w.median,
            w.p99,
            w.stalls,
            n.median,
            n.p99,
            n.stalls,
            w.median / n.median
        );
        ratios.push(w.median / n.median);
        ws.push(w);
        native.push(n);
    }
    if !plan.rows {
        return Ok(());
    }
    let ratio = Stats::of(&ratios);
    // "median (range) µs, p99 … µs, K (range) round trips over 5 ms".
    let side = |v: &[Rtts]| {
        let median = Stats::of(&v.iter().map(|r| r.median).collect::<Vec<_>>());
        let p99 = Stats::of(&v.iter().map(|r| r.p99).collect::<Vec<_>>());
        let stalls = Stats::of(&v.iter().map(|r| r.stalls as f64).collect::<Vec<_>>());
        format!(
            "median {}, p99 {}; {:.0} ({:.0}–{:.0}) round trips over {} ms",
            median.show("µs"),
            p99.show("µs"),
            stalls.median,
            stalls.min,
            stalls.max,
            STALL_US / 1000.0
        )
    };
    row(
        "13a",
        "web client round trip: one text of 100 B over the WebSocket (`/ws`, joined with the token), wait for its `ack`, next (sequential); `listen` (release, `--no-mdns`, 127.0.0.1, history on), both sides on one connection each to the same process, alternating blocks",
        &format!("{} (n = {count})", side(&ws)),
        &format!(
            "native framed session in clear (hello, text, wait for the ack frame): {}",
            side(&native)
        ),
        &format!("{:.2} ({:.2}–{:.2})", ratio.median, ratio.min, ratio.max),
        "≤ 1.5",
        Some(ratio.median <= 1.5),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// #13b many clients

/// Client `i`'s browser id: 32 hex digits.
fn browser_id(i: usize) -> String {
    format!("{:032x}", 0xb0b0_0000_u128 + i as u128)
}

/// Client `i`'s text `k`.
fn text_id(i: usize, k: usize) -> String {
    format!("c{i:03}-{k:03}")
}

/// (client, text) from a text id of ours.
fn parse_text_id(id: &str) -> Option<(usize, usize)> {
    let (i, k) = id.strip_prefix('c')?.split_once('-')?;
    Some((i.parse().ok()?, k.parse().ok()?))
}

/// What one client of #13b saw.
#[derive(Debug, Default)]
struct Report {
    /// Its texts acknowledged (distinct).
    acked: usize,
    /// Acks for a text already acknowledged.
    duplicate_acks: usize,
    /// Acks for a text it did not send.
    foreign_acks: usize,
    /// When its last ack came.
    last_ack: Option<Instant>,
    /// What went wrong after joining, if anything.
    problem: Option<String>,
}

/// One client: connects from 127.0.1.(i+1), joins, says so on `joined`,
/// waits for `go`, sends all its texts at once, reads acks until each is
/// acknowledged (or `ack_wait` passes).
async fn client(
    i: usize,
    port: u16,
    token: String,
    texts: usize,
    mut go: watch::Receiver<bool>,
    joined: mpsc::Sender<Result<(), String>>,
    ack_wait: Duration,
) -> Report {
    let source = Ipv4Addr::new(127, 0, 1, u8::try_from(i + 1).expect("at most 254 clients"));
    let joining = async {
        let mut ws = ws_connect(port, source).await?;
        ws_join(&mut ws, &browser_id(i), &format!("phone{i}"), &token).await?;
        Ok::<Ws, anyhow::Error>(ws)
    };
    let mut ws = match joining.await {
        Ok(ws) => {
            let _ = joined.send(Ok(())).await;
            ws
        }
        Err(e) => {
            let _ = joined.send(Err(format!("client {i}: {e:#}"))).await;
            return Report::default();
        }
    };
    drop(joined);
    let mut report = Report::default();
    if go.wait_for(|g| *g).await.is_err() {
        report.problem = Some("no go".into());
        return report;
    }
    let body = body();
    let sent = async {
        for k in 0..texts {
            let frame = ws_text(&text_id(i, k), &body);
            ws.feed(Message::Text(frame.to_string().into())).await?;
        }
        ws.flush().await
    };
    if let Err(e) = sent.await {
        report.problem = Some(format!("send: {e}"));
        return report;
    }
    let deadline = tokio::time::Instant::now() + ack_wait;
    let mut seen = HashSet::new();
    while seen.len() < texts {
        match tokio::time::timeout_at(deadline, ws_next(&mut ws)).await {
            Err(_) => {
                report.problem = Some(format!(
                    "{} of {texts} acked after {ack_wait:?}",
                    seen.len()
                ));
                break;
            }
            Ok(Err(e)) => {
                report.problem = Some(format!("{e:#}"));
                break;
            }
            Ok(Ok(v)) if v["type"] == "ack" => {
                for id in v["ids"].as_array().into_iter().flatten() {
                    let id = id.as_str().unwrap_or_default();
                    match parse_text_id(id) {
                        Some((c, k)) if c == i && k < texts => {
                            if !seen.insert(k) {
                                report.duplicate_acks += 1;
                            }
                        }
                        _ => report.foreign_acks += 1,
                    }
                }
                report.last_ack = Some(Instant::now());
            }
            Ok(Ok(v)) if v["type"] == "error" => {
                report.problem = Some(format!("{v}"));
                break;
            }
            Ok(Ok(_)) => {}
        }
    }
    report.acked = seen.len();
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    report
}

/// What `listen --json` printed: (lines, distinct (client, text) pairs of
/// ours from the right browser, duplicates, other lines).
fn printed(path: &Path, clients: usize, texts: usize) -> (usize, usize, usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut seen = HashSet::new();
    let (mut lines, mut dups, mut other) = (0, 0, 0);
    for line in text.lines() {
        lines += 1;
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            other += 1;
            continue;
        };
        let ours = v["id"].as_str().and_then(parse_text_id).filter(|&(i, k)| {
            i < clients
                && k < texts
                && v["from_id"] == browser_id(i).as_str()
                && v["web"] == true
                && v["body"].as_str().is_some_and(|b| b.len() == BODY_LEN)
        });
        match ours {
            Some(pair) => {
                if !seen.insert(pair) {
                    dups += 1;
                }
            }
            None => other += 1,
        }
    }
    (lines, seen.len(), dups, other)
}

/// One repetition of #13b.
struct FanIn {
    /// "Go" → last ack.
    elapsed: Duration,
    /// Every text acked once and printed once, nothing else.
    ok: bool,
    /// RSS of `listen`: before any client, with 1 joined, with all joined
    /// and idle, and after the texts.
    rss: [u64; 4],
}

fn fan_in_rep(rt: &tokio::runtime::Runtime, plan: &Plan, rep: usize) -> Result<FanIn> {
    let (clients, texts) = (plan.clients, plan.texts);
    let mut listen = Listen::start("clients", true);
    let (port, pid) = (listen.port, listen.pid());
    // Started; let it settle before the first reading.
    thread::sleep(Duration::from_millis(300));
    let rss0 = rss_bytes(pid);
    let ack_wait = STEP;
    let (elapsed, reports, rss1, rss_all) = rt.block_on(async {
        let (go_tx, go_rx) = watch::channel(false);
        let (joined_tx, mut joined_rx) = mpsc::channel(clients);
        let spawn = |i: usize| {
            tokio::spawn(client(
                i,
                port,
                listen.token.clone(),
                texts,
                go_rx.clone(),
                joined_tx.clone(),
                ack_wait,
            ))
        };
        let mut handles = vec![spawn(0)];
        let mut wait_joined = async |n: usize| -> Result<()> {
            for _ in 0..n {
                match within("a client joining", joined_rx.recv()).await? {
                    Some(Ok(())) => {}
                    Some(Err(why)) => bail!("{why}"),
                    None => bail!("the clients ended"),
                }
            }
            Ok(())
        };
        wait_joined(1).await?;
        let rss1 = rss_bytes(pid);
        handles.extend((1..clients).map(spawn));
        wait_joined(clients - 1).await?;
        tokio::time::sleep(IDLE).await;
        let rss_all = rss_bytes(pid);
        let start = Instant::now();
        go_tx.send(true).context("go")?;
        let mut reports = Vec::with_capacity(clients);
        for h in handles {
            reports.push(within("a client", h).await?.context("client task")?);
        }
        let end = reports
            .iter()
            .filter_map(|r| r.last_ack)
            .max()
            .unwrap_or(start);
        Ok::<_, anyhow::Error>((end.duration_since(start), reports, rss1, rss_all))
    })?;
    listen.check_alive();
    let rss_after = rss_bytes(pid);

    let expect = clients * texts;
    let acked: usize = reports.iter().map(|r| r.acked).sum();
    let dup_acks: usize = reports.iter().map(|r| r.duplicate_acks).sum();
    let foreign: usize = reports.iter().map(|r| r.foreign_acks).sum();
    let problems: Vec<String> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.problem.as_ref().map(|p| format!("client {i}: {p}")))
        .collect();
    // Acked means printed and flushed (PROTOCOL.md 3.3); read until all are
    // there, or a few seconds.
    let out = listen.out.clone().expect("--json output");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = printed(&out, clients, texts);
    while seen.1 < expect && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        seen = printed(&out, clients, texts);
    }
    let (lines, distinct, dups, other) = seen;
    let ok = acked == expect
        && dup_acks == 0
        && foreign == 0
        && problems.is_empty()
        && lines == expect
        && distinct == expect
        && dups == 0
        && other == 0;
    eprintln!(
        "  rep {rep}: {} texts/s ({elapsed:.3?}); acked {acked} of {expect} ({dup_acks} twice, {foreign} foreign); `listen --json` printed {lines} lines, {distinct} distinct of ours, {dups} duplicates, {other} other; RSS {} → {} (1 joined) → {} ({clients} joined, idle) → {} KiB (the texts acked, the clients gone)",
        num(expect as f64 / elapsed.as_secs_f64()),
        rss0 / 1024,
        rss1 / 1024,
        rss_all / 1024,
        rss_after / 1024,
    );
    if !problems.is_empty() {
        eprintln!(
            "  rep {rep}: {} clients failed: {}",
            problems.len(),
            problems.join("; ")
        );
    }
    Ok(FanIn {
        elapsed,
        ok,
        rss: [rss0, rss1, rss_all, rss_after],
    })
}

fn many_clients(rt: &tokio::runtime::Runtime, plan: &Plan) -> Result<()> {
    let (clients, texts, reps) = (plan.clients, plan.texts, plan.fan_reps);
    eprintln!(
        "#13b {clients} WebSocket clients × {texts} texts into one `listen --json`, {reps} repetitions, a fresh `listen` each"
    );
    let mut runs = Vec::new();
    for rep in 1..=reps {
        runs.push(fan_in_rep(rt, plan, rep)?);
    }
    if !plan.rows {
        return Ok(());
    }
    let expect = (clients * texts) as f64;
    let secs: Vec<f64> = runs.iter().map(|r| r.elapsed.as_secs_f64()).collect();
    let millis: Vec<f64> = secs.iter().map(|s| s * 1000.0).collect();
    let rates: Vec<f64> = secs.iter().map(|s| expect / s).collect();
    let kib = |a: u64, b: u64, n: usize| (a as f64 - b as f64) / 1024.0 / n as f64;
    let per_client: Vec<f64> = runs
        .iter()
        .map(|r| kib(r.rss[2], r.rss[0], clients))
        .collect();
    let first: Vec<f64> = runs.iter().map(|r| kib(r.rss[1], r.rss[0], 1)).collect();
    let marginal: Vec<f64> = runs
        .iter()
        .map(|r| kib(r.rss[2], r.rss[1], clients - 1))
        .collect();
    let base: Vec<f64> = runs.iter().map(|r| r.rss[0] as f64 / 1048576.0).collect();
    let all_ok = runs.iter().all(|r| r.ok);
    let what = format!(
        "1 `listen --json` (history on) ← {clients} WebSocket clients × {texts} texts of 100 B, each client from its own 127.0.1.x, all its texts at once"
    );
    row(
        "13b",
        &format!(
            "{what}: every text acked once per client and printed once by `listen` ({reps} runs)"
        ),
        if all_ok { "yes" } else { "no" },
        "—",
        "—",
        "every text acked, none lost",
        Some(all_ok),
    );
    row(
        "13b",
        &format!(
            "{what}: throughput, all start → all acked in {}",
            Stats::of(&millis).show("ms")
        ),
        &Stats::of(&rates).show("texts/s"),
        "—",
        "—",
        "—",
        None,
    );
    let per = Stats::of(&per_client);
    row(
        "13b",
        &format!(
            "{what}: RSS of `listen` per web client, (VmRSS with all {clients} joined and idle − before any) / {clients}"
        ),
        &per.show("KiB"),
        &format!(
            "before any client: {}; the first client alone: {}; each further one: {}",
            Stats::of(&base).show("MiB"),
            Stats::of(&first).show("KiB"),
            Stats::of(&marginal).show("KiB")
        ),
        "—",
        "≤ 64 KiB per client",
        Some(per.median <= 64.0),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// #13c page load in Chromium

/// The table row of #13c when it cannot run here.
fn page_skipped(why: &str) {
    eprintln!("#13c page load: skipped, {why}");
    row(
        "13c",
        "page load of `/` in headless Chromium (Navigation Timing)",
        &format!("skipped: {why}"),
        "—",
        "—",
        "—",
        None,
    );
}

/// The navigation entry of the page, once its `load` event has ended.
const NAVIGATION: &str = "const e = performance.getEntriesByType('navigation')[0]; \
     return e && e.loadEventEnd > 0 ? e.toJSON() : null";

fn page_load(plan: &Plan) {
    if let Some(why) = lan::unavailable() {
        page_skipped(&why);
        return;
    }
    let missing: Vec<&str> = [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, package)| *package)
        .collect();
    if !missing.is_empty() {
        page_skipped(&format!(
            "needs Debian's {} (scripts/test.sh installs it)",
            missing.join(" and ")
        ));
        return;
    }
    let loads = plan.loads;
    eprintln!("#13c page load: {loads} loads (after one unrecorded) of / in headless Chromium");
    // Dropped in reverse: the browser, lantalk, the directory, the LAN.
    let lan = Lan::new("bench_web_page", 2);
    let tmp = tempdir("page");
    let dir = tmp.path().join("laptop");
    join_token(&dir);
    let dir_arg = dir.to_str().expect("utf-8 temp path");
    let port = PAGE_PORT.to_string();
    let mut laptop = lan.spawn(
        0,
        "laptop",
        &[
            "--no-mdns",
            "--data-dir",
            dir_arg,
            "--port",
            &port,
            "--name",
            "laptop",
            "listen",
        ],
    );
    laptop.wait_err(START_WAIT, |l| l.contains("listening on port"));
    let browser = Browser::new("bench_web_page", &lan, 1);
    let url = format!("http://{}:{PAGE_PORT}/", lan.addr(0));

    let (mut body, mut first_byte, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes = (0u64, 0u64);
    for k in 0..=loads {
        // A new navigation every time (the page is `no-store`).
        browser.open("about:blank");
        browser.open(&url);
        let e = browser.wait_js(
            "the navigation entry with its load event",
            Duration::from_secs(20),
            NAVIGATION,
            vec![],
        );
        let f = |name: &str| {
            e[name]
                .as_f64()
                .unwrap_or_else(|| panic!("no {name} in the navigation entry {e}"))
        };
        assert_eq!(
            e["name"],
            url.as_str(),
            "navigation entry of another page: {e}"
        );
        if let Some(status) = e["responseStatus"].as_u64() {
            assert_eq!(status, 200, "the page: {e}");
        }
        let load_ms = f("loadEventEnd") - f("responseStart");
        let ttfb = f("responseStart") - f("requestStart");
        let whole = f("loadEventEnd") - f("startTime");
        // From the first byte: the last byte, the document parsed (its
        // inline script run), DOMContentLoaded handled, `load` started.
        eprintln!(
            "  load {k}{}: first byte → load end {load_ms:.2} ms (→ response end {:.2}, → DOM interactive {:.2}, → DOMContentLoaded end {:.2}, → load start {:.2}); request → first byte {ttfb:.2} ms; start → load end {whole:.2} ms; connect {:.2} ms; {} B body, {} B transferred",
            if k == 0 { " (unrecorded)" } else { "" },
            f("responseEnd") - f("responseStart"),
            f("domInteractive") - f("responseStart"),
            f("domContentLoadedEventEnd") - f("responseStart"),
            f("loadEventStart") - f("responseStart"),
            f("connectEnd") - f("connectStart"),
            f("decodedBodySize"),
            f("transferSize"),
        );
        if k > 0 {
            body.push(load_ms);
            first_byte.push(ttfb);
            total.push(whole);
        }
        sizes = (f("decodedBodySize") as u64, f("transferSize") as u64);
    }
    assert_eq!(
        sizes.0,
        lantalk::web::PAGE.len() as u64,
        "the page's size in the browser is not that of the embedded page"
    );
    drop(browser);
    drop(laptop);
    let ms = |v: &[f64]| {
        let s = Stats::of(v);
        format!("{:.2} ({:.2}–{:.2}) ms", s.median, s.min, s.max)
    };
    row(
        "13c",
        &format!(
            "page load of `/` in headless Chromium on the namespace LAN (browser on host 1, `listen` on host 0), Navigation Timing, {loads} loads: first byte → end of the `load` event (`loadEventEnd − responseStart`); page {} B ({} B with headers)",
            num(sizes.0 as f64),
            num(sizes.1 as f64)
        ),
        &ms(&body),
        &format!(
            "request → first byte (`responseStart − requestStart`): {}; navigation start → end of `load` (`loadEventEnd − startTime`): {}",
            ms(&first_byte),
            ms(&total)
        ),
        "—",
        "—",
        None,
    );
}
