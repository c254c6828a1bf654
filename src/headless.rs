//! The commands for scripts: `send`, `peers` and `listen`. Built on
//! [`crate::net`]; prints to stdout/stderr and never touches a TUI.
//!
//! stdout carries only results (received messages, peer lists); status lines
//! ("listening on port …", "phone connected") go to stderr.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::{Cli, Command, Global};
use crate::identity;
use crate::net::{
    self, Advert, CloseReason, Discovery, PER_ADDRESS_TIMEOUT, Peer, SessionEvent, SessionHandle,
    SessionId,
};
use crate::protocol::{Hello, PROTO_VERSION, Text};
use crate::sanitize::escape_for_terminal;

/// How long `send` waits for outstanding acks without any progress.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How many texts `send` keeps in flight before waiting for acks.
const SEND_WINDOW: usize = 4096;

/// How long `listen` gives its sessions to close after saying bye.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// The exit status a failure maps to (documented in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not covered below.
    Other = 1,
    /// 2: the command line was wrong.
    Usage = 2,
    /// 3: the peer was not found on the network within the timeout.
    NotFound = 3,
    /// 4: could not connect, or a message was not acknowledged.
    Delivery = 4,
}

/// A failure of a command: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// Exit status class.
    pub exit: Exit,
    /// What went wrong, with its causes.
    pub error: anyhow::Error,
}

impl Failure {
    fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::new(Exit::Other, error)
    }
}

/// Runs the command line. `listen` is the default command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let global = cli.global;
    match cli.command.unwrap_or(Command::Listen { json: false }) {
        Command::Send {
            peer,
            text,
            timeout,
        } => send(&global, &peer, text, Duration::from_secs_f64(timeout)).await,
        Command::Peers { json, timeout } => {
            peers(&global, json, Duration::from_secs_f64(timeout)).await
        }
        Command::Listen { json } => listen(&global, json).await,
    }
}

/// Our `hello`, with the display name and the id from the data directory.
fn our_hello(global: &Global) -> anyhow::Result<Hello> {
    let dir = identity::data_dir(global.data_dir.as_deref())?;
    let id = identity::load_or_create_id(&dir)?;
    Ok(Hello {
        proto: PROTO_VERSION,
        id,
        name: identity::display_name(global.name.as_deref()),
        app: concat!("lantalk/", env!("CARGO_PKG_VERSION")).to_owned(),
    })
}

fn start_discovery(global: &Global) -> Result<Discovery, Failure> {
    if global.no_mdns {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("discovery is off (--no-mdns): give the peer as HOST:PORT"),
        ));
    }
    Discovery::start(&global.interfaces).map_err(Failure::from_other)
}

impl Failure {
    fn from_other(e: impl Into<anyhow::Error>) -> Self {
        Self::new(Exit::Other, e)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// `HOST:PORT` / `IP:PORT` / `[IPv6]:PORT`, resolved; `None` if `peer` is a name to discover.
async fn direct_addrs(peer: &str) -> Result<Option<Vec<SocketAddr>>, Failure> {
    if let Ok(addr) = peer.parse::<SocketAddr>() {
        return Ok(Some(vec![addr]));
    }
    if let Some(addr) = scoped_by_interface_name(peer) {
        return Ok(Some(vec![addr]));
    }
    let Some((host, port)) = peer.rsplit_once(':') else {
        return Ok(None);
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("{peer:?} is neither a peer name nor HOST:PORT"),
        ));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(peer)
        .await
        .map_err(|e| Failure::new(Exit::NotFound, anyhow!("cannot resolve {host:?}: {e}")))?
        .collect();
    Ok(Some(addrs))
}

/// `[fe80::1%eth0]:7342`: a link-local IPv6 address scoped by interface name
/// (the standard parser takes only numeric scopes).
fn scoped_by_interface_name(peer: &str) -> Option<SocketAddr> {
    let (inside, port) = peer.strip_prefix('[')?.rsplit_once("]:")?;
    let (ip, iface) = inside.split_once('%')?;
    let index = std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex")).ok()?;
    let v6 = std::net::SocketAddrV6::new(
        ip.parse().ok()?,
        port.parse().ok()?,
        0,
        index.trim().parse().ok()?,
    );
    Some(SocketAddr::V6(v6))
}

/// `lantalk send PEER [TEXT]...`
async fn send(
    global: &Global,
    peer: &str,
    text: Vec<String>,
    timeout: Duration,
) -> Result<(), Failure> {
    let one = (!text.is_empty()).then(|| text.join(" "));
    if one.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("nothing to send: the message is empty"),
        ));
    }
    let hello = our_hello(global)?;

    let (addrs, found) = match direct_addrs(peer).await? {
        Some(addrs) => (addrs, None),
        None => {
            let discovery = start_discovery(global)?;
            match discovery
                .find(peer, timeout)
                .await
                .map_err(Failure::from_other)?
            {
                Some(found) => (found.addrs.clone(), Some((discovery, found))),
                None => {
                    return Err(Failure::new(
                        Exit::NotFound,
                        anyhow!(
                            "peer {peer:?} not found on the network after {} s (is it running? is multicast blocked?)",
                            secs(timeout)
                        ),
                    ));
                }
            }
        }
    };
    let stream = match net::connect_any(&addrs, PER_ADDRESS_TIMEOUT).await {
        Ok(stream) => stream,
        Err(e) => {
            if let Some((discovery, found)) = &found {
                discovery.verify(found);
            }
            return Err(Failure::new(Exit::Delivery, anyhow!("{peer}: {e}")));
        }
    };
    drop(found);
    let session = net::handshake(stream, &hello)
        .await
        .map_err(|e| Failure::new(Exit::Delivery, anyhow!("{peer}: handshake failed: {e}")))?;
    let peer_name = escape_for_terminal(&session.peer.name, false).into_owned();
    let (events_tx, events) = mpsc::channel(1024);
    let handle = session.start(net::next_session_id(), events_tx);

    let (lines_tx, lines) = mpsc::channel(1024);
    match one {
        Some(body) => {
            // Capacity 1024: this cannot fail on a fresh channel.
            let _ = lines_tx.try_send(body);
            drop(lines_tx);
        }
        None => {
            tokio::spawn(read_stdin_lines(lines_tx));
        }
    }
    pump(&handle, events, lines, &peer_name).await
}

/// Reads stdin line by line (lossy UTF-8, CR LF or LF, empty lines skipped).
async fn read_stdin_lines(tx: mpsc::Sender<String>) {
    let mut reader = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        if tx
            .send(String::from_utf8_lossy(&line).into_owned())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Sends every line as a text, pipelined, and returns once all are acked.
async fn pump(
    handle: &SessionHandle,
    mut events: mpsc::Receiver<SessionEvent>,
    mut lines: mpsc::Receiver<String>,
    peer_name: &str,
) -> Result<(), Failure> {
    let prefix = identity::random_hex::<8>()?;
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut sent = 0u64;
    let mut input_done = false;
    let mut deadline = Instant::now() + ACK_TIMEOUT;
    let closed = loop {
        if input_done && in_flight.is_empty() {
            handle.bye();
            // Wait (briefly) for the peer to close in turn.
            let _ = tokio::time::timeout(BYE_WAIT * 2, async {
                while let Some(ev) = events.recv().await {
                    if matches!(ev, SessionEvent::Closed { .. }) {
                        break;
                    }
                }
            })
            .await;
            return Ok(());
        }
        tokio::select! {
            biased;
            event = events.recv() => match event {
                Some(SessionEvent::Acked { id, .. }) => {
                    if in_flight.remove(&id) {
                        deadline = Instant::now() + ACK_TIMEOUT;
                    }
                }
                Some(SessionEvent::Closed { reason, .. }) => break reason.to_string(),
                None => break CloseReason::Eof.to_string(),
                // Texts sent to us are not shown by `send`, so they are not acknowledged.
                Some(_) => {}
            },
            line = lines.recv(), if !input_done && in_flight.len() < SEND_WINDOW => match line {
                Some(body) => {
                    sent += 1;
                    let id = format!("{prefix}-{sent}");
                    in_flight.insert(id.clone());
                    if in_flight.len() == 1 {
                        deadline = Instant::now() + ACK_TIMEOUT;
                    }
                    handle.send_text(Text { id, ts: now_ms(), body });
                }
                None => input_done = true,
            },
            () = tokio::time::sleep_until(deadline), if !in_flight.is_empty() => {
                break format!("no acknowledgement for {} s", ACK_TIMEOUT.as_secs());
            }
        }
    };
    let missing = in_flight.len() as u64 + u64::from(!input_done);
    let what = if input_done {
        format!(
            "{} of {sent} message(s) were not acknowledged",
            in_flight.len()
        )
    } else {
        format!(
            "{} message(s) sent before the session ended; the rest were not sent",
            sent
        )
    };
    debug_assert!(missing > 0);
    Err(Failure::new(
        Exit::Delivery,
        anyhow!("{peer_name}: {what} ({closed})"),
    ))
}

/// `lantalk peers`
async fn peers(global: &Global, json: bool, timeout: Duration) -> Result<(), Failure> {
    let discovery = start_discovery(global)?;
    let mut events = discovery.browse(None).map_err(Failure::from_other)?;
    let mut found: HashMap<String, Peer> = HashMap::new();
    let deadline = Instant::now() + timeout;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(net::PeerEvent::Up(peer)) => { found.insert(peer.id.clone(), peer); }
                Some(net::PeerEvent::Down(peer)) => { found.remove(&peer.id); }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    discovery.shutdown().await;
    let mut list: Vec<Peer> = found.into_values().collect();
    list.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    let mut out = String::new();
    if json {
        for p in &list {
            let addrs: Vec<String> = p.addrs.iter().map(|a| ip_text(*a)).collect();
            let obj = serde_json::json!({
                "name": p.name, "nick": p.nick, "host": p.host,
                "addresses": addrs, "port": p.port, "id": p.id,
            });
            out.push_str(&obj.to_string());
            out.push('\n');
        }
    } else if !list.is_empty() {
        out.push_str(&peer_table(&list));
    }
    if list.is_empty() {
        eprintln!(
            "lantalk: no peers found in {} s (is anyone running lantalk? is multicast blocked?)",
            secs(timeout)
        );
    }
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(out.as_bytes())
        .await
        .context("cannot write to standard output")?;
    stdout
        .flush()
        .await
        .context("cannot write to standard output")?;
    Ok(())
}

/// An address as text without the port; IPv6 with `%scope` when link-local.
fn ip_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
        other => other.ip().to_string(),
    }
}

fn peer_table(list: &[Peer]) -> String {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|p| {
            let addrs: Vec<String> = p.addrs.iter().map(|a| ip_text(*a)).collect();
            [
                escape_for_terminal(&p.name, false).into_owned(),
                escape_for_terminal(&p.host, false).into_owned(),
                addrs.join(","),
                p.port.to_string(),
                p.id.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "HOST", "ADDRESSES", "PORT", "ID"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One session as `listen` knows it.
struct Conn {
    name: String,
    id: String,
    addr: SocketAddr,
    handle: SessionHandle,
}

/// `lantalk listen` (also the default command).
async fn listen(global: &Global, json: bool) -> Result<(), Failure> {
    let hello = our_hello(global)?;
    let bound = net::bind(global.port).await.context("cannot listen")?;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    if let Some(busy) = bound.fell_back_from {
        eprintln!(
            "lantalk: port {busy} is busy; listening on port {} instead",
            bound.port
        );
    }
    eprintln!(
        "lantalk: listening on port {} as {:?}",
        bound.port,
        escape_for_terminal(&hello.name, false)
    );
    let (events_tx, mut events) = mpsc::channel(1024);
    tokio::spawn(net::serve(bound.listener, hello.clone(), events_tx));

    let discovery = if global.no_mdns {
        None
    } else {
        advertise(global, &hello, bound.port)
    };

    let mut conns: HashMap<SessionId, Conn> = HashMap::new();
    let mut out = BufWriter::with_capacity(64 * 1024, tokio::io::stdout());
    let mut acks: Vec<(SessionId, String)> = Vec::new();
    let result: Result<(), Failure> = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            event = events.recv() => {
                let Some(mut event) = event else { break Ok(()) };
                // Take everything already queued, print it in one go, then ack:
                // a text is acknowledged only once it has reached stdout.
                let mut printed = Ok(());
                loop {
                    if printed.is_ok() {
                        printed = on_event(event, &mut conns, &mut out, &mut acks, json).await;
                    }
                    if acks.len() >= 4096 {
                        break;
                    }
                    match events.try_recv() {
                        Ok(next) => event = next,
                        Err(_) => break,
                    }
                }
                if let Err(e) = printed.and(out.flush().await) {
                    break Err(Failure::new(Exit::Other, anyhow!("cannot write to standard output: {e}")));
                }
                for (sid, id) in acks.drain(..) {
                    if let Some(conn) = conns.get(&sid) {
                        conn.handle.ack(id);
                    }
                }
            }
        }
    };

    // Goodbye to every session and to the network.
    for conn in conns.values() {
        conn.handle.bye();
    }
    let _ = tokio::time::timeout(BYE_WAIT, async {
        while !conns.is_empty() {
            match events.recv().await {
                Some(SessionEvent::Closed { sid, .. }) => {
                    conns.remove(&sid);
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    if let Some(discovery) = discovery {
        discovery.shutdown().await;
    }
    result
}

fn advertise(global: &Global, hello: &Hello, port: u16) -> Option<Discovery> {
    let mut discovery = match Discovery::start(&global.interfaces) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "lantalk: {e}; discovery is off, peers can still connect to port {port} directly"
            );
            return None;
        }
    };
    let advert = Advert {
        name: hello.name.clone(),
        host: identity::hostname_label().unwrap_or_else(|| hello.name.clone()),
        port,
        id: hello.id.clone(),
    };
    match discovery.advertise(&advert) {
        Ok(mut renames) => {
            tokio::spawn(async move {
                // The daemon reports the rename once per interface; say it once.
                let mut last = None;
                while let Some(name) = renames.recv().await {
                    if last.as_ref() == Some(&name) {
                        continue;
                    }
                    eprintln!(
                        "lantalk: the name is taken on this network; advertising as {:?}",
                        escape_for_terminal(&name, false)
                    );
                    last = Some(name);
                }
            });
            Some(discovery)
        }
        Err(e) => {
            eprintln!(
                "lantalk: {e}; discovery is off, peers can still connect to port {port} directly"
            );
            None
        }
    }
}

/// Prints one event; texts to `out` (to be flushed by the caller), status to stderr.
async fn on_event(
    event: SessionEvent,
    conns: &mut HashMap<SessionId, Conn>,
    out: &mut BufWriter<tokio::io::Stdout>,
    acks: &mut Vec<(SessionId, String)>,
    json: bool,
) -> std::io::Result<()> {
    match event {
        SessionEvent::Opened {
            sid,
            peer,
            addr,
            handle,
        } => {
            let name = escape_for_terminal(&peer.name, false).into_owned();
            eprintln!("lantalk: {name} connected from {addr}");
            conns.insert(
                sid,
                Conn {
                    name: peer.name,
                    id: peer.id,
                    addr,
                    handle,
                },
            );
        }
        SessionEvent::Text { sid, text } => {
            let Some(conn) = conns.get(&sid) else {
                return Ok(());
            };
            let line = if json {
                serde_json::json!({
                    "from": conn.name, "from_id": conn.id, "addr": conn.addr.to_string(),
                    "id": text.id, "ts": text.ts, "body": text.body,
                })
                .to_string()
            } else {
                let body = escape_for_terminal(&text.body, true);
                // Continuation lines of a multi-line message are indented.
                let body = body.replace('\n', "\n  ");
                format!("{}: {body}", escape_for_terminal(&conn.name, false))
            };
            out.write_all(line.as_bytes()).await?;
            out.write_all(b"\n").await?;
            acks.push((sid, text.id));
        }
        SessionEvent::Acked { .. } => {}
        SessionEvent::Closed { sid, reason } => {
            if let Some(conn) = conns.remove(&sid) {
                let name = escape_for_terminal(&conn.name, false);
                match reason {
                    CloseReason::Bye | CloseReason::Local => eprintln!("lantalk: {name} left"),
                    other => eprintln!("lantalk: {name} disconnected: {other}"),
                }
            }
        }
    }
    Ok(())
}

/// Registers for Ctrl+C, SIGTERM and SIGHUP at once (so a signal arriving
/// before the first poll is not lost); the future resolves on the first one.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    let hup = signal(SignalKind::hangup());
    async move {
        match (int, term, hup) {
            (Ok(mut int), Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
