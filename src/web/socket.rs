//! The WebSocket at `/ws`: a browser as a peer (`PeerKind::Web`). Its
//! frames become the same session events a native session produces, so the
//! node stores, acknowledges, dedupes and queues for it as for any peer.
//!
//! axum's `ws` (tokio-tungstenite on hyper's upgrade) is used because it is
//! the upgrade the router already speaks: the handshake, masking, ping/pong
//! and the message size limit come from a maintained implementation, and
//! the upgrade is one more extractor on the same route table.
//!
//! The protocol (JSON text frames, `type` first) is in `assets/PROTOCOL.md`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Conn, MAX_NAME, Shared, refuse, same_origin, token};
use crate::net::{CloseReason, Link, SessionEvent, SessionHandle};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::{MAX_FRAME_LEN, Message, Text};
use crate::store::State as Delivery;

/// The first frame (`join`) must come within this long.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A quiet WebSocket is pinged this often…
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// …and closed after this long without a frame from the browser.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);

/// At most this many messages of the conversation are sent on joining.
pub const HISTORY: usize = 200;

/// A WebSocket message is at most a frame's size, as a native text.
pub const MAX_MESSAGE: usize = MAX_FRAME_LEN;

/// The WebSocket's read buffer, which tungstenite fills with zeros up to
/// its size (its default, 128 KiB, made each idle browser cost ~150 KiB of
/// memory; a chat text is a few hundred bytes, and a larger frame still
/// grows the buffer to its length).
const READ_BUFFER: usize = 8 * 1024;

/// Messages for the browser not yet written (beyond, it reads too slowly
/// and its session ends: what it missed is sent again on reconnecting).
const QUEUE: usize = 1024;

/// Close code for a refusal (policy violation).
const POLICY: u16 = 1008;

/// What a browser sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum FromBrowser {
    Join {
        id: String,
        name: String,
        #[serde(default)]
        token: Option<String>,
    },
    Text {
        id: String,
        body: String,
        #[serde(default)]
        ts: u64,
    },
    Ack {
        ids: Vec<String>,
    },
}

/// `GET /ws`: the upgrade, for pages of this origin only (another site open
/// in the phone's browser must not talk to lantalk).
pub(super) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    // Browsers always send Origin on a WebSocket; a client that sends none
    // is no browser, and so no other site's page.
    if let Some(origin) = text(header::ORIGIN)
        && !text(header::HOST).is_some_and(|host| same_origin(origin, host))
    {
        return refuse(StatusCode::FORBIDDEN, "foreign origin");
    }
    let agent = text(header::USER_AGENT).unwrap_or_default().to_owned();
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move { run(socket, shared, conn, agent).await })
}

/// A browser that joined.
struct Joined {
    id: String,
    name: String,
}

async fn send(socket: &mut WebSocket, value: serde_json::Value) -> bool {
    socket
        .send(Frame::Text(value.to_string().into()))
        .await
        .is_ok()
}

async fn close(socket: &mut WebSocket, code: u16) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    let _ = socket.send(Frame::Close(Some(frame))).await;
}

/// An error for the browser, then the close.
async fn fail(socket: &mut WebSocket, code: &str, message: &str) {
    send(
        socket,
        json!({"type": "error", "code": code, "message": message}),
    )
    .await;
    close(socket, POLICY).await;
}

async fn run(mut socket: WebSocket, shared: Arc<Shared>, conn: Conn, agent: String) {
    let Some(joined) = join(&mut socket, &shared, &conn, agent).await else {
        return;
    };
    let config = &shared.config;
    let welcome = json!({
        "type": "welcome", "name": config.name, "fp": config.fingerprint, "you": joined.name,
    });
    if !send(&mut socket, welcome).await {
        return;
    }
    let peer = PeerId::new(joined.id.clone());
    let messages = match &config.history {
        Some(store) => match store.page(peer.clone(), None, HISTORY).await {
            Ok((records, _)) => records
                .into_iter()
                .map(|r| {
                    let state = match r.state {
                        Delivery::Pending | Delivery::Sent => "sending",
                        Delivery::Delivered => "delivered",
                        Delivery::Failed => "failed",
                    };
                    json!({"id": r.id, "mine": !r.outgoing, "body": r.body, "ts": r.ts, "state": state})
                })
                .collect(),
            Err(e) => {
                tracing::warn!("no history for a browser: {e}");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    if !send(
        &mut socket,
        json!({"type": "history", "messages": messages}),
    )
    .await
    {
        return;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let sid = crate::net::next_session_id();
    let opened = SessionEvent::Opened {
        sid,
        peer: PeerInfo {
            id: peer,
            name: joined.name,
            kind: PeerKind::Web,
        },
        addr: conn.addr,
        handle: SessionHandle::channel(tx),
        link: Link::Plain,
        dialled: false,
    };
    if conn.events.send(opened).await.is_err() {
        return;
    }
    let reason = chat(&mut socket, sid, &conn.events, rx).await;
    let _ = conn.events.send(SessionEvent::Closed { sid, reason }).await;
}

/// Waits for the `join` and decides: the token, a browser let in before,
/// or (without a token) the user's answer.
async fn join(
    socket: &mut WebSocket,
    shared: &Shared,
    conn: &Conn,
    agent: String,
) -> Option<Joined> {
    let first = match tokio::time::timeout(JOIN_TIMEOUT, socket.recv()).await {
        Err(_) => {
            fail(socket, "join_timeout", "no join within 10 s").await;
            return None;
        }
        Ok(Some(Ok(Frame::Text(text)))) => text,
        Ok(Some(Err(e))) => {
            fail(socket, "too_large", &e.to_string()).await;
            return None;
        }
        Ok(_) => {
            fail(socket, "bad_join", "the first frame must be a join").await;
            return None;
        }
    };
    let Ok(FromBrowser::Join { id, name, token }) = serde_json::from_str(first.as_str()) else {
        fail(socket, "bad_join", "the first frame must be a join").await;
        return None;
    };
    let name = name.trim().to_owned();
    let id_ok = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !id_ok || name.is_empty() || name.len() > MAX_NAME {
        let why = format!("id: 32 hex digits; name: 1 to {MAX_NAME} bytes");
        fail(socket, "bad_join", &why).await;
        return None;
    }
    let id = id.to_ascii_lowercase();
    let config = &shared.config;
    match token {
        Some(given) => {
            let expected = token::load_or_create(&config.dir).ok()?;
            if !token::matches(&expected, &given) {
                fail(
                    socket,
                    "bad_token",
                    "this address's token is not valid (any more)",
                )
                .await;
                return None;
            }
        }
        None if shared.browsers.knows(&id) => {}
        None => {
            send(socket, json!({"type": "waiting", "name": config.name})).await;
            let let_in = config.open || (config.ask && asked(socket, conn, &name, agent).await);
            if !let_in {
                send(socket, json!({"type": "declined"})).await;
                close(socket, POLICY).await;
                return None;
            }
            shared.browsers.remember(&id, &name);
        }
    }
    Some(Joined { id, name })
}

/// How long a browser waits for the user's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Asks the user whether the browser `name` may join, and waits for the
/// answer (declined after [`ANSWER_TIMEOUT`], or when the browser leaves).
async fn asked(socket: &mut WebSocket, conn: &Conn, name: &str, agent: String) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let request = SessionEvent::JoinRequest {
        name: name.to_owned(),
        addr: conn.addr,
        agent,
        answer: tx,
    };
    if conn.events.send(request).await.is_err() {
        return false;
    }
    let gone = async {
        // Anything but a ping from the browser while it waits: it left.
        loop {
            match socket.recv().await {
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
                _ => return,
            }
        }
    };
    tokio::select! {
        answer = tokio::time::timeout(ANSWER_TIMEOUT, rx) => matches!(answer, Ok(Ok(true))),
        () = gone => false,
    }
}

/// The joined session: frames in become session events, messages from the
/// node go out as frames. Returns why it ended.
async fn chat(
    socket: &mut WebSocket,
    sid: crate::net::SessionId,
    events: &mpsc::Sender<SessionEvent>,
    mut rx: mpsc::Receiver<Message>,
) -> CloseReason {
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            frame = socket.recv() => {
                heard = Instant::now();
                let text = match frame {
                    None => return CloseReason::Eof,
                    Some(Err(e)) => {
                        let why = e.to_string();
                        fail(socket, "too_large", &why).await;
                        return CloseReason::Protocol("too_large".into());
                    }
                    Some(Ok(Frame::Text(text))) => text,
                    Some(Ok(Frame::Close(_))) => return CloseReason::Bye,
                    Some(Ok(Frame::Binary(_))) => {
                        fail(socket, "bad_json", "frames are JSON text").await;
                        return CloseReason::Protocol("bad_json".into());
                    }
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<FromBrowser>(text.as_str()) {
                    Ok(FromBrowser::Text { id, body, ts }) if valid_id(&id) => {
                        let text = Text { id, ts, body };
                        if events.send(SessionEvent::Text { sid, text }).await.is_err() {
                            return CloseReason::Local;
                        }
                    }
                    Ok(FromBrowser::Ack { ids }) => {
                        for id in ids.into_iter().filter(|id| valid_id(id)) {
                            if events.send(SessionEvent::Acked { sid, id }).await.is_err() {
                                return CloseReason::Local;
                            }
                        }
                    }
                    _ => {
                        fail(socket, "bad_json", "expected a text or an ack").await;
                        return CloseReason::Protocol("bad_json".into());
                    }
                }
            }
            msg = rx.recv() => {
                let value = match msg {
                    Some(Message::Text(t)) => {
                        json!({"type": "text", "id": t.id, "body": t.body, "ts": t.ts})
                    }
                    Some(Message::Ack { id }) => json!({"type": "ack", "ids": [id]}),
                    Some(Message::Bye) | None => {
                        close(socket, 1000).await;
                        return CloseReason::Local;
                    }
                    Some(_) => continue,
                };
                if !send(socket, value).await {
                    return CloseReason::Eof;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= IDLE_TIMEOUT {
                    close(socket, 1001).await;
                    return CloseReason::Timeout;
                }
                if socket.send(Frame::Ping(Default::default())).await.is_err() {
                    return CloseReason::Eof;
                }
            }
        }
    }
}

/// A message id a browser may use: 1 to 64 of `[0-9A-Za-z_-]`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
