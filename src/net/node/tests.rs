//! The node in-process over loopback sockets, with mDNS off: what every way
//! lantalk talks relies on (stored before it leaves, delivered once acked,
//! retried until the peer is back, acknowledged as the ack policy says,
//! working without a listener).

use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::net::{Link, NetCommand, NetEvent, Target};
use crate::peer::{PeerId, PeerKind};
use crate::protocol::{PROTO_VERSION, Text};
use crate::store::State;

/// How long any one expected event may take (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(10);

struct TestNode {
    id: PeerId,
    cmds: mpsc::UnboundedSender<NetCommand>,
    events: mpsc::Receiver<NetEvent>,
    task: tokio::task::JoinHandle<()>,
    /// The port it listens on, once known.
    port: Option<u16>,
}

fn hello(n: u8, name: &str) -> Hello {
    Hello {
        proto: PROTO_VERSION,
        id: format!("{n:02x}").repeat(16),
        name: name.into(),
        app: "test".into(),
    }
}

fn text(id: &str, body: &str) -> Text {
    Text {
        id: id.into(),
        ts: 1,
        body: body.into(),
    }
}

/// Starts a node called `name` (id from `n`) with `store` (none: history
/// off), listening as `listen` says, plaintext, mDNS off.
async fn start(
    n: u8,
    name: &str,
    listen: Listen,
    store: Option<Store>,
    acks: AckPolicy,
) -> TestNode {
    start_with(n, name, listen, store, acks, None).await
}

/// [`start`] with `http` serving the HTTP connections.
async fn start_with(
    n: u8,
    name: &str,
    listen: Listen,
    store: Option<Store>,
    acks: AckPolicy,
    http: Option<crate::net::Http>,
) -> TestNode {
    let hello = hello(n, name);
    let config = NodeConfig {
        http,
        hello: hello.clone(),
        listen,
        mdns: false,
        browse: false,
        interfaces: Vec::new(),
        host: name.into(),
        history: store.ok_or(HistoryOff::Disabled),
        policy: Policy::plaintext(),
        acks,
        show_history: false,
        control: None,
    };
    let (cmds, events, task) = spawn(config);
    let mut node = TestNode {
        id: PeerId::new(hello.id),
        cmds,
        events,
        task,
        port: None,
    };
    if listen != Listen::Off {
        let port = node
            .expect("listening", |e| match e {
                NetEvent::Listening { port, .. } => Some(*port),
                _ => None,
            })
            .await;
        node.port = Some(port);
    }
    node
}

impl TestNode {
    /// Waits for the first event `pick` accepts (skipping others).
    async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&NetEvent) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Ok(None) => panic!("the node stopped before {what}"),
                Err(_) => panic!("no {what} within {WAIT:?}"),
            }
        }
    }

    fn send(&self, cmd: NetCommand) {
        self.cmds.send(cmd).expect("the node runs");
    }

    /// Opens a session to `other` and waits for it.
    async fn connect(&mut self, other: &TestNode) {
        let port = other.port.expect("it listens");
        self.send(NetCommand::Connect(Target::Addrs {
            label: format!("127.0.0.1:{port}"),
            addrs: vec![([127, 0, 0, 1], port).into()],
        }));
        let id = other.id.clone();
        self.expect("the session", |e| match e {
            NetEvent::SessionOpened { peer, .. } if peer.id == id => Some(()),
            _ => None,
        })
        .await;
    }

    async fn stop(self) {
        let _ = self.cmds.send(NetCommand::Shutdown);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the node stops")
            .expect("the node did not panic");
    }
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path()).expect("a history database")
}

/// Our texts as the history has them, oldest first: (id, state).
async fn ours(store: &Store, peer: &PeerId) -> Vec<(String, State)> {
    let (records, _) = store.page(peer.clone(), None, 100).await.unwrap();
    records
        .into_iter()
        .filter(|r| r.outgoing)
        .map(|r| (r.id, r.state))
        .collect()
}

#[tokio::test]
async fn a_text_is_stored_sent_then_delivered_and_arrives_once() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start(
        1,
        "a",
        Listen::Port(Some(0)),
        Some(store(&da)),
        AckPolicy::Stored,
    )
    .await;
    let mut b = start(2, "b", Listen::Off, Some(store(&db)), AckPolicy::Stored).await;
    b.connect(&a).await;
    b.send(NetCommand::Send {
        to: a.id.clone(),
        texts: vec![text("t1", "hello"), text("t2", "again")],
    });
    let from = b.id.clone();
    let got = a
        .expect("the texts", |e| match e {
            NetEvent::Text { from: f, text, .. } if *f == from => Some(text.body.clone()),
            _ => None,
        })
        .await;
    assert_eq!(got, "hello");
    let a_id = a.id.clone();
    let mut acked = Vec::new();
    while acked.len() < 2 {
        acked.extend(
            b.expect("the acks", |e| match e {
                NetEvent::Acked { peer, ids } if *peer == a_id => Some(ids.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(acked, ["t1", "t2"]);
    // The receiver stored them before it acknowledged them.
    let (theirs, _) = store(&da).page(b.id.clone(), None, 10).await.unwrap();
    assert_eq!(theirs.len(), 2);
    // Stopping settles our history: delivered.
    let a_id = a.id.clone();
    b.stop().await;
    a.stop().await;
    assert_eq!(
        ours(&store(&db), &a_id).await,
        [
            ("t1".into(), State::Delivered),
            ("t2".into(), State::Delivered)
        ]
    );
}

/// Texts for a peer that cannot be reached are in the history before
/// anything else happens, and a later node on the same data directory
/// delivers them as soon as it meets the peer.
#[tokio::test]
async fn a_text_for_an_absent_peer_waits_in_the_history_and_goes_out_later() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut b = start(2, "b", Listen::Off, Some(store(&db)), AckPolicy::Stored).await;
    let absent = PeerId::new("01".repeat(16));
    b.send(NetCommand::Send {
        to: absent.clone(),
        texts: vec![text("w1", "are you there?")],
    });
    let (ids, retry_in) = b
        .expect("waiting", |e| match e {
            NetEvent::Waiting { ids, retry_in, .. } => Some((ids.clone(), *retry_in)),
            _ => None,
        })
        .await;
    assert_eq!((ids, retry_in), (vec!["w1".to_owned()], None));
    assert_eq!(
        ours(&store(&db), &absent).await,
        [("w1".into(), State::Pending)]
    );
    b.stop().await;

    // The peer is up now; a new node on B's data directory meets it.
    let mut a = start(
        1,
        "a",
        Listen::Port(Some(0)),
        Some(store(&da)),
        AckPolicy::Stored,
    )
    .await;
    let mut b = start(2, "b", Listen::Off, Some(store(&db)), AckPolicy::Stored).await;
    b.connect(&a).await;
    let got = a
        .expect("the waiting text", |e| match e {
            NetEvent::Text { text, .. } => Some(text.id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(got, "w1");
    let a_id = a.id.clone();
    let acked = b
        .expect("its ack", |e| match e {
            NetEvent::Acked { peer, ids } if *peer == a_id => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(acked, ["w1"]);
    b.stop().await;
    assert_eq!(
        ours(&store(&db), &a.id).await,
        [("w1".into(), State::Delivered)]
    );
    a.stop().await;
}

/// Texts typed one after another while the peer is away wait for the
/// scheduled retry: they do not each dial at once, fail, and double the
/// wait (which had `send` give up within a second on a piped stream while
/// its peer restarted).
#[tokio::test]
async fn texts_sent_while_a_retry_is_scheduled_do_not_push_it_back() {
    let a = start(1, "a", Listen::Port(Some(0)), None, AckPolicy::Stored).await;
    let port = a.port.unwrap();
    let mut b = start(2, "b", Listen::Off, None, AckPolicy::Stored).await;
    b.connect(&a).await;
    a.stop().await;
    let a_id = PeerId::new("01".repeat(16));
    b.expect("the close", |e| match e {
        NetEvent::SessionClosed {
            connected: false, ..
        } => Some(()),
        _ => None,
    })
    .await;
    let mut longest = Duration::ZERO;
    for i in 0..12 {
        b.send(NetCommand::Send {
            to: a_id.clone(),
            texts: vec![text(&format!("q{i}"), "while away")],
        });
        let retry_in = b
            .expect("it waits", |e| match e {
                NetEvent::Waiting { ids, retry_in, .. } if ids.contains(&format!("q{i}")) => {
                    Some(*retry_in)
                }
                _ => None,
            })
            .await;
        longest = longest.max(retry_in.unwrap_or_default());
    }
    // Twelve failed dials in a row would have doubled the wait to 30 s.
    assert!(longest <= Duration::from_secs(2), "{longest:?}");
    let mut a = start(1, "a", Listen::Port(Some(port)), None, AckPolicy::Stored).await;
    a.expect("the last text, delivered by the retry", |e| match e {
        NetEvent::Text { text, .. } if text.id == "q11" => Some(()),
        _ => None,
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// A session drops: what is not acknowledged waits, the node tries again
/// shortly, and delivers it to the peer when it is back on its port.
#[tokio::test]
async fn a_dropped_peer_is_retried_until_it_is_back() {
    let a = start(1, "a", Listen::Port(Some(0)), None, AckPolicy::Stored).await;
    let port = a.port.unwrap();
    let mut b = start(2, "b", Listen::Off, None, AckPolicy::Stored).await;
    b.connect(&a).await;
    a.stop().await;
    let a_id = PeerId::new("01".repeat(16));
    b.expect("the close", |e| match e {
        NetEvent::SessionClosed {
            connected: false, ..
        } => Some(()),
        _ => None,
    })
    .await;
    b.send(NetCommand::Send {
        to: a_id.clone(),
        texts: vec![text("r1", "after the drop")],
    });
    // At least one retry fails while it is away, and says when the next is.
    let retry_in = b
        .expect("a failed retry", |e| match e {
            NetEvent::Waiting {
                retry_in: Some(d),
                reason,
                ..
            } if reason.contains("retrying") => Some(*d),
            _ => None,
        })
        .await;
    assert!(retry_in >= delivery::RETRY_FIRST, "{retry_in:?}");
    let mut a = start(1, "a", Listen::Port(Some(port)), None, AckPolicy::Stored).await;
    let got = a
        .expect("the text", |e| match e {
            NetEvent::Text { text, .. } => Some(text.body.clone()),
            _ => None,
        })
        .await;
    assert_eq!(got, "after the drop");
    let acked = b
        .expect("its ack", |e| match e {
            NetEvent::Acked { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(acked, ["r1"]);
    b.stop().await;
    a.stop().await;
}

/// With the consumer's ack policy (`listen`), a text is acknowledged only
/// once the consumer says so; a copy of one already received is
/// acknowledged at once and not handed on again.
#[tokio::test]
async fn the_consumer_acknowledges_and_copies_are_handed_on_once() {
    let da = tempfile::tempdir().unwrap();
    let mut a = start(
        1,
        "a",
        Listen::Port(Some(0)),
        Some(store(&da)),
        AckPolicy::Consumer,
    )
    .await;
    let mut b = start(2, "b", Listen::Off, None, AckPolicy::Stored).await;
    b.connect(&a).await;
    b.send(NetCommand::Send {
        to: a.id.clone(),
        texts: vec![text("c1", "print me")],
    });
    let session = a
        .expect("the text", |e| match e {
            NetEvent::Text { session, .. } => Some(*session),
            _ => None,
        })
        .await;
    // Not acknowledged while the consumer holds it.
    let early = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            if let Some(NetEvent::Acked { .. }) = b.events.recv().await {
                break;
            }
        }
    })
    .await;
    assert!(early.is_err(), "acknowledged before the consumer said so");
    a.send(NetCommand::Ack {
        session,
        ids: vec!["c1".into()],
    });
    let acked = b
        .expect("the ack", |e| match e {
            NetEvent::Acked { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(acked, ["c1"]);
    // The same text again (a retry after a lost ack): acked at once, not shown.
    b.stop().await;
    let mut b = start(2, "b", Listen::Off, None, AckPolicy::Stored).await;
    b.connect(&a).await;
    b.send(NetCommand::Send {
        to: a.id.clone(),
        texts: vec![text("c1", "print me"), text("c2", "and me")],
    });
    let shown = a
        .expect("the next new text", |e| match e {
            NetEvent::Text { text, .. } => Some(text.id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(shown, "c2", "the copy was handed on again");
    b.expect("the copy's ack", |e| match e {
        NetEvent::Acked { ids, .. } if ids.contains(&"c1".to_owned()) => Some(()),
        _ => None,
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// The port asked for is busy: the node runs without a listener, says so,
/// and everything but incoming sessions works.
#[tokio::test]
async fn a_busy_port_leaves_everything_but_incoming_sessions_working() {
    let dir = tempfile::tempdir().unwrap();
    let holder = std::net::TcpListener::bind("[::]:0")
        .or_else(|_| std::net::TcpListener::bind("0.0.0.0:0"))
        .unwrap();
    let busy = holder.local_addr().unwrap().port();
    let config_store = store(&dir);
    let hello = hello(2, "b");
    let (cmds, events, task) = spawn(NodeConfig {
        http: None,
        hello: hello.clone(),
        listen: Listen::Port(Some(busy)),
        mdns: false,
        browse: false,
        interfaces: Vec::new(),
        host: "b".into(),
        history: Ok(config_store),
        policy: Policy::plaintext(),
        acks: AckPolicy::Stored,
        show_history: true,
        control: None,
    });
    let mut b = TestNode {
        id: PeerId::new(hello.id),
        cmds,
        events,
        task,
        port: None,
    };
    let why = b
        .expect("not listening", |e| match e {
            NetEvent::NotListening(why) => Some(why.clone()),
            _ => None,
        })
        .await;
    assert!(why.contains(&busy.to_string()), "{why}");
    // Outgoing sessions and texts work.
    let a = start(1, "a", Listen::Port(Some(0)), None, AckPolicy::Stored).await;
    b.connect(&a).await;
    b.send(NetCommand::Send {
        to: a.id.clone(),
        texts: vec![text("x1", "from a busy port")],
    });
    let acked = b
        .expect("the ack", |e| match e {
            NetEvent::Acked { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(acked, ["x1"]);
    // History, search and trust are answered.
    b.send(NetCommand::LoadHistory {
        peer: a.id.clone(),
        before: None,
    });
    let page = b
        .expect("a page", |e| match e {
            NetEvent::History { records, .. } if !records.is_empty() => Some(records.len()),
            _ => None,
        })
        .await;
    assert_eq!(page, 1);
    b.send(NetCommand::Search("busy".into()));
    let acked = b
        .expect("search results", |e| match e {
            NetEvent::Found { records, .. } => Some(records.len()),
            _ => None,
        })
        .await;
    assert_eq!(acked, 1);
    b.send(NetCommand::Trust {
        peer: a.id.clone(),
        key: "00000000".into(),
    });
    b.expect("an answer to /trust", |e| match e {
        NetEvent::Notice { .. } => Some(()),
        _ => None,
    })
    .await;
    b.stop().await;
    a.stop().await;
    drop(holder);
}

/// Giving up on waiting texts fails them, in the history too.
#[tokio::test]
async fn giving_up_fails_the_waiting_texts() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = start(2, "b", Listen::Off, Some(store(&dir)), AckPolicy::Stored).await;
    let absent = PeerId::new("03".repeat(16));
    b.send(NetCommand::Send {
        to: absent.clone(),
        texts: vec![text("g1", "one"), text("g2", "two")],
    });
    b.send(NetCommand::GiveUp {
        peer: absent.clone(),
        reason: "no acknowledgement".into(),
    });
    let ids = b
        .expect("the failure", |e| match e {
            NetEvent::SendFailed { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ids, ["g1", "g2"]);
    assert_eq!(
        ours(&store(&dir), &absent).await,
        [("g1".into(), State::Failed), ("g2".into(), State::Failed)]
    );
    b.stop().await;
}

/// A raw text peer: its lines come in unacknowledged, a reply is written as
/// a line, and once it left a reply fails at once (it cannot be dialled).
#[tokio::test]
async fn a_raw_peer_gets_lines_and_cannot_be_waited_for() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut a = start(1, "a", Listen::Port(Some(0)), None, AckPolicy::Stored).await;
    let port = a.port.unwrap();
    let mut nc = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    nc.write_all(b"hello from nc\n").await.unwrap();
    let (peer, link) = a
        .expect("the raw session", |e| match e {
            NetEvent::SessionOpened { peer, link, .. } => Some((peer.clone(), *link)),
            _ => None,
        })
        .await;
    assert_eq!(peer.kind, PeerKind::Raw("127.0.0.1".parse().unwrap()));
    assert_eq!(link, Link::Plain);
    let body = a
        .expect("the line", |e| match e {
            NetEvent::Text { text, .. } => Some(text.body.clone()),
            _ => None,
        })
        .await;
    assert_eq!(body, "hello from nc");
    a.send(NetCommand::Send {
        to: peer.id.clone(),
        texts: vec![text("y1", "hi nc")],
    });
    let mut reader = BufReader::new(nc);
    let mut line = String::new();
    tokio::time::timeout(WAIT, reader.read_line(&mut line))
        .await
        .expect("a reply")
        .unwrap();
    assert_eq!(line, "hi nc\n");
    drop(reader);
    a.expect("the close", |e| match e {
        NetEvent::SessionClosed { .. } => Some(()),
        _ => None,
    })
    .await;
    a.send(NetCommand::Send {
        to: peer.id.clone(),
        texts: vec![text("y2", "gone?")],
    });
    let (ids, reason) = a
        .expect("the failure", |e| match e {
            NetEvent::SendFailed { ids, reason, .. } => Some((ids.clone(), reason.clone())),
            _ => None,
        })
        .await;
    assert_eq!(ids, ["y2"]);
    assert!(reason.contains("closed"), "{reason}");
    a.stop().await;
}

/// A browser on the web client's WebSocket is a peer like the others: the
/// user's texts reach it and are delivered when it acknowledges them, its
/// texts arrive, and texts typed while it is away go when it rejoins.
#[tokio::test]
async fn a_browser_gets_texts_acks_them_and_gets_what_waited_on_rejoining() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let dir = tempfile::tempdir().unwrap();
    let web = crate::web::Server::new(crate::web::Config {
        dir: dir.path().to_owned(),
        name: "a".into(),
        fingerprint: String::new(),
        history: None,
        open: false,
        ask: false,
    })
    .unwrap();
    let token = crate::web::token::load_or_create(dir.path()).unwrap();
    let http: crate::net::Http = std::sync::Arc::new(web);
    let store = store(&dir);
    let mut a = start_with(
        1,
        "a",
        Listen::Port(Some(0)),
        Some(store),
        AckPolicy::Stored,
        Some(http),
    )
    .await;
    let port = a.port.unwrap();
    let browser = "ab".repeat(16);
    let join = serde_json::json!({"type": "join", "id": browser, "name": "phone", "token": token});
    let open = || async {
        let url = format!("ws://127.0.0.1:{port}/ws");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Ws::Text(join.to_string().into())).await.unwrap();
        ws
    };
    async fn next_text(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> serde_json::Value {
        loop {
            let frame = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("a frame")
                .expect("open")
                .unwrap();
            if let Ws::Text(t) = frame {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "text" {
                    return v;
                }
            }
        }
    }
    let mut ws = open().await;
    let peer = a
        .expect("the browser's session", |e| match e {
            NetEvent::SessionOpened { peer, .. } => Some(peer.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (peer.kind, peer.id.as_str(), peer.name.as_str()),
        (PeerKind::Web, browser.as_str(), "phone")
    );
    a.send(NetCommand::Send {
        to: peer.id.clone(),
        texts: vec![text("w1", "hi phone")],
    });
    let got = next_text(&mut ws).await;
    assert_eq!(
        (got["id"].as_str(), got["body"].as_str()),
        (Some("w1"), Some("hi phone"))
    );
    ws.send(Ws::Text(
        serde_json::json!({"type": "ack", "ids": ["w1"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let acked = a
        .expect("the delivery", |e| match e {
            NetEvent::Acked { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(acked, ["w1"]);
    ws.send(Ws::Text(
        serde_json::json!({"type": "text", "id": "p1", "body": "from the phone", "ts": 5})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let body = a
        .expect("the browser's text", |e| match e {
            NetEvent::Text { text, .. } => Some(text.body.clone()),
            _ => None,
        })
        .await;
    assert_eq!(body, "from the phone");
    drop(ws);
    a.expect("the close", |e| {
        matches!(e, NetEvent::SessionClosed { .. }).then_some(())
    })
    .await;
    a.send(NetCommand::Send {
        to: peer.id.clone(),
        texts: vec![text("w2", "while away")],
    });
    a.expect("the wait", |e| {
        matches!(e, NetEvent::Waiting { .. }).then_some(())
    })
    .await;
    let mut ws = open().await;
    let got = next_text(&mut ws).await;
    assert_eq!(got["id"], "w2", "{got}");
    a.stop().await;
}

/// A text typed to a browser that is away waits in the history's outbox,
/// and still goes when the browser joins a lantalk restarted on that history.
#[tokio::test]
async fn a_text_for_a_browser_survives_a_restart() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let dir = tempfile::tempdir().unwrap();
    let web = || -> crate::net::Http {
        std::sync::Arc::new(
            crate::web::Server::new(crate::web::Config {
                dir: dir.path().to_owned(),
                name: "a".into(),
                fingerprint: String::new(),
                history: None,
                open: false,
                ask: false,
            })
            .unwrap(),
        )
    };
    let token = crate::web::token::load_or_create(dir.path()).unwrap();
    let browser = "cd".repeat(16);
    let join = serde_json::json!({"type": "join", "id": browser, "name": "phone", "token": token});
    let listen = Listen::Port(Some(0));
    let a = start_with(
        1,
        "a",
        listen,
        Some(store(&dir)),
        AckPolicy::Stored,
        Some(web()),
    )
    .await;
    let port = a.port.unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Ws::Text(join.to_string().into())).await.unwrap();
    let mut a = a;
    a.expect("the browser", |e| {
        matches!(e, NetEvent::SessionOpened { .. }).then_some(())
    })
    .await;
    drop(ws);
    a.expect("the close", |e| {
        matches!(e, NetEvent::SessionClosed { .. }).then_some(())
    })
    .await;
    a.send(NetCommand::Send {
        to: PeerId::new(browser.clone()),
        texts: vec![text("k1", "kept for you")],
    });
    a.expect("the wait", |e| {
        matches!(e, NetEvent::Waiting { .. }).then_some(())
    })
    .await;
    a.stop().await;
    let b = start_with(
        1,
        "a",
        listen,
        Some(store(&dir)),
        AckPolicy::Stored,
        Some(web()),
    )
    .await;
    let url = format!("ws://127.0.0.1:{}/ws", b.port.unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Ws::Text(join.to_string().into())).await.unwrap();
    let got = loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame")
            .expect("open")
            .unwrap();
        if let Ws::Text(t) = frame {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "text" {
                break v;
            }
        }
    };
    assert_eq!(
        (got["id"].as_str(), got["body"].as_str()),
        (Some("k1"), Some("kept for you"))
    );
    b.stop().await;
}
