//! Screens drawn into a `TestBackend` and compared with committed insta
//! snapshots (`src/ui/snapshots/`), plus checks the snapshots cannot show:
//! styles, the cursor, escapes never reaching the buffer, and that a long
//! conversation lays out only what is visible (how long drawing takes is
//! measured by `benches/screen.rs`, #9b).

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Position;
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthChar;

use super::{conversation, draw, title};
use crate::app::{
    App, Conversation, Delivery, DiscoveryState, Entry, EntryKind, Focus, Me, PeerEntry,
};

/// 2026-11-25 22:40 UTC, a Wednesday.
const WED_2240: u64 = 1_795_646_400_000;
/// 2026-11-26 09:15 UTC, a Thursday.
const THU_0915: u64 = 1_795_684_500_000;
const MINUTE: u64 = 60_000;

fn me() -> Me {
    Me {
        name: "me".into(),
        id: "f".repeat(32),
        port: 7654,
        addr: Some("192.168.1.20".parse().unwrap()),
        not_listening: None,
    }
}

fn peer(n: u8, name: &str, host: &str) -> PeerEntry {
    PeerEntry {
        id: format!("{n:032x}").into(),
        name: name.into(),
        host: host.into(),
        addrs: Vec::new(),
        discovered: true,
        problem: None,
        kind: crate::peer::PeerKind::Lantalk,
        connected: false,
        link: None,
        unread: 0,
        last_activity: 0,
        conversation: Conversation::default(),
    }
}

fn theirs(ts: u64, from: &str, body: &str) -> Entry {
    Entry {
        ts,
        kind: EntryKind::Peer {
            from: from.into(),
            id: format!("p{ts}"),
        },
        body: body.into(),
        seq: None,
    }
}

fn own(ts: u64, state: Delivery, body: &str) -> Entry {
    Entry {
        ts,
        kind: EntryKind::Own {
            id: format!("m{ts}"),
            state,
        },
        body: body.into(),
        seq: None,
    }
}

fn system(ts: u64, body: &str) -> Entry {
    Entry {
        ts,
        kind: EntryKind::System,
        body: body.into(),
        seq: None,
    }
}

fn app() -> App {
    App {
        me: me(),
        discovery: DiscoveryState::Active,
        ..App::default()
    }
}

/// An app with `alice` open (connected) holding `entries`.
fn chatting(entries: Vec<Entry>) -> App {
    let mut alice = peer(1, "alice", "laptop.local.");
    alice.connected = true;
    alice.conversation.entries = entries;
    let mut app = app();
    app.open = Some(alice.id.clone());
    app.peers = vec![alice, peer(2, "bob", "bob-pc.local.")];
    app
}

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|f| {
            draw(f, app);
        })
        .expect("test backend");
    terminal
}

/// No control, bidi or invisible character may reach the terminal, nor a
/// pile of combining marks.
fn assert_clean(buffer: &Buffer) {
    for cell in &buffer.content {
        let s = cell.symbol();
        assert!(
            !s.chars()
                .any(|c| c.is_control() || crate::sanitize::escape_char(c, true).is_some()),
            "unsafe character in cell {s:?}"
        );
        let marks = s.chars().filter(|c| c.width() == Some(0)).count();
        assert!(
            marks <= crate::sanitize::MAX_MARKS,
            "{marks} zero-width chars in cell {s:?}"
        );
    }
}

/// The cell at column `x`, row `y`.
fn cell(t: &Terminal<TestBackend>, x: u16, y: u16) -> &ratatui::buffer::Cell {
    &t.backend().buffer()[(x, y)]
}

/// Column and row of the first cell of `needle` on screen.
fn find(t: &Terminal<TestBackend>, needle: &str) -> (u16, u16) {
    let buf = t.backend().buffer();
    let first = needle.chars().next().expect("non-empty needle").to_string();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            if buf[(x, y)].symbol() == first {
                let rest: String = (x..buf.area.width.min(x + needle.chars().count() as u16))
                    .map(|x| buf[(x, y)].symbol())
                    .collect();
                if rest == needle {
                    return (x, y);
                }
            }
        }
    }
    panic!("{needle:?} not on screen");
}

#[test]
fn empty_start() {
    let mut app = app();
    app.discovery = DiscoveryState::Starting;
    let t = render(&app, 80, 24);
    insta::assert_snapshot!("empty_start", t.backend());
    assert_eq!(title(&app), "lantalk");
}

#[test]
fn discovery_off_hint() {
    let mut app = app();
    app.discovery = DiscoveryState::Off("mDNS off".into());
    let t = render(&app, 80, 24);
    find(&t, "discovery");
    find(&t, "mDNS off");
}

#[test]
fn limited_discovery_and_a_peer_we_cannot_talk_to() {
    let mut app = app();
    app.discovery = DiscoveryState::Limited("mDNS: no network (only loopback is up)".into());
    let mut future = peer(1, "future", "future.local.");
    future.problem = Some("speaks protocol 9; this lantalk speaks 1".into());
    app.peers = vec![future, peer(2, "bob", "bob-pc.local.")];
    let t = render(&app, 100, 24);
    find(&t, "mDNS: no network (only loopback is up)");
    let (x, y) = find(&t, "✗ future");
    assert_eq!(cell(&t, x, y).fg, Color::Red);
    find(&t, "○ bob");
    app.peers.clear();
    let t = render(&app, 100, 24);
    find(&t, "no peers yet");
}

fn many_peers() -> App {
    let mut app = app();
    let mut alice = peer(1, "alice", "laptop.local.");
    alice.connected = true;
    alice.unread = 3;
    let mut bob = peer(2, "bob", "bob-pc.local.");
    bob.unread = 12;
    let carol = peer(3, "carol", "carol.local.");
    let mut dave = peer(4, "dave", "192.168.1.40:7654");
    dave.connected = true;
    let mut erin = peer(5, "erin", "erin.local.");
    erin.discovered = false;
    let mut frank = peer(6, "a very long name for a peer", "far.local.");
    frank.discovered = false;
    frank.unread = 1;
    app.peers = vec![alice, bob, carol, dave, erin, frank];
    app.cursor = 1;
    app
}

#[test]
fn peers_list() {
    let mut app = many_peers();
    app.focus = Focus::Peers;
    let t = render(&app, 80, 24);
    insta::assert_snapshot!("peers_list", t.backend());
    assert_eq!(title(&app), "lantalk (16)");

    // The cursor row (bob) is reversed across the pane, others are not.
    let (x, y) = find(&t, "bob");
    assert!(cell(&t, x, y).modifier.contains(Modifier::REVERSED));
    assert!(cell(&t, 24, y).modifier.contains(Modifier::REVERSED));
    assert!(!cell(&t, x, y - 1).modifier.contains(Modifier::REVERSED));
    // Offline peers are dimmed.
    let (x, y) = find(&t, "erin");
    assert!(cell(&t, x, y).modifier.contains(Modifier::DIM));
    // No cursor while the peers pane has the keys.
    assert!(!t.backend().cursor_visible());
}

#[test]
fn peers_cursor_weaker_without_focus() {
    let app = many_peers();
    let t = render(&app, 80, 24);
    let (x, y) = find(&t, "bob");
    assert!(!cell(&t, x, y).modifier.contains(Modifier::REVERSED));
    assert_eq!(cell(&t, x, y).bg, Color::DarkGray);
}

fn conversation_entries() -> Vec<Entry> {
    vec![
        theirs(WED_2240, "alice", "hi! are you there?"),
        own(WED_2240 + MINUTE, Delivery::Delivered, "yes, what's up"),
        system(THU_0915, "alice is online"),
        theirs(
            THU_0915 + MINUTE,
            "alice",
            "I was wondering whether you could send me the notes from yesterday's \
             meeting, the ones about the quarterly planning and the new office layout",
        ),
        theirs(
            THU_0915 + 2 * MINUTE,
            "alice",
            "你好，世界，这是一个很长的中文句子，需要换行才能完整地显示出来。",
        ),
        own(
            THU_0915 + 3 * MINUTE,
            Delivery::Delivered,
            "👋🎉 sure, emoji work too",
        ),
        own(
            THU_0915 + 4 * MINUTE,
            Delivery::Sending,
            "line one\nline two\n  indented line three",
        ),
        own(
            THU_0915 + 5 * MINUTE,
            Delivery::Failed("connection refused".into()),
            "are you still there?",
        ),
    ]
}

#[test]
fn conversation() {
    let app = chatting(conversation_entries());
    let t = render(&app, 72, 28);
    insta::assert_snapshot!("conversation", t.backend());
    assert_clean(t.backend().buffer());

    // The input has the focus: the cursor sits at its first cell.
    assert!(t.backend().cursor_visible());
    let (x, y) = find(&t, "Type a message");
    assert_eq!(t.backend().cursor_position(), Position::new(x, y));

    // Own name cyan, failure red.
    let (x, y) = find(&t, "me: are you");
    assert_eq!(cell(&t, x, y).fg, Color::Cyan);
    let (x, y) = find(&t, "✗");
    assert_eq!(cell(&t, x, y).fg, Color::Red);
}

#[test]
fn wide_characters_never_cross_the_edge() {
    let body = "你好".repeat(40) + &"👋".repeat(30);
    for width in 40..=60 {
        let app = chatting(vec![theirs(THU_0915, "alice", &body)]);
        let t = render(&app, width, 20);
        let buf = t.backend().buffer();
        // The conversation's right border is intact on every row.
        for y in 1..buf.area.height - 5 {
            assert_eq!(buf[(width - 1, y)].symbol(), "│", "width {width} row {y}");
        }
    }
}

#[test]
fn help_overlay() {
    let mut app = chatting(conversation_entries());
    app.help = true;
    let t = render(&app, 80, 30);
    insta::assert_snapshot!("help_overlay", t.backend());
    assert!(!t.backend().cursor_visible(), "no cursor over the help");
}

/// At 80×24 the help is taller than the screen: it scrolls, and every
/// line of it can be brought into view.
#[test]
fn help_overlay_scrolls_to_its_end_at_80_by_24() {
    let mut app = chatting(conversation_entries());
    app.help = true;
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test backend");
    let mut view = app.view;
    terminal.draw(|f| view = draw(f, &app)).unwrap();
    assert!(view.help_max_scroll > 0, "{view:?}");
    let screen = |t: &Terminal<TestBackend>| format!("{}", t.backend());
    assert!(screen(&terminal).contains("Anywhere"));
    assert!(screen(&terminal).contains("↓ more"));
    app.help_scroll = view.help_max_scroll;
    terminal.draw(|f| view = draw(f, &app)).unwrap();
    let end = screen(&terminal);
    for line in ["//text", "/quit", "/trust KEY", "↑ more"] {
        assert!(end.contains(line), "{line} missing:\n{end}");
    }
    insta::assert_snapshot!("help_overlay_80x24_end", terminal.backend());
}

#[test]
fn too_small() {
    let app = chatting(conversation_entries());
    let t = render(&app, 30, 8);
    insta::assert_snapshot!("too_small", t.backend());
}

#[test]
fn hostile_text_is_escaped() {
    let evil = "ev\x1b]52;c;aGk=\x07il\u{202e}";
    let mut app = chatting(vec![
        theirs(
            THU_0915,
            evil,
            "\x1b[2J cleared? \x1b]52;c;aGk=\x07 \u{202e}desrever",
        ),
        own(
            THU_0915 + MINUTE,
            Delivery::Failed("bad\x1b[31m reason".into()),
            "ok\r\n",
        ),
        system(THU_0915 + 2 * MINUTE, "\x1b]0;pwned\x07 went offline"),
    ]);
    app.peers[0].name = evil.into();
    app.peers[0].host = "h\x1b[Kost.local.".into();
    app.me.name = "me\x07".into();
    app.notice = Some("unknown command /\x1b[2J".into());
    app.discovery = DiscoveryState::Off("mDNS off: \x1b[5m".into());
    let t = render(&app, 80, 20);
    insta::assert_snapshot!("hostile_text", t.backend());
    assert_clean(t.backend().buffer());
    find(&t, "^[]52;c;aGk=^G");
    find(&t, "\\u{202e}");
}

/// `n` alternating messages a minute apart (the date changes every 1440).
fn long_conversation(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let ts = WED_2240 + i as u64 * MINUTE;
            if i % 2 == 0 {
                theirs(
                    ts,
                    "alice",
                    &format!(
                        "message number {i} from alice, long enough to wrap at least once here"
                    ),
                )
            } else {
                own(ts, Delivery::Delivered, &format!("reply {i}"))
            }
        })
        .collect()
}

#[test]
fn scrolled_up_with_unseen_below() {
    let mut app = chatting(long_conversation(40));
    let conv = &mut app.peers[0].conversation;
    conv.scroll = 5;
    conv.unseen_below = true;
    app.focus = Focus::Conversation;
    let t = render(&app, 80, 20);
    insta::assert_snapshot!("scrolled_unseen_below", t.backend());
    find(&t, "new messages below ↓");
}

#[test]
fn scrolled_past_the_top_shows_the_top() {
    let mut app = chatting(long_conversation(4));
    app.peers[0].conversation.scroll = 1_000;
    let t = render(&app, 80, 24);
    find(&t, "message number 0");
}

#[test]
fn only_visible_entries_are_laid_out() {
    let all = long_conversation(100_000);
    let tail = all[all.len() - 50..].to_vec();
    let big = chatting(all);
    let small = chatting(tail);
    let (t1, t2) = (render(&big, 100, 30), render(&small, 100, 30));
    assert_eq!(t1.backend().buffer(), t2.backend().buffer());

    let window = conversation::visible_lines(
        &big.peers[0].conversation,
        "me",
        0,
        70,
        25,
        &crate::app::Theme::default(),
    );
    assert_eq!(window.lines.len(), 25);
    assert!(window.entries_laid_out <= 26, "{}", window.entries_laid_out);
}

/// Draws `app` and returns the View it reports.
fn view_of(app: &App, width: u16, height: u16) -> crate::app::View {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let mut view = app.view;
    terminal
        .draw(|f| view = draw(f, app))
        .expect("test backend");
    view
}

#[test]
fn view_reports_page_and_max_scroll() {
    // 80×24: status 1, input 3 → conversation 20 rows, 18 inside the borders.
    let short = chatting(long_conversation(4));
    let view = view_of(&short, 80, 24);
    assert_eq!(view.page, 18);
    assert_eq!(view.max_scroll, Some(0), "everything fits");

    // 40 entries, 20 of them two rows, plus a date separator: 61 rows.
    let long = chatting(long_conversation(40));
    assert_eq!(view_of(&long, 80, 24).max_scroll, None, "top not reached");
    let mut top = long.clone();
    top.peers[0].conversation.scroll = 1_000;
    assert_eq!(view_of(&top, 80, 24).max_scroll, Some(61 - 18));

    let big = chatting(long_conversation(100_000));
    assert_eq!(view_of(&big, 80, 24).max_scroll, None);

    // Too small: the previous view comes back untouched.
    let mut tiny = chatting(long_conversation(4));
    tiny.view.page = 7;
    assert_eq!(view_of(&tiny, 30, 8), tiny.view);
}

#[test]
fn input_grows_and_places_the_cursor() {
    let mut app = chatting(Vec::new());
    app.input.set("one\ntwo\nthree".into());
    let t = render(&app, 80, 24);
    let (x, y) = find(&t, "three");
    assert_eq!(find(&t, "one"), (x, y - 2));
    assert_eq!(t.backend().cursor_position(), Position::new(x + 5, y));
    find(&t, "No messages with alice yet.");
}

/// Names from the network (mDNS instance, TXT `nick`, host; hello `name`)
/// reach the screen only escaped, on one line, cut, and never blank; the
/// terminal title never carries any of them.
#[test]
fn hostile_peer_names_are_shown_harmless() {
    use crate::app::{Action, update};
    use crate::net::NetEvent;

    let zalgo: String = std::iter::once('Z')
        .chain(std::iter::repeat_n('\u{301}', 50))
        .chain("algo".chars())
        .collect();
    let names = [
        "evil\x1b]2;pwned\x07\u{202e}\u{200b}x".to_owned(),
        "   ".to_owned(),
        zalgo,
        "x".repeat(500),
        "bob\n09:15 alice: hi".to_owned(),
    ];
    let mut app = app();
    app.peers.clear();
    for (i, name) in names.iter().enumerate() {
        let peer = crate::net::Presence {
            name: name.clone(),
            host: format!("h{i}\x1b]52;c;aGk=\x07.local."),
            addrs: vec!["10.0.0.2:7342".parse().unwrap()],
            id: format!("{:032x}", i + 1).into(),
            problem: None,
        };
        update(&mut app, Action::Net(NetEvent::PeerUp(peer)), WED_2240);
    }
    // The first peer to appear is opened: its name is in the pane titles too.
    assert_eq!(app.open.as_deref(), Some(format!("{:032x}", 1).as_str()));
    let t = render(&app, 80, 20);
    insta::assert_snapshot!("hostile_peer_names", t.backend());
    assert_clean(t.backend().buffer());
    find(&t, "evil^[]2;pwned^G\\u{202e}\\u{200b}x");
    find(&t, "h1^[]52;c;a");
    find(&t, crate::sanitize::NO_NAME);
    find(&t, "bob^J09:15");
    find(&t, "xxxxxxxxxx…");
    assert_eq!(title(&app), "lantalk");
}

/// The port asked for was busy: the status bar says that nobody can
/// connect to us, where it would show our address, in the notice colour.
#[test]
fn the_status_bar_says_when_nobody_can_connect_to_us() {
    let mut app = app();
    let event = crate::net::NetEvent::NotListening(
        "port 7654 is already in use (try --port 0 for any free port)".into(),
    );
    crate::app::update(&mut app, crate::app::Action::Net(event), WED_2240);
    let t = render(&app, 120, 12);
    let at = find(&t, "not listening (port 7654 is already in use");
    assert_eq!(at.1, 11, "on the status bar");
    assert_eq!(cell(&t, at.0, at.1).fg, app.theme.notice);
    let bar: String = (0..120).map(|x| cell(&t, x, 11).symbol()).collect();
    assert!(bar.contains("outgoing only"), "{bar}");
    assert!(!bar.contains("192.168.1.20:7654"), "{bar}");
}
