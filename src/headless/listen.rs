//! `lantalk listen`: advertise, accept sessions, store, print and
//! acknowledge every text, and say goodbye on Ctrl+C, SIGTERM or SIGHUP.
//!
//! Texts are handled in batches (whatever has arrived, up to
//! [`MAX_BATCH`]): committed to the history database in one transaction,
//! then the new ones printed, then all acknowledged. A text is thus
//! acknowledged only once it is stored and printed, and one the sender
//! retried after a lost ack (or sent again after a restart of `listen`) is
//! recognised by its id in the database, acknowledged and not printed again.
//! With `--no-history` nothing is stored and copies are recognised in memory
//! (recent ids per peer) for as long as `listen` runs.
//!
//! What peers send reaches stdout and stderr only through
//! [`crate::sanitize`]: names and bodies with visible escapes (`^[`,
//! `\u{202e}`), names cut to one line of at most 64 cells. The plain output
//! is escaped always, not only when stdout is a terminal: `lantalk listen |
//! tee log` shows it on a terminal through `tee`, and `cat log` later does
//! too, so a pipe is no safer than a terminal. Whoever needs the exact bytes
//! has `--json`, which is faithful: every string decodes to exactly what the
//! peer sent, with the characters that could act on a terminal (controls,
//! bidi, invisible characters) written as JSON `\uXXXX` escapes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::{Exit, Failure, identity_of};
use crate::cli::Global;
use crate::identity;
use crate::net::dedupe::Seen;
use crate::net::{self, Advert, CloseReason, Discovery, SessionEvent, SessionHandle, SessionId};
use crate::protocol::{Hello, Text};
use crate::sanitize::{self, escape_for_terminal};
use crate::store::{PeerRef, Store, StoreError};

/// Longest reason for a disconnection printed, in cells.
const MAX_REASON: usize = 200;

/// How long `listen` gives its sessions to close after saying bye.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// At most this many texts are stored, printed and acknowledged together.
const MAX_BATCH: usize = 4096;

/// One session as `listen` knows it.
struct Conn {
    /// The name as the peer sent it (for `--json`).
    name: String,
    /// The name as printed: escaped and cut to one line.
    shown: String,
    /// The peer id; `None` for a raw text peer, which has none.
    id: Option<String>,
    /// Who the texts are stored under: the peer id, or `raw-IP`.
    peer: PeerRef,
    addr: SocketAddr,
    handle: SessionHandle,
}

/// `lantalk listen` (also the default command).
pub(super) async fn listen(global: &Global, json: bool) -> Result<(), Failure> {
    let me = identity_of(global, true)?;
    let store = open_history(global, &me.dir)?;
    let hello = me.hello.clone();
    let bound = net::bind(global.port).await.context("cannot listen")?;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    if let Some(busy) = bound.fell_back_from {
        status!(
            "port {busy} is busy; listening on port {} instead",
            bound.port
        );
    }
    status!(
        "listening on port {} as {:?}",
        bound.port,
        escape_for_terminal(&hello.name, false)
    );
    let (events_tx, mut events) = mpsc::channel(1024);
    let policy = net::Policy::of(&me, global.require_encryption)?;
    // For people to compare with what a client shows (phone.py prints the
    // fingerprint of the key it was shown).
    if let Some(tls) = &policy.tls {
        status!("fingerprint {}", tls.fingerprint.grouped());
    }
    tokio::spawn(net::serve(
        bound.listener,
        hello.clone(),
        policy.clone(),
        events_tx,
    ));

    let discovery = if global.no_mdns {
        None
    } else {
        advertise(global, &hello, &policy, bound.port).await
    };

    let mut conns: HashMap<SessionId, Conn> = HashMap::new();
    let mut out = BufWriter::with_capacity(64 * 1024, tokio::io::stdout());
    let mut texts: Vec<(SessionId, Text)> = Vec::new();
    let mut closed: Vec<SessionId> = Vec::new();
    let mut first: Vec<Hello> = Vec::new();
    let mut seen = Seen::default();
    let result: Result<(), Failure> = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            event = events.recv() => {
                let Some(mut event) = event else { break Ok(()) };
                // Take everything already queued: store it in one
                // transaction, print it in one go, then ack.
                loop {
                    on_event(event, &mut conns, &mut texts, &mut closed, &mut first);
                    if texts.len() >= MAX_BATCH {
                        break;
                    }
                    match events.try_recv() {
                        Ok(next) => event = next,
                        Err(_) => break,
                    }
                }
                for peer in first.drain(..) {
                    if let (Some(store), Some(known)) = (&store, &policy.known) {
                        for (from, _) in net::policy::carry_over_history(store, known, &peer.name, &peer.id).await {
                            status!(
                                "the conversation with {} (id {from}) continues under its key",
                                sanitize::short_name(&peer.name)
                            );
                        }
                    }
                }
                let new = match is_new(&texts, &conns, store.as_ref(), &mut seen).await {
                    Ok(new) => new,
                    Err(e) => break Err(Failure::new(Exit::Other, anyhow!(
                        "{e}; {} text(s) were not acknowledged (run with --no-history to go on without the history)",
                        texts.len()
                    ))),
                };
                let mut printed = Ok(());
                for ((sid, text), new) in texts.iter().zip(new) {
                    if let (true, Some(conn)) = (new, conns.get(sid)) {
                        printed = print(&mut out, conn, text, json).await;
                        if printed.is_err() {
                            break;
                        }
                    }
                }
                if let Err(e) = printed.and(out.flush().await) {
                    break Err(Failure::new(Exit::Other, anyhow!("cannot write to standard output: {e}")));
                }
                for (sid, text) in texts.drain(..) {
                    if let Some(conn) = conns.get(&sid) {
                        conn.handle.ack(text.id);
                    }
                }
                // Sessions that ended in this batch are forgotten only now:
                // texts that came just before a bye are acknowledged too.
                for sid in closed.drain(..) {
                    conns.remove(&sid);
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

async fn advertise(
    global: &Global,
    hello: &Hello,
    policy: &net::Policy,
    port: u16,
) -> Option<Discovery> {
    let mut discovery = match Discovery::start(&global.interfaces).await {
        Ok(d) => d,
        Err(e) => {
            status!("{e}; discovery is off, peers can still connect to port {port} directly");
            return None;
        }
    };
    let advert = Advert {
        name: hello.name.clone(),
        host: identity::hostname_label().unwrap_or_else(|| hello.name.clone()),
        port,
        id: hello.id.clone(),
        fp: policy.tls.as_ref().map(|tls| tls.fingerprint),
    };
    match discovery.advertise(&advert) {
        Ok(mut renames) => {
            super::report_discovery(&discovery, port).await;
            tokio::spawn(async move {
                while let Some(name) = renames.recv().await {
                    status!(
                        "the name is taken on this network; advertising as {:?}",
                        escape_for_terminal(&name, false)
                    );
                }
            });
            Some(discovery)
        }
        Err(e) => {
            status!("{e}; discovery is off, peers can still connect to port {port} directly");
            None
        }
    }
}

/// Opens the history database for `listen`, unless `--no-history`. A data
/// directory where it cannot be created (read-only, not a directory) is not
/// fatal, as for the peer id: `listen` runs without history and says so. A
/// file that is there but broken is: `listen` would acknowledge texts it
/// cannot keep.
fn open_history(global: &Global, dir: &std::path::Path) -> Result<Option<Store>, Failure> {
    if global.no_history {
        return Ok(None);
    }
    match Store::open(dir) {
        Ok(store) => Ok(Some(store)),
        Err(e @ StoreError::Unwritable { .. }) => {
            status!("{e}; running without history");
            Ok(None)
        }
        Err(e) => Err(Failure::new(
            Exit::Other,
            anyhow!("{e} (move the file away to start a new history, or run with --no-history)"),
        )),
    }
}

/// For each text of the batch, whether it is new (to be printed) rather
/// than a copy of one already received. With a history, the texts are
/// committed first (copies are recognised by the database); without, by
/// the ids seen recently. A raw peer's lines are always new.
async fn is_new(
    texts: &[(SessionId, Text)],
    conns: &HashMap<SessionId, Conn>,
    store: Option<&Store>,
    seen: &mut Seen,
) -> Result<Vec<bool>, StoreError> {
    let Some(store) = store else {
        return Ok(texts
            .iter()
            .map(
                |(sid, text)| match conns.get(sid).and_then(|c| c.id.as_ref()) {
                    Some(from) => seen.first_time(from, &text.id),
                    None => true,
                },
            )
            .collect());
    };
    let mut batch = Vec::with_capacity(texts.len());
    let mut index = Vec::with_capacity(texts.len());
    for (sid, text) in texts {
        if let Some(conn) = conns.get(sid) {
            batch.push((conn.peer.clone(), text.clone()));
            index.push(true);
        } else {
            index.push(false);
        }
    }
    let mut stored = store.received(batch).await?.into_iter();
    Ok(index
        .into_iter()
        .map(|known| known && stored.next().unwrap_or(false))
        .collect())
}

/// Handles one event: sessions opening and closing are told on stderr,
/// texts are collected for the batch.
fn on_event(
    event: SessionEvent,
    conns: &mut HashMap<SessionId, Conn>,
    texts: &mut Vec<(SessionId, Text)>,
    closed: &mut Vec<SessionId>,
    first: &mut Vec<Hello>,
) {
    match event {
        SessionEvent::Opened {
            sid,
            peer,
            addr,
            handle,
            raw,
            link,
        } => {
            let shown = sanitize::short_name(&peer.name);
            let how = match link {
                net::Link::Authenticated { first: true, .. } => "encrypted, key pinned now",
                other => other.describe(),
            };
            status!("{shown} connected from {addr} ({how})");
            if let net::Link::Authenticated { first: true, .. } = link {
                first.push(peer.clone());
            }
            conns.insert(
                sid,
                Conn {
                    shown,
                    id: (!raw).then(|| peer.id.clone()),
                    peer: PeerRef {
                        key: peer.id,
                        name: peer.name.clone(),
                        raw,
                    },
                    name: peer.name,
                    addr,
                    handle,
                },
            );
        }
        SessionEvent::Text { sid, text } => {
            if conns.contains_key(&sid) {
                texts.push((sid, text));
            }
        }
        SessionEvent::Acked { .. } => {}
        SessionEvent::Refused { why, .. } => {
            status!("{}", sanitize::one_line(&why, 2 * MAX_REASON));
        }
        SessionEvent::Closed { sid, reason } => {
            closed.push(sid);
            if let Some(conn) = conns.get(&sid) {
                let name = &conn.shown;
                match reason {
                    CloseReason::Bye | CloseReason::Local => status!("{name} left"),
                    // The reason may quote the peer's own `error` message.
                    other => status!(
                        "{name} disconnected: {}",
                        sanitize::one_line(&other.to_string(), MAX_REASON)
                    ),
                }
            }
        }
    }
}

/// Writes one text to `out` (to be flushed by the caller).
async fn print(
    out: &mut BufWriter<tokio::io::Stdout>,
    conn: &Conn,
    text: &Text,
    json: bool,
) -> std::io::Result<()> {
    let line = if json {
        let json = serde_json::json!({
            "from": conn.name, "from_id": conn.id, "raw": conn.id.is_none(),
            "addr": conn.addr.to_string(),
            "id": text.id, "ts": text.ts, "body": text.body,
        })
        .to_string();
        match sanitize::json_for_terminal(&json) {
            Cow::Borrowed(_) => json,
            Cow::Owned(safe) => safe,
        }
    } else {
        let body = escape_for_terminal(&text.body, true);
        // Continuation lines of a multi-line message are indented.
        let body = body.replace('\n', "\n  ");
        format!("{}: {body}", conn.shown)
    };
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await
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
