//! History on screen, drawn into a `TestBackend` and compared with committed
//! insta snapshots: offline conversations in the peers pane, a page of
//! history with its delivery marks, the line above the oldest message, the
//! search results overlay, and history's state in the status bar.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};

use super::draw;
use crate::app::{Action, App, DiscoveryState, Focus, Me, View, update};
use crate::net::{HistoryOff, NetEvent};
use crate::store::{Conversation, Record, State};

const PHONE: &str = "11111111111111111111111111111111";
const TABLET: &str = "22222222222222222222222222222222";
const RAW: &str = "raw-10.0.0.7";

/// 2026-11-26 09:15 UTC, a Thursday.
const THU_0915: u64 = 1_795_684_500_000;
const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;

fn app() -> App {
    App {
        me: Me {
            name: "me".into(),
            id: "f".repeat(32),
            port: 7654,
            addr: Some("192.168.1.20".parse().unwrap()),
            not_listening: None,
        },
        discovery: DiscoveryState::Active,
        ..App::default()
    }
}

fn net(app: &mut App, event: NetEvent) {
    update(app, Action::Net(event), THU_0915 + DAY);
}

fn rec(peer: &str, seq: i64, outgoing: bool, state: State, ts: u64, body: &str) -> Record {
    Record {
        seq,
        peer: peer.into(),
        outgoing,
        id: format!("{peer}-{seq}"),
        ts,
        body: body.into(),
        state,
    }
}

fn conv(peer: &str, name: &str, last_ts: u64, undelivered: u64) -> Conversation {
    Conversation {
        peer: peer.into(),
        name: name.into(),
        kind: crate::peer::PeerKind::Lantalk,
        last_ts,
        undelivered,
    }
}

/// History on, with phone (3 texts waiting for it), a raw peer and tablet
/// listed from the database; phone's newest page loaded.
fn with_history(page: Vec<Record>, more: bool) -> App {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![
            conv(PHONE, "phone", THU_0915 + 9 * MINUTE, 3),
            conv(RAW, "raw 10.0.0.7:51234", THU_0915, 0),
            conv(TABLET, "tablet", THU_0915 - DAY, 0),
        ]),
    );
    net(
        &mut app,
        NetEvent::History {
            peer: PHONE.into(),
            records: page,
            more,
        },
    );
    app
}

/// A day of conversation with phone with every delivery state.
fn page_with_states() -> Vec<Record> {
    let t = |m: u64| THU_0915 - DAY + m * MINUTE;
    vec![
        rec(
            PHONE,
            1,
            false,
            State::Delivered,
            t(0),
            "are you coming tomorrow?",
        ),
        rec(PHONE, 2, true, State::Delivered, t(1), "yes, around ten"),
        rec(PHONE, 3, true, State::Failed, t(2), "sent from a script"),
        rec(PHONE, 4, false, State::Delivered, THU_0915, "good morning"),
        rec(PHONE, 5, true, State::Sent, THU_0915 + MINUTE, "on my way"),
        rec(
            PHONE,
            6,
            true,
            State::Pending,
            THU_0915 + 2 * MINUTE,
            "stuck in traffic",
        ),
        rec(
            PHONE,
            7,
            true,
            State::Pending,
            THU_0915 + 3 * MINUTE,
            "ten more minutes",
        ),
    ]
}

fn render(app: &App, width: u16, height: u16) -> (Terminal<TestBackend>, View) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let mut view = app.view;
    terminal
        .draw(|f| view = draw(f, app))
        .expect("test backend");
    (terminal, view)
}

/// Column and row of `needle` on screen.
fn find(t: &Terminal<TestBackend>, needle: &str) -> Option<(u16, u16)> {
    let buf = t.backend().buffer();
    let n = needle.chars().count() as u16;
    for y in 0..buf.area.height {
        for x in 0..buf.area.width.saturating_sub(n - 1) {
            let s: String = (x..x + n).map(|x| buf[(x, y)].symbol()).collect();
            if s == needle {
                return Some((x, y));
            }
        }
    }
    None
}

fn on_screen(t: &Terminal<TestBackend>, needle: &str) -> (u16, u16) {
    find(t, needle).unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", t.backend()))
}

#[test]
fn offline_conversations_in_the_peers_pane() {
    let mut app = with_history(page_with_states(), false);
    app.focus = Focus::Peers;
    let (t, _) = render(&app, 80, 14);
    insta::assert_snapshot!("offline_conversations", t.backend());
    // Listed offline, dimmed, phone with its three waiting texts.
    let (x, y) = on_screen(&t, "· phone");
    assert!(
        t.backend().buffer()[(x + 2, y)]
            .modifier
            .contains(Modifier::DIM)
    );
    let (x, y) = on_screen(&t, "◷3");
    assert_eq!(t.backend().buffer()[(x, y)].fg, Color::Yellow);
    on_screen(&t, "· raw 10.0.0.7");
    on_screen(&t, "· tablet");
}

#[test]
fn a_page_of_history_with_its_delivery_marks() {
    let app = with_history(page_with_states(), false);
    assert_eq!(app.open.as_deref(), Some(PHONE), "the most recent opens");
    let (t, _) = render(&app, 72, 22);
    insta::assert_snapshot!("history_page", t.backend());
    on_screen(&t, "beginning of the conversation");
    on_screen(&t, "yes, around ten ✓");
    on_screen(&t, "sent from a script ✗ not delivered");
    on_screen(&t, "on my way …");
    on_screen(&t, "stuck in traffic ◷ waiting for phone");
    on_screen(&t, "Wed 25 Nov 2026");
    on_screen(&t, "Thu 26 Nov 2026");
}

/// Ten messages a minute apart from `first` (seq), oldest first.
fn messages(first: i64) -> Vec<Record> {
    (first..first + 10)
        .map(|s| {
            let ts = THU_0915 + (s as u64) * MINUTE;
            rec(
                PHONE,
                s,
                s % 2 == 0,
                State::Delivered,
                ts,
                &format!("message {s}"),
            )
        })
        .collect()
}

fn page_up(app: &mut App) -> Vec<crate::app::Effect> {
    update(
        app,
        Action::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::PageUp,
        )),
        THU_0915,
    )
}

#[test]
fn the_line_above_the_oldest_message() {
    // Everything fits: the top is visible and says older ones can be loaded.
    let app = with_history(messages(20), true);
    let (t, _) = render(&app, 80, 20);
    on_screen(&t, "older messages in history: scroll up to load them");

    // Twenty messages fill the pane (14 rows): scrolled up to the top, the
    // page before is asked for and the line says it is coming.
    let mut page = messages(20);
    page.extend(messages(30));
    let mut app = with_history(page, true);
    app.focus = Focus::Conversation;
    let (_, view) = render(&app, 80, 20);
    app.set_view(view);
    assert!(page_up(&mut app).is_empty());
    let (_, view) = render(&app, 80, 20);
    assert_eq!(view.max_scroll, Some(8), "the top is reached");
    app.set_view(view);
    assert_eq!(page_up(&mut app).len(), 1, "the older page is asked for");
    let (t, _) = render(&app, 80, 20);
    insta::assert_snapshot!("loading_older", t.backend());
    let (x, y) = on_screen(&t, "loading older messages…");
    assert!(
        t.backend().buffer()[(x, y)]
            .modifier
            .contains(Modifier::DIM)
    );

    // The page arrives: the messages that were on screen stay where they were.
    let (_, before) = on_screen(&t, "message 25");
    net(
        &mut app,
        NetEvent::History {
            peer: PHONE.into(),
            records: messages(10),
            more: false,
        },
    );
    let (t, _) = render(&app, 80, 20);
    assert_eq!(
        on_screen(&t, "message 25").1,
        before,
        "the view stays still"
    );
    assert!(find(&t, "loading older").is_none());
    on_screen(&t, "message 19");
    // At the very top: the beginning.
    let mut top = app.clone();
    top.peers
        .iter_mut()
        .for_each(|p| p.conversation.scroll = 1_000);
    let (t, _) = render(&top, 80, 20);
    on_screen(&t, "beginning of the conversation");
    on_screen(&t, "message 10");
}

#[test]
fn a_trimmed_conversation_with_history_points_there_instead_of_a_note() {
    let mut app = with_history(messages(20), true);
    let c = &mut app
        .peers
        .iter_mut()
        .find(|p| p.id == PHONE)
        .unwrap()
        .conversation;
    c.backlog.full = true;
    let (t, _) = render(&app, 80, 20);
    on_screen(&t, "older messages are in history (lantalk history)");
    assert!(find(&t, "not kept in memory").is_none());
}

fn search_results(app: &mut App) {
    let t = |d: u64, m: u64| THU_0915 - d * DAY + m * MINUTE;
    net(
        app,
        NetEvent::Found {
            words: "lunch".into(),
            records: vec![
                rec(
                    PHONE,
                    9,
                    false,
                    State::Delivered,
                    t(0, 30),
                    "lunch at noon?",
                ),
                rec(
                    TABLET,
                    8,
                    true,
                    State::Delivered,
                    t(1, 0),
                    "lunch\nwas great, \x1b[31mthanks",
                ),
                rec(RAW, 4, false, State::Delivered, t(2, 5), "who wants lunch"),
                rec(
                    PHONE,
                    2,
                    true,
                    State::Delivered,
                    t(30, 0),
                    &format!("a long message about lunch {}", "and more ".repeat(20)),
                ),
            ],
        },
    );
}

#[test]
fn the_search_results_overlay() {
    let mut app = with_history(page_with_states(), false);
    search_results(&mut app);
    update(
        &mut app,
        Action::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Down,
        )),
        THU_0915,
    );
    let (t, _) = render(&app, 90, 16);
    insta::assert_snapshot!("search_overlay", t.backend());
    on_screen(&t, "Search: lunch · 4 messages");
    on_screen(&t, "2026-11-26 09:45 · phone · lunch at noon?");
    on_screen(
        &t,
        "2026-11-25 09:15 · me → tablet · lunch was great, ^[[31mthanks",
    );
    on_screen(&t, "· raw 10.0.0.7:51234 · who wants lunch");
    // The second row is the cursor's, reversed across the box.
    let (x, y) = on_screen(&t, "2026-11-25 09:15");
    assert!(
        t.backend().buffer()[(x, y)]
            .modifier
            .contains(Modifier::REVERSED)
    );
    let (x, y) = on_screen(&t, "2026-11-26 09:45");
    assert!(
        !t.backend().buffer()[(x, y)]
            .modifier
            .contains(Modifier::REVERSED)
    );
    assert!(!t.backend().cursor_visible(), "no cursor over the results");
    // A long body is cut at the box's edge.
    let (_, y) = on_screen(&t, "2026-10-27 09:15");
    let row: String = (0..90)
        .map(|x| t.backend().buffer()[(x, y)].symbol())
        .collect();
    assert!(row.contains('…'), "{row}");
}

#[test]
fn a_search_result_is_brought_into_view_and_highlighted() {
    // Forty messages: the one at seq 5 is far above the bottom.
    let page: Vec<Record> = (0..40)
        .map(|s| {
            let ts = THU_0915 + (s as u64) * MINUTE;
            rec(
                PHONE,
                s,
                false,
                State::Delivered,
                ts,
                &format!("message {s}"),
            )
        })
        .collect();
    let mut app = with_history(page, false);
    net(
        &mut app,
        NetEvent::Found {
            words: "message".into(),
            records: vec![rec(PHONE, 5, false, State::Delivered, 0, "message 5")],
        },
    );
    update(
        &mut app,
        Action::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Enter,
        )),
        THU_0915,
    );
    let (t, view) = render(&app, 80, 20);
    let (x, y) = on_screen(&t, "message 5");
    assert!(
        t.backend().buffer()[(x, y)]
            .modifier
            .contains(Modifier::REVERSED)
    );
    // In the middle of the pane (rows 1..=14 inside the borders).
    assert!((5..=10).contains(&y), "row {y}\n{}", t.backend());
    let (x, y) = on_screen(&t, "message 6");
    assert!(
        !t.backend().buffer()[(x, y)]
            .modifier
            .contains(Modifier::REVERSED)
    );
    // The scroll chosen comes back, and the next draw shows the same rows.
    let jumped = view.jumped.expect("the jump is reported");
    let before = t.backend().buffer().clone();
    app.set_view(view);
    let c = &app
        .peers
        .iter()
        .find(|p| p.id == PHONE)
        .unwrap()
        .conversation;
    assert_eq!((c.scroll, c.jump.is_none()), (jumped, true));
    let (t, view) = render(&app, 80, 20);
    assert_eq!(t.backend().buffer(), &before);
    assert_eq!(view.jumped, None);
}

#[test]
fn history_in_the_status_bar() {
    let mut app = app();
    let (t, _) = render(&app, 140, 12);
    assert!(
        find(&t, "history").is_none(),
        "nothing while it is not known"
    );
    net(&mut app, NetEvent::HistoryOff(HistoryOff::Disabled));
    let (t, _) = render(&app, 140, 12);
    let (x, y) = on_screen(&t, "mDNS on · history off");
    assert!(
        t.backend().buffer()[(x + 10, y)]
            .modifier
            .contains(Modifier::DIM)
    );
    let mut app = self::app();
    net(
        &mut app,
        NetEvent::HistoryOff(HistoryOff::Unavailable(
            "history database /d/history.sqlite3: disk I/O error".into(),
        )),
    );
    let (t, _) = render(&app, 140, 12);
    let (x, y) = on_screen(&t, "history database /d/history.sqlite3: disk I/O error");
    assert_eq!(t.backend().buffer()[(x, y)].fg, Color::Yellow);
    let mut app = self::app();
    net(
        &mut app,
        NetEvent::HistoryOff(HistoryOff::Unavailable("locked\x1b[2J".into())),
    );
    let (t, _) = render(&app, 140, 12);
    on_screen(&t, "history off: locked^[[2J");
}

#[test]
fn the_help_and_the_commands_mention_search() {
    let mut app = app();
    app.help = true;
    let (t, _) = render(&app, 80, 30);
    on_screen(&t, "/search WORDS");
}
