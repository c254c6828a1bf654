//! `update` as plain tests: keys and network events in, state and effects out.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::test_support::*;
use super::*;
use crate::net::CloseReason;
use crate::net::{Link, NetCommand, NetEvent};
use crate::peer::PeerId;
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
fn connect_without_a_port_means_port_7342() {
    let mut app = app();
    for (typed, meant) in [
        ("10.66.0.2", "10.66.0.2:7342"),
        ("laptop.lan", "laptop.lan:7342"),
        ("::1", "[::1]:7342"),
        ("[::1]", "[::1]:7342"),
        ("[::1]:9000", "[::1]:9000"),
    ] {
        type_str(&mut app, &format!("/connect {typed}"));
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            vec![Effect::Net(NetCommand::Connect(
                crate::net::Target::Address(meant.into())
            ))],
            "{typed}"
        );
        assert_eq!(app.connecting.as_deref(), Some(meant));
    }
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
    type_str(&mut app, "/connect");
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

/// As in a shell: Ctrl+C on a half-typed line clears it; only on an empty
/// input does it quit.
#[test]
fn ctrl_c_clears_a_half_typed_line_before_it_quits() {
    let mut app = app();
    app.focus = Focus::Peers;
    app.input.set("half a thou".into());
    let fx = mod_key(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(fx.is_empty(), "{fx:?}");
    assert!(!app.quitting);
    assert!(app.input.is_empty());
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
fn tab_cycles_focus_and_the_peers_pane_takes_arrows() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    net(&mut app, NetEvent::PeerUp(peer(TABLET, "tablet")));
    assert_eq!(app.focus, Focus::Input);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Peers);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.cursor, 1);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.cursor, 0);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Conversation);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Input);
    type_str(&mut app, "jk");
    assert_eq!(app.input.text(), "jk", "in the input, j and k are letters");
}

/// Typing while another pane has the focus (where Tab or a `/search`
/// result leaves it) types into the input: no key is lost.
#[test]
fn characters_typed_in_another_pane_go_to_the_input() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    net(&mut app, NetEvent::PeerUp(peer(TABLET, "tablet")));
    for focus in [Focus::Peers, Focus::Conversation] {
        app.focus = focus;
        type_str(&mut app, "jk?");
        assert_eq!(app.focus, Focus::Input, "{focus:?}");
        assert_eq!(app.input.take(), "jk?", "{focus:?}");
    }
}

#[test]
fn question_mark_is_a_character_and_f1_opens_the_help() {
    let mut app = app();
    type_str(&mut app, "?what do you mean");
    assert!(!app.help);
    assert_eq!(app.input.take(), "?what do you mean");
    net(&mut app, NetEvent::PeerUp(peer(PHONE, "phone")));
    app.open = Some(PHONE.into());
    type_str(&mut app, "?");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { texts, .. })] if texts[0].body == "?"),
        "a lone ? is a message: {fx:?}"
    );
    key(&mut app, KeyCode::F(1));
    assert!(app.help);
    // A character closes the help and is typed, not eaten.
    type_str(&mut app, "hat");
    assert!(!app.help);
    assert_eq!(app.input.text(), "hat");
    key(&mut app, KeyCode::F(1));
    key(&mut app, KeyCode::Esc);
    assert!(!app.help);
    assert_eq!(app.input.text(), "hat", "Esc only closes the help");
}

#[test]
fn the_help_scrolls_within_what_drawing_reported() {
    let mut app = app();
    key(&mut app, KeyCode::F(1));
    app.set_view(View {
        help_page: 5,
        help_max_scroll: 7,
        ..View::default()
    });
    key(&mut app, KeyCode::Down);
    assert_eq!(app.help_scroll, 1);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.help_scroll, 6);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.help_scroll, 7);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.help_scroll, 0);
    key(&mut app, KeyCode::End);
    assert_eq!(app.help_scroll, 7);
    assert!(app.help, "scrolling keys keep it open");
    key(&mut app, KeyCode::Enter);
    assert!(!app.help);
    key(&mut app, KeyCode::F(1));
    assert_eq!(app.help_scroll, 0, "opened again at the top");
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
        ..View::default()
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
fn texts_sent_with_lantalk_send_show_as_ours_and_take_their_acks() {
    let mut app = app();
    opened(&mut app, 1, PHONE, "phone", Link::Plain);
    let fx = net(
        &mut app,
        NetEvent::Sending {
            to: PeerId::new(PHONE),
            texts: vec![text("x-1", "from a script"), text("x-2", "and another")],
        },
    );
    // Already handed to the node: nothing to ask of it.
    assert!(fx.is_empty(), "{fx:?}");
    let own: Vec<_> = entries(&app, PHONE)
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Own { id, state } => Some((id.as_str(), e.body.as_str(), state.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        own,
        [
            ("x-1", "from a script", Delivery::Sending),
            ("x-2", "and another", Delivery::Sending)
        ]
    );
    net(&mut app, acked_on(1, "x-2".into()));
    let last = entries(&app, PHONE).last().unwrap();
    assert!(matches!(
        &last.kind,
        EntryKind::Own {
            state: Delivery::Delivered,
            ..
        }
    ));
}

const DESK: &str = "33333333333333333333333333333333";

fn ctrl(app: &mut App, c: char, now: u64) -> Vec<Effect> {
    update(
        app,
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)),
        now,
    )
}

/// What is typed and not sent stays with its conversation: Ctrl+N does not
/// carry it to the next person, and coming back brings it back.
#[test]
fn each_conversation_keeps_its_own_draft() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    connect(&mut app, 2, TABLET, "tablet");
    app.open = Some(PHONE.into());
    type_str(&mut app, "for the phone");
    ctrl(&mut app, 'n', 1_000);
    let other = app.open.clone().unwrap();
    assert_ne!(other.as_str(), PHONE);
    assert!(app.input.is_empty(), "the draft stayed behind");
    type_str(&mut app, "for the tablet");
    // Enter in the peers list switches too.
    let phone_row = app.peers.iter().position(|p| p.id == PHONE).unwrap();
    app.focus = Focus::Peers;
    app.cursor = phone_row;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.open.as_deref(), Some(PHONE));
    assert_eq!(app.input.text(), "for the phone");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::Net(NetCommand::Send { to, texts })] if to == PHONE && texts[0].body == "for the phone"),
        "{fx:?}"
    );
    ctrl(&mut app, 'p', 1_000);
    assert_eq!(app.open.as_ref(), Some(&other));
    assert_eq!(app.input.text(), "for the tablet");
    let kept = app.drafts_to_keep();
    assert_eq!(
        kept.get(other.as_str()).map(String::as_str),
        Some("for the tablet"),
        "the open conversation's input is kept too"
    );
    assert!(!kept.contains_key(PHONE), "what was sent is no draft");
    ctrl(&mut app, 'n', 1_000);
    assert!(app.input.is_empty(), "what was sent is no draft");
}

/// Drafts kept from the last run come back when their conversation opens,
/// and never push aside what was typed before any conversation was open.
#[test]
fn kept_drafts_come_back_when_their_conversation_opens() {
    let mut app = app();
    app.drafts.insert(PHONE.into(), "from last time".into());
    connect(&mut app, 1, PHONE, "phone");
    assert_eq!(app.open.as_deref(), Some(PHONE));
    assert_eq!(app.input.text(), "from last time");

    let mut app = super::test_support::app();
    app.drafts.insert(PHONE.into(), "from last time".into());
    type_str(&mut app, "/connect 10.0.0.2:7342");
    connect(&mut app, 1, PHONE, "phone");
    assert_eq!(app.input.text(), "/connect 10.0.0.2:7342");
    assert_eq!(
        app.drafts.get(PHONE).map(String::as_str),
        Some("from last time")
    );
}

/// Ctrl+N through the list visits every peer once, in the order shown, even
/// though opening one marks it read (which would sort it elsewhere); the
/// list is sorted again once the user stops.
#[test]
fn ctrl_n_goes_through_every_peer_once_and_the_list_sorts_after() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    connect(&mut app, 2, TABLET, "tablet");
    connect(&mut app, 3, DESK, "desk");
    // Two unread conversations while the third is on screen.
    app.open = Some(TABLET.into());
    net(&mut app, text_on(1, text("p1", "one")));
    net(&mut app, text_on(3, text("d1", "two")));
    app.open = None;
    let shown: Vec<PeerId> = app.peers.iter().map(|p| p.id.clone()).collect();
    assert_eq!(shown, [DESK, PHONE, TABLET].map(PeerId::new));
    let mut visited = Vec::new();
    for _ in 0..3 {
        ctrl(&mut app, 'n', 10_000);
        visited.push(app.open.clone().unwrap());
    }
    assert_eq!(visited, shown, "each once, in the order shown");
    let order: Vec<PeerId> = app.peers.iter().map(|p| p.id.clone()).collect();
    assert_eq!(order, shown, "held still meanwhile");
    assert_eq!(app.wake_at(), Some(10_000 + ORDER_HOLD_MS));
    update(&mut app, Action::Tick, 10_000 + ORDER_HOLD_MS);
    assert!(app.wake_at().is_none());
    assert!(!app.resort_due);
}

/// While the cursor moves through the peers list, events that would
/// re-sort it (a message, a peer coming) leave it where it is, so ↑/↓ land
/// where the user looks; leaving the pane sorts it.
#[test]
fn the_peers_list_holds_still_under_the_cursor() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    connect(&mut app, 2, TABLET, "tablet");
    app.open = Some(PHONE.into());
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Peers);
    let ids = |app: &App| -> Vec<String> { app.peers.iter().map(|p| p.id.to_string()).collect() };
    assert_eq!(ids(&app), [PHONE, TABLET]);
    // A message to the last row would sort it first (unread).
    net(&mut app, text_on(2, text("t1", "hey")));
    net(&mut app, NetEvent::PeerUp(peer(DESK, "desk")));
    assert_eq!(
        ids(&app),
        [PHONE, TABLET, DESK],
        "no row moved; the new one comes last"
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(app.cursor, 1);
    key(&mut app, KeyCode::Esc);
    assert_eq!(
        ids(&app),
        [TABLET, PHONE, DESK],
        "sorted once the focus left"
    );
    assert_eq!(app.cursor, 0, "still on tablet");
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

/// A browser without the join token waits for the user: the request is
/// shown with its keys, Ctrl+Y lets it in, Ctrl+D turns the next one away.
#[test]
fn a_browser_asking_to_join_is_answered_with_ctrl_y_or_ctrl_d() {
    let mut app = app();
    let agent =
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36";
    for (req, name) in [(7, "Visitor"), (8, "Other")] {
        net(
            &mut app,
            NetEvent::JoinRequest {
                req,
                name: name.into(),
                addr: "10.0.0.9:50000".parse().unwrap(),
                agent: agent.into(),
            },
        );
    }
    assert_eq!(
        app.joins.front().map(|j| j.text.as_str()),
        Some(
            "Visitor at 10.0.0.9 (Chrome on Android) asks to join from a browser: Ctrl+Y accept, Ctrl+D decline"
        )
    );
    let fx = ctrl(&mut app, 'y', 1_000);
    assert!(
        matches!(
            fx.as_slice(),
            [Effect::Net(NetCommand::AnswerJoin {
                req: 7,
                accept: true
            })]
        ),
        "{fx:?}"
    );
    let fx = ctrl(&mut app, 'd', 2_000);
    assert!(
        matches!(
            fx.as_slice(),
            [Effect::Net(NetCommand::AnswerJoin {
                req: 8,
                accept: false
            })]
        ),
        "{fx:?}"
    );
    assert!(app.joins.is_empty());
    // With nothing asked, Ctrl+Y and Ctrl+D do nothing of the sort.
    assert!(ctrl(&mut app, 'y', 3_000).is_empty());
}

/// `/forget` in a browser's conversation asks the node to forget it; in
/// another conversation, or none, it is refused and given back to edit.
#[test]
fn forget_is_for_a_browsers_conversation() {
    let mut app = app();
    assert!(command(&mut app, "/forget").is_empty());
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("no conversation open")
    );
    assert_eq!(app.input.take(), "/forget");
    let browser = crate::peer::PeerInfo {
        id: PeerId::new(PHONE),
        name: "Visitor".into(),
        kind: crate::peer::PeerKind::Web,
    };
    opened_with(&mut app, 1, browser, Link::Plain);
    connect(&mut app, 2, TABLET, "tablet");
    app.open = Some(PeerId::new(TABLET));
    assert!(command(&mut app, "/forget").is_empty());
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("browser's conversation"),
        "{:?}",
        app.notice
    );
    assert_eq!(app.input.take(), "/forget");
    app.open = Some(PeerId::new(PHONE));
    assert!(command(&mut app, "/forget now").is_empty());
    assert_eq!(app.input.take(), "/forget now");
    assert_eq!(
        command(&mut app, "/forget"),
        [Effect::Net(NetCommand::Forget(PeerId::new(PHONE)))]
    );
}
