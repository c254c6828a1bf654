//! `lantalk send PEER [TEXT]...`: find the peer, connect, send every message
//! pipelined, and succeed only once all are acknowledged.
//!
//! `send` runs the one engine (`net::node`) without listening: the node
//! stores every text before it leaves (as pending or sent, in the history
//! of the data directory unless `--no-history`), delivers it, and stores it
//! as delivered once acknowledged; when the connection drops it connects
//! again and resends what was not acknowledged. `send` feeds it the lines,
//! waits for the acks, and gives up (the texts are then stored as failed)
//! after [`ACK_TIMEOUT`] without progress. A `send` killed meanwhile loses
//! nothing it had read: those texts are in the history as pending or sent,
//! and go out with the next lantalk on that data directory that meets the
//! peer.
//!
//! When a lantalk already runs on the data directory (the chat screen or
//! `listen`), `send` drives that one's node instead, through its control
//! socket (`net::control`): same commands, same events, same code below,
//! so the texts appear in that chat screen, go out on its sessions and are
//! in its one history; exit codes and messages are those of a `send` on
//! its own. The peer is still looked up here. `--no-history` keeps `send`
//! on its own node: the running one would record the texts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Exit, Failure, identity_of, secs, start_discovery};
use crate::identity;
use crate::net::discovery::Lookup;
use crate::net::{self, CloseReason, HistoryOff, Link, NetCommand, NetEvent, Target, now_ms};
use crate::options::{Options, Role};
use crate::peer::{PeerId, labelled};
use crate::protocol::{Fingerprint, MAX_FRAME_LEN, Refusal, Text, text_fits_in_frame};
use crate::sanitize::escape_for_terminal;
use crate::store::StoreError;
use crate::trust::KnownPeers;

/// How long `send` waits for outstanding acks without any progress.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How many texts `send` keeps in flight (being stored, on the wire, being
/// stored by the peer) before waiting for acks: enough to keep both
/// histories busy.
const SEND_WINDOW: usize = 16384;

/// ... and how many bytes of them, whichever limit comes first: long lines
/// must not pile up in memory.
const SEND_WINDOW_BYTES: usize = 16 << 20;

/// At most this many lines go to the node in one command (stored together).
const LINES_AT_ONCE: usize = 1024;

/// How long `send` waits, at the end, for the node to store the last states
/// and say goodbye.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// `HOST:PORT` / `IP:PORT` / `[IPv6]:PORT`, or an IP address without a
/// port (port [`DEFAULT_PORT`](crate::peer::DEFAULT_PORT)), resolved; `None`
/// if `peer` is a name to discover.
async fn direct_addrs(peer: &str) -> Result<Option<Vec<SocketAddr>>, Failure> {
    let with_port;
    let peer = if crate::peer::is_ip_address(peer) {
        with_port = crate::peer::with_default_port(peer);
        with_port.as_str()
    } else {
        peer
    };
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
pub async fn send(
    options: &Options,
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
    if let Some(body) = &one {
        let probe = Text {
            id: String::new(),
            ts: 0,
            body: body.clone(),
        };
        if !text_fits_in_frame(&probe) {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!("{}", too_long_message(body)),
            ));
        }
    }
    let me = identity_of(options, false)?;
    let history = open_history(options, &me.dir);
    let config = options.node(&me, Role::Send, history)?;
    let (target, discovery) = match direct_addrs(peer).await? {
        Some(addrs) => (
            Target::Addrs {
                label: peer.to_owned(),
                addrs,
            },
            None,
        ),
        None => {
            let (found, discovery) =
                find(options, config.policy.known.as_ref(), peer, timeout).await?;
            (Target::Discovered(Box::new(found)), Some(discovery))
        }
    };
    let known = config.policy.known.clone();
    let running = if options.history {
        net::control::connect(&me.dir).await
    } else {
        None
    };
    let (commands, mut events, task) = match running {
        Some(running) => {
            tracing::info!(
                "sending through the lantalk running on {}",
                me.dir.display()
            );
            running
        }
        None => net::node::spawn(config),
    };
    let _ = commands.send(NetCommand::Connect(target));
    let opened = opened(
        peer,
        discovery.is_none(),
        known.as_ref(),
        options.require_encryption,
        &mut events,
    )
    .await;
    // Only the lookup needed it.
    drop(discovery);
    let result = match opened {
        Ok((to, name)) => {
            let lines = match one {
                Some(body) => {
                    let (tx, rx) = mpsc::channel(1);
                    // Capacity 1: this cannot fail on a fresh channel.
                    let _ = tx.try_send(body);
                    rx
                }
                None => {
                    let (tx, rx) = mpsc::channel(LINES_AT_ONCE);
                    tokio::spawn(read_stdin_lines(tx));
                    rx
                }
            };
            let peer_name = escape_for_terminal(&name, false).into_owned();
            let pump = Pump {
                to,
                peer_name,
                commands: &commands,
                events: &mut events,
            };
            pump.run(lines).await
        }
        Err(failure) => Err(failure),
    };
    let _ = commands.send(NetCommand::Shutdown);
    // Drain what the node still says while it stores the last states and
    // says goodbye, so that it never waits on a full channel.
    let drain = async { while events.recv().await.is_some() {} };
    let _ = tokio::time::timeout(STOP_WAIT, async { tokio::join!(task, drain) }).await;
    result
}

/// Finds `peer` by mDNS within `timeout`: an advert whose key is one of
/// those known by that name (see [`pinned_keys`]), or, for a name no key
/// is known by, any advert of that name.
async fn find(
    options: &Options,
    known: Option<&KnownPeers>,
    peer: &str,
    timeout: Duration,
) -> Result<(net::Peer, net::Discovery), Failure> {
    let preferred = match known {
        Some(known) => pinned_keys(known, peer).await?,
        None => Vec::new(),
    };
    let discovery = start_discovery(options).await?;
    match discovery
        .find(peer, timeout, &preferred)
        .await
        .map_err(Failure::from_discovery)?
    {
        Lookup::Found(found) => {
            if let Some(problem) = &found.problem {
                return Err(Failure::new(Exit::Delivery, anyhow!("{peer}: {problem}")));
            }
            if known.is_some() {
                let offered = found.fp.is_some_and(|fp| preferred.contains(&fp));
                if !preferred.is_empty() && !offered {
                    let refusal = Refusal::AdvertDisagrees {
                        name: base_name(peer).to_owned(),
                        pinned: preferred,
                        advertised: found.fp,
                    };
                    return Err(Failure::new(Exit::Delivery, anyhow!("{refusal}")));
                }
            }
            Ok((found, discovery))
        }
        Lookup::Unusable(ignored) => Err(Failure::new(
            Exit::Delivery,
            anyhow!(
                "{peer:?} is advertised on {} but cannot be used: {}",
                escape_for_terminal(&ignored.host, false),
                ignored.why
            ),
        )),
        Lookup::NotFound => Err(Failure::new(
            Exit::NotFound,
            anyhow!(
                "peer {peer:?} not found on the network after {} s (is it running? is multicast blocked?)",
                secs(timeout)
            ),
        )),
    }
}

/// `laptop#3f2a` → `laptop`; `laptop.local.` → `laptop`.
fn base_name(query: &str) -> &str {
    let name = query.trim();
    let name = name.rsplit_once('#').map_or(name, |(n, _)| n);
    let name = name.strip_suffix('.').unwrap_or(name);
    match name.len().checked_sub(".local".len()) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".local") => {
            &name[..cut]
        }
        _ => name,
    }
}

/// The keys known by the name typed (`query`): an advert found for that
/// name, whichever of its names matched (instance, host or nick: each is
/// the typed name, and each is the advertiser's choice), must offer one of
/// them. `name#3f2a` narrows them to the peer whose id starts so. Keys the
/// user moved a conversation away from (`/trust`) do not count, and keys
/// that only ever came to us unasked count only when there is no other:
/// connecting once under a name does not make anyone that name.
async fn pinned_keys(known: &KnownPeers, query: &str) -> Result<Vec<Fingerprint>, Failure> {
    let tag = query
        .trim()
        .rsplit_once('#')
        .map(|(_, t)| t.to_ascii_lowercase());
    let name = base_name(query);
    let found = known.named(name).await.map_err(|e| {
        let why = crate::error_chain(&e);
        Failure::new(
            Exit::Other,
            anyhow!("cannot check the keys known by {name:?}: {why}"),
        )
    })?;
    let named: Vec<_> = found
        .into_iter()
        .filter(|k| k.replaced_by.is_none())
        .filter(|k| tag.as_ref().is_none_or(|t| k.id().starts_with(t.as_str())))
        .collect();
    let chosen = named.iter().any(|k| !k.inbound || k.verified);
    Ok(named
        .into_iter()
        .filter(|k| !chosen || !k.inbound || k.verified)
        .map(|k| k.fp)
        .collect())
}

/// A key met for the first time, named like peers known by other keys:
/// says it is another peer, and how to make it that one if it is.
async fn namesakes(known: Option<&KnownPeers>, peer: &crate::peer::PeerInfo, fp: Fingerprint) {
    let Some(known) = known else { return };
    let others: Vec<String> = known
        .named(&peer.name)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|k| k.fp != fp && k.replaced_by.is_none())
        .map(|k| labelled(&k.name, &PeerId::new(k.id())))
        .collect();
    if let Some(first) = others.first() {
        status!(
            "note: this is not the {} you know by another key ({}): it is another peer. If it is \
             that one with a new key, move its conversation: lantalk trust {} --fingerprint {fp}",
            escape_for_terminal(&peer.name, false),
            others.join(", "),
            escape_for_terminal(first, false)
        );
    }
}

/// Waits for the session the node was asked to open: the peer's id and
/// name. Says on stderr what was reached (name, address, link and key)
/// where that is news: at an address typed by hand (`typed`), a key met for
/// the first time, a peer without a key; plaintext loudly. `send NAME` to
/// a key known by that name says nothing: scripts stay quiet.
async fn opened(
    target: &str,
    typed: bool,
    known: Option<&KnownPeers>,
    require_encryption: bool,
    events: &mut mpsc::Receiver<NetEvent>,
) -> Result<(PeerId, String), Failure> {
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::SessionOpened {
                peer, addr, link, ..
            } => {
                let who = escape_for_terminal(&labelled(&peer.name, &peer.id), false).into_owned();
                // A node of our own refuses plaintext before this; the
                // running lantalk we may be driving has its own policy.
                if require_encryption && !link.encrypted() {
                    return Err(Failure::new(
                        Exit::Delivery,
                        anyhow!(
                            "{target}: {who} at {addr} offers no encryption; refused because \
                             encryption is required (--require-encryption): nothing was sent"
                        ),
                    ));
                }
                match link {
                    Link::Authenticated {
                        fp, first: true, ..
                    } => {
                        status!(
                            "reached {who} at {addr} ({}, a key met for the first time: {})",
                            link.describe(),
                            fp.grouped()
                        );
                        namesakes(known, &peer, fp).await;
                    }
                    Link::Authenticated { fp, .. } if typed => status!(
                        "reached {who} at {addr} ({}, key {})",
                        link.describe(),
                        fp.grouped()
                    ),
                    Link::Authenticated { .. } => {}
                    Link::Unauthenticated => status!(
                        "reached {who} at {addr} ({}: it has no key, so nothing proves who it is)",
                        link.describe()
                    ),
                    Link::Plain => status!(
                        "WARNING: reached {who} at {addr} in PLAINTEXT: anyone on the network \
                         can read and change what is sent (it offers no encryption)"
                    ),
                }
                return Ok((peer.id, peer.name));
            }
            NetEvent::ConnectFailed {
                reason, refusal, ..
            } => {
                let why = refusal.map_or(reason, |r| r.to_string());
                // `could not connect to 10.0.0.2:7342 (...)` already names
                // what was typed: once is enough.
                let why = if why.contains(target) {
                    why
                } else {
                    format!("{target}: {why}")
                };
                return Err(Failure::new(Exit::Delivery, anyhow!("{why}")));
            }
            _ => {}
        }
    }
    Err(Failure::from_other(anyhow!("the network task stopped")))
}

/// The history database for `send`, unless `--no-history`. `send` works
/// without it: a data directory where it cannot be created goes without
/// saying (as for the peer id); a broken file is told on stderr.
fn open_history(
    options: &Options,
    dir: &std::path::Path,
) -> Result<crate::store::Store, HistoryOff> {
    match options.open_history(dir) {
        Ok(Some(store)) => Ok(store),
        Ok(None) => Err(HistoryOff::Disabled),
        Err(e @ StoreError::Unwritable { .. }) => {
            let why = crate::error_chain(&e);
            tracing::info!("{why}; sending without history");
            Err(HistoryOff::Unavailable(why))
        }
        Err(e) => {
            let why = crate::error_chain(&e);
            status!("{why}; sending without recording the texts in the history");
            Err(HistoryOff::Unavailable(why))
        }
    }
}

fn too_long_message(body: &str) -> String {
    format!(
        "message too long to send ({} bytes; one message must fit in {} KiB)",
        body.len(),
        MAX_FRAME_LEN / 1024
    )
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

/// Feeds the node the lines as texts, pipelined, and waits for their acks.
struct Pump<'a> {
    to: PeerId,
    /// The peer's name, escaped, for messages.
    peer_name: String,
    commands: &'a mpsc::UnboundedSender<NetCommand>,
    events: &'a mut mpsc::Receiver<NetEvent>,
}

impl Pump<'_> {
    /// Sends every line and returns once all are acknowledged. When the
    /// connection drops, the node connects again and resends what is not
    /// yet acknowledged, in order (the receiver drops copies by id).
    async fn run(self, mut lines: mpsc::Receiver<String>) -> Result<(), Failure> {
        let Pump {
            to,
            peer_name,
            commands,
            events,
        } = self;
        let prefix = identity::random_hex::<8>()?;
        // Ids in flight, with their sizes.
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        let mut bytes = 0usize;
        let mut sent = 0u64;
        let mut too_long = 0u64;
        let mut input_done = false;
        let mut deadline = Instant::now() + ACK_TIMEOUT;
        // Why the last session closed, and why reaching the peer again
        // failed, while no session is open.
        let mut dropped: Option<String> = None;
        let mut retry_failed: Option<String> = None;
        // A session opened again gives the acks a fresh ACK_TIMEOUT once
        // per ack received: a peer that lets us in and closes again at once
        // (a listener turning newcomers away during a flood) would
        // otherwise keep `send` trying for ever.
        let mut reopen_credit = true;
        let mut batch = Vec::with_capacity(LINES_AT_ONCE);
        let closed = loop {
            if input_done && in_flight.is_empty() {
                if too_long > 0 {
                    return Err(Failure::new(
                        Exit::Delivery,
                        anyhow!(
                            "{too_long} message(s) too long to send; the other {sent} were acknowledged"
                        ),
                    ));
                }
                return Ok(());
            }
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(NetEvent::Acked { peer, ids }) if peer == to => {
                        let before = in_flight.len();
                        for id in &ids {
                            bytes -= in_flight.remove(id).unwrap_or(0);
                        }
                        if in_flight.len() < before {
                            deadline = Instant::now() + ACK_TIMEOUT;
                            reopen_credit = true;
                        }
                    }
                    Some(NetEvent::SessionClosed { peer, reason, connected: false, .. }) if peer == to => {
                        if matches!(reason, CloseReason::Protocol(_) | CloseReason::PeerError { .. }) {
                            // The peer refused what we sent: sending it again would not help.
                            break reason.to_string();
                        }
                        if !in_flight.is_empty() || !input_done {
                            status!("{peer_name}: {reason}; connecting again");
                        }
                        dropped = Some(reason.to_string());
                    }
                    Some(NetEvent::SessionOpened { peer, .. }) if peer.id == to => {
                        dropped = None;
                        retry_failed = None;
                        if reopen_credit {
                            deadline = Instant::now() + ACK_TIMEOUT;
                            reopen_credit = false;
                        }
                    }
                    Some(NetEvent::Waiting { to: peer, reason, retry_in, .. }) if peer == to && dropped.is_some() => {
                        // The next try would come after the deadline: give up now.
                        let next = retry_in.map(|d| Instant::now() + d);
                        if next.is_none_or(|next| next >= deadline) && dropped.is_some() && !in_flight.is_empty() {
                            let closed = dropped.take().unwrap_or_default();
                            break format!("{closed}; connecting again failed ({reason})");
                        }
                        retry_failed = Some(reason);
                    }
                    Some(_) => {}
                    None => break CloseReason::Eof.to_string(),
                },
                n = lines.recv_many(&mut batch, LINES_AT_ONCE), if !input_done && in_flight.len() < SEND_WINDOW && bytes < SEND_WINDOW_BYTES => {
                    if n == 0 {
                        input_done = true;
                        continue;
                    }
                    let ts = now_ms();
                    let mut texts = Vec::with_capacity(n);
                    for body in batch.drain(..) {
                        let text = Text { id: format!("{prefix}-{}", sent + 1), ts, body };
                        if !text_fits_in_frame(&text) {
                            too_long += 1;
                            status!("{}", too_long_message(&text.body));
                            continue;
                        }
                        sent += 1;
                        texts.push(text);
                    }
                    if in_flight.is_empty() {
                        deadline = Instant::now() + ACK_TIMEOUT;
                    }
                    for text in &texts {
                        bytes += text.body.len();
                        in_flight.insert(text.id.clone(), text.body.len());
                    }
                    let _ = commands.send(NetCommand::Send { to: to.clone(), texts });
                }
                () = tokio::time::sleep_until(deadline), if !in_flight.is_empty() => {
                    break match (dropped.take(), retry_failed.take()) {
                        (Some(closed), Some(why)) => format!("{closed}; connecting again failed ({why})"),
                        (Some(closed), None) => format!("{closed}; connecting again failed"),
                        _ => format!("no acknowledgement for {} s", ACK_TIMEOUT.as_secs()),
                    };
                }
            }
        };
        // The texts not acknowledged are given up on (and stored as failed)
        // before the node stops.
        let _ = commands.send(NetCommand::GiveUp {
            peer: to.clone(),
            reason: closed.clone(),
        });
        let unacked = in_flight.len() as u64;
        let what = if input_done {
            format!("{unacked} of {sent} message(s) were not acknowledged")
        } else {
            format!(
                "{} of {sent} message(s) acknowledged, then the session ended before the rest of the input was sent",
                sent - unacked
            )
        };
        Err(Failure::new(
            Exit::Delivery,
            anyhow!("{peer_name}: {what} ({closed})"),
        ))
    }
}
