//! The network side of the TUI as one task: the listener, discovery, every
//! session and the dialling, behind two channels. The UI sends
//! [`NetCommand`]s (never waiting) and receives [`NetEvent`]s (bounded, so a
//! flood pushes back to the sockets instead of growing memory).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::net::{
    Advert, CloseReason, Discovery, Handshaken, PER_ADDRESS_TIMEOUT, Peer, PeerEvent, SessionEvent,
    SessionHandle, SessionId, bind, connect_any, handshake, next_session_id, serve,
};
use crate::protocol::{Hello, Text};

/// How long the handle of an ended session stays usable for acks.
const CLOSING_KEEP: Duration = Duration::from_secs(2);

/// How long shutting down waits for sessions to answer our bye.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// How the node starts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Our hello (name, id) for every session.
    pub hello: Hello,
    /// Port to listen on (`None`: 7342 with fallback).
    pub port: Option<u16>,
    /// mDNS interfaces (empty: all).
    pub interfaces: Vec<String>,
    /// Run mDNS discovery.
    pub mdns: bool,
    /// Host label to advertise (`<host>.local.`).
    pub host: String,
}

/// What the UI asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetCommand {
    /// Send a text to the peer with this id, dialling it first if no session is open.
    Send {
        /// Peer id.
        to: String,
        /// The message.
        text: Text,
    },
    /// Acknowledge a received text.
    Ack {
        /// Session it came on.
        sid: SessionId,
        /// Its id.
        id: String,
    },
    /// Dial `HOST:PORT` (when multicast is blocked).
    Connect(String),
    /// Change our display name: re-advertise, and use it in later hellos.
    Rename(String),
    /// Say bye to every session and goodbye on mDNS, then stop.
    Shutdown,
}

/// What happened on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// The listener is up on this port.
    Listening {
        /// This host's reachable addresses, best first (may be empty: no network).
        addrs: Vec<std::net::IpAddr>,
        /// The real port.
        port: u16,
        /// The default port, when it was busy and another was chosen.
        fell_back_from: Option<u16>,
    },
    /// Discovery is running.
    DiscoveryActive,
    /// Discovery is off, and why (shown in the status bar).
    DiscoveryOff(String),
    /// Discovery runs but is limited, and why (no network, one IP family only).
    DiscoveryLimited(String),
    /// mDNS renamed us after a conflict; we are advertised under this name.
    Renamed(String),
    /// A peer appeared or changed.
    PeerUp(Peer),
    /// A peer left the network.
    PeerDown(Peer),
    /// A session completed its handshake (either direction).
    SessionOpened {
        /// Session id.
        sid: SessionId,
        /// The peer's hello.
        peer: Hello,
        /// Its address.
        addr: SocketAddr,
        /// A raw text peer: no protocol, no acks, named after its address.
        raw: bool,
    },
    /// A session ended.
    SessionClosed {
        /// Session id.
        sid: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// A text arrived; acknowledge it with [`NetCommand::Ack`] once shown.
    Text {
        /// Session it came on.
        sid: SessionId,
        /// The message.
        text: Text,
    },
    /// The peer acknowledged our text.
    Acked {
        /// Session.
        sid: SessionId,
        /// Id of our text.
        id: String,
    },
    /// Texts to this peer could not be sent (dial failed, or the session closed before their ack).
    SendFailed {
        /// Peer id.
        to: String,
        /// Ids of the texts that failed.
        ids: Vec<String>,
        /// Why, for the conversation's system line.
        reason: String,
    },
    /// `/connect` failed.
    ConnectFailed {
        /// What the user typed.
        target: String,
        /// Why.
        reason: String,
    },
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

/// One open session as the node tracks it.
struct Live {
    peer_id: String,
    handle: SessionHandle,
    /// Ids of texts sent on this session and not yet acknowledged.
    unacked: Vec<String>,
    /// A raw text peer: nothing is ever acknowledged.
    raw: bool,
}

/// The outcome of dialling.
struct Dialled {
    /// The peer we meant to reach (`None` for `/connect`).
    expected: Option<String>,
    /// What was dialled, for messages.
    target: String,
    result: Result<Handshaken, String>,
}

struct Node {
    hello: Hello,
    events: mpsc::Sender<NetEvent>,
    session_tx: mpsc::Sender<SessionEvent>,
    dial_tx: mpsc::Sender<Dialled>,
    sessions: HashMap<SessionId, Live>,
    by_peer: HashMap<String, SessionId>,
    discovered: HashMap<String, Peer>,
    /// Texts waiting for a dial in progress, by peer id.
    dialling: HashMap<String, Vec<Text>>,
    /// Sessions that just ended, kept a moment so the UI can still
    /// acknowledge the texts that arrived with the peer's bye.
    closing: Vec<(SessionId, SessionHandle, std::time::Instant)>,
    discovery: Option<Discovery>,
    advert: Option<Advert>,
}

async fn run(
    config: NodeConfig,
    mut cmds: mpsc::UnboundedReceiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
) {
    let (session_tx, mut session_rx) = mpsc::channel(1024);
    let (dial_tx, mut dial_rx) = mpsc::channel(16);
    let bound = match bind(config.port).await {
        Ok(bound) => bound,
        Err(e) => {
            let _ = events
                .send(NetEvent::DiscoveryOff(format!("cannot listen: {e}")))
                .await;
            // Still usable for outgoing sessions; the listener is simply missing.
            return run_without_listener(cmds, events).await;
        }
    };
    let port = bound.port;
    let _ = events
        .send(NetEvent::Listening {
            addrs: crate::net::local_addrs(),
            port,
            fell_back_from: bound.fell_back_from,
        })
        .await;
    tokio::spawn(serve(
        bound.listener,
        config.hello.clone(),
        session_tx.clone(),
    ));

    let mut node = Node {
        hello: config.hello.clone(),
        events,
        session_tx,
        dial_tx,
        sessions: HashMap::new(),
        by_peer: HashMap::new(),
        discovered: HashMap::new(),
        dialling: HashMap::new(),
        closing: Vec::new(),
        discovery: None,
        advert: None,
    };
    let (mut peer_rx, mut rename_rx) = node.start_discovery(&config, port).await;

    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(NetCommand::Shutdown) => break,
                Some(cmd) => node.command(cmd, &mut rename_rx).await,
            },
            Some(event) = session_rx.recv() => node.session_event(event).await,
            Some(dialled) = dial_rx.recv() => node.dialled(dialled).await,
            Some(event) = recv_opt(&mut peer_rx) => node.peer_event(event).await,
            Some(name) = recv_opt(&mut rename_rx) => {
                let _ = node.events.send(NetEvent::Renamed(name)).await;
            }
        }
    }
    node.shutdown(&mut session_rx).await;
}

/// What the UI is told about discovery's health.
fn health_event(health: crate::net::discovery::Health) -> NetEvent {
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

/// Without a listening socket there is nothing to run; report and drain commands.
async fn run_without_listener(
    mut cmds: mpsc::UnboundedReceiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
) {
    while let Some(cmd) = cmds.recv().await {
        match cmd {
            NetCommand::Shutdown => return,
            NetCommand::Send { to, text } => {
                let _ = events
                    .send(NetEvent::SendFailed {
                        to,
                        ids: vec![text.id],
                        reason: "the network is not available".into(),
                    })
                    .await;
            }
            _ => {}
        }
    }
}

impl Node {
    /// Starts mDNS if asked; returns the peer and rename channels (None when off).
    async fn start_discovery(
        &mut self,
        config: &NodeConfig,
        port: u16,
    ) -> (
        Option<mpsc::Receiver<PeerEvent>>,
        Option<mpsc::Receiver<String>>,
    ) {
        if !config.mdns {
            let _ = self
                .events
                .send(NetEvent::DiscoveryOff("mDNS off".into()))
                .await;
            return (None, None);
        }
        let advert = Advert {
            name: self.hello.name.clone(),
            host: config.host.clone(),
            port,
            id: self.hello.id.clone(),
        };
        let started = Discovery::start(&config.interfaces).and_then(|mut d| {
            let renames = d.advertise(&advert)?;
            let peers = d.browse(Some(self.hello.id.clone()))?;
            Ok((d, peers, renames))
        });
        match started {
            Ok((discovery, peers, renames)) => {
                let state = health_event(discovery.health());
                self.discovery = Some(discovery);
                self.advert = Some(advert);
                let _ = self.events.send(state).await;
                (Some(peers), Some(renames))
            }
            Err(e) => {
                let _ = self
                    .events
                    .send(NetEvent::DiscoveryOff(e.to_string()))
                    .await;
                (None, None)
            }
        }
    }

    async fn command(&mut self, cmd: NetCommand, renames: &mut Option<mpsc::Receiver<String>>) {
        match cmd {
            NetCommand::Send { to, text } => self.send(to, text).await,
            NetCommand::Ack { sid, id } => {
                let closing = self
                    .closing
                    .iter()
                    .find(|(s, ..)| *s == sid)
                    .map(|(_, h, _)| h);
                if let Some(handle) = self.sessions.get(&sid).map(|l| &l.handle).or(closing) {
                    handle.ack(id);
                }
            }
            NetCommand::Connect(target) => self.dial_target(target),
            NetCommand::Rename(name) => {
                self.hello.name = name.clone();
                if let (Some(discovery), Some(advert)) = (&mut self.discovery, &mut self.advert) {
                    advert.name = name;
                    discovery.unadvertise();
                    match discovery.advertise(advert) {
                        Ok(rx) => *renames = Some(rx),
                        Err(e) => {
                            let _ = self
                                .events
                                .send(NetEvent::DiscoveryOff(e.to_string()))
                                .await;
                        }
                    }
                }
            }
            NetCommand::Shutdown => {}
        }
    }

    async fn send(&mut self, to: String, text: Text) {
        if let Some(live) = self
            .by_peer
            .get(&to)
            .and_then(|sid| self.sessions.get_mut(sid))
        {
            // A raw peer never acknowledges: nothing to wait for.
            if !live.raw {
                live.unacked.push(text.id.clone());
            }
            if live.handle.send_text(text.clone()) {
                return;
            }
            // The session is ending; its Closed event will come. Dial afresh.
            if !live.raw {
                live.unacked.pop();
            }
        }
        if let Some(queue) = self.dialling.get_mut(&to) {
            queue.push(text);
            return;
        }
        let Some(peer) = self.discovered.get(&to) else {
            let _ = self
                .events
                .send(NetEvent::SendFailed {
                    to,
                    ids: vec![text.id],
                    reason: "the peer is offline".into(),
                })
                .await;
            return;
        };
        let addrs = peer.addrs.clone();
        let target = peer.name.clone();
        self.dialling.insert(to.clone(), vec![text]);
        self.dial(Some(to), target, addrs);
    }

    fn dial(&self, expected: Option<String>, target: String, addrs: Vec<SocketAddr>) {
        let hello = self.hello.clone();
        let tx = self.dial_tx.clone();
        tokio::spawn(async move {
            let result = match connect_any(&addrs, PER_ADDRESS_TIMEOUT).await {
                Ok(stream) => handshake(stream, &hello)
                    .await
                    .map_err(|e| format!("handshake failed: {e}")),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx
                .send(Dialled {
                    expected,
                    target,
                    result,
                })
                .await;
        });
    }

    /// `/connect HOST:PORT`: resolve, then dial like a discovered peer.
    fn dial_target(&self, target: String) {
        let hello = self.hello.clone();
        let tx = self.dial_tx.clone();
        tokio::spawn(async move {
            let result = match tokio::net::lookup_host(target.as_str()).await {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    match connect_any(&addrs, PER_ADDRESS_TIMEOUT).await {
                        Ok(stream) => handshake(stream, &hello)
                            .await
                            .map_err(|e| format!("handshake failed: {e}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(format!("cannot resolve {target}: {e}")),
            };
            let _ = tx
                .send(Dialled {
                    expected: None,
                    target,
                    result,
                })
                .await;
        });
    }

    async fn dialled(&mut self, dialled: Dialled) {
        match dialled.result {
            Ok(session) => {
                let got = session.peer.id.clone();
                if let Some(expected) = &dialled.expected
                    && *expected != got
                {
                    // Someone else answers at that address now: do not hand them our texts.
                    let why = format!("{} answered as another peer", dialled.target);
                    self.fail_queue(expected.clone(), why).await;
                }
                session.start(next_session_id(), self.session_tx.clone());
                // The queued texts go out when the session's Opened event arrives.
            }
            Err(reason) => match dialled.expected {
                Some(peer_id) => {
                    if let (Some(discovery), Some(peer)) =
                        (&self.discovery, self.discovered.get(&peer_id))
                    {
                        discovery.verify(peer);
                    }
                    self.fail_queue(peer_id, reason).await;
                }
                None => {
                    let _ = self
                        .events
                        .send(NetEvent::ConnectFailed {
                            target: dialled.target,
                            reason,
                        })
                        .await;
                }
            },
        }
    }

    async fn fail_queue(&mut self, peer_id: String, reason: String) {
        if let Some(queue) = self.dialling.remove(&peer_id) {
            let ids = queue.into_iter().map(|t| t.id).collect();
            let _ = self
                .events
                .send(NetEvent::SendFailed {
                    to: peer_id,
                    ids,
                    reason,
                })
                .await;
        }
    }

    async fn session_event(&mut self, event: SessionEvent) {
        let out = match event {
            SessionEvent::Opened {
                sid,
                peer,
                addr,
                handle,
                raw,
            } => {
                let mut live = Live {
                    peer_id: peer.id.clone(),
                    handle,
                    unacked: Vec::new(),
                    raw,
                };
                for text in self.dialling.remove(&peer.id).unwrap_or_default() {
                    live.unacked.push(text.id.clone());
                    live.handle.send_text(text);
                }
                self.by_peer.insert(peer.id.clone(), sid);
                self.sessions.insert(sid, live);
                NetEvent::SessionOpened {
                    sid,
                    peer,
                    addr,
                    raw,
                }
            }
            SessionEvent::Text { sid, text } => NetEvent::Text { sid, text },
            SessionEvent::Acked { sid, id } => {
                if let Some(live) = self.sessions.get_mut(&sid) {
                    live.unacked.retain(|u| *u != id);
                }
                NetEvent::Acked { sid, id }
            }
            SessionEvent::Closed { sid, reason } => {
                let now = std::time::Instant::now();
                self.closing
                    .retain(|(.., at)| now.duration_since(*at) < CLOSING_KEEP);
                if let Some(live) = self.sessions.remove(&sid) {
                    self.closing.push((sid, live.handle.clone(), now));
                    if self.by_peer.get(&live.peer_id) == Some(&sid) {
                        self.by_peer.remove(&live.peer_id);
                    }
                    if !live.unacked.is_empty() {
                        let _ = self
                            .events
                            .send(NetEvent::SendFailed {
                                to: live.peer_id,
                                ids: live.unacked,
                                reason: format!("not acknowledged: {reason}"),
                            })
                            .await;
                    }
                }
                NetEvent::SessionClosed { sid, reason }
            }
        };
        let _ = self.events.send(out).await;
    }

    async fn peer_event(&mut self, event: PeerEvent) {
        let out = match event {
            PeerEvent::Up(peer) => {
                self.discovered.insert(peer.id.clone(), peer.clone());
                NetEvent::PeerUp(peer)
            }
            PeerEvent::Down(peer) => {
                self.discovered.remove(&peer.id);
                NetEvent::PeerDown(peer)
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
            PeerEvent::Health(health) => health_event(health),
        };
        let _ = self.events.send(out).await;
    }

    /// Bye to every session (waiting briefly for them to close), then goodbye on mDNS.
    async fn shutdown(mut self, session_rx: &mut mpsc::Receiver<SessionEvent>) {
        for live in self.sessions.values() {
            live.handle.bye();
        }
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
