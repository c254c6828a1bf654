//! Benchmarks #2 and #3: one real lantalk session over 127.0.0.1, in process,
//! against plain tokio TCP on the same loopback in the same run.
//!
//! - #2 throughput: N texts with 100-byte bodies, pipelined (a window of
//!   texts in flight), counted when acknowledged; baseline: N raw 104-byte
//!   frames (4-byte big-endian length + 100 bytes) written in large batches
//!   and parsed frame by frame by the reader.
//! - #3 latency: one text, wait for its ack, the next; baseline: a 32-byte
//!   ping-pong with TCP_NODELAY on both sides.
//! - #12 TLS: #2 and #3 on a session inside TLS 1.3, next to the same on a
//!   plaintext session, in the same run. Both sides hold their own key pair
//!   (`identity::Keys::generate`) and pin the other's key in a temporary
//!   directory, as `lantalk` does; the session is dialled with `net::dial`
//!   and `Reach::Tls` (or `Reach::Plain`) and accepted by `net::serve`.
//!
//! Both sides of the session are the crate's own code: `net::bind` +
//! `net::serve` receive, and a task acknowledges every text through the
//! session handle from `SessionEvent::Opened`, as a receiver does; the
//! sender dials with `net::dial` + `start`.
//! No discovery, no mDNS, no lantalk process.
//!
//! Everything runs on a single-threaded runtime, as in the `lantalk` binary:
//! the measuring code in `block_on`, the session tasks and the raw
//! baselines' peer tasks alongside it. Each comparison is repeated
//! 5 times (2 in quick mode); the ratio is the median of the per-repetition
//! ratios. #2 runs lantalk then the baseline, back to back, after trying
//! each window in `WINDOWS` once and keeping the fastest. #3 keeps both
//! connections open and alternates blocks of round trips, because the
//! wake-up latency of a VM's idle CPUs can change by 10× within seconds.
//!
//! `cargo bench --bench session`; `LANTALK_BENCH_QUICK=1` for a short run;
//! `cargo bench --bench session -- latency` (or `throughput`, or `tls`) for
//! some of them (a filter is matched against the names `throughput`,
//! `latency`, `tls-throughput` and `tls-latency`).
//! Progress goes to stderr, the table rows to stdout (and `$LANTALK_BENCH_OUT`).

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use lantalk::identity::Keys;
use lantalk::net::{self, Reach, SessionEvent, SessionHandle, SessionId, now_ms};
use lantalk::protocol::{Hello, Text};
use lantalk::trust::KnownPeers;
use support::{Stats, num, pick};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// No single step of a benchmark may take longer than this without progress.
const STEP: Duration = Duration::from_secs(60);

/// Body length of every text, and payload length of every raw frame.
const BODY_LEN: usize = 100;

/// Raw baseline frame: 4-byte big-endian length + the body.
const RAW_FRAME_LEN: usize = 4 + BODY_LEN;

/// The raw writer builds buffers of this many bytes of whole frames.
const RAW_WRITE_CHUNK: usize = 64 * 1024;

/// Ping-pong message size for the raw latency baseline.
const PING_LEN: usize = 32;

/// Capacity of the session event channels (what `lantalk listen`/`send` use).
const EVENTS_CAPACITY: usize = 1024;

/// Windows (texts in flight) tried for #2; the best is used for the measured runs.
const WINDOWS: [usize; 4] = [1024, 4096, 16_384, 65_536];

/// Unrecorded round trips before each latency measurement.
const LATENCY_WARMUP: usize = 200;

/// A raw loopback median round trip above this (µs) means the machine's
/// wake-up latency, not the code, is being measured.
const SLOW_RAW_RTT_US: f64 = 30.0;

/// A plaintext session's median round trip above this (µs): as
/// [`SLOW_RAW_RTT_US`], for #12.
const SLOW_SESSION_RTT_US: f64 = 40.0;

/// Id prefix of our texts, as `lantalk send` makes them (random hex + counter).
const ID_PREFIX: &str = "0123456789abcdef";

/// Fails with a message naming `what` if `fut` takes longer than [`STEP`].
async fn within<F: Future>(what: &str, fut: F) -> Result<F::Output> {
    tokio::time::timeout(STEP, fut)
        .await
        .map_err(|_| anyhow!("{what}: no progress in {} s", STEP.as_secs()))
}

fn hello(name: &str, id: String) -> Hello {
    Hello {
        proto: 1,
        id,
        name: name.to_owned(),
        app: "lantalk/bench".to_owned(),
    }
}

/// How a benchmark session is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Framed protocol in clear.
    Plain,
    /// The same inside TLS 1.3, both sides authenticated by their keys.
    Tls,
}

/// One end of a session: its `hello` and its policy.
struct Side {
    hello: Hello,
    policy: net::Policy,
}

/// Both ends of a session for each [`Wire`]: the dialler ("a") and the
/// listener ("b"). The TLS ends each have a key pair, made once per run,
/// and pin the other's key in their own temporary directory, which lives
/// as long as this.
struct Sides {
    plain: (Side, Side),
    tls: (Side, Side),
    _dirs: [tempfile::TempDir; 2],
}

impl Sides {
    fn new() -> Result<Self> {
        let plain = |name: &str, digit: char| Side {
            hello: hello(name, digit.to_string().repeat(32)),
            policy: net::Policy::plaintext(),
        };
        let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
        let tls = |name: &str, dir: &tempfile::TempDir| -> Result<Side> {
            let (keys, _pem) = Keys::generate()?;
            let tls = net::Tls::new(&keys)?;
            Ok(Side {
                // A TLS peer's id is derived from its certificate.
                hello: hello(name, keys.fingerprint.peer_id()),
                policy: net::Policy::new(tls, KnownPeers::new(dir.path()), false),
            })
        };
        Ok(Sides {
            plain: (plain("a", 'a'), plain("b", 'b')),
            tls: (tls("a", &dirs[0])?, tls("b", &dirs[1])?),
            _dirs: dirs,
        })
    }

    /// (dialler, listener) for `wire`.
    fn of(&self, wire: Wire) -> (&Side, &Side) {
        let (a, b) = match wire {
            Wire::Plain => &self.plain,
            Wire::Tls => &self.tls,
        };
        (a, b)
    }
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

/// The receiving side: acknowledges every text on every session at once,
/// through the handle that came with `Opened`.
async fn acknowledge_everything(mut events: mpsc::Receiver<SessionEvent>) {
    let mut sessions: HashMap<SessionId, SessionHandle> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            SessionEvent::Opened { sid, handle, .. } => {
                sessions.insert(sid, handle);
            }
            SessionEvent::Text { sid, text } => {
                if let Some(handle) = sessions.get(&sid) {
                    handle.ack(text.id);
                }
            }
            SessionEvent::Closed { sid, .. } => {
                sessions.remove(&sid);
            }
            SessionEvent::Acked { .. }
            | SessionEvent::Refused { .. }
            | SessionEvent::Renamed { .. }
            | SessionEvent::JoinRequest { .. } => {}
        }
    }
}

/// One open loopback session: our handle and events, and the receiving side's tasks.
struct Pair {
    handle: SessionHandle,
    events: mpsc::Receiver<SessionEvent>,
    server: JoinHandle<()>,
    receiver: JoinHandle<()>,
}

impl Pair {
    async fn open(sides: &Sides, wire: Wire) -> Result<Pair> {
        let (a, b) = sides.of(wire);
        let bound = net::bind(Some(0)).await.context("bind")?;
        let (server_tx, server_rx) = mpsc::channel(EVENTS_CAPACITY);
        let server = tokio::spawn(net::serve(
            bound.listener,
            b.hello.clone(),
            b.policy.clone(),
            server_tx,
            None,
        ));
        let receiver = tokio::spawn(acknowledge_everything(server_rx));
        let reach = match wire {
            Wire::Plain => Reach::Plain,
            Wire::Tls => Reach::Tls,
        };
        let session = within(
            "dial",
            net::dial(
                &[(Ipv4Addr::LOCALHOST, bound.port).into()],
                &a.hello,
                &a.policy,
                &net::Expect::default(),
                reach,
            ),
        )
        .await?
        .with_context(|| format!("dial ({wire:?})"))?;
        let want_encrypted = wire == Wire::Tls;
        if session.link.encrypted() != want_encrypted {
            bail!("{wire:?} session opened as {:?}", session.link);
        }
        let (events_tx, mut events) = mpsc::channel(EVENTS_CAPACITY);
        let handle = session.start(net::next_session_id(), events_tx);
        match within("opened", events.recv()).await? {
            Some(SessionEvent::Opened { .. }) => {}
            other => bail!("expected Opened, got {other:?}"),
        }
        Ok(Pair {
            handle,
            events,
            server,
            receiver,
        })
    }

    /// The next `Acked` id; an error if the session ends first.
    async fn next_ack(&mut self) -> Result<String> {
        loop {
            match within("ack", self.events.recv()).await? {
                Some(SessionEvent::Acked { id, .. }) => return Ok(id),
                Some(SessionEvent::Closed { reason, .. }) => bail!("session closed: {reason}"),
                None => bail!("session events ended"),
                Some(_) => {}
            }
        }
    }

    /// Says bye, waits (briefly) for the session to close, stops the receiving side.
    async fn close(mut self) {
        self.handle.bye();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(event) = self.events.recv().await {
                if matches!(event, SessionEvent::Closed { .. }) {
                    break;
                }
            }
        })
        .await;
        self.server.abort();
        self.receiver.abort();
    }
}

fn text(seq: usize, body: &str) -> Text {
    Text {
        id: format!("{ID_PREFIX}-{seq}"),
        ts: now_ms(),
        body: body.to_owned(),
    }
}

/// #2 (and #12), lantalk: time from the first send to the `n`th ack.
async fn lantalk_throughput(
    sides: &Sides,
    wire: Wire,
    n: usize,
    window: usize,
) -> Result<Duration> {
    let mut pair = Pair::open(sides, wire).await?;
    let body = body();
    let (mut sent, mut acked) = (0usize, 0usize);
    let mut last_id = String::new();
    let start = Instant::now();
    while acked < n {
        while sent < n && sent - acked < window {
            if !pair.handle.send_text(text(sent, &body)) {
                bail!("session ended after {sent} sends");
            }
            sent += 1;
        }
        last_id = pair.next_ack().await?;
        acked += 1;
        // Take every ack already delivered before topping the window up again.
        while acked < n {
            match pair.events.try_recv() {
                Ok(SessionEvent::Acked { id, .. }) => {
                    last_id = id;
                    acked += 1;
                }
                Ok(SessionEvent::Closed { reason, .. }) => bail!("session closed: {reason}"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    let elapsed = start.elapsed();
    let want = format!("{ID_PREFIX}-{}", n - 1);
    if last_id != want {
        bail!("last ack was for {last_id:?}, expected {want:?}");
    }
    pair.close().await;
    Ok(elapsed)
}

/// #2, baseline: `n` raw 104-byte frames over plain tokio TCP; the writer
/// fills 64 KiB buffers with whole frames, the reader parses every length
/// prefix and counts frames. Time from the first write to the `n`th frame.
async fn raw_throughput(n: usize) -> Result<Duration> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let reader: JoinHandle<Result<Instant>> = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut buf = vec![0u8; 256 * 1024];
        let (mut have, mut frames) = (0usize, 0usize);
        loop {
            let got = stream.read(&mut buf[have..]).await?;
            if got == 0 {
                bail!("raw reader: EOF after {frames} of {n} frames");
            }
            have += got;
            let mut pos = 0;
            while have - pos >= 4 {
                let len = u32::from_be_bytes(buf[pos..pos + 4].try_into()?) as usize;
                if len != BODY_LEN {
                    bail!("raw reader: bad length {len}");
                }
                if have - pos < 4 + len {
                    break;
                }
                pos += 4 + len;
                frames += 1;
            }
            if frames == n {
                return Ok(Instant::now());
            }
            buf.copy_within(pos..have, 0);
            have -= pos;
        }
    });
    let mut stream = within("raw connect", TcpStream::connect(addr))
        .await?
        .context("raw connect")?;
    stream.set_nodelay(true)?;
    let mut frame = Vec::with_capacity(RAW_FRAME_LEN);
    frame.extend_from_slice(&(BODY_LEN as u32).to_be_bytes());
    frame.extend_from_slice(body().as_bytes());
    let per_chunk = RAW_WRITE_CHUNK / RAW_FRAME_LEN;
    let mut chunk = Vec::with_capacity(per_chunk * RAW_FRAME_LEN);
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(per_chunk);
        chunk.clear();
        for _ in 0..k {
            chunk.extend_from_slice(&frame);
        }
        within("raw write", stream.write_all(&chunk)).await??;
        left -= k;
    }
    let end = within("raw reader", reader).await???;
    Ok(end - start)
}

/// Median and 99th percentile of round-trip times in µs.
fn median_p99(rtts: &mut [f64]) -> (f64, f64) {
    rtts.sort_by(|a, b| a.total_cmp(b));
    let median = Stats::of(rtts).median;
    let p99 = rtts[((rtts.len() as f64 * 0.99).ceil() as usize).clamp(1, rtts.len()) - 1];
    (median, p99)
}

/// #3, lantalk: sequential texts on one session, each sent once the
/// previous one was acknowledged.
struct LantalkPinger {
    pair: Pair,
    body: String,
    seq: usize,
}

impl LantalkPinger {
    async fn open(sides: &Sides, wire: Wire) -> Result<Self> {
        Ok(LantalkPinger {
            pair: Pair::open(sides, wire).await?,
            body: body(),
            seq: 0,
        })
    }

    /// One text and its ack; the round trip in µs.
    async fn round_trip(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        if !self.pair.handle.send_text(text(self.seq, &self.body)) {
            bail!("session ended after {} texts", self.seq);
        }
        let id = self.pair.next_ack().await?;
        let rtt = t0.elapsed().as_secs_f64() * 1e6;
        debug_assert_eq!(id, format!("{ID_PREFIX}-{}", self.seq));
        self.seq += 1;
        Ok(rtt)
    }

    async fn close(self) {
        self.pair.close().await;
    }
}

/// #3, baseline: 32-byte ping-pong over plain tokio TCP with TCP_NODELAY on
/// both sides; the echo task reads exactly 32 bytes and writes them back.
struct RawPinger {
    stream: TcpStream,
    echo: JoinHandle<Result<()>>,
    ping: [u8; PING_LEN],
    seq: u64,
}

impl RawPinger {
    async fn open() -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let echo = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut buf = [0u8; PING_LEN];
            loop {
                match stream.read_exact(&mut buf).await {
                    Ok(_) => stream.write_all(&buf).await?,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        });
        let stream = within("raw connect", TcpStream::connect(addr))
            .await?
            .context("raw connect")?;
        stream.set_nodelay(true)?;
        Ok(RawPinger {
            stream,
            echo,
            ping: [0x5a; PING_LEN],
            seq: 0,
        })
    }

    /// One ping and its pong; the round trip in µs.
    async fn round_trip(&mut self) -> Result<f64> {
        self.ping[..8].copy_from_slice(&self.seq.to_be_bytes());
        let mut pong = [0u8; PING_LEN];
        let t0 = Instant::now();
        within("raw ping", self.stream.write_all(&self.ping)).await??;
        within("raw pong", self.stream.read_exact(&mut pong)).await??;
        let rtt = t0.elapsed().as_secs_f64() * 1e6;
        if pong != self.ping {
            bail!("raw pong differs from ping {}", self.seq);
        }
        self.seq += 1;
        Ok(rtt)
    }

    async fn close(self) -> Result<()> {
        drop(self.stream);
        within("raw echo end", self.echo).await???;
        Ok(())
    }
}

/// One repetition of #3: `count` round trips on each, after a warm-up,
/// alternating blocks of `count / 10` so that a change in the machine's
/// wake-up latency during the repetition hits both alike. Returns
/// ((median, p99) lantalk, (median, p99) raw) in µs.
async fn latency_rep(sides: &Sides, count: usize) -> Result<((f64, f64), (f64, f64))> {
    let mut ours = LantalkPinger::open(sides, Wire::Plain).await?;
    let mut raw = RawPinger::open().await?;
    for _ in 0..LATENCY_WARMUP {
        ours.round_trip().await?;
        raw.round_trip().await?;
    }
    let block = (count / 10).max(1);
    let (mut ours_rtts, mut raw_rtts) = (Vec::with_capacity(count), Vec::with_capacity(count));
    while ours_rtts.len() < count {
        let k = block.min(count - ours_rtts.len());
        for _ in 0..k {
            ours_rtts.push(ours.round_trip().await?);
        }
        for _ in 0..k {
            raw_rtts.push(raw.round_trip().await?);
        }
    }
    ours.close().await;
    raw.close().await?;
    Ok((median_p99(&mut ours_rtts), median_p99(&mut raw_rtts)))
}

/// How much to measure.
struct Plan {
    /// Repetitions of each comparison.
    reps: usize,
    /// N of #2.
    texts: usize,
    /// Windows tried for #2.
    windows: &'static [usize],
    /// Round trips of #3.
    round_trips: usize,
    /// Whether to emit the table rows.
    rows: bool,
}

/// The window (texts in flight) of `plan.windows` that gives `wire` the
/// highest throughput: one run with each, the fastest wins.
async fn best_window(sides: &Sides, wire: Wire, plan: &Plan) -> Result<usize> {
    let n = plan.texts;
    let mut best = (0usize, 0.0f64);
    for &window in plan.windows {
        let rate = n as f64
            / lantalk_throughput(sides, wire, n, window)
                .await?
                .as_secs_f64();
        eprintln!("  {wire:?} window {window:>6}: {} texts/s", num(rate));
        if rate > best.1 {
            best = (window, rate);
        }
    }
    eprintln!("  {wire:?} best window: {}", best.0);
    Ok(best.0)
}

async fn throughput(sides: &Sides, plan: &Plan) -> Result<()> {
    let (n, reps) = (plan.texts, plan.reps);
    eprintln!("#2 throughput: N = {n} texts of {BODY_LEN} B, {reps} repetitions");
    let window = best_window(sides, Wire::Plain, plan).await?;

    let (mut ours, mut raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        let lantalk = n as f64
            / lantalk_throughput(sides, Wire::Plain, n, window)
                .await?
                .as_secs_f64();
        let plain = n as f64 / raw_throughput(n).await?.as_secs_f64();
        eprintln!(
            "  rep {rep}/{reps}: lantalk {} texts/s, raw {} frames/s, ratio {:.3}",
            num(lantalk),
            num(plain),
            lantalk / plain
        );
        ours.push(lantalk);
        raw.push(plain);
        ratios.push(lantalk / plain);
    }
    if !plan.rows {
        return Ok(());
    }
    let (ours, raw, ratio) = (Stats::of(&ours), Stats::of(&raw), Stats::of(&ratios));
    let mb = |x: f64| x * BODY_LEN as f64 / 1e6;
    support::row(
        "2",
        "session throughput: N texts of 100 B, pipelined, counted when acked",
        &format!(
            "{} ({} MB/s of body; N = {n}, window {window})",
            ours.show("texts/s"),
            num(mb(ours.median))
        ),
        &format!("{} raw 104-byte frames", raw.show("frames/s")),
        &format!("{:.3} ({:.3}–{:.3})", ratio.median, ratio.min, ratio.max),
        "≥ 0.25",
        Some(ratio.median >= 0.25),
    );
    Ok(())
}

async fn latency(sides: &Sides, plan: &Plan) -> Result<()> {
    let (count, reps) = (plan.round_trips, plan.reps);
    eprintln!("#3 latency: {count} sequential round trips, {reps} repetitions");
    let (mut ours, mut ours_p99, mut raw, mut raw_p99, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        let ((median, p99), (raw_median, raw_p)) = latency_rep(sides, count).await?;
        eprintln!(
            "  rep {rep}/{reps}: lantalk median {median:.1} µs p99 {p99:.1} µs, raw median {raw_median:.1} µs p99 {raw_p:.1} µs, ratio {:.2}",
            median / raw_median
        );
        ours.push(median);
        ours_p99.push(p99);
        raw.push(raw_median);
        raw_p99.push(raw_p);
        ratios.push(median / raw_median);
    }
    if !plan.rows {
        return Ok(());
    }
    let (ours, ours_p99) = (Stats::of(&ours), Stats::of(&ours_p99));
    let (raw, raw_p99, ratio) = (Stats::of(&raw), Stats::of(&raw_p99), Stats::of(&ratios));
    // A loopback round trip of plain TCP takes a few µs; far above that, the
    // machine's thread wake-ups (e.g. halted vCPUs) dominate both sides.
    let slow = raw.median > SLOW_RAW_RTT_US;
    if slow {
        eprintln!(
            "  warning: raw round trip {} µs > {SLOW_RAW_RTT_US} µs: slow thread wake-ups on this machine dominate; the ratio says little",
            num(raw.median)
        );
    }
    support::row(
        "3",
        "latency: one text, wait for its ack, next (sequential)",
        &format!(
            "median {}, p99 {} (n = {count})",
            ours.show("µs"),
            ours_p99.show("µs")
        ),
        &format!(
            "median {}, p99 {} raw 32-byte ping-pong{}",
            raw.show("µs"),
            raw_p99.show("µs"),
            if slow {
                " (slow wake-ups on this machine: ratio not meaningful)"
            } else {
                ""
            }
        ),
        &format!("{:.2} ({:.2}–{:.2})", ratio.median, ratio.min, ratio.max),
        "≤ 1.3",
        Some(ratio.median <= 1.3),
    );
    Ok(())
}

/// One repetition of #12's latency: `count` round trips on a plaintext
/// session and on a TLS session, after a warm-up, alternating blocks of
/// `count / 10` as in [`latency_rep`]. Returns ((median, p99) TLS,
/// (median, p99) plaintext) in µs.
async fn tls_latency_rep(sides: &Sides, count: usize) -> Result<((f64, f64), (f64, f64))> {
    let mut tls = LantalkPinger::open(sides, Wire::Tls).await?;
    let mut plain = LantalkPinger::open(sides, Wire::Plain).await?;
    for _ in 0..LATENCY_WARMUP {
        tls.round_trip().await?;
        plain.round_trip().await?;
    }
    let block = (count / 10).max(1);
    let (mut tls_rtts, mut plain_rtts) = (Vec::with_capacity(count), Vec::with_capacity(count));
    while tls_rtts.len() < count {
        let k = block.min(count - tls_rtts.len());
        for _ in 0..k {
            plain_rtts.push(plain.round_trip().await?);
        }
        for _ in 0..k {
            tls_rtts.push(tls.round_trip().await?);
        }
    }
    tls.close().await;
    plain.close().await;
    Ok((median_p99(&mut tls_rtts), median_p99(&mut plain_rtts)))
}

/// #12, throughput: #2 on a TLS session next to a plaintext session, each
/// with its own best window, back to back in every repetition.
async fn tls_throughput(sides: &Sides, plan: &Plan) -> Result<()> {
    let (n, reps) = (plan.texts, plan.reps);
    eprintln!(
        "#12 TLS throughput: N = {n} texts of {BODY_LEN} B, TLS vs plaintext, {reps} repetitions"
    );
    let plain_window = best_window(sides, Wire::Plain, plan).await?;
    let tls_window = best_window(sides, Wire::Tls, plan).await?;
    let (mut tls, mut plain, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        let p = n as f64
            / lantalk_throughput(sides, Wire::Plain, n, plain_window)
                .await?
                .as_secs_f64();
        let t = n as f64
            / lantalk_throughput(sides, Wire::Tls, n, tls_window)
                .await?
                .as_secs_f64();
        eprintln!(
            "  rep {rep}/{reps}: TLS {} texts/s, plaintext {} texts/s, ratio {:.3}",
            num(t),
            num(p),
            t / p
        );
        tls.push(t);
        plain.push(p);
        ratios.push(t / p);
    }
    if !plan.rows {
        return Ok(());
    }
    let (tls, plain, ratio) = (Stats::of(&tls), Stats::of(&plain), Stats::of(&ratios));
    support::row(
        "12a",
        "TLS 1.3 session throughput: #2 inside TLS (both sides authenticated by their keys)",
        &format!("{} (N = {n}, window {tls_window})", tls.show("texts/s")),
        &format!(
            "same session in plaintext: {} (window {plain_window})",
            plain.show("texts/s")
        ),
        &format!("{:.2} ({:.2}–{:.2})", ratio.median, ratio.min, ratio.max),
        "≥ 0.5",
        Some(ratio.median >= 0.5),
    );
    Ok(())
}

/// #12, latency: #3 on a TLS session next to a plaintext session.
async fn tls_latency(sides: &Sides, plan: &Plan) -> Result<()> {
    let (count, reps) = (plan.round_trips, plan.reps);
    eprintln!(
        "#12 TLS latency: {count} sequential round trips, TLS vs plaintext, {reps} repetitions"
    );
    let (mut tls, mut tls_p99, mut plain, mut plain_p99, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        let ((median, p99), (plain_median, plain_p)) = tls_latency_rep(sides, count).await?;
        eprintln!(
            "  rep {rep}/{reps}: TLS median {median:.1} µs p99 {p99:.1} µs, plaintext median {plain_median:.1} µs p99 {plain_p:.1} µs, ratio {:.2}",
            median / plain_median
        );
        tls.push(median);
        tls_p99.push(p99);
        plain.push(plain_median);
        plain_p99.push(plain_p);
        ratios.push(median / plain_median);
    }
    if !plan.rows {
        return Ok(());
    }
    let (tls, tls_p99) = (Stats::of(&tls), Stats::of(&tls_p99));
    let (plain, plain_p99, ratio) = (Stats::of(&plain), Stats::of(&plain_p99), Stats::of(&ratios));
    let slow = plain.median > SLOW_SESSION_RTT_US;
    if slow {
        eprintln!(
            "  warning: plaintext session round trip {} µs > {SLOW_SESSION_RTT_US} µs: slow thread wake-ups on this machine dominate; the ratio says little",
            num(plain.median)
        );
    }
    support::row(
        "12b",
        "TLS 1.3 latency: #3 inside TLS (one text, wait for its ack, next)",
        &format!(
            "median {}, p99 {} (n = {count})",
            tls.show("µs"),
            tls_p99.show("µs")
        ),
        &format!(
            "same session in plaintext: median {}, p99 {}{}",
            plain.show("µs"),
            plain_p99.show("µs"),
            if slow {
                " (slow wake-ups on this machine: ratio not meaningful)"
            } else {
                ""
            }
        ),
        &format!("{:.2} ({:.2}–{:.2})", ratio.median, ratio.min, ratio.max),
        "≤ 1.2",
        Some(ratio.median <= 1.2),
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`,
    // `cargo test --all-targets`) this is a smoke test, as criterion does:
    // tiny counts, one repetition, no table rows.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    // `cargo bench --bench session -- latency` runs only #3 (any word that
    // is not an option filters by name: "throughput", "latency").
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let plan = if smoke {
        Plan {
            reps: 1,
            texts: 2_000,
            windows: &WINDOWS[1..2],
            round_trips: 100,
            rows: false,
        }
    } else {
        Plan {
            reps: pick(5, 2),
            texts: pick(1_000_000, 50_000),
            windows: &WINDOWS,
            round_trips: pick(10_000, 1_000),
            rows: true,
        }
    };
    // The same runtime as the `lantalk` binary: everything on one thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    eprintln!(
        "session bench: single-threaded runtime ({} cores), {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if smoke {
            "smoke test (no --bench): no table rows"
        } else if support::quick() {
            "quick mode"
        } else {
            "full run"
        }
    );
    let sides = Sides::new()?;
    runtime.block_on(async {
        if wanted("throughput") {
            throughput(&sides, &plan).await?;
        }
        if wanted("latency") {
            latency(&sides, &plan).await?;
        }
        if wanted("tls-throughput") {
            tls_throughput(&sides, &plan).await?;
        }
        if wanted("tls-latency") {
            tls_latency(&sides, &plan).await?;
        }
        Ok(())
    })
}
