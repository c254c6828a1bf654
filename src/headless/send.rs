//! `lantalk send PEER [TEXT]...`: find the peer, connect, send every message
//! pipelined, and succeed only once all are acknowledged.
//!
//! Unless `--no-history`, every text is recorded in the history database of
//! the data directory: delivered once acknowledged, failed when `send`
//! gives up on it, and as sent meanwhile if its ack takes longer than
//! [`ACK_GRACE`]. A task of its own writes these in batches, so the
//! database does not hold the texts back; `send` exits once they are
//! committed. (A `send` killed with texts in flight may not have recorded
//! those: its exit status did not promise them either.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Exit, Failure, identity_of, secs, start_discovery};
use crate::cli::Global;
use crate::identity;
use crate::net::discovery::Lookup;
use crate::net::{self, CloseReason, Expect, Link, Reach, SessionEvent, SessionHandle, now_ms};
use crate::protocol::{Hello, MAX_FRAME_LEN, Text, text_fits_in_frame};
use crate::sanitize::escape_for_terminal;
use crate::store::{PeerRef, State, Store, StoreError};

/// How long `send` waits for outstanding acks without any progress.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How many texts `send` keeps in flight before waiting for acks.
const SEND_WINDOW: usize = 4096;

/// How long to wait for the peer to close after our bye.
const BYE_WAIT: Duration = Duration::from_secs(2);

/// How many notes for the history may wait before `send` waits for the
/// database (it only does when the database falls this far behind).
const HISTORY_QUEUE: usize = 16_384;

/// A text not acknowledged within this time is recorded as sent (and
/// updated when its ack comes); one acknowledged sooner is recorded once,
/// as delivered.
const ACK_GRACE: Duration = Duration::from_millis(500);

/// How long `send` waits, at the end, for the history to be written.
const HISTORY_WAIT: Duration = Duration::from_secs(10);

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
pub(super) async fn send(
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
    let me = identity_of(global, false)?;
    let policy = net::Policy::of(&me, global.require_encryption)?;
    let hello = me.hello;

    let (addrs, found) = match direct_addrs(peer).await? {
        Some(addrs) => (addrs, None),
        None => {
            let discovery = start_discovery(global).await?;
            match discovery
                .find(peer, timeout)
                .await
                .map_err(Failure::from_discovery)?
            {
                Lookup::Found(found) => {
                    if let Some(problem) = &found.problem {
                        return Err(Failure::new(Exit::Delivery, anyhow!("{peer}: {problem}")));
                    }
                    (found.addrs.clone(), Some((discovery, found)))
                }
                Lookup::Unusable(ignored) => {
                    return Err(Failure::new(
                        Exit::Delivery,
                        anyhow!(
                            "{peer:?} is advertised on {} but cannot be used: {}",
                            escape_for_terminal(&ignored.host, false),
                            ignored.why
                        ),
                    ));
                }
                Lookup::NotFound => {
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
    let (reach, expect) = match &found {
        None => (policy.reach_address(), Expect::default()),
        Some((_, found)) => {
            let reach = policy
                .reach(&found.nick, &found.id, found.fp)
                .map_err(|why| Failure::new(Exit::Delivery, anyhow!("{why}")))?;
            (reach, Expect { fp: found.fp })
        }
    };
    let mut dial = Dial {
        addrs,
        hello,
        policy,
        expect,
        reach,
    };
    let (session, events) = match dial.open().await {
        Ok(opened) => opened,
        Err(e) => {
            if let Some((discovery, found)) = &found {
                discovery.verify(found);
            }
            return Err(Failure::new(Exit::Delivery, anyhow!("{peer}: {e}")));
        }
    };
    drop(found);
    if let Link::Authenticated { fp, .. } = session.link {
        // Reconnecting after a drop must reach the same key, never less.
        dial.reach = Reach::Tls;
        dial.expect.fp = Some(fp);
    }
    let peer_name = escape_for_terminal(&session.name, false).into_owned();

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
    let store = open_history(global, &me.dir);
    if let (Some(store), Link::Authenticated { first: true, .. }, Some(known)) =
        (&store, session.link, &dial.policy.known)
    {
        net::policy::carry_over_history(store, known, &session.name, &session.id).await;
    }
    let history = store.map(|store| {
        History::start(
            store,
            PeerRef {
                key: session.id.clone(),
                name: session.name.clone(),
                raw: false,
            },
        )
    });
    let result = pump(&dial, session, events, lines, &peer_name, history.as_ref()).await;
    if let Some(history) = history
        && let Err(e) = history.finish().await
    {
        status!("{e}; this send is not completely recorded in the history");
    }
    result
}

/// The history database for `send`, unless `--no-history`. `send` works
/// without it: a data directory where it cannot be created goes without
/// saying (as for the peer id); a broken file is told on stderr.
fn open_history(global: &Global, dir: &std::path::Path) -> Option<Store> {
    if global.no_history {
        return None;
    }
    match Store::open(dir) {
        Ok(store) => Some(store),
        Err(e @ StoreError::Unwritable { .. }) => {
            tracing::info!("{e}; sending without history");
            None
        }
        Err(e) => {
            status!("{e}; sending without recording the texts in the history");
            None
        }
    }
}

/// What happened to a text, for the history.
enum Note {
    /// Written to the session.
    Wrote(Text),
    /// Acknowledged.
    Acked(String),
    /// Given up on.
    Failed(Vec<String>),
}

/// Records `send`'s texts in the history from a task of its own, in
/// batches: everything noted while the previous batch was being committed.
struct History {
    notes: mpsc::Sender<Note>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl History {
    fn start(store: Store, peer: PeerRef) -> History {
        let (notes, queue) = mpsc::channel(HISTORY_QUEUE);
        History {
            notes,
            task: tokio::spawn(record(store, peer, queue)),
        }
    }

    async fn note(&self, note: Note) {
        // If the task has failed, `finish` says why.
        let _ = self.notes.send(note).await;
    }

    /// Waits for everything noted to be committed.
    async fn finish(self) -> Result<(), StoreError> {
        drop(self.notes);
        match tokio::time::timeout(HISTORY_WAIT, self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(StoreError::Closed),
        }
    }
}

/// The recording task. A text is stored once its fate is known: delivered
/// (acked) or failed, or as sent when [`ACK_GRACE`] passes without either;
/// in the order written. Storing each text once, in its final state, is
/// half the work of storing it as sent and then updating it, and most
/// texts are acknowledged within milliseconds.
async fn record(
    store: Store,
    peer: PeerRef,
    mut queue: mpsc::Receiver<Note>,
) -> Result<(), StoreError> {
    // Written, not stored yet, oldest first; and the fates known for them.
    let mut waiting: VecDeque<(Text, Instant)> = VecDeque::new();
    let mut fates: HashMap<String, State> = HashMap::new();
    // Stored as sent, with no fate yet.
    let mut unsettled: HashSet<String> = HashSet::new();
    let mut notes = Vec::new();
    let mut open = true;
    while open || !waiting.is_empty() {
        if open {
            let received = match waiting.front() {
                None => queue.recv_many(&mut notes, HISTORY_QUEUE).await,
                Some((_, at)) => tokio::time::timeout_at(
                    *at + ACK_GRACE,
                    queue.recv_many(&mut notes, HISTORY_QUEUE),
                )
                .await
                .unwrap_or(usize::MAX),
            };
            open = received > 0;
        }
        // Fates of texts already stored: updates.
        let (mut delivered, mut failed) = (Vec::new(), Vec::new());
        for note in notes.drain(..) {
            let (ids, state) = match note {
                Note::Wrote(text) => {
                    waiting.push_back((text, Instant::now()));
                    continue;
                }
                Note::Acked(id) => (vec![id], State::Delivered),
                Note::Failed(ids) => (ids, State::Failed),
            };
            for id in ids {
                if !unsettled.remove(&id) {
                    fates.insert(id, state);
                } else if state == State::Delivered {
                    delivered.push(id);
                } else {
                    failed.push(id);
                }
            }
        }
        // Texts whose fate is known, or that waited long enough, in order
        // and in runs of one state.
        let now = Instant::now();
        let mut runs: Vec<(State, Vec<Text>)> = Vec::new();
        while let Some((text, at)) = waiting.front() {
            let state = match fates.remove(&text.id) {
                Some(state) => state,
                None if !open || now >= *at + ACK_GRACE => {
                    unsettled.insert(text.id.clone());
                    State::Sent
                }
                None => break,
            };
            let Some((text, _)) = waiting.pop_front() else {
                break;
            };
            match runs.last_mut() {
                Some((last, run)) if *last == state => run.push(text),
                _ => runs.push((state, vec![text])),
            }
        }
        for (state, run) in runs {
            store.sent_batch(peer.clone(), run, state).await?;
        }
        store
            .set_state(peer.key.clone(), delivered, State::Delivered)
            .await?;
        store
            .set_state(peer.key.clone(), failed, State::Failed)
            .await?;
    }
    Ok(())
}

/// Where the peer is and who we are: enough to connect again after a drop.
struct Dial {
    addrs: Vec<SocketAddr>,
    hello: Hello,
    policy: net::Policy,
    expect: Expect,
    reach: Reach,
}

/// An open session: its handle and the peer's name.
struct Open {
    handle: SessionHandle,
    name: String,
    id: String,
    link: Link,
}

impl Dial {
    async fn open(&self) -> Result<(Open, mpsc::Receiver<SessionEvent>), String> {
        let session = net::dial(
            &self.addrs,
            &self.hello,
            &self.policy,
            &self.expect,
            self.reach,
        )
        .await
        .map_err(|e| e.to_string())?;
        let name = session.peer.name.clone();
        let id = session.peer.id.clone();
        let link = session.link;
        let (events_tx, events) = mpsc::channel(1024);
        let handle = session.start(net::next_session_id(), events_tx);
        Ok((
            Open {
                handle,
                name,
                id,
                link,
            },
            events,
        ))
    }

    /// Connects again after a drop, trying until `deadline`; the same peer
    /// (by id) must answer.
    async fn reopen(
        &self,
        peer_id: &str,
        deadline: Instant,
    ) -> Result<(Open, mpsc::Receiver<SessionEvent>), String> {
        let mut wait = Duration::from_millis(250);
        loop {
            let why = match self.open().await {
                Ok((open, _)) if open.id != peer_id => "another peer answers there now".into(),
                Ok(opened) => return Ok(opened),
                Err(e) => e,
            };
            if Instant::now() + wait >= deadline {
                return Err(why);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
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

/// Sends every line as a text, pipelined, and returns once all are acked.
/// When the connection drops, it connects again and sends what is not yet
/// acknowledged once more, in order (the receiver drops copies by id).
async fn pump(
    dial: &Dial,
    mut session: Open,
    mut events: mpsc::Receiver<SessionEvent>,
    mut lines: mpsc::Receiver<String>,
    peer_name: &str,
    history: Option<&History>,
) -> Result<(), Failure> {
    let prefix = identity::random_hex::<8>()?;
    let mut in_flight: VecDeque<Text> = VecDeque::new();
    let mut sent = 0u64;
    let mut too_long = 0u64;
    let mut input_done = false;
    let mut deadline = Instant::now() + ACK_TIMEOUT;
    let closed = loop {
        if input_done && in_flight.is_empty() {
            session.handle.bye();
            // Wait (briefly) for the peer to close in turn.
            let _ = tokio::time::timeout(BYE_WAIT, async {
                while let Some(ev) = events.recv().await {
                    if matches!(ev, SessionEvent::Closed { .. }) {
                        break;
                    }
                }
            })
            .await;
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
                Some(SessionEvent::Acked { id, .. }) => {
                    let at = if in_flight.front().is_some_and(|t| t.id == id) {
                        Some(0)
                    } else {
                        in_flight.iter().position(|t| t.id == id)
                    };
                    if let Some(at) = at {
                        in_flight.remove(at);
                        deadline = Instant::now() + ACK_TIMEOUT;
                        if let Some(history) = history {
                            history.note(Note::Acked(id)).await;
                        }
                    }
                }
                Some(SessionEvent::Closed { reason, .. }) => {
                    if matches!(reason, CloseReason::Protocol(_) | CloseReason::PeerError { .. }) {
                        // The peer refused what we sent: sending it again would not help.
                        break reason.to_string();
                    }
                    status!("{peer_name}: {reason}; connecting again");
                    match dial.reopen(&session.id, Instant::now() + ACK_TIMEOUT).await {
                        Ok((open, new_events)) => {
                            deadline = Instant::now() + ACK_TIMEOUT;
                            for text in &in_flight {
                                open.handle.send_text(text.clone());
                            }
                            session = open;
                            events = new_events;
                        }
                        Err(why) => break format!("{reason}; connecting again failed: {why}"),
                    }
                }
                None => break CloseReason::Eof.to_string(),
                // Texts sent to us are not shown by `send`, so they are not acknowledged.
                Some(_) => {}
            },
            line = lines.recv(), if !input_done && in_flight.len() < SEND_WINDOW => match line {
                Some(body) => {
                    let text = Text { id: format!("{prefix}-{}", sent + 1), ts: now_ms(), body };
                    if !text_fits_in_frame(&text) {
                        too_long += 1;
                        status!("{}", too_long_message(&text.body));
                        continue;
                    }
                    sent += 1;
                    if in_flight.is_empty() {
                        deadline = Instant::now() + ACK_TIMEOUT;
                    }
                    session.handle.send_text(text.clone());
                    if let Some(history) = history {
                        history.note(Note::Wrote(text.clone())).await;
                    }
                    in_flight.push_back(text);
                }
                None => input_done = true,
            },
            () = tokio::time::sleep_until(deadline), if !in_flight.is_empty() => {
                break format!("no acknowledgement for {} s", ACK_TIMEOUT.as_secs());
            }
        }
    };
    if let Some(history) = history {
        history
            .note(Note::Failed(
                in_flight.iter().map(|t| t.id.clone()).collect(),
            ))
            .await;
    }
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
