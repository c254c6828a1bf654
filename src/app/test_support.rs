//! Builders shared by the `update` tests of the chat screen: an app, keys,
//! typed commands, network events, sessions and discovered peers.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{Action, App, Effect, Focus, update};
use crate::net::node::NetEvent;
use crate::net::{Link, Peer};
use crate::protocol::Hello;

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
    let hello = Hello {
        proto: 1,
        id: id.into(),
        name: name.into(),
        app: "t".into(),
    };
    net(
        app,
        NetEvent::SessionOpened {
            sid,
            peer: hello,
            addr: "10.0.0.2:5000".parse().unwrap(),
            raw: link == Link::Raw,
            link,
        },
    );
}

/// A plain session `sid` with `id` called `name` opens.
pub(super) fn connect(app: &mut App, sid: u64, id: &str, name: &str) {
    opened(app, sid, id, name, Link::Plain);
}

/// A peer as discovery reports it.
pub(super) fn peer(id: &str, name: &str) -> Peer {
    Peer {
        name: name.into(),
        nick: name.into(),
        host: format!("{name}.local."),
        addrs: vec!["10.0.0.2:7342".parse().unwrap()],
        port: 7342,
        id: id.into(),
        fullname: format!("{name}._lantalk._tcp.local."),
        fp: None,
        problem: None,
    }
}
