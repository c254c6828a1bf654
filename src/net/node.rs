//! The network side of the TUI as one task: the listener, discovery, every
//! session and the dialling, behind two channels. The UI sends
//! [`NetCommand`]s (never waiting) and receives [`NetEvent`]s (bounded, so a
//! flood pushes back to the sockets instead of growing memory).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::net::dedupe::Seen;

use crate::net::{
    Advert, CloseReason, DialError, Discovery, Expect, Handshaken, Link, Peer, PeerEvent, Policy,
    Reach, SessionEvent, SessionHandle, SessionId, bind, dial, next_session_id, serve,
};
use crate::protocol::{Fingerprint, Hello, Text};
use crate::store::{Conversation, Record, State, Store};

mod history;
mod trust;

/// How long shutting down waits for sessions to answer our bye.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// At most this many session events are handled (and their texts committed) together.
const EVENT_BATCH: usize = 1024;

/// The first retry to reach a peer with waiting texts; doubled after each failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The longest wait between retries.
const RETRY_MAX: Duration = Duration::from_secs(30);

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
    /// The history database, or why there is none (`--no-history`, or it
    /// could not be opened).
    pub history: Result<Store, String>,
    /// TLS, pinned keys, whether plaintext is refused.
    pub policy: Policy,
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
    /// Dial `HOST:PORT` (when multicast is blocked).
    Connect(String),
    /// Send the page of `peer`'s history before seq `before` (the newest
    /// page when `None`); answered with [`NetEvent::History`].
    LoadHistory {
        /// Peer key.
        peer: String,
        /// Only messages older than this seq.
        before: Option<i64>,
    },
    /// Full-text search of all conversations; answered with [`NetEvent::Found`].
    Search(String),
    /// Change our display name: re-advertise, and use it in later hellos.
    Rename(String),
    /// Accept the key the peer with this id (or name) presents, in place
    /// of the one pinned for its name; answered with [`NetEvent::Notice`].
    Trust(String),
    /// Like [`NetCommand::Trust`], but keeping the keys already trusted
    /// for the name: another device uses the same name.
    TrustAlso(String),
    /// Show the verification code of the session with this peer id; with
    /// `confirmed`, the people compared it: mark the key verified.
    /// Answered with [`NetEvent::Verification`] or [`NetEvent::Notice`].
    Verify {
        /// Peer id.
        peer: String,
        /// The codes matched.
        confirmed: bool,
    },
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
    /// Every peer with history, most recent first; sent once at start,
    /// each followed by a [`NetEvent::History`] with its newest page.
    Conversations(Vec<Conversation>),
    /// A page of a conversation, oldest first; `more` when older messages exist.
    History {
        /// Peer key.
        peer: String,
        /// The messages.
        records: Vec<Record>,
        /// Older messages remain.
        more: bool,
    },
    /// The answer to [`NetCommand::Search`], newest first.
    Found {
        /// What was searched for.
        words: String,
        /// Matching messages.
        records: Vec<Record>,
    },
    /// History is not kept (`--no-history`) or the database failed, and why.
    HistoryOff(String),
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
        /// Encrypted or not, and how the peer is known.
        link: Link,
    },
    /// A connection was refused for who the peer is or how it came: a key
    /// that is not the one pinned for its name (loud), plaintext when
    /// encryption is required.
    Refused {
        /// The name it gave, if any.
        name: Option<String>,
        /// Its address.
        addr: Option<SocketAddr>,
        /// Why, for people.
        why: String,
        /// Its key is not the pinned one: `/trust` accepts it.
        key_changed: bool,
    },
    /// The verification code of the session with a peer.
    Verification {
        /// Peer id.
        peer: String,
        /// The code, the same on both screens.
        code: String,
        /// Our fingerprint.
        ours: Fingerprint,
        /// The peer's.
        theirs: Fingerprint,
        /// Marked verified (now or before).
        verified: bool,
    },
    /// The conversation with `from` continues as the one with `into`: the
    /// peer's id changed (a key trusted anew, or the first key of a peer
    /// from before ids were derived from keys). History is merged already.
    Merged {
        /// The old peer id.
        from: String,
        /// The new one.
        into: String,
    },
    /// A line for the conversation with `peer` (the answer to `/trust` and
    /// the like).
    Notice {
        /// Peer id.
        peer: String,
        /// What to say.
        text: String,
    },
    /// A session ended.
    SessionClosed {
        /// Session id.
        sid: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// A text arrived, new (a copy of one already received is not shown
    /// again); the network task has stored and acknowledged it.
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
    /// Texts to this peer are not acknowledged yet and wait for it: they go
    /// out again, in order, as soon as a session with it opens.
    Waiting {
        /// Peer id.
        to: String,
        /// Ids of the waiting texts.
        ids: Vec<String>,
        /// Why they wait, for the conversation.
        reason: String,
    },
    /// Texts to this peer cannot be sent at all (a raw peer that left, no network).
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
    /// The name in its hello.
    name: String,
    handle: SessionHandle,
    /// A raw text peer: nothing is ever acknowledged.
    raw: bool,
    /// How the session is protected.
    link: Link,
}

/// The outcome of dialling.
struct Dialled {
    /// The peer we meant to reach (`None` for `/connect`).
    expected: Option<String>,
    /// What was dialled, for messages.
    target: String,
    /// The addresses tried.
    addrs: Vec<SocketAddr>,
    result: Result<Handshaken, DialError>,
}

/// Texts to one peer that it has not acknowledged yet, oldest first, and
/// when to try reaching it again.
#[derive(Default)]
struct Outgoing {
    texts: VecDeque<Text>,
    /// When to dial again, while the peer is unreachable.
    retry_at: Option<Instant>,
    /// The wait before the next retry after that one.
    backoff: Duration,
}

struct Node {
    hello: Hello,
    policy: Policy,
    /// The key each discovered peer advertised, kept after it leaves: a
    /// retry must not fall back to plaintext.
    fps: HashMap<String, Fingerprint>,
    events: mpsc::Sender<NetEvent>,
    session_tx: mpsc::Sender<SessionEvent>,
    dial_tx: mpsc::Sender<Dialled>,
    sessions: HashMap<SessionId, Live>,
    by_peer: HashMap<String, SessionId>,
    discovered: HashMap<String, Peer>,
    /// Where each peer was last seen, kept after it leaves: retries go there.
    last_addrs: HashMap<String, Vec<SocketAddr>>,
    /// Unacknowledged texts per peer id, retried on every new session.
    outgoing: HashMap<String, Outgoing>,
    /// Peers being dialled.
    dialling: HashSet<String>,
    /// Ids of texts received lately, so a retried text is shown once
    /// (without a history database, which recognises them otherwise).
    seen: Seen,
    /// The history database, if kept.
    store: Option<Store>,
    /// The latest known name of each peer, for the history database.
    names: HashMap<String, String>,
    /// Ids acknowledged in the batch being handled, per peer, to be marked
    /// delivered in the history together.
    acked: HashMap<String, Vec<String>>,
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
        config.policy.clone(),
        session_tx.clone(),
    ));

    let mut node = Node {
        hello: config.hello.clone(),
        policy: config.policy.clone(),
        fps: HashMap::new(),
        events,
        session_tx,
        dial_tx,
        sessions: HashMap::new(),
        by_peer: HashMap::new(),
        discovered: HashMap::new(),
        last_addrs: HashMap::new(),
        outgoing: HashMap::new(),
        dialling: HashSet::new(),
        seen: Seen::default(),
        store: None,
        names: HashMap::new(),
        acked: HashMap::new(),
        discovery: None,
        advert: None,
    };
    node.start_history(config.history.clone()).await;
    let (mut peer_rx, mut rename_rx) = node.start_discovery(&config, port).await;

    loop {
        // The timer runs only while some peer has texts waiting for a retry.
        let retry = node.next_retry();
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(NetCommand::Shutdown) => break,
                Some(cmd) => node.command(cmd, &mut rename_rx).await,
            },
            Some(event) = session_rx.recv() => {
                // Everything already queued, so that a burst of texts is
                // committed to history in one transaction.
                let mut batch = vec![event];
                while batch.len() < EVENT_BATCH {
                    match session_rx.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                node.session_events(batch).await;
            }
            Some(dialled) = dial_rx.recv() => node.dialled(dialled).await,
            Some(event) = recv_opt(&mut peer_rx) => node.peer_event(event).await,
            Some(name) = recv_opt(&mut rename_rx) => {
                let _ = node.events.send(NetEvent::Renamed(name)).await;
            }
            () = sleep_opt(retry) => node.retry_due(),
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

/// Sleeps until `at`; pending forever when there is nothing to wait for.
async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
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
            fp: self.policy.tls.as_ref().map(|tls| tls.fingerprint),
        };
        let started = Discovery::start(&config.interfaces)
            .await
            .and_then(|mut d| {
                let renames = d.advertise(&advert)?;
                let peers = d.browse(Some(self.hello.id.clone()))?;
                Ok((d, peers, renames))
            });
        match started {
            Ok((discovery, peers, renames)) => {
                let state = health_event(discovery.health().await);
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
            NetCommand::LoadHistory { peer, before } => self.load_history(peer, before).await,
            NetCommand::Search(words) => self.search(words).await,
            NetCommand::Trust(peer) => self.trust(peer, false).await,
            NetCommand::TrustAlso(peer) => self.trust(peer, true).await,
            NetCommand::Verify { peer, confirmed } => self.verify(peer, confirmed).await,
            NetCommand::Shutdown => {}
        }
    }

    /// Sends on the peer's session, or keeps the text until one opens.
    async fn send(&mut self, to: String, text: Text) {
        // Stored first: a text typed is never lost, even if we are killed
        // before the peer has it. It goes out at once if a session is open.
        let open = self.by_peer.contains_key(&to);
        let state = if open { State::Sent } else { State::Pending };
        self.record_sent(&to, &text, state).await;
        if let Some(live) = self.by_peer.get(&to).and_then(|sid| self.sessions.get(sid)) {
            if live.raw {
                // A raw peer never acknowledges and cannot be dialled back:
                // the text is written or it is lost, and the user is told.
                if !live.handle.send_text(text.clone()) {
                    self.failed(to, vec![text.id], "the connection has closed")
                        .await;
                }
                return;
            }
            let queued = self.outgoing.entry(to.clone()).or_default();
            queued.texts.push_back(text.clone());
            // If the session is ending, its Closed event comes next and the
            // text goes out again on the next session.
            live.handle.send_text(text);
            return;
        }
        if to.starts_with("raw-") {
            self.failed(to, vec![text.id], "the connection has closed")
                .await;
            return;
        }
        let id = text.id.clone();
        self.outgoing
            .entry(to.clone())
            .or_default()
            .texts
            .push_back(text);
        if !self.dial_peer(&to) {
            self.waiting(&to, vec![id], "waiting: the peer is offline".into())
                .await;
        }
    }

    /// Dials a peer by id if we know where it might be and no dial is
    /// already under way. Returns false when there is no address to try.
    fn dial_peer(&mut self, peer_id: &str) -> bool {
        if self.dialling.contains(peer_id) {
            return true;
        }
        let (target, nick, addrs) = match self.discovered.get(peer_id) {
            Some(peer) => (peer.name.clone(), peer.nick.clone(), peer.addrs.clone()),
            None => match self.last_addrs.get(peer_id) {
                Some(addrs) => {
                    let nick = self.names.get(peer_id).cloned().unwrap_or_default();
                    (peer_id.to_owned(), nick, addrs.clone())
                }
                None => return false,
            },
        };
        // TLS if it ever advertised a key; that key required only while
        // the advertisement is live (see `Expect`).
        let fp = self.fps.get(peer_id).copied();
        let advertised = self.discovered.get(peer_id).and_then(|p| p.fp);
        let reach = match self.policy.reach(&nick, peer_id, fp) {
            Ok(reach) => reach,
            Err(why) => {
                let tx = self.dial_tx.clone();
                let expected = Some(peer_id.to_owned());
                tokio::spawn(async move {
                    let result = Err(DialError::NotDialled(why));
                    let _ = tx
                        .send(Dialled {
                            expected,
                            target,
                            addrs,
                            result,
                        })
                        .await;
                });
                self.dialling.insert(peer_id.to_owned());
                return true;
            }
        };
        self.dialling.insert(peer_id.to_owned());
        let expect = Expect { fp: advertised };
        self.dial(Some(peer_id.to_owned()), target, addrs, expect, reach);
        true
    }

    fn dial(
        &self,
        expected: Option<String>,
        target: String,
        addrs: Vec<SocketAddr>,
        expect: Expect,
        reach: Reach,
    ) {
        let hello = self.hello.clone();
        let policy = self.policy.clone();
        let tx = self.dial_tx.clone();
        tokio::spawn(async move {
            let result = dial(&addrs, &hello, &policy, &expect, reach).await;
            let _ = tx
                .send(Dialled {
                    expected,
                    target,
                    addrs,
                    result,
                })
                .await;
        });
    }

    /// `/connect HOST:PORT`: resolve, then dial like a discovered peer.
    fn dial_target(&self, target: String) {
        let hello = self.hello.clone();
        let policy = self.policy.clone();
        let tx = self.dial_tx.clone();
        tokio::spawn(async move {
            let mut tried = Vec::new();
            let result = match tokio::net::lookup_host(target.as_str()).await {
                Ok(addrs) => {
                    tried = addrs.collect();
                    let reach = policy.reach_address();
                    dial(&tried, &hello, &policy, &Expect::default(), reach).await
                }
                Err(e) => Err(DialError::NotDialled(format!(
                    "cannot resolve {target}: {e}"
                ))),
            };
            let _ = tx
                .send(Dialled {
                    expected: None,
                    target,
                    addrs: tried,
                    result,
                })
                .await;
        });
    }

    async fn dialled(&mut self, dialled: Dialled) {
        if let Some(expected) = &dialled.expected {
            self.dialling.remove(expected);
        }
        match dialled.result {
            Ok(session) => {
                let got = session.peer.id.clone();
                if let Some(expected) = &dialled.expected
                    && *expected != got
                {
                    // Someone else answers at that address now: do not hand
                    // them our texts; they wait for the right peer.
                    let why = format!("{} answered as another peer", dialled.target);
                    self.unreachable(expected.clone(), why).await;
                }
                // Where to retry if this session drops (also for `/connect`,
                // whose peers discovery may never report).
                self.last_addrs.insert(got, dialled.addrs);
                session.start(next_session_id(), self.session_tx.clone());
                // Waiting texts go out when the session's Opened event arrives.
            }
            Err(error) => {
                let reason = if error.is_untrusted() {
                    self.refused_dial(&dialled.target, &error).await;
                    // The warning says it all, with both keys.
                    "refused for its key (see the warning)".to_owned()
                } else {
                    error.to_string()
                };
                self.dial_failed(dialled.expected, dialled.target, reason)
                    .await;
            }
        }
    }

    async fn dial_failed(&mut self, expected: Option<String>, target: String, reason: String) {
        {
            match expected {
                Some(peer_id) => {
                    if let (Some(discovery), Some(peer)) =
                        (&self.discovery, self.discovered.get(&peer_id))
                    {
                        discovery.verify(peer);
                    }
                    self.unreachable(peer_id, reason).await;
                }
                None => {
                    let _ = self
                        .events
                        .send(NetEvent::ConnectFailed { target, reason })
                        .await;
                }
            }
        }
    }

    /// The peer could not be reached: its texts wait, and a retry is scheduled.
    async fn unreachable(&mut self, peer_id: String, reason: String) {
        let Some(out) = self.outgoing.get_mut(&peer_id) else {
            return;
        };
        if out.texts.is_empty() {
            return;
        }
        out.backoff = (out.backoff * 2).clamp(RETRY_FIRST, RETRY_MAX);
        out.retry_at = Some(Instant::now() + out.backoff);
        let ids = out.texts.iter().map(|t| t.id.clone()).collect();
        self.waiting(&peer_id, ids, format!("waiting: {reason}; retrying"))
            .await;
    }

    /// When the next retry is due, if any.
    fn next_retry(&self) -> Option<Instant> {
        self.outgoing.values().filter_map(|o| o.retry_at).min()
    }

    /// Dials every peer whose retry is due.
    fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .outgoing
            .iter_mut()
            .filter(|(_, o)| o.retry_at.is_some_and(|at| at <= now))
            .map(|(id, o)| {
                o.retry_at = None;
                id.clone()
            })
            .collect();
        for peer_id in due {
            if self.by_peer.contains_key(&peer_id) {
                continue;
            }
            self.dial_peer(&peer_id);
        }
    }

    async fn waiting(&self, to: &str, ids: Vec<String>, reason: String) {
        let _ = self
            .events
            .send(NetEvent::Waiting {
                to: to.to_owned(),
                ids,
                reason,
            })
            .await;
    }

    async fn failed(&self, to: String, ids: Vec<String>, reason: &str) {
        let _ = self
            .events
            .send(NetEvent::SendFailed {
                to,
                ids,
                reason: reason.to_owned(),
            })
            .await;
    }

    async fn session_event(&mut self, event: SessionEvent) {
        let out = match event {
            SessionEvent::Refused {
                addr,
                name,
                why,
                key_changed,
            } => NetEvent::Refused {
                name,
                addr: Some(addr),
                why,
                key_changed,
            },
            SessionEvent::Opened {
                sid,
                peer,
                addr,
                handle,
                raw,
                link,
            } => {
                if let Link::Authenticated { first: true, .. } = link {
                    self.first_contact(&peer).await;
                }
                let mut resent = Vec::new();
                if !raw && let Some(out) = self.outgoing.get_mut(&peer.id) {
                    // Everything not yet acknowledged, in order; the peer
                    // drops what it already has.
                    for text in &out.texts {
                        handle.send_text(text.clone());
                        resent.push(text.id.clone());
                    }
                    out.retry_at = None;
                    out.backoff = Duration::ZERO;
                }
                self.mark(&peer.id, resent, State::Sent).await;
                let live = Live {
                    peer_id: peer.id.clone(),
                    name: peer.name.clone(),
                    handle,
                    raw,
                    link,
                };
                self.names.insert(peer.id.clone(), peer.name.clone());
                self.by_peer.insert(peer.id.clone(), sid);
                self.sessions.insert(sid, live);
                NetEvent::SessionOpened {
                    sid,
                    peer,
                    addr,
                    raw,
                    link,
                }
            }
            SessionEvent::Text { sid, text } => {
                self.texts_arrived(vec![(sid, text)]).await;
                return;
            }
            SessionEvent::Acked { sid, id } => {
                if let Some(live) = self.sessions.get(&sid) {
                    // Stored at the end of the batch, one job per peer.
                    let acked = self.acked.entry(live.peer_id.clone()).or_default();
                    acked.push(id.clone());
                }
                if let Some(live) = self.sessions.get(&sid)
                    && let Some(out) = self.outgoing.get_mut(&live.peer_id)
                {
                    if let Some(at) = out.texts.iter().position(|t| t.id == id) {
                        out.texts.remove(at);
                    }
                    if out.texts.is_empty() {
                        self.outgoing.remove(&live.peer_id);
                    }
                }
                NetEvent::Acked { sid, id }
            }
            SessionEvent::Closed { sid, reason } => {
                if let Some(live) = self.sessions.remove(&sid) {
                    if self.by_peer.get(&live.peer_id) == Some(&sid) {
                        self.by_peer.remove(&live.peer_id);
                    }
                    // Gone without a goodbye (killed, link cut): let discovery
                    // confirm it, so that the peer list does not wait for the TTL.
                    let vanished = !matches!(reason, CloseReason::Bye | CloseReason::Local);
                    if vanished
                        && let (Some(discovery), Some(peer)) =
                            (&self.discovery, self.discovered.get(&live.peer_id))
                    {
                        discovery.verify(peer);
                    }
                    self.resend_or_wait(&live.peer_id, &reason).await;
                }
                NetEvent::SessionClosed { sid, reason }
            }
        };
        let _ = self.events.send(out).await;
    }

    /// After a session of `peer_id` ended: its unacknowledged texts go out on
    /// another open session, or wait for a retry.
    async fn resend_or_wait(&mut self, peer_id: &str, reason: &CloseReason) {
        let Some(out) = self.outgoing.get_mut(peer_id) else {
            return;
        };
        if let Some(live) = self.by_peer.get(peer_id).and_then(|s| self.sessions.get(s)) {
            for text in &out.texts {
                live.handle.send_text(text.clone());
            }
            return;
        }
        out.backoff = RETRY_FIRST;
        out.retry_at = Some(Instant::now() + RETRY_FIRST);
        let ids = out.texts.iter().map(|t| t.id.clone()).collect();
        self.waiting(peer_id, ids, format!("waiting: {reason}"))
            .await;
    }

    async fn peer_event(&mut self, event: PeerEvent) {
        let out = match event {
            PeerEvent::Up(peer) => {
                if let Some(fp) = peer.fp {
                    self.fps.insert(peer.id.clone(), fp);
                }
                self.discovered.insert(peer.id.clone(), peer.clone());
                self.last_addrs.insert(peer.id.clone(), peer.addrs.clone());
                if self.outgoing.contains_key(&peer.id) && !self.by_peer.contains_key(&peer.id) {
                    // It is back: deliver what waits for it now.
                    self.dial_peer(&peer.id);
                }
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
