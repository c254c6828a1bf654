//! Builders shared by the `update` tests of the chat screen: an app, keys,
//! typed commands, network events, sessions and discovered peers.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Action, App, Effect, Focus, update};
use crate::net::{CloseReason, Link, NetEvent, Presence, SessionId};
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::protocol::Text;

thread_local! {
    /// The peer of each session a test opened (each test runs on a thread
    /// of its own), for the events that name the peer.
    static SESSIONS: RefCell<HashMap<SessionId, PeerId>> = RefCell::new(HashMap::new());
}

/// The peer a test opened session `sid` with.
pub(super) fn peer_of(sid: SessionId) -> PeerId {
    SESSIONS.with(|s| {
        s.borrow()
            .get(&sid)
            .cloned()
            .expect("a session the test opened")
    })
}

/// A text from the peer of session `sid`.
pub(super) fn text_on(sid: SessionId, text: Text) -> NetEvent {
    NetEvent::Text {
        from: peer_of(sid),
        session: sid,
        text,
    }
}

/// The peer of session `sid` acknowledged our text `id`.
pub(super) fn acked_on(sid: SessionId, id: String) -> NetEvent {
    NetEvent::Acked {
        peer: peer_of(sid),
        ids: vec![id],
    }
}

/// Session `sid` ended.
pub(super) fn closed(sid: SessionId, reason: CloseReason) -> NetEvent {
    let peer = peer_of(sid);
    let connected = SESSIONS.with(|s| {
        let mut s = s.borrow_mut();
        s.remove(&sid);
        s.values().any(|p| *p == peer)
    });
    NetEvent::SessionClosed {
        peer,
        session: sid,
        reason,
        connected,
    }
}

/// Session `sid` with `peer` opens over `link`.
pub(super) fn opened_with(app: &mut App, sid: SessionId, peer: PeerInfo, link: Link) {
    SESSIONS.with(|s| s.borrow_mut().insert(sid, peer.id.clone()));
    net(
        app,
        NetEvent::SessionOpened {
            peer,
            session: sid,
            addr: "10.0.0.2:5000".parse().unwrap(),
            link,
        },
    );
}

pub(super) fn app() -> App {
    App::new("laptop".into(), "f".repeat(32), "abc".into(), 0)
}

pub(super) fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    update(
        app,
        Action::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        1_000,
    )
}

pub(super) fn type_str(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// Types `line` in the input and presses Enter.
pub(super) fn command(app: &mut App, line: &str) -> Vec<Effect> {
    app.focus = Focus::Input;
    type_str(app, line);
    key(app, KeyCode::Enter)
}

pub(super) fn net(app: &mut App, event: NetEvent) -> Vec<Effect> {
    update(app, Action::Net(event), 2_000)
}

/// A session `sid` with `id` called `name` opens over `link`.
pub(super) fn opened(app: &mut App, sid: u64, id: &str, name: &str, link: Link) {
    let peer = PeerInfo {
        id: PeerId::new(id),
        name: name.into(),
        kind: PeerKind::Lantalk,
    };
    opened_with(app, sid, peer, link);
}

/// A plain session `sid` with `id` called `name` opens.
pub(super) fn connect(app: &mut App, sid: u64, id: &str, name: &str) {
    opened(app, sid, id, name, Link::Plain);
}

/// A peer as discovery reports it.
pub(super) fn peer(id: &str, name: &str) -> Presence {
    Presence {
        id: PeerId::new(id),
        name: name.into(),
        host: format!("{name}.local."),
        addrs: vec!["10.0.0.2:7342".parse().unwrap()],
        problem: None,
    }
}
