//! `lantalk listen`: run the node (listening, advertising), print every text
//! it hands over, tell on stderr who comes and goes, and say goodbye on
//! Ctrl+C, SIGTERM or SIGHUP.
//!
//! The node stores each batch of texts in one transaction, acknowledges
//! them once stored, and hands over only new ones (a copy a sender retried
//! after a lost ack, or sent again after a restart, is recognised by its id
//! and acknowledged without being shown); `listen` prints a whole batch and
//! flushes it. With `--no-history` nothing is stored, printing is all that
//! keeps a text: `listen` asks the node to acknowledge a batch only once it
//! is printed (`AckPolicy::Consumer`), and copies are recognised in memory.
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

use anyhow::anyhow;
use tokio::io::{AsyncWriteExt, BufWriter};

use super::{Exit, Failure, identity_of};
use crate::net::{self, CloseReason, HistoryOff, Link, NetCommand, NetEvent, SessionId};
use crate::options::{Options, Role};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::Text;
use crate::sanitize::{self, escape_for_terminal};
use crate::store::StoreError;
use crate::trust::KnownPeers;

/// Longest reason for a disconnection printed, in cells.
const MAX_REASON: usize = 200;

/// At most this many events are handled (their texts printed and
/// acknowledged) together.
const MAX_BATCH: usize = 4096;

/// How long `listen` waits for the node's goodbyes when it stops.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// One session as `listen` knows it.
struct Conn {
    /// The name as the peer sent it (for `--json`).
    name: String,
    /// The name as printed: escaped and cut to one line.
    shown: String,
    /// The peer.
    id: PeerId,
    kind: PeerKind,
    addr: SocketAddr,
}

/// `lantalk listen` (also the default command); with `qr`, the address a
/// phone opens and its QR code are printed on stderr once it listens.
pub async fn listen(options: &Options, json: bool, qr: bool) -> Result<(), Failure> {
    let me = identity_of(options, true)?;
    let history = open_history(options, &me.dir)?;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let config = options.node(&me, Role::Listen, history)?;
    let fingerprint = config.policy.tls.as_ref().map(|tls| tls.fingerprint);
    let consumer_acks = config.acks == crate::net::AckPolicy::Consumer;
    let known = config.policy.known.clone();
    let (commands, mut events, task) = net::node::spawn(config);
    let mut out = Printer {
        conns: HashMap::new(),
        out: BufWriter::with_capacity(64 * 1024, tokio::io::stdout()),
        json,
        name: me.hello.name.clone(),
        fingerprint,
        known,
        port: 0,
        limited: false,
        qr: qr.then(|| super::web::AddressSource::new(options, me.dir.clone(), &me.hello.name)),
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let result = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            n = events.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    break Ok(());
                }
                match out.batch(batch.drain(..)).await {
                    Ok(acks) if consumer_acks => {
                        for (session, ids) in acks {
                            let _ = commands.send(NetCommand::Ack { session, ids });
                        }
                    }
                    Ok(_) => {}
                    Err(failure) => break Err(failure),
                }
            }
        }
    };
    // Goodbye to every session and to the network.
    let _ = commands.send(NetCommand::Shutdown);
    let _ = tokio::time::timeout(STOP_WAIT, task).await;
    result
}

/// Opens the history database for `listen`, unless `--no-history`. A data
/// directory where it cannot be created (read-only, not a directory) is not
/// fatal, as for the peer id: `listen` runs without history and says so. A
/// file that is there but broken is: `listen` would acknowledge texts it
/// cannot keep.
fn open_history(
    options: &Options,
    dir: &std::path::Path,
) -> Result<Result<crate::store::Store, HistoryOff>, Failure> {
    match options.open_history(dir) {
        Ok(Some(store)) => Ok(Ok(store)),
        Ok(None) => Ok(Err(HistoryOff::Disabled)),
        Err(e @ StoreError::Unwritable { .. }) => {
            let why = crate::error_chain(&e);
            status!("{why}; running without history");
            Ok(Err(HistoryOff::Unavailable(why)))
        }
        Err(e) => Err(Failure::new(
            Exit::Other,
            anyhow!(
                "{} (move the file away to start a new history, or run with --no-history)",
                crate::error_chain(&e)
            ),
        )),
    }
}

/// What `listen` prints, and what it knows to print it.
struct Printer {
    conns: HashMap<SessionId, Conn>,
    out: BufWriter<tokio::io::Stdout>,
    json: bool,
    /// Our name, for the first status line.
    name: String,
    fingerprint: Option<crate::protocol::Fingerprint>,
    /// The keys met, to tell peers that share a name apart.
    known: Option<KnownPeers>,
    /// The port we listen on, for the discovery status lines.
    port: u16,
    /// Discovery was limited when last heard of.
    limited: bool,
    /// `--qr`: where the address for a phone comes from.
    qr: Option<super::web::AddressSource>,
}

impl Printer {
    /// Prints a batch of events; returns the texts to acknowledge now,
    /// per session (all of them printed and flushed).
    async fn batch(
        &mut self,
        events: impl Iterator<Item = NetEvent>,
    ) -> Result<Vec<(SessionId, Vec<String>)>, Failure> {
        let mut acks: Vec<(SessionId, Vec<String>)> = Vec::new();
        let mut closed = Vec::new();
        let mut printed = Ok(());
        for event in events {
            match event {
                NetEvent::Text { session, text, .. } => {
                    let Some(conn) = self.conns.get(&session) else {
                        continue;
                    };
                    printed = printed.and(print(&mut self.out, conn, &text, self.json).await);
                    if conn.kind.capabilities().acks {
                        match acks.last_mut() {
                            Some((s, ids)) if *s == session => ids.push(text.id),
                            _ => acks.push((session, vec![text.id])),
                        }
                    }
                }
                NetEvent::SessionClosed {
                    session, reason, ..
                } => {
                    self.closed(session, &reason);
                    // Forgotten only after the batch: texts that came just
                    // before a bye are acknowledged too.
                    closed.push(session);
                }
                other => self.status(other).await?,
            }
        }
        if let Err(e) = printed.and(self.out.flush().await) {
            return Err(Failure::new(
                Exit::Other,
                anyhow!("cannot write to standard output: {e}"),
            ));
        }
        for session in closed {
            self.conns.remove(&session);
        }
        Ok(acks)
    }

    /// An event that is not a text: a status line on stderr, if anything.
    async fn status(&mut self, event: NetEvent) -> Result<(), Failure> {
        match event {
            NetEvent::Listening {
                port,
                fell_back_from,
                ..
            } => {
                self.port = port;
                if let Some(busy) = fell_back_from {
                    status!("port {busy} is busy; listening on port {port} instead");
                }
                status!(
                    "listening on port {port} as {:?}",
                    escape_for_terminal(&self.name, false)
                );
                // For people to compare with what a client shows (phone.py
                // prints the fingerprint of the key it was shown).
                if let Some(fp) = self.fingerprint {
                    status!("fingerprint {}", fp.grouped());
                }
                self.print_address(false);
            }
            NetEvent::NotListening(why) => {
                return Err(Failure::from_other(anyhow!("cannot listen: {why}")));
            }
            NetEvent::DiscoveryOff(why) => status!(
                "{why}; discovery is off, peers can still connect to port {} directly",
                self.port
            ),
            NetEvent::DiscoveryLimited(why) => {
                self.limited = true;
                status!(
                    "{why}; peers can still connect to port {} directly",
                    self.port
                );
            }
            NetEvent::DiscoveryActive if self.limited => {
                self.limited = false;
                status!("mDNS: the network is up; discovery is on");
            }
            NetEvent::Renamed(name) => status!(
                "the name is taken on this network; advertising as {:?}",
                escape_for_terminal(&name, false)
            ),
            NetEvent::HostRenamed(host) => {
                status!(
                    "another device on this network has our host name; we are reachable as {:?}",
                    escape_for_terminal(&host, false)
                );
                // The old name leads to the other device: never show it again.
                if let Some(source) = &mut self.qr {
                    source.host = source.host.is_some().then_some(host);
                    self.print_address(true);
                }
            }
            NetEvent::SessionOpened {
                peer,
                session,
                addr,
                link,
            } => {
                let shown = self.shown(&peer).await;
                let how = match link {
                    Link::Authenticated { first: true, .. } => "encrypted, key pinned now",
                    other => other.describe(),
                };
                status!("{shown} connected from {addr} ({how})");
                let conn = Conn {
                    shown,
                    name: peer.name,
                    id: peer.id,
                    kind: peer.kind,
                    addr,
                };
                self.conns.insert(session, conn);
            }
            NetEvent::Namesake { known, peer, fp } => {
                let name = escape_for_terminal(&peer.name, false);
                status!(
                    "a new key named {name:?} connected ({}, key {}): it is another peer, and \
                     gets nothing of the conversation with {} (id {known}). If it is {name:?} \
                     with a new key, move that conversation to it: lantalk trust {} --fingerprint {fp}",
                    tagged(&peer.name, &peer.id),
                    fp.grouped(),
                    sanitize::short_name(&peer.name),
                    tagged(&peer.name, &known),
                );
            }
            NetEvent::PeerRenamed { peer, name } => {
                let info = PeerInfo {
                    id: peer,
                    name,
                    kind: PeerKind::Lantalk,
                };
                let shown = self.shown(&info).await;
                let mut said = false;
                for conn in self.conns.values_mut().filter(|c| c.id == info.id) {
                    if !said {
                        status!("{} is now called {shown}", conn.shown);
                        said = true;
                    }
                    conn.name = info.name.clone();
                    conn.shown = shown.clone();
                }
            }
            NetEvent::Notice { text, .. } => {
                status!("{}", sanitize::one_line(&text, 2 * MAX_REASON));
            }
            NetEvent::Merged { from, into } => {
                if let Some(conn) = self.conns.values().find(|c| c.id == into) {
                    status!(
                        "the conversation with {} (id {from}) continues under its key",
                        conn.shown
                    );
                }
            }
            NetEvent::Refused { refusal, .. } => {
                status!(
                    "{}",
                    sanitize::one_line(&refusal.to_string(), 2 * MAX_REASON)
                );
            }
            NetEvent::HistoryOff(HistoryOff::Failed(why)) => {
                return Err(Failure::new(
                    Exit::Other,
                    anyhow!(
                        "{why}; texts from then on were not acknowledged (run with --no-history to go on without the history)"
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// With `--qr`, prints the address for a phone (`only_local`: just its
    /// `.local` form, after our host name changed).
    fn print_address(&self, only_local: bool) {
        let Some(source) = &self.qr else { return };
        match source.address(self.port, false) {
            Ok(address) if only_local => {
                if let Some(local) = &address.local {
                    status!(
                        "a phone opens the chat at {}",
                        escape_for_terminal(local, false)
                    );
                }
            }
            Ok(address) => super::web::print_address(&address),
            Err(e) => status!("cannot show the address for a phone: {e:#}"),
        }
    }

    /// The name `peer` is printed under: `name#tag` when another key we
    /// know goes by the same name (a name is a label; a peer is its key).
    async fn shown(&self, peer: &PeerInfo) -> String {
        let shared = match &self.known {
            Some(known) if peer.kind == PeerKind::Lantalk => known
                .named(&peer.name)
                .await
                .unwrap_or_default()
                .iter()
                .any(|k| k.replaced_by.is_none() && k.id() != peer.id.as_str()),
            _ => false,
        };
        if shared {
            tagged(&peer.name, &peer.id)
        } else {
            sanitize::short_name(&peer.name)
        }
    }

    fn closed(&self, session: SessionId, reason: &CloseReason) {
        let Some(conn) = self.conns.get(&session) else {
            return;
        };
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

/// `name#tag`, the name escaped and cut to one line, the tag kept.
fn tagged(name: &str, id: &PeerId) -> String {
    format!("{}#{}", sanitize::short_name(name), id.tag())
}

/// Writes one text to `out` (to be flushed by the caller).
async fn print(
    out: &mut BufWriter<tokio::io::Stdout>,
    conn: &Conn,
    text: &Text,
    json: bool,
) -> std::io::Result<()> {
    let line = if json {
        let raw = matches!(conn.kind, PeerKind::Raw(_));
        let web = conn.kind == PeerKind::Web;
        let json = serde_json::json!({
            "from": conn.name, "from_id": (!raw).then_some(&conn.id), "raw": raw,
            "web": web, "kind": conn.kind.name(),
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
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
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
