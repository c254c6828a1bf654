//! `lantalk listen`: advertise, accept sessions, print and acknowledge every
//! text, and say goodbye on Ctrl+C, SIGTERM or SIGHUP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::{Exit, Failure, identity_of};
use crate::cli::Global;
use crate::identity;
use crate::net::{self, Advert, CloseReason, Discovery, SessionEvent, SessionHandle, SessionId};
use crate::protocol::Hello;
use crate::sanitize::escape_for_terminal;

/// How long `listen` gives its sessions to close after saying bye.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// One session as `listen` knows it.
struct Conn {
    name: String,
    /// The peer id; `None` for a raw text peer, which has none.
    id: Option<String>,
    addr: SocketAddr,
    handle: SessionHandle,
}

/// `lantalk listen` (also the default command).
pub(super) async fn listen(global: &Global, json: bool) -> Result<(), Failure> {
    let me = identity_of(global, true)?;
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
    tokio::spawn(net::serve(bound.listener, hello.clone(), events_tx));

    let discovery = if global.no_mdns {
        None
    } else {
        advertise(global, &hello, bound.port)
    };

    let mut conns: HashMap<SessionId, Conn> = HashMap::new();
    let mut out = BufWriter::with_capacity(64 * 1024, tokio::io::stdout());
    let mut acks: Vec<(SessionId, String)> = Vec::new();
    let mut closed: Vec<SessionId> = Vec::new();
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
                        printed = on_event(event, &mut conns, &mut out, &mut acks, &mut closed, json).await;
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

fn advertise(global: &Global, hello: &Hello, port: u16) -> Option<Discovery> {
    let mut discovery = match Discovery::start(&global.interfaces) {
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
    };
    match discovery.advertise(&advert) {
        Ok(mut renames) => {
            super::report_discovery(&discovery, port);
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

/// Prints one event; texts to `out` (to be flushed by the caller), status to stderr.
async fn on_event(
    event: SessionEvent,
    conns: &mut HashMap<SessionId, Conn>,
    out: &mut BufWriter<tokio::io::Stdout>,
    acks: &mut Vec<(SessionId, String)>,
    closed: &mut Vec<SessionId>,
    json: bool,
) -> std::io::Result<()> {
    match event {
        SessionEvent::Opened {
            sid,
            peer,
            addr,
            handle,
            raw,
        } => {
            let name = escape_for_terminal(&peer.name, false).into_owned();
            status!("{name} connected from {addr}");
            conns.insert(
                sid,
                Conn {
                    name: peer.name,
                    id: (!raw).then_some(peer.id),
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
                    "from": conn.name, "from_id": conn.id, "raw": conn.id.is_none(),
                    "addr": conn.addr.to_string(),
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
            closed.push(sid);
            if let Some(conn) = conns.get(&sid) {
                let name = escape_for_terminal(&conn.name, false);
                match reason {
                    CloseReason::Bye | CloseReason::Local => status!("{name} left"),
                    other => status!("{name} disconnected: {other}"),
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
