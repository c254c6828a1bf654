//! The control socket: how `lantalk send` hands its texts to the lantalk
//! already running on the same data directory (the chat screen or
//! `listen`), the way tmux clients talk to their server. The texts then
//! show up in that chat screen, go out on its sessions and land in its one
//! history.
//!
//! ```text
//! DATA_DIR/control.sock   a Unix stream socket, mode 0600, in the 0700 data
//!                         directory; only a process of the same user is served
//!
//! +----------------------+----------------------------------+
//! | length: u32, BE      | payload: `length` bytes of JSON  |
//! +----------------------+----------------------------------+
//!   (tokio-util's LengthDelimitedCodec, at most MAX_FRAME bytes)
//!
//! client → node   NetCommand: Connect, Send, GiveUp (Shutdown: the client is done)
//! node → client   NetEvent:   SessionOpened / ConnectFailed (answering its Connect),
//!                             then Acked, Waiting, SendFailed, SessionClosed
//!                             of the peer that Connect reached
//! ```
//!
//! The vocabulary is [`NetCommand`]/[`NetEvent`] itself, so `send` drives a
//! node in its own process or the one behind this socket with the same
//! code ([`connect`] returns what [`super::node::spawn`] returns).
//!
//! Only the lantalk that holds the data directory's lock binds the socket
//! (one listening lantalk per directory), so a socket file found there at
//! start was left by one that died: it is replaced. A client that finds
//! the file but nobody accepting (refused) runs its own node, as without.
//! Anything else a client sends (another command, bad JSON, an oversized
//! frame) ends that client's connection, never the node.

use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::{NetCommand, NetEvent};
use crate::protocol::{MAX_FRAME_LEN, text_fits_in_frame};

/// The socket's name inside the data directory.
pub const SOCKET: &str = "control.sock";

/// The largest frame either side accepts: a command carries texts of at
/// most [`MAX_FRAME_LEN`] each, a few per frame (see [`send_chunks`]).
const MAX_FRAME: usize = 4 * MAX_FRAME_LEN;

/// How many events wait for one client; a client that lets more pile up
/// is not reading and is disconnected (the node never waits for it).
pub(crate) const CLIENT_EVENTS: usize = 4096;

/// At most this many clients at once (each `lantalk send` is one).
const MAX_CLIENTS: usize = 64;

/// Tells a client apart in the node.
pub(crate) type ClientId = u64;

/// What the control socket's tasks tell the node.
#[derive(Debug)]
pub(crate) enum Control {
    /// A client connected; its events go to `events`.
    Joined {
        /// Who.
        client: ClientId,
        /// Where its events go (bounded: [`CLIENT_EVENTS`]).
        events: mpsc::Sender<NetEvent>,
    },
    /// A command of a client: `Connect`, `Send` or `GiveUp` only.
    Command {
        /// Whose.
        client: ClientId,
        /// What.
        cmd: NetCommand,
    },
    /// The client is gone.
    Left(ClientId),
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// The socket bound by the node: removed again when dropped.
pub(crate) struct Bound {
    listener: UnixListener,
    path: PathBuf,
    /// The user that may connect: the socket file's owner, i.e. us.
    owner: u32,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket at `path`. The caller holds the data
/// directory's lock, so whatever is there was left by a lantalk that
/// died: it is removed first.
pub(crate) fn bind(path: &Path) -> io::Result<Bound> {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!("removed a stale {}", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    // The directory is 0700 already; the socket is private on its own too.
    let owner = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::metadata(path))
        .map(|m| m.uid())
        .inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })?;
    Ok(Bound {
        listener,
        path: path.to_owned(),
        owner,
    })
}

/// Accepts clients until the node stops (`node` closes). The socket file
/// is removed on the way out.
pub(crate) async fn serve(bound: Bound, node: mpsc::Sender<Control>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut next: ClientId = 0;
    loop {
        let stream = tokio::select! {
            () = node.closed() => break,
            accepted = bound.listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::debug!("control socket: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let uid = stream.peer_cred().map(|c| c.uid());
        if uid.as_ref().ok() != Some(&bound.owner) {
            tracing::info!("control socket: refused a client of another user ({uid:?})");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::info!("control socket: {MAX_CLIENTS} clients already; refused one");
            continue;
        };
        next += 1;
        let node = node.clone();
        tokio::spawn(async move {
            client(stream, next, node).await;
            drop(slot);
        });
    }
}

/// One client: its commands to the node, the node's events to it; a
/// reader and a writer side by side, whichever ends first ends both.
async fn client(stream: UnixStream, id: ClientId, node: mpsc::Sender<Control>) {
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::new(read, codec());
    let mut out = FramedWrite::new(write, codec());
    let (tx, mut rx) = mpsc::channel(CLIENT_EVENTS);
    let joined = Control::Joined {
        client: id,
        events: tx,
    };
    if node.send(joined).await.is_err() {
        return;
    }
    let commands = async {
        while let Some(Ok(frame)) = frames.next().await {
            let cmd = match serde_json::from_slice::<NetCommand>(&frame) {
                Ok(NetCommand::Shutdown) => return,
                Ok(cmd) if allowed(&cmd) => cmd,
                Ok(_) => {
                    tracing::info!("control socket: a command clients may not give; closed");
                    return;
                }
                Err(e) => {
                    tracing::info!("control socket: bad command ({e}); closed");
                    return;
                }
            };
            if node
                .send(Control::Command { client: id, cmd })
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let events = async {
        while let Some(event) = rx.recv().await {
            let Ok(json) = serde_json::to_vec(&event) else {
                continue;
            };
            if out.send(Bytes::from(json)).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = commands => {}
        () = events => {}
    }
    let _ = node.send(Control::Left(id)).await;
}

/// What a client may ask: to reach a peer, send it texts (each fitting in
/// a frame, as `send` checks them) and give up on them.
fn allowed(cmd: &NetCommand) -> bool {
    match cmd {
        NetCommand::Connect(_) | NetCommand::GiveUp { .. } => true,
        NetCommand::Send { texts, .. } => texts.iter().all(text_fits_in_frame),
        _ => false,
    }
}

/// What [`super::node::spawn`] returns: commands in, events out, and a
/// task that ends once the client is done.
pub type Handle = (
    mpsc::UnboundedSender<NetCommand>,
    mpsc::Receiver<NetEvent>,
    tokio::task::JoinHandle<()>,
);

/// Connects to the lantalk running on the data directory `dir`, if one
/// is: `None` when there is no socket, or only a stale one (nobody
/// accepting), or it cannot be used (said in the log): run a node of your
/// own then.
pub async fn connect(dir: &Path) -> Option<Handle> {
    let path = dir.join(SOCKET);
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::info!("not using {}: {e}", path.display());
            }
            return None;
        }
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::channel(1024);
    let task = tokio::spawn(remote(stream, cmd_rx, event_tx));
    Some((cmd_tx, event_rx, task))
}

/// The client's side: commands to the socket, events from it, until
/// `Shutdown` (or the commands' sender is dropped), or the node goes.
async fn remote(
    stream: UnixStream,
    mut cmds: mpsc::UnboundedReceiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
) {
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::new(read, codec());
    let mut out = FramedWrite::new(write, codec());
    let commands = async {
        while let Some(cmd) = cmds.recv().await {
            let frames = match cmd {
                NetCommand::Shutdown => return,
                NetCommand::Send { to, texts } => send_chunks(to, texts),
                cmd => vec![cmd],
            };
            for cmd in frames {
                let Ok(json) = serde_json::to_vec(&cmd) else {
                    continue;
                };
                if out.feed(Bytes::from(json)).await.is_err() {
                    return;
                }
            }
            if SinkExt::<Bytes>::flush(&mut out).await.is_err() {
                return;
            }
        }
    };
    let incoming = async {
        while let Some(Ok(frame)) = frames.next().await {
            match serde_json::from_slice::<NetEvent>(&frame) {
                Ok(event) => {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::info!("control socket: bad event ({e})");
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = commands => {}
        () = incoming => {}
    }
}

/// One `Send` as several, each well under [`MAX_FRAME`] (a text is at
/// most [`MAX_FRAME_LEN`]).
fn send_chunks(to: crate::peer::PeerId, texts: Vec<crate::protocol::Text>) -> Vec<NetCommand> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for text in texts {
        // JSON escapes may grow a body up to six times (`\u0001`), but
        // every text fits in a protocol frame once encoded.
        let size = (text.body.len() * 6 + text.id.len()).min(MAX_FRAME_LEN) + 64;
        if !chunk.is_empty() && bytes + size > MAX_FRAME / 2 {
            chunks.push(NetCommand::Send {
                to: to.clone(),
                texts: std::mem::take(&mut chunk),
            });
            bytes = 0;
        }
        bytes += size;
        chunk.push(text);
    }
    if !chunk.is_empty() {
        chunks.push(NetCommand::Send { to, texts: chunk });
    }
    chunks
}
