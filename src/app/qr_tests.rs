//! `/qr`: the overlay with the address a phone opens; what asks for it,
//! what closes it, and which `.local` name it may use.

use crossterm::event::KeyCode;

use super::test_support::{app, command, key, net};
use super::{Action, DiscoveryState, Effect, QrView, update};
use crate::net::NetEvent;

fn listening(app: &mut super::App) {
    net(
        app,
        NetEvent::Listening {
            addrs: vec!["10.0.0.1".parse().unwrap()],
            port: 7342,
            fell_back_from: None,
        },
    );
}

fn view() -> QrView {
    QrView {
        url: "http://10.0.0.1:7342/#t=ab".into(),
        local: None,
        others: Vec::new(),
        warning: None,
        code: vec!["█".into()],
        new_token: false,
    }
}

#[test]
fn qr_asks_for_the_address_and_qr_new_for_a_new_token() {
    let mut app = app();
    listening(&mut app);
    assert_eq!(command(&mut app, "/qr"), [Effect::Qr { new_token: false }]);
    assert_eq!(
        command(&mut app, "/qr new"),
        [Effect::Qr { new_token: true }]
    );
    assert!(app.input.is_empty());
    // Anything else is refused and given back to edit.
    assert!(command(&mut app, "/qr old").is_empty());
    assert_eq!(app.input.text(), "/qr old");
    assert!(app.notice.as_deref().unwrap().contains("usage: /qr"));
}

#[test]
fn qr_before_listening_or_without_a_port_says_why() {
    let mut app = app();
    assert!(command(&mut app, "/qr").is_empty());
    assert!(app.notice.as_deref().unwrap().contains("not listening yet"));
    app.input.take();
    net(&mut app, NetEvent::NotListening("port 7342 is busy".into()));
    assert!(command(&mut app, "/qr").is_empty());
    let notice = app.notice.clone().unwrap();
    assert!(
        notice.contains("cannot reach") && notice.contains("busy"),
        "{notice}"
    );
}

#[test]
fn the_address_opens_the_overlay_and_any_key_closes_it() {
    let mut app = app();
    app.help = true;
    update(&mut app, Action::Qr(Ok(view())), 1_000);
    assert_eq!(app.qr, Some(view()));
    assert!(!app.help, "the overlay replaces the help");
    // Esc and Enter only close it.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.qr, None);
    update(&mut app, Action::Qr(Ok(view())), 1_000);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.qr, None);
    // Another key closes it and does what it does: nothing typed is lost.
    update(&mut app, Action::Qr(Ok(view())), 1_000);
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.qr, None);
    assert_eq!(app.input.text(), "h");
    update(&mut app, Action::Qr(Ok(view())), 1_000);
    update(&mut app, Action::Paste("ello".into()), 1_000);
    assert_eq!(app.qr, None);
    assert_eq!(app.input.text(), "hello");
}

#[test]
fn no_address_is_said_in_a_notice() {
    let mut app = app();
    update(
        &mut app,
        Action::Qr(Err("cannot write web-token".into())),
        1_000,
    );
    assert_eq!(app.qr, None);
    let notice = app.notice.unwrap();
    assert!(notice.contains("cannot write web-token"), "{notice}");
}

#[test]
fn the_local_name_follows_mdns_and_its_renames() {
    let mut app = app();
    app.host = Some("laptop.local".into());
    net(&mut app, NetEvent::DiscoveryActive);
    assert_eq!(app.local_name(), Some("laptop.local"));
    // Another device took our name: the old one would lead to it.
    net(&mut app, NetEvent::HostRenamed("laptop-2.local".into()));
    assert_eq!(app.local_name(), Some("laptop-2.local"));
    net(
        &mut app,
        NetEvent::DiscoveryOff("UDP port 5353 is held".into()),
    );
    assert_eq!(app.local_name(), None);
    app.discovery = DiscoveryState::Active;
    app.host = None;
    net(&mut app, NetEvent::HostRenamed("laptop-3.local".into()));
    assert_eq!(app.local_name(), None, "without mDNS there is no name");
}

#[test]
fn an_open_overlay_gives_the_new_local_name_after_a_rename() {
    let mut app = app();
    app.host = Some("laptop.local".into());
    let mut shown = view();
    shown.local = Some("http://laptop.local:7342/#t=ab".into());
    update(&mut app, Action::Qr(Ok(shown)), 1_000);
    net(&mut app, NetEvent::HostRenamed("laptop-2.local".into()));
    let local = app.qr.as_ref().and_then(|v| v.local.clone());
    assert_eq!(local.as_deref(), Some("http://laptop-2.local:7342/#t=ab"));
}
