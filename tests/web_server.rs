//! The web client against the real binary on loopback (`--no-mdns`): a
//! WebSocket client speaking the page's protocol (tokio-tungstenite), curl
//! for the HTTP routes and the README's example, raw TCP for a slowloris.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::local::{data_dir, lantalk_in, listen_in};
use common::proc::Proc;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(10);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("web-token"))
        .expect("the join token")
        .trim()
        .to_owned()
}

/// `lantalk listen --json [ARGS]` on a free port.
fn listen(dir: &Path, args: &[&str]) -> (Proc, u16) {
    listen_in(
        dir,
        &[&["--port", "0", "listen", "--json"][..], args].concat(),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A WebSocket to `/ws` with `origin`.
async fn open(port: u16, origin: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://127.0.0.1:{port}/ws").into_client_request()?;
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn put(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame (pings skipped); `None` once closed.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

fn join(id: &str, token: Option<&str>) -> Value {
    json!({"type": "join", "id": id, "name": "phone", "token": token})
}

const BROWSER: &str = "0123456789abcdef0123456789abcdef";

/// The browser joins with the token, gets welcome and history, and sends a
/// text that `listen --json` prints as from a web peer and acknowledges.
#[test]
fn a_browser_with_the_token_joins_and_chats() {
    let dir = data_dir();
    let (mut laptop, port) = listen(dir.path(), &[]);
    let origin = format!("http://127.0.0.1:{port}");
    let t = token(dir.path());
    runtime().block_on(async {
        let mut ws = open(port, &origin).await.unwrap();
        put(&mut ws, join(BROWSER, Some(&t))).await;
        let welcome = next(&mut ws).await.unwrap();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["you"], "phone");
        let history = next(&mut ws).await.unwrap();
        assert_eq!(history["type"], "history", "{history}");
        put(
            &mut ws,
            json!({"type": "text", "id": "m1", "body": "hi from the phone", "ts": 1}),
        )
        .await;
        let ack = next(&mut ws).await.unwrap();
        assert_eq!(ack, json!({"type": "ack", "ids": ["m1"]}));
        let line = laptop.wait_out(WAIT, |l| l.contains("hi from the phone"));
        let printed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(printed["web"], true, "{line}");
        assert_eq!(printed["from"], "phone");
        assert_eq!(printed["from_id"], BROWSER);
    });
}

/// A text resent after a reconnect (its ack was lost) is acked again and
/// printed once; history on rejoining shows it as the browser's.
#[test]
fn a_text_resent_after_reconnecting_is_delivered_once() {
    let dir = data_dir();
    let (mut laptop, port) = listen(dir.path(), &[]);
    let origin = format!("http://127.0.0.1:{port}");
    let t = token(dir.path());
    runtime().block_on(async {
        let text = json!({"type": "text", "id": "r1", "body": "only once", "ts": 1});
        let mut ws = open(port, &origin).await.unwrap();
        put(&mut ws, join(BROWSER, Some(&t))).await;
        next(&mut ws).await;
        next(&mut ws).await;
        put(&mut ws, text.clone()).await;
        // Gone before reading the ack.
        drop(ws);
        laptop.wait_out(WAIT, |l| l.contains("only once"));
        let mut ws = open(port, &origin).await.unwrap();
        put(&mut ws, join(BROWSER, Some(&t))).await;
        assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
        let history = next(&mut ws).await.unwrap();
        let mine: Vec<_> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["id"] == "r1")
            .collect();
        assert_eq!(mine.len(), 1, "{history}");
        assert_eq!(mine[0]["mine"], true);
        put(&mut ws, text).await;
        assert_eq!(
            next(&mut ws).await.unwrap(),
            json!({"type": "ack", "ids": ["r1"]})
        );
        // A later text arrives after it: the copy was not printed again.
        put(
            &mut ws,
            json!({"type": "text", "id": "r2", "body": "after", "ts": 2}),
        )
        .await;
        laptop.wait_out(WAIT, |l| l.contains("\"after\""));
    });
    let copies = laptop
        .drain_out()
        .iter()
        .filter(|l| l.contains("only once"))
        .count();
    assert_eq!(copies, 1, "printed once only");
}

/// A wrong token is refused; without a token `listen` refuses unless
/// `--web-open`, which lets the browser in (and remembers it).
#[test]
fn tokens_decide_who_joins() {
    let dir = data_dir();
    let (_laptop, port) = listen(dir.path(), &[]);
    let origin = format!("http://127.0.0.1:{port}");
    runtime().block_on(async {
        let mut ws = open(port, &origin).await.unwrap();
        put(
            &mut ws,
            join(BROWSER, Some("00000000000000000000000000000000")),
        )
        .await;
        let got = next(&mut ws).await.unwrap();
        assert_eq!(got["code"], "bad_token", "{got}");
        assert_eq!(next(&mut ws).await, None, "closed");

        let mut ws = open(port, &origin).await.unwrap();
        put(&mut ws, join(BROWSER, None)).await;
        assert_eq!(next(&mut ws).await.unwrap()["type"], "waiting");
        assert_eq!(next(&mut ws).await.unwrap()["type"], "declined");
    });
    let open_dir = data_dir();
    let (_open, port) = listen(open_dir.path(), &["--web-open"]);
    let origin = format!("http://127.0.0.1:{port}");
    runtime().block_on(async {
        let mut ws = open(port, &origin).await.unwrap();
        put(&mut ws, join(BROWSER, None)).await;
        assert_eq!(next(&mut ws).await.unwrap()["type"], "waiting");
        assert_eq!(next(&mut ws).await.unwrap()["type"], "welcome");
    });
    let remembered = std::fs::read_to_string(open_dir.path().join("web-browsers.json")).unwrap();
    assert!(remembered.contains(BROWSER), "{remembered}");
}

/// Another site's page cannot open the WebSocket (cross-site WebSocket hijacking).
#[test]
fn a_foreign_origin_is_refused() {
    let dir = data_dir();
    let (_laptop, port) = listen(dir.path(), &[]);
    runtime().block_on(async {
        let err = open(port, "http://evil.example").await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
            panic!("not an HTTP refusal: {err}");
        };
        assert_eq!(response.status(), 403);
    });
}

/// `curl ARGS`: (status, headers and body as text).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "-H", "Expect:"])
        .args(args)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn routes_answer_with_the_security_headers() {
    let dir = data_dir();
    let (_laptop, port) = listen(dir.path(), &[]);
    let base = format!("http://127.0.0.1:{port}");
    let page = curl(&[&format!("{base}/")]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let lower = page.to_ascii_lowercase();
    for header in [
        "content-type: text/html; charset=utf-8",
        "content-security-policy: default-src 'none'; script-src 'sha256-",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(lower.contains(header), "{header} missing: {page}");
    }
    assert!(curl(&[&format!("{base}/favicon.ico")]).starts_with("HTTP/1.1 204"));
    let missing = curl(&[&format!("{base}/etc/passwd")]);
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing
            .to_ascii_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    assert!(curl(&["-X", "POST", &format!("{base}/")]).starts_with("HTTP/1.1 405"));
    assert!(curl(&[&format!("{base}/api/v1/messages")]).starts_with("HTTP/1.1 405"));
}

/// The README's curl example: 202 with the id, printed by `listen` as from
/// a web peer; without the token 401; over 1 MiB 413.
#[test]
fn the_curl_example_posts_a_message() {
    let dir = data_dir();
    let (mut laptop, port) = listen(dir.path(), &[]);
    let url = format!("http://127.0.0.1:{port}/api/v1/messages");
    let auth = format!("Authorization: Bearer {}", token(dir.path()));
    let answer = curl(&[
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"from": "doorbell", "body": "someone is at the door"}"#,
        &url,
    ]);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let body: Value = serde_json::from_str(answer.rsplit("\r\n\r\n").next().unwrap()).unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let line = laptop.wait_out(WAIT, |l| l.contains("someone is at the door"));
    let printed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (
            printed["from"].as_str(),
            printed["id"].as_str(),
            printed["web"].as_bool()
        ),
        (Some("doorbell"), Some(id.as_str()), Some(true))
    );
    let plain = curl(&["-H", &auth, "--data-binary", "plain text", &url]);
    assert!(plain.starts_with("HTTP/1.1 202"), "{plain}");
    laptop.wait_out(WAIT, |l| {
        l.contains("plain text") && l.contains(r#""from":"web""#)
    });
    let unauthorised = curl(&["-d", r#"{"body": "x"}"#, &url]);
    assert!(unauthorised.starts_with("HTTP/1.1 401"), "{unauthorised}");
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; 1024 * 1024 + 1]).unwrap();
    let too_big = curl(&[
        "-H",
        &auth,
        "--data-binary",
        &format!("@{}", big.display()),
        &url,
    ]);
    assert!(too_big.starts_with("HTTP/1.1 413"), "{too_big}");
}

/// A request head that never ends is closed after 5 s, while a native
/// session on the same port goes through meanwhile.
#[test]
fn a_slow_head_is_closed_and_sessions_go_on() {
    let dir = data_dir();
    let (mut laptop, port) = listen(dir.path(), &[]);
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let other = data_dir();
    let sent = lantalk_in(
        other.path(),
        &["send", &format!("127.0.0.1:{port}"), "native text"],
    );
    sent.assert_success();
    laptop.wait_out(WAIT, |l| l.contains("native text"));
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(4500) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );
}

/// With `--no-web` an HTTP request is closed without a reply, as before.
#[test]
fn no_web_closes_http_connections() {
    let dir = data_dir();
    let (_laptop, port) = listen_in(dir.path(), &["--no-web", "--port", "0", "listen"]);
    let answer = curl(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(answer, "", "no reply");
    assert!(!dir.path().join("web-token").exists(), "no token made");
}

/// A request head over 16 KiB is refused (431) and closed.
#[test]
fn a_head_over_16_kib_is_refused() {
    let dir = data_dir();
    let (_laptop, port) = listen(dir.path(), &[]);
    let mut big = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let _ = big.write_all(head.as_bytes());
    big.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = Vec::new();
    let _ = big.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
}

/// A join that is malformed is refused (`bad_join`); no join at all within
/// 10 s is closed (`join_timeout`).
#[test]
fn a_bad_or_missing_join_is_refused() {
    let dir = data_dir();
    let (_laptop, port) = listen(dir.path(), &[]);
    let origin = format!("http://127.0.0.1:{port}");
    runtime().block_on(async {
        let mut ws = open(port, &origin).await.unwrap();
        put(&mut ws, join("not-hex", Some(&token(dir.path())))).await;
        assert_eq!(next(&mut ws).await.unwrap()["code"], "bad_join");
        let mut silent = open(port, &origin).await.unwrap();
        let started = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(20), silent.next())
            .await
            .expect("closed in time");
        let Some(Ok(Message::Text(t))) = got else {
            panic!("no error frame: {got:?}");
        };
        assert!(t.as_str().contains("join_timeout"), "{t}");
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(9), "after {took:?}");
    });
}

/// A WebSocket from `source` (a loopback address) to `/ws`, joined with
/// the token as browser `id`; `None` if the listener turned it away.
async fn joined_from(source: &str, port: u16, token: &str, id: &str) -> Option<Ws> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .ok()?;
    let req = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("an answer in time")
        .ok()?;
    put(&mut ws, join(id, Some(token))).await;
    let welcome = next(&mut ws).await?;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    Some(ws)
}

/// WebSockets count against the listener's caps like sessions: 32 open
/// from one address, the 33rd is turned away while another address still
/// gets in, and a closed one frees its place.
#[test]
fn websockets_count_against_the_per_host_cap() {
    let dir = data_dir();
    let (_laptop, port) = listen(dir.path(), &[]);
    let t = token(dir.path());
    runtime().block_on(async {
        let mut open = Vec::new();
        for i in 0..32 {
            let id = format!("{i:032x}");
            let ws = joined_from("127.0.0.1", port, &t, &id).await;
            open.push(ws.unwrap_or_else(|| panic!("WebSocket {i} turned away")));
        }
        let extra = "f".repeat(32);
        assert!(
            joined_from("127.0.0.1", port, &t, &extra).await.is_none(),
            "a 33rd WebSocket from one address is turned away"
        );
        let other = joined_from("127.0.0.2", port, &t, &extra).await;
        assert!(other.is_some(), "another address still gets in");
        open.pop().unwrap().close(None).await.unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if joined_from("127.0.0.1", port, &t, &"e".repeat(32))
                .await
                .is_some()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a closed WebSocket frees its place"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// A WebSocket message over 1 MiB is refused with `too_large` and closed;
/// one a browser leaves silent (no pong, no frame) is pinged and closed
/// after 45 s; neither disturbs a native session on the same port.
#[test]
fn an_oversized_message_and_a_silent_websocket_are_closed() {
    let dir = data_dir();
    let (mut laptop, port) = listen(dir.path(), &[]);
    let origin = format!("http://127.0.0.1:{port}");
    let t = token(dir.path());
    runtime().block_on(async {
        let mut big = open(port, &origin).await.unwrap();
        put(&mut big, join(BROWSER, Some(&t))).await;
        assert_eq!(next(&mut big).await.unwrap()["type"], "welcome");
        assert_eq!(next(&mut big).await.unwrap()["type"], "history");
        let body = "x".repeat(1 << 20);
        let frame = json!({"type": "text", "id": "big", "body": body, "ts": 1});
        let _ = big.send(Message::Text(frame.to_string().into())).await;
        let error = next(&mut big).await.expect("an error before the close");
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("error"), Some("too_large")),
            "{error}"
        );
        assert!(next(&mut big).await.is_none(), "closed after the error");

        let mut silent = open(port, &origin).await.unwrap();
        put(&mut silent, join(&"c".repeat(32), Some(&t))).await;
        let started = Instant::now();
        // Meanwhile a native session delivers.
        let sent = lantalk_in(
            dir.path(),
            &["send", &format!("127.0.0.1:{port}"), "native meanwhile"],
        );
        sent.assert_success();
        laptop.wait_out(WAIT, |l| l.contains("native meanwhile"));
        // Silent, not even reading (a client answers pings as it reads):
        // the fault applied here is 50 s of silence.
        tokio::time::sleep(Duration::from_secs(50).saturating_sub(started.elapsed())).await;
        let (mut pings, mut close) = (0, None);
        let end = loop {
            match tokio::time::timeout(WAIT, silent.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
                Ok(Some(Ok(Message::Close(c)))) => close = c.map(|c| u16::from(c.code)),
                Ok(Some(Ok(_))) => {}
                Ok(other) => break format!("{other:?}"),
                Err(_) => break "still open".to_owned(),
            }
        };
        println!("silent WebSocket: {pings} pings, closed with {close:?}, then {end}");
        // Pinged at 15 s and 30 s, closed (1001) at 45 s: reading the
        // pings late, the client may fail to answer them on the closed
        // socket before it reads the close frame.
        assert!(pings >= 2, "pinged while silent ({pings})");
        assert!(
            close == Some(1001) || end.contains("Err("),
            "closed by lantalk, not still open: {end}"
        );
    });
}
