//! The web client: a chat page and its WebSocket served on lantalk's own
//! port to a phone's browser (the only module naming the HTTP stack).
//!
//! The join token ([`token`]), the address a phone opens ([`url`]) and
//! its QR code as terminal text ([`qr`]).
//!
//! The listener tells HTTP requests by their first bytes and hands the
//! connection to [`Server`] (a [`crate::net::HttpServer`]); one axum
//! `Router` answers it, served per connection by hyper's HTTP/1.1 server on
//! the already-accepted stream:
//!
//! ```text
//! GET  /                 the page (assets/web/index.html, embedded)
//! GET  /ws               the WebSocket (socket.rs): a browser as a peer
//! POST /api/v1/messages  a message from a script (Bearer token)
//! GET  /favicon.ico      204
//! ```
//!
//! Limits: the request head within [`HEAD_TIMEOUT`] and at most
//! [`MAX_HEAD`] bytes, bodies at most [`MAX_BODY`]. Every response carries a
//! strict Content-Security-Policy (the page's one inline script and one
//! inline style allowed by their hashes), `nosniff`, `no-referrer` and
//! `no-store`.

pub mod browsers;
pub mod qr;
mod socket;
pub mod token;
pub mod url;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tower::ServiceExt as _;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::net::{CloseReason, Link, SessionEvent, SessionHandle};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::{Message, Text};
use crate::store::Store;

/// The page, embedded in the binary.
pub const PAGE: &str = include_str!("../../assets/web/index.html");

/// The request head must arrive within this long (slowloris is closed).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many bytes of request head.
pub const MAX_HEAD: usize = 16 * 1024;

/// At most this many bytes of request body (413 beyond).
pub const MAX_BODY: usize = 1024 * 1024;

/// A request's body must be read and answered within this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A name (a browser's, a script's `from`) is at most this many bytes, as a
/// lantalk peer's.
pub const MAX_NAME: usize = 63;

/// What the web client runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory: the join token, the browsers let in.
    pub dir: PathBuf,
    /// Our display name, shown in the page.
    pub name: String,
    /// Our key's fingerprint, grouped (`7c0c e1f5 …`), shown in the page.
    pub fingerprint: String,
    /// The history, for a browser's conversation when it joins.
    pub history: Option<Store>,
    /// Browsers without the token join without asking (`listen --web-open`).
    pub open: bool,
    /// Someone is there to answer a browser without the token (the chat
    /// screen): it waits for the answer instead of being declined.
    pub ask: bool,
}

/// The web client's server, shared by every HTTP connection.
#[derive(Debug, Clone)]
pub struct Server {
    router: Router,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    browsers: browsers::Browsers,
}

/// Who is on a connection: its address, and where its sessions report.
#[derive(Clone)]
struct Conn {
    addr: SocketAddr,
    events: mpsc::Sender<SessionEvent>,
    /// The connection's place under the listener's caps: every copy goes
    /// with a request or the WebSocket it became, and the last one frees it.
    _slot: Arc<crate::net::Held>,
}

impl Server {
    /// The server for `config`; makes the join token if there is none yet.
    pub fn new(config: Config) -> Result<Self> {
        // A data directory that cannot be written (read-only, a temporary
        // identity) has no token to give: the web client still runs, and
        // only browsers let in without one can join.
        if let Err(e) = token::load_or_create(&config.dir) {
            crate::status!(
                "{}; browsers cannot join with a token this run",
                format!("{e:#}")
            );
        }
        let browsers = browsers::Browsers::load(&config.dir);
        let shared = Arc::new(Shared { config, browsers });
        let router = router(Arc::clone(&shared), &csp(PAGE));
        Ok(Self { router, shared })
    }
}

impl crate::net::HttpServer for Server {
    fn forget(&self, browser: &str) -> bool {
        self.shared.browsers.forget(browser)
    }

    fn serve(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        events: mpsc::Sender<SessionEvent>,
        slot: crate::net::Held,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        let conn = Conn {
            addr,
            events,
            _slot: Arc::new(slot),
        };
        let app = self.router.clone().layer(Extension(conn));
        Box::pin(async move {
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                app.clone().oneshot(req)
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            let served = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = served.await {
                tracing::debug!("HTTP connection from {addr}: {e}");
            }
        })
    }
}

/// The routes, with the limits and the headers every response carries.
fn router(shared: Arc<Shared>, csp: &str) -> Router {
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(csp).unwrap_or(HeaderValue::from_static("default-src 'none'")),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    let mut router = Router::new()
        .route("/", get(page))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/ws", get(socket::upgrade))
        .route("/api/v1/messages", post(api_message))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(shared);
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
}

/// The Content-Security-Policy for `page`: nothing from anywhere, but its
/// own inline script and style (by their SHA-256) and WebSockets to itself.
fn csp(page: &str) -> String {
    let hash = |tag: &str| -> String {
        let Some(body) = inline(page, tag) else {
            return "'none'".to_owned();
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        format!("'sha256-{b64}'")
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash("script"),
        hash("style")
    )
}

/// The text between `<tag>` (or `<tag …>`) and `</tag>`: an inline element.
fn inline<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let start = page.find(&open)?;
    let after = &page[start + open.len()..];
    if !after.starts_with(['>', ' ']) {
        return None;
    }
    let body = &after[after.find('>')? + 1..];
    Some(&body[..body.find(&format!("</{tag}>"))?])
}

async fn page() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        PAGE,
    )
        .into_response()
}

/// A 4xx answer with a one-line reason.
fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// `POST /api/v1/messages`: a message for the local user from a script,
/// with the join token as its Bearer token. JSON `{"from","body"}`, or any
/// other body as the text itself from `web`. The message is from a web peer
/// named `from`, with a conversation of its own (keyed by the name); the
/// answer, 202 and the message's id, comes once lantalk has stored it.
async fn api_message(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Ok(expected) = token::load_or_create(&shared.config.dir) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "no join token");
    };
    if !given.is_some_and(|given| token::matches(&expected, given)) {
        return refuse(StatusCode::UNAUTHORIZED, "a valid Bearer token is needed");
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let (from, body) = if json {
        #[derive(serde::Deserialize)]
        struct Posted {
            #[serde(default)]
            from: Option<String>,
            body: String,
        }
        match serde_json::from_slice::<Posted>(&body) {
            Ok(p) => (p.from.unwrap_or_else(|| "web".to_owned()), p.body),
            Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("bad JSON: {e}")),
        }
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => ("web".to_owned(), text),
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "the body is not UTF-8"),
        }
    };
    let from = from.trim().to_owned();
    if body.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "the message is empty");
    }
    if from.is_empty() || from.len() > MAX_NAME {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("`from` must be 1 to {MAX_NAME} bytes"),
        );
    }
    let id = random_hex();
    match deliver(&conn, &from, &id, body).await {
        true => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "id": id })),
        )
            .into_response(),
        false => refuse(StatusCode::SERVICE_UNAVAILABLE, "not stored; try again"),
    }
}

/// How long a posted message may take to be stored.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// Hands one posted message to the node as a session of its own (a web
/// peer keyed by the name), and waits until the node acknowledges it.
async fn deliver(conn: &Conn, from: &str, id: &str, body: String) -> bool {
    let digest = ring::digest::digest(&ring::digest::SHA256, from.as_bytes());
    let key: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (tx, mut rx) = mpsc::channel(4);
    let sid = crate::net::next_session_id();
    let opened = SessionEvent::Opened {
        sid,
        peer: PeerInfo {
            id: PeerId::new(format!("api-{key}")),
            name: from.to_owned(),
            kind: PeerKind::Web,
        },
        addr: conn.addr,
        handle: SessionHandle::channel(tx),
        link: Link::Plain,
        dialled: false,
    };
    let text = Text {
        id: id.to_owned(),
        ts: crate::net::now_ms(),
        body,
    };
    let events = &conn.events;
    if events.send(opened).await.is_err()
        || events.send(SessionEvent::Text { sid, text }).await.is_err()
    {
        return false;
    }
    let acked = tokio::time::timeout(STORE_TIMEOUT, async {
        while let Some(msg) = rx.recv().await {
            if matches!(&msg, Message::Ack { id: got } if got == id) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let reason = CloseReason::Bye;
    let _ = events.send(SessionEvent::Closed { sid, reason }).await;
    acked
}

/// 128 random bits in hex: a message id.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique enough within one history: the clock and a counter.
        return format!(
            "{:x}-{}",
            crate::net::now_ms(),
            crate::net::next_session_id()
        );
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `origin` (an `Origin` header) is the site `host` (a `Host`
/// header) serves: `http://HOST` or `https://HOST`, ASCII case aside.
fn same_origin(origin: &str, host: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_allows_the_pages_own_inline_script_and_style_only() {
        let page = "<style>a{}</style><script>go()</script>";
        let policy = csp(page);
        let sha = |s: &str| {
            let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(d.as_ref())
        };
        assert!(
            policy.contains(&format!("script-src 'sha256-{}'", sha("go()"))),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("style-src 'sha256-{}'", sha("a{}"))),
            "{policy}"
        );
        assert!(csp("<p>no script</p>").contains("script-src 'none'"));
        // The embedded page has both.
        assert!(inline(PAGE, "script").is_some() && inline(PAGE, "style").is_some());
    }

    #[test]
    fn an_origin_matches_its_host_only() {
        assert!(same_origin("http://10.0.0.2:7342", "10.0.0.2:7342"));
        assert!(same_origin("HTTP://Laptop.local:7342", "laptop.local:7342"));
        assert!(!same_origin("http://evil.example", "10.0.0.2:7342"));
        assert!(!same_origin("http://10.0.0.2:7342.evil", "10.0.0.2:7342"));
        assert!(!same_origin("null", "10.0.0.2:7342"));
    }
}
