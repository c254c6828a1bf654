//! The one engine: every way lantalk talks (the chat screen, `listen`,
//! `send`) runs one node. It owns the listener, discovery, every session
//! and the dialling, and is the only place that sends, receives, stores,
//! acknowledges, retries and recognises copies. Users talk to it through
//! two channels: [`NetCommand`]s in (never waiting), [`NetEvent`]s out
//! (bounded, so a flood pushes back to the sockets instead of growing
//! memory).
//!
//! One rule of durability everywhere: a text is stored before it leaves,
//! and a received text is acknowledged only once stored (and, for `listen`,
//! printed: see [`AckPolicy`]).
//!
//! The lantalk that holds the data directory (the chat screen, `listen`)
//! also serves its control socket ([`crate::net::control`]): a `lantalk
//! send` on that directory gives its commands to this node, and gets the
//! events that concern it (`clients.rs`).
//!
//! This file is the loop; the rest is split by concern: `peers.rs` (state
//! per peer), `delivery.rs` (the queue and retry rules), `dial.rs`,
//! `sessions.rs`, `history.rs`, `trust.rs` and `clients.rs`.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::net::control::{self, ClientId, Control};
use crate::net::dedupe::Seen;
use crate::net::discovery::{Health, Renamed};
use crate::net::{
    AckPolicy, Advert, Bound, Discovery, DiscoveryError, HistoryOff, NetCommand, NetEvent,
    PeerEvent, Policy, SessionEvent, SessionId, bind, serve,
};
use crate::peer::PeerId;
use crate::protocol::Hello;
use crate::store::Store;

mod clients;
mod delivery;
mod dial;
mod history;
mod peers;
mod sessions;
#[cfg(test)]
mod tests;
mod trust;

use clients::Events;
use dial::{Dialled, Purpose};
use peers::{Live, Peers};

/// How long shutting down waits for sessions to answer our bye.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// At most this many session events are handled (and their texts committed) together.
const EVENT_BATCH: usize = 1024;

/// Where the node listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Nowhere: only outgoing sessions (`lantalk send`).
    Off,
    /// On this port, or on 7342 (another one when that is busy) for `None`.
    Port(Option<u16>),
}

/// How the node starts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Our hello (name, id) for every session.
    pub hello: Hello,
    /// Where to listen.
    pub listen: Listen,
    /// Run mDNS: advertise ourselves (when listening).
    pub mdns: bool,
    /// With mDNS, also look for peers.
    pub browse: bool,
    /// mDNS interfaces (empty: all).
    pub interfaces: Vec<String>,
    /// Host label to advertise (`<host>.local.`).
    pub host: String,
    /// The history database, or why there is none.
    pub history: Result<Store, HistoryOff>,
    /// TLS, pinned keys, whether plaintext is refused.
    pub policy: Policy,
    /// When received texts are acknowledged.
    pub acks: AckPolicy,
    /// Tell the users at start about every conversation and its newest
    /// page (the chat screen shows them; `send` and `listen` do not).
    pub show_history: bool,
    /// Serve the control socket at this path: for the lantalk that holds
    /// the data directory's lock (see [`crate::net::control`]).
    pub control: Option<std::path::PathBuf>,
    /// Serves the HTTP connections on the listening port (the web client);
    /// `None` closes them as before.
    pub http: Option<crate::net::Http>,
}

/// Starts the node on the current tokio runtime. Commands are never refused
/// (unbounded); events are bounded. The task ends after [`NetCommand::Shutdown`]
/// (or when the command sender is dropped) once goodbyes are said.
pub fn spawn(
    config: NodeConfig,
) -> (
    mpsc::UnboundedSender<NetCommand>,
    mpsc::Receiver<NetEvent>,
    tokio::task::JoinHandle<()>,
) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::channel(1024);
    let task = tokio::spawn(run(config, cmd_rx, event_tx));
    (cmd_tx, event_rx, task)
}

/// The engine's state; the loop in [`run`] drives it.
struct Node {
    hello: Hello,
    policy: Policy,
    acks: AckPolicy,
    /// The user, and the control socket's clients.
    events: Events,
    session_tx: mpsc::Sender<SessionEvent>,
    dial_tx: mpsc::Sender<Dialled>,
    /// Everything known per peer.
    peers: Peers,
    /// Open sessions (and ended ones whose texts the consumer has yet to
    /// acknowledge).
    sessions: HashMap<SessionId, Live>,
    /// Ids of texts received lately, so a retried text is shown once
    /// (without a history database, which recognises them otherwise).
    seen: Seen,
    /// The history database, if kept.
    store: Option<Store>,
    /// Acks of the batch being handled, per peer, to be marked delivered in
    /// the history together.
    acked: HashMap<PeerId, Acks>,
    discovery: Option<Discovery>,
    advert: Option<Advert>,
    /// Jobs of the history database under way.
    pending: history::Pending,
    /// Browsers waiting for the user's answer, by request number.
    joins: HashMap<u64, tokio::sync::oneshot::Sender<bool>>,
    /// The next request's number.
    next_join: u64,
    /// The web client, which remembers the browsers let in.
    http: Option<crate::net::Http>,
}

/// The acks of one peer in one batch of session events.
#[derive(Debug, Default)]
struct Acks {
    /// Every id acknowledged, in order.
    ids: Vec<String>,
    /// The places in the history of those that were waiting.
    seqs: Vec<i64>,
    /// Those that were not waiting (a copy acknowledged again, or one
    /// given up on): found in the history by id.
    others: Vec<String>,
}

/// Discovery, once started (off the loop: starting takes up to a second).
struct Started {
    discovery: Discovery,
    advert: Option<Advert>,
    peers: Option<mpsc::Receiver<PeerEvent>>,
    renames: Option<mpsc::Receiver<Renamed>>,
    /// Changes of health, when not browsing (browsing reports them too).
    changes: Option<mpsc::Receiver<Health>>,
    health: Health,
}

async fn run(
    config: NodeConfig,
    mut cmds: mpsc::UnboundedReceiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
) {
    let (session_tx, mut session_rx) = mpsc::channel(1024);
    let (dial_tx, mut dial_rx) = mpsc::channel(16);
    let port = match config.listen {
        Listen::Off => None,
        Listen::Port(port) => listen(port, &config, &events, &session_tx).await,
    };
    let mut control_rx = config.control.as_deref().and_then(serve_control);
    let mut node = Node {
        hello: config.hello.clone(),
        policy: config.policy.clone(),
        acks: config.acks,
        events: Events::new(events),
        session_tx,
        dial_tx,
        peers: Peers::default(),
        sessions: HashMap::new(),
        seen: Seen::default(),
        store: None,
        acked: HashMap::new(),
        discovery: None,
        advert: None,
        pending: history::Pending::new(),
        joins: HashMap::new(),
        next_join: 1,
        http: config.http.clone(),
    };
    node.start_history(config.history.clone(), config.show_history)
        .await;
    let mut starting = node.start_discovery(&config, port).await;
    let (mut peer_rx, mut rename_rx, mut health_rx) = (None, None, None);

    let mut commands = Vec::new();
    let mut batch = Vec::new();
    loop {
        // The timer runs only while some peer has texts waiting for a retry.
        let retry = node.peers.next_retry();
        let room = node.pending.len() < history::MAX_PENDING;
        tokio::select! {
            Some(stored) = node.pending.next(), if !node.pending.is_empty() => {
                node.stored(stored).await;
            }
            n = cmds.recv_many(&mut commands, 64), if room => {
                if n == 0 {
                    break;
                }
                let mut stop = false;
                for cmd in commands.drain(..) {
                    match cmd {
                        NetCommand::Shutdown => stop = true,
                        cmd if !stop => node.command(cmd, &mut rename_rx).await,
                        _ => {}
                    }
                }
                if stop {
                    break;
                }
            }
            // Everything already queued, so that a burst of texts is
            // committed to history in one transaction.
            n = session_rx.recv_many(&mut batch, EVENT_BATCH), if room => {
                if n > 0 {
                    node.session_events(std::mem::take(&mut batch)).await;
                }
            }
            Some(dialled) = dial_rx.recv() => node.dialled(dialled).await,
            Some(control) = recv_opt(&mut control_rx), if room => {
                node.control(control, &mut rename_rx).await;
            }
            started = recv_once(&mut starting) => {
                starting = None;
                // An error was told by the task that started it.
                if let Ok(started) = started {
                    peer_rx = started.peers;
                    rename_rx = started.renames;
                    health_rx = started.changes;
                    node.discovery = Some(started.discovery);
                    node.advert = started.advert;
                    let _ = node.events.send(health_event(&started.health)).await;
                }
            }
            Some(event) = recv_opt(&mut peer_rx) => node.peer_event(event).await,
            Some(health) = recv_opt(&mut health_rx) => {
                let _ = node.events.send(health_event(&health)).await;
            }
            Some(renamed) = recv_opt(&mut rename_rx) => {
                let event = match renamed {
                    Renamed::Instance(name) => NetEvent::Renamed(name),
                    Renamed::Host(host) => NetEvent::HostRenamed(host),
                };
                let _ = node.events.send(event).await;
            }
            () = sleep_opt(retry) => node.retry_due(),
        }
    }
    node.settle().await;
    node.shutdown(&mut session_rx).await;
}

/// Binds the control socket at `path` and serves it; the node hears from
/// it on the returned channel. Without it (the path is too long for a
/// socket, the directory is not writable) `send` runs a node of its own.
fn serve_control(path: &std::path::Path) -> Option<mpsc::Receiver<Control>> {
    match control::bind(path) {
        Ok(bound) => {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(control::serve(bound, tx));
            Some(rx)
        }
        Err(e) => {
            tracing::info!("no control socket at {}: {e}", path.display());
            None
        }
    }
}

/// Binds the listening port and serves it; tells the users where, or why
/// nobody can connect (the node goes on without: outgoing sessions work).
async fn listen(
    port: Option<u16>,
    config: &NodeConfig,
    events: &mpsc::Sender<NetEvent>,
    sessions: &mpsc::Sender<SessionEvent>,
) -> Option<u16> {
    let Bound {
        listener,
        port,
        fell_back_from,
    } = match bind(port).await {
        Ok(bound) => bound,
        Err(e) => {
            let _ = events.send(NetEvent::NotListening(e.to_string())).await;
            return None;
        }
    };
    let _ = events
        .send(NetEvent::Listening {
            addrs: crate::net::local_addrs(),
            port,
            fell_back_from,
        })
        .await;
    tokio::spawn(serve(
        listener,
        config.hello.clone(),
        config.policy.clone(),
        sessions.clone(),
        config.http.clone(),
    ));
    Some(port)
}

impl Node {
    /// Starts mDNS if asked, on a task of its own: the answer arrives on
    /// the returned channel. Advertises only when listening on `port`.
    async fn start_discovery(
        &mut self,
        config: &NodeConfig,
        port: Option<u16>,
    ) -> Option<oneshot::Receiver<Started>> {
        if !config.mdns {
            let _ = self.events.send(NetEvent::DiscoveryDisabled).await;
            return None;
        }
        let advert = port.map(|port| Advert {
            name: self.hello.name.clone(),
            host: config.host.clone(),
            port,
            id: self.hello.id.clone(),
            fp: self.policy.tls.as_ref().map(|tls| tls.fingerprint),
        });
        let browse = config.browse.then(|| self.hello.id.clone());
        let interfaces = config.interfaces.clone();
        let events = self.events.main();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let started = async {
                let mut discovery = Discovery::start(&interfaces).await?;
                let renames = match &advert {
                    Some(advert) => Some(discovery.advertise(advert)?),
                    None => None,
                };
                let (peers, changes) = match browse {
                    Some(own) => (Some(discovery.browse(Some(own))?), None),
                    None => (None, Some(discovery.health_changes()?)),
                };
                let health = discovery.health().await;
                Ok::<_, DiscoveryError>(Started {
                    discovery,
                    advert,
                    peers,
                    renames,
                    changes,
                    health,
                })
            };
            match started.await {
                Ok(started) => {
                    let _ = tx.send(started);
                }
                Err(e) => {
                    let why = crate::error_chain(&e);
                    let _ = events.send(NetEvent::DiscoveryOff(why)).await;
                }
            }
        });
        Some(rx)
    }

    /// A control client joined, left, or asks something.
    async fn control(&mut self, control: Control, renames: &mut Option<mpsc::Receiver<Renamed>>) {
        match control {
            Control::Joined { client, events } => self.events.joined(client, events),
            Control::Left(client) => {
                // The session its `Connect` opened ends with it, as when
                // `send` ran its own node.
                if let Some(sid) = self.events.left(client)
                    && let Some(live) = self.sessions.get(&sid)
                {
                    live.handle.bye();
                }
            }
            Control::Command { client, cmd } => self.client_command(client, cmd, renames).await,
        }
    }

    /// A control client's command, as [`Node::command`] with the answers
    /// to its `Connect` for it alone, and its texts shown to our user.
    async fn client_command(
        &mut self,
        client: ClientId,
        cmd: NetCommand,
        renames: &mut Option<mpsc::Receiver<Renamed>>,
    ) {
        match cmd {
            NetCommand::Connect(target) => {
                self.settle().await;
                self.connect(target, Purpose::Connect(Some(client)));
            }
            NetCommand::Send { to, texts } => {
                let shown = NetEvent::Sending {
                    to: to.clone(),
                    texts: texts.clone(),
                };
                let _ = self.events.send(shown).await;
                self.send(to, texts).await;
            }
            cmd => self.command(cmd, renames).await,
        }
    }

    async fn command(&mut self, cmd: NetCommand, renames: &mut Option<mpsc::Receiver<Renamed>>) {
        // Texts come in order (stored, then sent) without waiting for each
        // other; anything else comes after the texts before it.
        if !matches!(cmd, NetCommand::Send { .. } | NetCommand::Ack { .. }) {
            self.settle().await;
        }
        match cmd {
            NetCommand::Send { to, texts } => self.send(to, texts).await,
            NetCommand::Connect(target) => self.connect(target, Purpose::Connect(None)),
            NetCommand::Ack { session, ids } => self.consumer_acked(session, ids),
            NetCommand::GiveUp { peer, reason } => self.give_up(peer, reason).await,
            NetCommand::Rename(name) => self.rename(name, renames).await,
            NetCommand::AnswerJoin { req, accept } => {
                if let Some(answer) = self.joins.remove(&req) {
                    let _ = answer.send(accept);
                }
            }
            NetCommand::LoadHistory { peer, before } => self.load_history(peer, before).await,
            NetCommand::Search(words) => self.search(words).await,
            NetCommand::Trust { peer, key } => self.trust(peer, key).await,
            NetCommand::Forget(peer) => self.forget(peer).await,
            NetCommand::Verify { peer, confirmed } => self.verify(peer, confirmed).await,
            NetCommand::Shutdown => {}
        }
    }

    /// Our new name: told to every open session (a hello again, same id),
    /// in later hellos, and advertised anew.
    async fn rename(&mut self, name: String, renames: &mut Option<mpsc::Receiver<Renamed>>) {
        self.hello.name = name.clone();
        for live in self.sessions.values() {
            if live.peer.kind == crate::peer::PeerKind::Lantalk {
                live.handle.hello(&self.hello);
            }
        }
        if let (Some(discovery), Some(advert)) = (&mut self.discovery, &mut self.advert) {
            advert.name = name;
            discovery.unadvertise();
            match discovery.advertise(advert) {
                Ok(rx) => *renames = Some(rx),
                Err(e) => {
                    let why = crate::error_chain(&e);
                    let _ = self.events.send(NetEvent::DiscoveryOff(why)).await;
                }
            }
        }
    }

    async fn peer_event(&mut self, event: PeerEvent) {
        let out = match event {
            PeerEvent::Up(peer) => {
                let id = PeerId::new(peer.id.clone());
                let state = self.peers.entry(&id, crate::peer::PeerKind::Lantalk);
                if let Some(fp) = peer.fp {
                    state.fp = Some(fp);
                }
                state.addrs = peer.addrs.clone();
                state.advert = Some(peer.clone());
                if !state.out.is_empty() && state.sessions.is_empty() {
                    // It is back: deliver what waits for it now.
                    self.dial_peer(&id);
                }
                NetEvent::PeerUp(crate::net::Presence {
                    id,
                    name: peer.name,
                    host: peer.host,
                    addrs: peer.addrs,
                    problem: peer.problem,
                })
            }
            PeerEvent::Down(peer) => {
                let id = PeerId::new(peer.id);
                if let Some(state) = self.peers.get_mut(&id) {
                    state.advert = None;
                }
                self.peers.evict();
                NetEvent::PeerDown(id)
            }
            PeerEvent::Ignored(ignored) => {
                tracing::info!(
                    "ignored the advertisement {:?} on {:?}: {}",
                    ignored.name,
                    ignored.host,
                    ignored.why
                );
                return;
            }
            PeerEvent::Health(health) => health_event(&health),
        };
        let _ = self.events.send(out).await;
    }

    /// Bye to every session (waiting briefly for them to close), then goodbye on mDNS.
    async fn shutdown(mut self, session_rx: &mut mpsc::Receiver<SessionEvent>) {
        for live in self.sessions.values() {
            live.handle.bye();
        }
        self.sessions.retain(|_, live| !live.closed);
        let _ = tokio::time::timeout(BYE_WAIT, async {
            while !self.sessions.is_empty() {
                match session_rx.recv().await {
                    Some(SessionEvent::Closed { sid, .. }) => {
                        self.sessions.remove(&sid);
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        })
        .await;
        if let Some(discovery) = self.discovery.take() {
            discovery.shutdown().await;
        }
    }
}

/// What the users are told about discovery's health.
fn health_event(health: &Health) -> NetEvent {
    match health.limitation() {
        None => NetEvent::DiscoveryActive,
        Some(why) => NetEvent::DiscoveryLimited(why.to_owned()),
    }
}

/// Receives from an optional channel; pending forever when there is none.
async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Receives the one value of an optional oneshot; pending forever when
/// there is none.
async fn recv_once<T>(
    rx: &mut Option<oneshot::Receiver<T>>,
) -> Result<T, oneshot::error::RecvError> {
    match rx {
        Some(rx) => rx.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; pending forever when there is nothing to wait for.
async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
