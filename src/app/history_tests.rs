//! History on the chat screen as plain tests: conversations listed from the
//! database, pages merged in front, loading older pages by scrolling,
//! the memory cap with history, `/search` and its overlay, history off.

use crossterm::event::KeyCode;

use super::test_support::peer as peer_up;
use super::test_support::*;
use super::*;
use crate::net::{HistoryOff, NetCommand, NetEvent};
use crate::peer::PeerKind;
use crate::protocol::Text;
use crate::store::{self, Record, State};

const PHONE: &str = "11111111111111111111111111111111";
const TABLET: &str = "22222222222222222222222222222222";
const RAW: &str = "raw-10.0.0.7";

fn conv(peer: &str, name: &str, last_ts: u64, undelivered: u64) -> store::Conversation {
    store::Conversation {
        peer: peer.into(),
        name: name.into(),
        kind: match peer.strip_prefix("raw-") {
            Some(ip) => PeerKind::Raw(ip.parse().unwrap()),
            None => PeerKind::Lantalk,
        },
        last_ts,
        undelivered,
    }
}

/// A stored message: `seq`, ours or theirs, in `state`, at `seq` minutes.
fn rec(peer: &str, seq: i64, outgoing: bool, state: State, body: &str) -> Record {
    Record {
        seq,
        peer: peer.into(),
        outgoing,
        id: format!("{}{seq}", if outgoing { "o" } else { "i" }),
        ts: 1_700_000_000_000 + seq as u64 * 60_000,
        body: body.into(),
        state,
    }
}

/// Their messages `from..to` (seqs), a page oldest first.
fn theirs(peer: &str, seqs: std::ops::Range<i64>) -> Vec<Record> {
    seqs.map(|s| rec(peer, s, false, State::Delivered, &format!("m{s}")))
        .collect()
}

fn history(app: &mut App, peer: &str, records: Vec<Record>, more: bool) -> Vec<Effect> {
    net(
        app,
        NetEvent::History {
            peer: peer.into(),
            records,
            more,
        },
    )
}

fn find<'a>(app: &'a App, id: &str) -> &'a PeerEntry {
    app.peers.iter().find(|p| p.id == id).expect("listed")
}

fn bodies(app: &App, id: &str) -> Vec<String> {
    find(app, id)
        .conversation
        .entries
        .iter()
        .map(|e| e.body.clone())
        .collect()
}

fn seqs(app: &App, id: &str) -> Vec<Option<i64>> {
    find(app, id)
        .conversation
        .entries
        .iter()
        .map(|e| e.seq)
        .collect()
}

fn load(before: Option<i64>, peer: &str) -> Effect {
    Effect::Net(NetCommand::LoadHistory {
        peer: peer.into(),
        before,
    })
}

/// History on, phone's conversation open with `page` as its newest page,
/// the pane `page_rows` high, drawn with the top of the page reached.
fn open_with(page: Vec<Record>, more: bool) -> App {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![conv(PHONE, "phone", 1, 0)]),
    );
    history(&mut app, PHONE, page, more);
    app.focus = Focus::Conversation;
    app
}

#[test]
fn conversations_with_history_are_listed_offline_with_undelivered_counts() {
    let mut app = app();
    net(&mut app, NetEvent::PeerUp(peer_up(TABLET, "tablet")));
    let fx = net(
        &mut app,
        NetEvent::Conversations(vec![
            conv(PHONE, "phone", 9_000, 2),
            conv(RAW, "raw 10.0.0.7:51234", 5_000, 0),
            conv(TABLET, "old tablet name", 1_000, 0),
        ]),
    );
    assert!(fx.is_empty(), "the newest pages come unasked: {fx:?}");
    assert_eq!(app.history_mode, HistoryMode::On);
    let phone = find(&app, PHONE);
    assert_eq!(phone.name, "phone");
    assert!(!phone.online());
    assert_eq!(phone.undelivered(), 2, "our texts still waiting for it");
    assert_eq!(phone.last_activity, 9_000);
    let raw = find(&app, RAW);
    assert!(matches!(raw.kind, PeerKind::Raw(_)) && !raw.online());
    assert_eq!(
        (raw.name.as_str(), raw.host.as_str()),
        ("raw 10.0.0.7:51234", "10.0.0.7")
    );
    // Online: its live name wins over the stored one.
    assert_eq!(find(&app, TABLET).name, "tablet");
    assert!(find(&app, TABLET).online());
    // Online first, then the most recent.
    let order: Vec<&str> = app.peers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(order, [TABLET, PHONE, RAW]);
    // Tablet appeared first and is on screen; its page is loading.
    assert_eq!(app.open.as_deref(), Some(TABLET));
    assert_eq!(
        find(&app, PHONE).conversation.top_line(),
        Some(TopLine::Loading)
    );

    // A conversation with history stays listed when its peer comes and goes,
    // even with nothing of it in memory yet.
    net(&mut app, NetEvent::PeerUp(peer_up(PHONE, "phone")));
    net(&mut app, NetEvent::PeerDown(PHONE.into()));
    let entries = &find(&app, PHONE).conversation.entries;
    assert!(entries.iter().all(|e| e.key().is_none()), "{entries:?}");
    assert!(!find(&app, PHONE).online());

    // Its page: two of the three undelivered texts are in it.
    history(
        &mut app,
        PHONE,
        vec![
            rec(PHONE, 1, true, State::Pending, "a"),
            rec(PHONE, 2, true, State::Sent, "b"),
            rec(PHONE, 3, false, State::Delivered, "c"),
        ],
        true,
    );
    assert_eq!(find(&app, PHONE).undelivered(), 2);
}

#[test]
fn the_most_recent_conversation_opens_when_nothing_is_on_screen() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![
            conv(PHONE, "phone", 9, 0),
            conv(TABLET, "tablet", 1, 0),
        ]),
    );
    assert_eq!(app.open.as_deref(), Some(PHONE));
    // Without history nothing is listed and nothing opens.
    let mut app = self::app();
    net(&mut app, NetEvent::Conversations(Vec::new()));
    assert!(app.peers.is_empty() && app.open.is_none());
}

#[test]
fn a_page_shows_its_messages_with_seqs_dates_and_delivery_states() {
    let app = open_with(
        vec![
            rec(PHONE, 10, false, State::Delivered, "hello"),
            rec(PHONE, 11, true, State::Delivered, "delivered"),
            rec(PHONE, 12, true, State::Sent, "sent"),
            rec(PHONE, 13, true, State::Pending, "pending"),
            rec(PHONE, 14, true, State::Failed, "failed"),
        ],
        false,
    );
    let entries = &find(&app, PHONE).conversation.entries;
    assert_eq!(entries.len(), 5);
    assert_eq!(
        entries[0].kind,
        EntryKind::Peer {
            from: "phone".into(),
            id: "i10".into()
        }
    );
    assert_eq!(entries[0].ts, 1_700_000_000_000 + 10 * 60_000);
    let states: Vec<Delivery> = entries[1..]
        .iter()
        .map(|e| match &e.kind {
            EntryKind::Own { state, .. } => state.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        states,
        [
            Delivery::Delivered,
            Delivery::Sending,
            Delivery::Waiting("waiting for phone".into()),
            Delivery::Failed("not delivered".into()),
        ]
    );
    assert_eq!(
        seqs(&app, PHONE),
        [Some(10), Some(11), Some(12), Some(13), Some(14)]
    );
    let c = &find(&app, PHONE).conversation;
    assert_eq!(c.top_line(), Some(TopLine::Beginning));
    assert_eq!(app.unread_total(), 0, "history is not unread");
    assert_eq!(find(&app, PHONE).undelivered(), 2, "sent and pending");
}

#[test]
fn a_raw_peers_stored_texts_are_marked_sent() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![conv(RAW, "raw 10.0.0.7:4000", 1, 0)]),
    );
    history(
        &mut app,
        RAW,
        vec![rec(RAW, 1, true, State::Sent, "to nc")],
        false,
    );
    assert!(matches!(
        &find(&app, RAW).conversation.entries[0].kind,
        EntryKind::Own {
            state: Delivery::Sent,
            ..
        }
    ));
}

#[test]
fn live_messages_go_after_the_history_and_a_page_never_repeats_one() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![conv(PHONE, "phone", 1, 0)]),
    );
    // A text arrives live before the newest page does; the page holds it too.
    connect(&mut app, 1, PHONE, "phone");
    net(
        &mut app,
        text_on(
            1,
            Text {
                id: "i3".into(),
                ts: 5,
                body: "m3".into(),
            },
        ),
    );
    history(&mut app, PHONE, theirs(PHONE, 1..4), true);
    assert_eq!(bodies(&app, PHONE), ["m1", "m2", "m3"]);
    assert_eq!(seqs(&app, PHONE), [Some(1), Some(2), None]);
    // Later live messages are appended after it.
    net(
        &mut app,
        text_on(
            1,
            Text {
                id: "i4".into(),
                ts: 6,
                body: "m4".into(),
            },
        ),
    );
    // The same page again (a retried request) adds nothing.
    history(&mut app, PHONE, theirs(PHONE, 1..4), true);
    assert_eq!(bodies(&app, PHONE), ["m1", "m2", "m3", "m4"]);
    let bytes: usize = bodies(&app, PHONE).iter().map(String::len).sum();
    assert_eq!(find(&app, PHONE).conversation.body_bytes, bytes);
}

/// Draw feedback as the terminal loop gives it: the pane's top is reached
/// at `max` rows up.
fn drawn(app: &mut App, max: usize) {
    app.set_view(View {
        page: 10,
        max_scroll: Some(max),
        jumped: None,
        ..View::default()
    });
}

#[test]
fn scrolling_to_the_top_loads_the_older_page_once_and_keeps_the_view_still() {
    let mut app = open_with(theirs(PHONE, 50..60), true);
    drawn(&mut app, 12);
    // Not at the top yet: nothing asked.
    assert!(key(&mut app, KeyCode::Up).is_empty());
    assert_eq!(find(&app, PHONE).conversation.scroll, 1);
    // PgUp reaches the top: the page before seq 50 is asked for, once.
    assert_eq!(key(&mut app, KeyCode::PageUp), vec![]);
    assert_eq!(key(&mut app, KeyCode::PageUp), vec![load(Some(50), PHONE)]);
    let c = &find(&app, PHONE).conversation;
    assert_eq!(c.scroll, 12);
    assert_eq!(c.top_line(), Some(TopLine::Loading));
    assert!(key(&mut app, KeyCode::PageUp).is_empty(), "not again");
    assert!(update(&mut app, Action::Scroll(1), 1_000).is_empty());
    assert!(key(&mut app, KeyCode::Up).is_empty());

    // The page arrives: in front, the view where it was (rows from the bottom).
    assert!(history(&mut app, PHONE, theirs(PHONE, 40..50), true).is_empty());
    let c = &find(&app, PHONE).conversation;
    assert_eq!(c.scroll, 12);
    assert_eq!(c.entries.len(), 20);
    assert_eq!(c.entries[0].body, "m40");
    assert_eq!(c.top_line(), Some(TopLine::More));
    assert_eq!(app.view.max_scroll, None, "the next draw says the new top");

    // The wheel at the new top asks for the next one; it is the first.
    drawn(&mut app, 25);
    assert_eq!(
        update(&mut app, Action::Scroll(5), 1_000),
        vec![load(Some(40), PHONE)]
    );
    history(&mut app, PHONE, theirs(PHONE, 35..40), false);
    let c = &find(&app, PHONE).conversation;
    assert_eq!(c.entries[0].body, "m35");
    assert_eq!(c.top_line(), Some(TopLine::Beginning));
    drawn(&mut app, 31);
    assert!(key(&mut app, KeyCode::Home).is_empty(), "nothing older");
    assert!(key(&mut app, KeyCode::Up).is_empty());
}

#[test]
fn home_asks_for_older_messages_before_the_top_is_drawn() {
    let mut app = open_with(theirs(PHONE, 50..60), true);
    assert_eq!(key(&mut app, KeyCode::Home), vec![load(Some(50), PHONE)]);
}

#[test]
fn without_history_scrolling_to_the_top_asks_for_nothing() {
    let mut app = app();
    connect(&mut app, 1, PHONE, "phone");
    app.focus = Focus::Conversation;
    drawn(&mut app, 0);
    assert!(key(&mut app, KeyCode::PageUp).is_empty());
    assert!(key(&mut app, KeyCode::Home).is_empty());
    assert_eq!(find(&app, PHONE).conversation.top_line(), None);
    // With history on, a conversation new this session starts here.
    let mut app = self::app();
    net(&mut app, NetEvent::Conversations(Vec::new()));
    connect(&mut app, 1, PHONE, "phone");
    app.focus = Focus::Conversation;
    drawn(&mut app, 0);
    assert!(key(&mut app, KeyCode::PageUp).is_empty());
    assert_eq!(
        find(&app, PHONE).conversation.top_line(),
        Some(TopLine::Beginning)
    );
}

#[test]
fn with_history_trimmed_messages_stay_loadable_instead_of_a_note() {
    let mut app = open_with(theirs(PHONE, 1..11), false);
    connect(&mut app, 1, PHONE, "phone");
    let c = &mut app.peers[0].conversation;
    // A small cap to trim against: keep the newest 6 of 10.
    c.trim(6, usize::MAX);
    assert!(!c.note, "no note: they are in history");
    assert_eq!(c.entries.len(), 6);
    assert_eq!(c.entries[0].body, "m5");
    assert_eq!(c.top_line(), Some(TopLine::More));
    // Scrolling up brings back what was trimmed, from history.
    drawn(&mut app, 3);
    assert_eq!(key(&mut app, KeyCode::PageUp), vec![load(Some(5), PHONE)]);
    history(&mut app, PHONE, theirs(PHONE, 1..5), false);
    assert_eq!(
        bodies(&app, PHONE),
        ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10"]
    );

    // Without history the note is still there.
    let mut app = self::app();
    connect(&mut app, 1, PHONE, "phone");
    for i in 0..10 {
        net(
            &mut app,
            text_on(
                1,
                Text {
                    id: i.to_string(),
                    ts: 1,
                    body: "x".into(),
                },
            ),
        );
    }
    let c = &mut app.peers[0].conversation;
    c.trim(6, usize::MAX);
    assert!(c.note);
    assert_eq!(c.entries[0].body, trimmed_note(5));
}

#[test]
fn when_only_live_messages_are_left_pages_are_read_back_until_the_oldest_is_found() {
    let mut app = app();
    net(&mut app, NetEvent::Conversations(Vec::new()));
    connect(&mut app, 1, PHONE, "phone");
    for i in 1..=10 {
        net(
            &mut app,
            text_on(
                1,
                Text {
                    id: format!("i{i}"),
                    ts: 1,
                    body: format!("m{i}"),
                },
            ),
        );
    }
    app.peers[0].conversation.trim(6, usize::MAX);
    assert_eq!(bodies(&app, PHONE)[0], "m5");
    app.focus = Focus::Conversation;
    drawn(&mut app, 0);
    // Its seq is unknown: from the newest page back.
    assert_eq!(key(&mut app, KeyCode::PageUp), vec![load(None, PHONE)]);
    assert_eq!(
        history(&mut app, PHONE, theirs(PHONE, 7..11), true),
        vec![load(Some(7), PHONE)],
        "m5 is not in the newest page: the one before"
    );
    assert_eq!(bodies(&app, PHONE)[0], "m5", "nothing added meanwhile");
    assert!(history(&mut app, PHONE, theirs(PHONE, 3..7), true).is_empty());
    let c = &find(&app, PHONE).conversation;
    assert_eq!(bodies(&app, PHONE)[..3], ["m3", "m4", "m5"]);
    assert_eq!(c.top_line(), Some(TopLine::More));
    // From there on, by seq.
    drawn(&mut app, 0);
    assert_eq!(key(&mut app, KeyCode::PageUp), vec![load(Some(3), PHONE)]);
}

#[test]
fn a_page_that_does_not_fit_in_memory_stops_at_the_cap_and_says_so() {
    let mut app = open_with(theirs(PHONE, 10..12), true);
    let c = &mut app.peers[0].conversation;
    // Pretend memory is nearly full of bodies.
    c.body_bytes = MAX_BODY_BYTES - 5;
    let page: Vec<Record> = (5..10)
        .map(|s| rec(PHONE, s, false, State::Delivered, "two"))
        .collect();
    history(&mut app, PHONE, page, true);
    let c = &find(&app, PHONE).conversation;
    // The newest that fit (3 bytes each, 5 bytes of room: one).
    assert_eq!(seqs(&app, PHONE), [Some(9), Some(10), Some(11)]);
    assert_eq!(c.top_line(), Some(TopLine::InHistory));
    drawn(&mut app, 0);
    assert!(
        key(&mut app, KeyCode::PageUp).is_empty(),
        "full: nothing asked"
    );
}

#[test]
fn acks_for_texts_only_in_history_lower_the_undelivered_count() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![conv(PHONE, "phone", 1, 3)]),
    );
    history(
        &mut app,
        PHONE,
        vec![rec(PHONE, 9, true, State::Pending, "late")],
        true,
    );
    assert_eq!(find(&app, PHONE).undelivered(), 3);
    connect(&mut app, 1, PHONE, "phone");
    net(&mut app, acked_on(1, "o9".into()));
    assert_eq!(find(&app, PHONE).undelivered(), 2);
    net(&mut app, acked_on(1, "older".into()));
    assert_eq!(find(&app, PHONE).undelivered(), 1);
    // A second ack for one in memory changes nothing.
    net(&mut app, acked_on(1, "o9".into()));
    assert_eq!(find(&app, PHONE).undelivered(), 1);
}

#[test]
fn history_off_is_discreet_for_the_flag_and_explained_for_a_failure() {
    let mut app = app();
    net(&mut app, NetEvent::HistoryOff(HistoryOff::Disabled));
    assert_eq!(app.history_mode, HistoryMode::Disabled);

    // A failure after start: loading stops, the reason is kept for the status bar.
    let mut app = open_with(theirs(PHONE, 5..9), true);
    drawn(&mut app, 0);
    assert_eq!(key(&mut app, KeyCode::PageUp), vec![load(Some(5), PHONE)]);
    let why = "history database /tmp/x/history.sqlite3: disk I/O error";
    net(
        &mut app,
        NetEvent::HistoryOff(HistoryOff::Failed(why.into())),
    );
    assert_eq!(
        app.history_mode,
        HistoryMode::Off(format!("history stopped: {why}"))
    );
    let c = &find(&app, PHONE).conversation;
    assert_eq!(c.top_line(), None, "no loading line left hanging");
    assert!(key(&mut app, KeyCode::PageUp).is_empty());
    // And nothing to search.
    app.focus = Focus::Input;
    assert!(command(&mut app, "/search x").is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("history is off: there is nothing to search")
    );
}

fn found(app: &mut App, words: &str, records: Vec<Record>) {
    net(
        app,
        NetEvent::Found {
            words: words.into(),
            records,
        },
    );
}

#[test]
fn search_asks_the_network_and_refuses_without_words() {
    let mut app = app();
    assert!(command(&mut app, "/search").is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("usage: /search WORDS (finds messages in every conversation)")
    );
    assert_eq!(app.input.text(), "/search", "given back to edit");
    app.input.take();
    assert_eq!(
        command(&mut app, "/search  lunch   friday "),
        vec![Effect::Net(NetCommand::Search("lunch   friday".into()))]
    );
    assert_eq!(app.notice.as_deref(), Some("searching for lunch   friday…"));
    found(&mut app, "lunch friday", Vec::new());
    assert_eq!(
        app.notice.as_deref(),
        Some("no messages match lunch friday")
    );
    assert!(app.search.is_none());
    // The hint for unknown commands mentions it.
    command(&mut app, "/serch x");
    assert!(app.notice.as_deref().unwrap().contains("/search"));
}

#[test]
fn search_results_are_listed_navigated_and_open_the_conversation_at_the_message() {
    let mut app = open_with(theirs(PHONE, 50..60), true);
    net(
        &mut app,
        NetEvent::Conversations(vec![conv(TABLET, "tablet", 1, 0)]),
    );
    history(&mut app, TABLET, theirs(TABLET, 1..3), false);
    app.focus = Focus::Input;
    let hits = vec![
        rec(TABLET, 2, false, State::Delivered, "lunch?"),
        rec(PHONE, 55, false, State::Delivered, "lunch at noon"),
        rec(PHONE, 20, true, State::Delivered, "lunch again"),
    ];
    found(&mut app, "lunch", hits);
    let view = app.search.as_ref().expect("results shown");
    assert_eq!(view.hits.len(), 3);
    assert_eq!(view.hits[0].name, "tablet");
    assert_eq!(view.hits[1].name, "phone");
    assert_eq!(view.cursor, 0);

    // ↓ moves, ↑ stops at the top (a character would close the results
    // and be typed: see the test below).
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.search.as_ref().unwrap().cursor, 0);
    key(&mut app, KeyCode::End);
    assert_eq!(app.search.as_ref().unwrap().cursor, 2);
    update(&mut app, Action::Scroll(1), 1_000);
    assert_eq!(app.search.as_ref().unwrap().cursor, 1);

    // Enter on a message in memory: its conversation opens, at the message.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.search.is_none());
    assert_eq!(app.open.as_deref(), Some(PHONE));
    assert_eq!(app.focus, Focus::Conversation);
    let c = &find(&app, PHONE).conversation;
    let target = c.jump.clone().expect("a jump for the drawing");
    assert!(target.matches(&c.entries[5]));
    assert_eq!(c.highlight.as_ref(), Some(&target));
    // The drawing found it at 7 rows up: the scroll goes there.
    app.set_view(View {
        page: 10,
        max_scroll: Some(20),
        jumped: Some(7),
        ..View::default()
    });
    let c = &find(&app, PHONE).conversation;
    assert_eq!((c.scroll, c.jump.is_none()), (7, true));
    assert!(c.highlight.is_some());
    // The next key ends the highlight.
    key(&mut app, KeyCode::Down);
    assert!(find(&app, PHONE).conversation.highlight.is_none());

    // Esc closes without opening anything.
    found(
        &mut app,
        "lunch",
        vec![rec(TABLET, 2, false, State::Delivered, "lunch?")],
    );
    key(&mut app, KeyCode::Esc);
    assert!(app.search.is_none());
    assert_eq!(app.open.as_deref(), Some(PHONE));
}

#[test]
fn a_search_result_older_than_what_is_loaded_is_paged_in_first() {
    let mut app = open_with(theirs(PHONE, 50..60), true);
    found(
        &mut app,
        "old",
        vec![rec(PHONE, 20, true, State::Delivered, "old one")],
    );
    assert_eq!(key(&mut app, KeyCode::Enter), vec![load(Some(50), PHONE)]);
    // Still not there: the next page is asked for without a key.
    assert_eq!(
        history(&mut app, PHONE, theirs(PHONE, 40..50), true),
        vec![load(Some(40), PHONE)]
    );
    let mut page = theirs(PHONE, 21..40);
    page.insert(0, rec(PHONE, 20, true, State::Delivered, "old one"));
    assert!(history(&mut app, PHONE, page, true).is_empty());
    let c = &find(&app, PHONE).conversation;
    assert!(c.holds(c.jump.as_ref().unwrap()));
    assert_eq!(c.entries[0].body, "old one");

    // A conversation that was not listed: from its newest page.
    found(
        &mut app,
        "x",
        vec![rec(TABLET, 7, false, State::Delivered, "x")],
    );
    assert_eq!(key(&mut app, KeyCode::Enter), vec![load(None, TABLET)]);
    assert_eq!(app.open.as_deref(), Some(TABLET));
    history(&mut app, TABLET, theirs(TABLET, 5..9), false);
    let c = &find(&app, TABLET).conversation;
    assert!(c.holds(c.jump.as_ref().unwrap()));

    // A message that cannot be reached says so.
    let mut app = open_with(theirs(PHONE, 50..60), false);
    found(
        &mut app,
        "gone",
        vec![rec(PHONE, 3, false, State::Delivered, "gone")],
    );
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(find(&app, PHONE).conversation.jump.is_none());
    assert!(app.notice.as_deref().unwrap().contains("lantalk history"));
}

/// A page merged into a conversation near the cap: the duplicate check
/// looks at every entry once per page (printed, not asserted).
#[test]
fn a_page_merges_into_a_long_conversation() {
    let mut app = open_with(theirs(PHONE, 1_000_000..1_100_000), true);
    let page = theirs(PHONE, 999_800..1_000_000);
    let start = std::time::Instant::now();
    history(&mut app, PHONE, page, true);
    let took = start.elapsed();
    assert_eq!(find(&app, PHONE).conversation.entries.len(), 100_200);
    eprintln!("figure: merging a 200-message page in front of 100,000 entries took {took:?}");
}

/// Typing over the search results closes them and types: no key is lost
/// (j, k and q used to move and close, anything else was dropped).
#[test]
fn typing_over_the_search_results_closes_them_and_types() {
    let mut app = app();
    app.search = Some(SearchView {
        words: "pizza".into(),
        hits: Vec::new(),
        cursor: 0,
    });
    type_str(&mut app, "jk? q");
    assert!(app.search.is_none());
    assert_eq!(app.input.text(), "jk? q");
}
