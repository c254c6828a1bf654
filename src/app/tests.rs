//! `update` as plain tests: keys and network events in, state and effects out.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::test_support::*;
use super::*;
use crate::net::CloseReason;
use crate::net::{NetCommand, NetEvent};
use crate::protocol::Text;

const PHONE: &str = "11111111111111111111111111111111";
const TABLET: &str = "22222222222222222222222222222222";

fn mod_key(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
    update(app, Action::Key(KeyEvent::new(code, mods)), 1_000)
}

fn text(id: &str, body: &str) -> Text {
    Text {
        id: id.into(),
        ts: 1_500,
        body: body.into(),
    }
}

fn entries<'a>(app: &'a App, id: &str) -> &'a [Entry] {
    &app.peers
        .iter()
        .find(|p| p.id == id)
        .unwrap()
        .conversation
        .entries
}

#[test]
fn enter_sends_to_the_open_conversation_and_ack_marks_it_delivered() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.focus = Focus::Peers;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.open.as_deref(), Some(PHONE));
    assert_eq!(app.focus, Focus::Input);
    type_str(&mut app, "hello");
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Net(NetCommand::Send { to, texts })] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    let [text] = texts.as_slice() else {
        panic!("{texts:?}")
    };
    assert_eq!(
        (to.as_str(), text.body.as_str(), text.ts),
        (PHONE, "hello", 1_000)
    );
    assert!(app.input.is_empty());
    let id = text.id.clone();
    assert!(matches!(
        &entries(&app, PHONE)[0].kind,
        EntryKind::Own {
            state: Delivery::Sending,
            ..
        }
    ));
    connect(&mut app, 7, PHONE, "phone");
    net(&mut app, acked_on(7, id));
    assert!(matches!(
        &entries(&app, PHONE)[0].kind,
        EntryKind::Own {
            state: Delivery::Delivered,
            ..
        }
    ));
}

#[test]
fn message_ids_are_unique() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.open = Some(PHONE.into());
    let mut ids = Vec::new();
    for _ in 0..3 {
        type_str(&mut app, "x");
        if let [Effect::Net(NetCommand::Send { texts, .. })] =
            key(&mut app, KeyCode::Enter).as_slice()
        {
            ids.push(texts[0].id.clone());
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

#[test]
fn enter_with_no_conversation_keeps_the_text_and_explains() {
    let mut app = app();
    type_str(&mut app, "lost?");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.input.text(), "lost?");
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("no conversation open")
    );
}

#[test]
fn commands_connect_name_quit_and_unknown() {
    let mut app = app();
    type_str(&mut app, "/connect 10.0.0.9:7342");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Net(NetCommand::Connect(
            crate::net::Target::Address("10.0.0.9:7342".into())
        ))]
    );
    type_str(&mut app, "/name desk");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Net(NetCommand::Rename("desk".into()))]
    );
    assert_eq!(app.me.name, "desk");
    type_str(&mut app, "/frobnicate now");
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "an unknown command is never sent"
    );
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("unknown command /frobnicate")
    );
    assert_eq!(
        app.input.text(),
        "/frobnicate now",
        "the line is given back to edit"
    );
    app.input.take();
    type_str(&mut app, "/connect nowhere");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .starts_with("usage: /connect")
    );
    app.input.take();
    type_str(&mut app, "/quit");
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Effect::Quit]);
    assert!(app.quitting);
}

#[test]
fn double_slash_sends_a_leading_slash() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.open = Some(PHONE.into());
    type_str(&mut app, "//shrug");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { texts, .. })] if texts[0].body == "/shrug"),
        "{fx:?}"
    );
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let mut app = app();
    app.help = true;
    assert_eq!(
        mod_key(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
        vec![Effect::Quit]
    );
}

/// The network task acknowledges a text once it is in the history
/// database: the screen only shows it (and rings), it never acks.
#[test]
fn text_elsewhere_counts_unread_and_rings_and_nothing_is_acked_from_here() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    connect(&mut app, 2, TABLET, "tablet");
    app.open = Some(PHONE.into());
    let fx = net(&mut app, text_on(2, text("t1", "psst")));
    assert_eq!(fx, vec![Effect::Bell]);
    assert_eq!(app.peers[0].id, TABLET, "unread peers sort first");
    assert_eq!(app.unread_total(), 1);
    // On screen: no bell, no unread, nothing for the network.
    let fx = net(&mut app, text_on(1, text("p1", "hi")));
    assert_eq!(fx, vec![]);
    // --no-bell
    app.bell = false;
    let fx = net(&mut app, text_on(2, text("t2", "again")));
    assert_eq!(fx, vec![]);
    // Ctrl+N cycles to the other conversation and marks it read.
    mod_key(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(app.open.as_deref(), Some(TABLET));
    assert_eq!(app.unread_total(), 0);
    mod_key(&mut app, KeyCode::Char('p'), KeyModifiers::CONTROL);
    assert_eq!(app.open.as_deref(), Some(PHONE));
}

#[test]
fn first_message_opens_its_conversation_when_none_is_open() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    net(&mut app, text_on(1, text("p1", "hi")));
    assert_eq!(app.open.as_deref(), Some(PHONE));
    assert_eq!(app.unread_total(), 0);
}

#[test]
fn a_peer_that_leaves_stays_listed_offline_while_it_has_a_conversation() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    net(&mut app, NetEvent::PeerUp(peer(TABLET, "tablet")));
    connect(&mut app, 1, PHONE, "phone");
    net(&mut app, text_on(1, text("p1", "hi")));
    app.open = None;
    net(&mut app, closed(1, CloseReason::Bye));
    net(&mut app, NetEvent::PeerDown(PHONE.into()));
    net(&mut app, NetEvent::PeerDown(TABLET.into()));
    assert_eq!(app.peers.len(), 1, "tablet had no conversation and is gone");
    let phone = &app.peers[0];
    assert!(!phone.online());
    assert_eq!(
        phone.conversation.entries.last().unwrap().body,
        "phone is offline"
    );
    // It comes back: online again, with a system line.
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    assert!(app.peers[0].online());
    assert_eq!(
        app.peers[0].conversation.entries.last().unwrap().body,
        "phone is online"
    );
}

#[test]
fn failed_sends_are_marked_with_the_reason() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.open = Some(PHONE.into());
    type_str(&mut app, "anyone?");
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Net(NetCommand::Send { texts, .. })] = fx.as_slice() else {
        panic!()
    };
    let text = &texts[0];
    net(
        &mut app,
        NetEvent::SendFailed {
            to: PHONE.into(),
            ids: vec![text.id.clone()],
            reason: "connection refused".into(),
        },
    );
    let e = entries(&app, PHONE);
    assert!(
        matches!(&e[0].kind, EntryKind::Own { state: Delivery::Failed(why), .. } if why == "connection refused")
    );
    assert!(
        e[1].body
            .contains("could not deliver 1 message(s) to phone: connection refused")
    );
}

#[test]
fn a_pasted_block_is_one_message() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.open = Some(PHONE.into());
    let block = "line one\nline two\n".repeat(500);
    update(&mut app, Action::Paste(block.clone()), 1_000);
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { texts, .. })] if texts[0].body == block)
    );
}

#[test]
fn alt_enter_adds_a_line_instead_of_sending() {
    let mut app = app();
    app.open = Some(PHONE.into());
    type_str(&mut app, "a");
    assert!(mod_key(&mut app, KeyCode::Enter, KeyModifiers::ALT).is_empty());
    type_str(&mut app, "b");
    assert_eq!(app.input.text(), "a\nb");
}

#[test]
fn up_and_down_recall_history() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.open = Some(PHONE.into());
    for line in ["first", "second"] {
        type_str(&mut app, line);
        key(&mut app, KeyCode::Enter);
    }
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.text(), "second");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.text(), "first");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.text(), "first");
    key(&mut app, KeyCode::Down);
    assert_eq!(app.input.text(), "second");
    key(&mut app, KeyCode::Down);
    assert_eq!(app.input.text(), "");
}

#[test]
fn readline_keys_edit_the_input() {
    let mut app = app();
    type_str(&mut app, "hello big world");
    mod_key(&mut app, KeyCode::Char('w'), KeyModifiers::CONTROL);
    assert_eq!(app.input.text(), "hello big ");
    mod_key(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
    type_str(&mut app, ">");
    mod_key(&mut app, KeyCode::Char('k'), KeyModifiers::CONTROL);
    assert_eq!(app.input.text(), ">");
    type_str(&mut app, " one two");
    mod_key(&mut app, KeyCode::Char('b'), KeyModifiers::ALT);
    mod_key(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(app.input.text(), "two");
    mod_key(&mut app, KeyCode::Char('e'), KeyModifiers::CONTROL);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.input.text(), "tw");
}

#[test]
fn tab_cycles_focus_and_peers_pane_takes_j_k() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    net(&mut app, NetEvent::PeerUp(peer(TABLET, "tablet")));
    assert_eq!(app.focus, Focus::Input);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Peers);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.cursor, 1);
    key(&mut app, KeyCode::Char('k'));
    assert_eq!(app.cursor, 0);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Conversation);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Input);
    type_str(&mut app, "jk");
    assert_eq!(app.input.text(), "jk", "in the input, j and k are letters");
}

#[test]
fn help_opens_with_question_mark_or_f1_and_any_key_closes_it() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help);
    assert!(app.input.is_empty(), "the closing key does nothing else");
    type_str(&mut app, "why?");
    assert_eq!(
        app.input.text(),
        "why?",
        "? inside a message is a character"
    );
    key(&mut app, KeyCode::F(1));
    assert!(app.help);
}

#[test]
fn scrolling_and_the_new_messages_mark() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    app.open = Some(PHONE.into());
    app.set_view(View {
        page: 10,
        max_scroll: Some(25),
        jumped: None,
    });
    key(&mut app, KeyCode::PageUp);
    key(&mut app, KeyCode::PageUp);
    key(&mut app, KeyCode::PageUp);
    let conv = |app: &App| app.peers[0].conversation.clone();
    assert_eq!(conv(&app).scroll, 25, "clamped to what drawing reported");
    net(&mut app, text_on(1, text("p1", "new")));
    assert!(conv(&app).unseen_below);
    update(&mut app, Action::Scroll(-100), 3_000);
    assert_eq!(conv(&app).scroll, 0);
    assert!(!conv(&app).unseen_below);
    update(&mut app, Action::Scroll(2), 3_000);
    assert_eq!(conv(&app).scroll, 6);
}

#[test]
fn the_first_peer_to_appear_is_opened_when_nothing_is() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    assert_eq!(app.open.as_deref(), Some(PHONE));
    net(&mut app, NetEvent::PeerUp(peer(TABLET, "tablet")));
    assert_eq!(
        app.open.as_deref(),
        Some(PHONE),
        "a later peer does not take the screen"
    );
    type_str(&mut app, "hi");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { to, .. })] if to == PHONE),
        "{fx:?}"
    );
}

#[test]
fn raw_peers_get_lines_marked_sent_never_waiting_for_an_ack() {
    let mut app = app();
    let peer = crate::net::raw::raw_peer("10.0.0.7:51234".parse().unwrap());
    let id = peer.id.clone();
    let addr = "10.0.0.7:51234".parse().unwrap();
    net(
        &mut app,
        NetEvent::SessionOpened {
            session: 9,
            peer,
            addr,
            link: crate::net::Link::Plain,
        },
    );
    assert_eq!(app.peers[0].name, "raw 10.0.0.7:51234");
    assert_eq!(app.open.as_deref(), Some(id.as_str()));
    type_str(&mut app, "hi nc");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { to, .. })] if *to == id),
        "{fx:?}"
    );
    assert!(matches!(
        &entries(&app, &id)[0].kind,
        EntryKind::Own {
            state: Delivery::Sent,
            ..
        }
    ));
}

#[test]
fn a_flood_of_messages_rings_the_bell_once_a_second() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    connect(&mut app, 2, TABLET, "tablet");
    app.open = Some(PHONE.into());
    let mut bells = 0;
    for i in 0..1000u64 {
        // 1000 messages within 0.5 s, all for the conversation not on screen.
        let fx = update(
            &mut app,
            Action::Net(text_on(2, text(&format!("t{i}"), "\x07 ring"))),
            10_000 + i / 2,
        );
        bells += fx.iter().filter(|e| **e == Effect::Bell).count();
    }
    assert_eq!(
        bells, 1,
        "1000 messages in half a second rang {bells} times"
    );
    assert_eq!(app.unread_total(), 1000, "every message still counts");
    // A second later, the next message rings again.
    let fx = update(
        &mut app,
        Action::Net(text_on(2, text("late", "hi"))),
        10_000 + update::BELL_GAP_MS,
    );
    assert!(fx.contains(&Effect::Bell), "{fx:?}");
}

#[test]
fn system_lines_quote_peer_strings_on_one_line() {
    let mut app = app();
    let evil = "ev\x1bil\nfake line\u{202e}";
    connect(&mut app, 1, PHONE, evil);
    net(&mut app, text_on(1, text("p1", "hi")));
    let reason = format!("boom\n09:15 alice: {}", "x".repeat(10_000));
    net(
        &mut app,
        closed(
            1,
            CloseReason::PeerError {
                code: "c\x1b[2J".into(),
                message: reason,
            },
        ),
    );
    let line = &entries(&app, PHONE).last().unwrap().body;
    assert!(
        line.starts_with(
            "connection to ev^[il^Jfake line\\u{202e} closed: the peer reported c^[[2J: boom^J09:15"
        ),
        "{line}"
    );
    assert!(!line.contains('\n') && !line.contains('\x1b'), "{line}");
    assert!(line.chars().count() < 400, "the reason is cut: {line}");
    assert!(line.ends_with('…'), "{line}");
}

/// Bodies of the peer's messages in a conversation, oldest first.
fn peer_bodies(entries: &[Entry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Peer { .. }))
        .map(|e| e.body.as_str())
        .collect()
}

#[test]
fn a_flooded_conversation_keeps_the_newest_messages_and_says_how_many_it_dropped() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    let mut sent = 0;
    let mut send = |app: &mut App, n: usize| {
        for _ in 0..n {
            sent += 1;
            net(
                app,
                text_on(1, text(&sent.to_string(), &format!("m{sent}"))),
            );
        }
        sent
    };
    // Exactly the cap: everything is kept, nothing is said.
    send(&mut app, MAX_ENTRIES);
    let conv = &app.peers[0].conversation;
    assert_eq!(conv.entries.len(), MAX_ENTRIES);
    assert_eq!(conv.dropped, 0);
    assert!(matches!(conv.entries[0].kind, EntryKind::Peer { .. }));

    // One more: the oldest go, and one system line at the top says how many.
    let total = send(&mut app, 1);
    let conv = &app.peers[0].conversation;
    assert!(conv.entries.len() <= MAX_ENTRIES, "{}", conv.entries.len());
    assert!(conv.dropped > 0);
    assert_eq!(conv.entries[0].kind, EntryKind::System);
    assert_eq!(conv.entries[0].body, trimmed_note(conv.dropped));
    assert_eq!(
        conv.entries[0].body,
        format!("{} older messages are not kept in memory", conv.dropped)
    );
    let kept = peer_bodies(&conv.entries);
    assert_eq!(
        conv.dropped + kept.len(),
        total,
        "every message kept or counted"
    );
    let first_kept = format!("m{}", conv.dropped + 1);
    assert_eq!(
        kept.first(),
        Some(&first_kept.as_str()),
        "the newest are kept"
    );
    assert_eq!(kept.last(), Some(&format!("m{total}").as_str()));
    // The note is dated like the oldest message kept.
    assert_eq!(conv.entries[0].ts, conv.entries[1].ts);

    // Later trims rewrite that one line instead of adding another.
    let total = send(&mut app, MAX_ENTRIES);
    let conv = &app.peers[0].conversation;
    let notes = conv
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::System)
        .count();
    assert_eq!(notes, 1);
    assert!(conv.entries.len() <= MAX_ENTRIES);
    assert_eq!(conv.entries[0].body, trimmed_note(conv.dropped));
    assert_eq!(
        conv.dropped + peer_bodies(&conv.entries).len(),
        total,
        "every message kept or counted"
    );
    let bytes: usize = conv.entries.iter().map(|e| e.body.len()).sum();
    assert_eq!(conv.body_bytes, bytes);
}

#[test]
fn large_bodies_are_capped_in_bytes_before_the_entry_count() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    let big = 512 * 1024;
    for i in 0..200 {
        let body = format!("{i:04}{}", "x".repeat(big - 4));
        net(&mut app, text_on(1, text(&i.to_string(), &body)));
    }
    let conv = &app.peers[0].conversation;
    let bytes: usize = conv.entries.iter().map(|e| e.body.len()).sum();
    assert_eq!(conv.body_bytes, bytes);
    assert!(bytes <= MAX_BODY_BYTES, "{bytes} bytes kept");
    let kept = peer_bodies(&conv.entries);
    // At least 15/16 of the cap's worth stays, the newest.
    assert!(
        kept.len() * big >= MAX_BODY_BYTES * 15 / 16 - big,
        "{}",
        kept.len()
    );
    assert!(kept.last().unwrap().starts_with("0199"));
    assert_eq!(conv.dropped + kept.len(), 200);
    assert_eq!(conv.entries[0].body, trimmed_note(conv.dropped));
    // Other conversations are untouched by this one's cap.
    connect(&mut app, 2, TABLET, "tablet");
    net(&mut app, text_on(2, text("t1", "hello")));
    assert_eq!(peer_bodies(entries(&app, TABLET)), ["hello"]);
    assert_eq!(entries(&app, TABLET).len(), 1);
}

#[test]
fn a_single_dropped_message_is_said_in_the_singular() {
    assert_eq!(trimmed_note(1), "1 older message is not kept in memory");
}

/// The typing and memory benchmarks (#9, #10) fill a conversation with
/// 100,000 texts from `lantalk send`, which then leaves: all of it stays.
#[test]
fn the_benchmarks_hundred_thousand_messages_stay_whole() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    for i in 0..100_000 {
        net(
            &mut app,
            text_on(
                1,
                text(
                    &i.to_string(),
                    "a message of about sixty-four bytes, as the benchmarks send",
                ),
            ),
        );
    }
    net(&mut app, closed(1, CloseReason::Bye));
    let conv = &app.peers[0].conversation;
    assert_eq!(conv.dropped, 0);
    assert_eq!(peer_bodies(&conv.entries).len(), 100_000);
    assert_eq!(conv.entries.last().unwrap().body, "phone is offline");
}

#[test]
fn a_peer_speaking_another_protocol_is_listed_but_never_sent_to() {
    let mut app = app();
    let mut future = peer(PHONE, "future");
    future.problem = Some("speaks protocol 9; this lantalk speaks 1".into());
    net(&mut app, NetEvent::PeerUp(future.clone()));
    assert_eq!(app.open.as_deref(), Some(PHONE));
    let why = "future speaks protocol 9; this lantalk speaks 1: messages cannot be sent to it";
    assert_eq!(entries(&app, PHONE).len(), 1);
    assert_eq!(entries(&app, PHONE)[0].body, why);
    // Seen again: said once.
    net(&mut app, NetEvent::PeerUp(future));
    assert_eq!(entries(&app, PHONE).len(), 1);

    type_str(&mut app, "hello?");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(fx.is_empty(), "nothing dialled: {fx:?}");
    assert_eq!(
        app.notice.as_deref(),
        Some("cannot send: this peer speaks protocol 9; this lantalk speaks 1")
    );
    assert_eq!(app.input.text(), "hello?", "the text is kept");

    // It updates to our protocol: messages go out again.
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "future")));
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { .. })]),
        "{fx:?}"
    );
}

#[test]
fn limited_discovery_is_shown_with_its_reason() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::DiscoveryLimited("mDNS: no network".into()),
    );
    assert_eq!(
        app.discovery,
        DiscoveryState::Limited("mDNS: no network".into())
    );
    net(&mut app, NetEvent::DiscoveryActive);
    assert_eq!(app.discovery, DiscoveryState::Active);
}

#[test]
fn renames_by_mdns_are_said_the_host_one_too() {
    let mut app = app();
    net(&mut app, NetEvent::HostRenamed("laptop-2.local".into()));
    assert_eq!(
        app.notice.as_deref(),
        Some("another device on this network has your host name; yours is now \"laptop-2.local\"")
    );
}
