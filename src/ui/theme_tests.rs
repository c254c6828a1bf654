//! The theme reaches the screen: with every role in a colour of its own,
//! each role's glyph is drawn in that colour (the defaults are covered by
//! the other UI tests, which expect today's colours).

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Cell;
use ratatui::style::{Color, Modifier};

use super::draw;
use crate::app::{
    App, Conversation, Delivery, DiscoveryState, Entry, EntryKind, Focus, Me, PeerEntry, Theme,
};

/// 2026-11-26 09:15 UTC.
const TS: u64 = 1_795_684_500_000;

/// Every role in a different palette colour.
fn theme() -> Theme {
    Theme {
        own: Color::Indexed(201),
        peer: Color::Indexed(202),
        system: Color::Indexed(203),
        accent: Color::Indexed(204),
        online: Color::Indexed(205),
        offline: Color::Indexed(206),
        delivered: Color::Indexed(207),
        waiting: Color::Indexed(208),
        error: Color::Indexed(209),
        unread: Color::Indexed(210),
        notice: Color::Indexed(211),
        selection: Color::Indexed(212),
    }
}

fn peer(n: u8, name: &str) -> PeerEntry {
    PeerEntry {
        id: format!("{n:032x}").into(),
        name: name.into(),
        host: format!("{name}.local."),
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

fn own(ts: u64, state: Delivery, body: &str) -> Entry {
    Entry {
        ts,
        kind: EntryKind::Own {
            id: format!("m{ts}{body}"),
            state,
        },
        body: body.into(),
        seq: None,
    }
}

/// `alice` open and connected, with one entry of every kind; `bob` online
/// with unread messages, `carol` offline.
fn app() -> App {
    let mut alice = peer(1, "alice");
    alice.connected = true;
    alice.conversation.entries = vec![
        Entry {
            ts: TS,
            kind: EntryKind::Peer {
                from: "alice".into(),
                id: "a1".into(),
            },
            body: "hello".into(),
            seq: None,
        },
        Entry {
            ts: TS,
            kind: EntryKind::System,
            body: "alice is online".into(),
            seq: None,
        },
        own(TS, Delivery::Delivered, "got it"),
        own(TS, Delivery::Waiting("away".into()), "later"),
        own(TS, Delivery::Failed("refused".into()), "never"),
    ];
    let mut bob = peer(2, "bob");
    bob.unread = 4;
    let mut carol = peer(3, "carol");
    carol.discovered = false;
    App {
        me: Me {
            name: "me".into(),
            id: "f".repeat(32),
            port: 7654,
            addr: None,
            not_listening: None,
        },
        discovery: DiscoveryState::Active,
        open: Some(alice.id.clone()),
        peers: vec![alice, bob, carol],
        cursor: 1,
        notice: Some("a notice".into()),
        theme: theme(),
        ..App::default()
    }
}

fn render(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(90, 24)).expect("test backend");
    terminal
        .draw(|f| {
            draw(f, app);
        })
        .expect("test backend");
    terminal
}

/// The first cell of the first occurrence of `needle` on screen.
fn find<'a>(t: &'a Terminal<TestBackend>, needle: &str) -> &'a Cell {
    let buf = t.backend().buffer();
    let width = needle.chars().count() as u16;
    for y in 0..buf.area.height {
        for x in 0..buf.area.width.saturating_sub(width - 1) {
            let here: String = (x..x + width).map(|x| buf[(x, y)].symbol()).collect();
            if here == needle {
                return &buf[(x, y)];
            }
        }
    }
    panic!("{needle:?} not on screen:\n{buf:?}");
}

#[test]
fn every_role_is_drawn_in_its_colour() {
    let t = render(&app());
    let theme = theme();
    assert_eq!(find(&t, "me:").fg, theme.own);
    assert_eq!(find(&t, "alice:").fg, theme.peer);
    let system = find(&t, "-- alice is online");
    assert_eq!(system.fg, theme.system);
    assert!(system.modifier.contains(Modifier::ITALIC | Modifier::DIM));
    assert_eq!(find(&t, "● alice").fg, theme.online);
    assert_eq!(find(&t, "mDNS on").fg, theme.online);
    assert_eq!(find(&t, "· carol").fg, theme.offline);
    assert_eq!(find(&t, "offline│").fg, theme.offline);
    assert_eq!(find(&t, "✓").fg, theme.delivered);
    assert_eq!(find(&t, "◷ away").fg, theme.waiting);
    assert_eq!(find(&t, "✗ refused").fg, theme.error);
    assert_eq!(find(&t, "(4)").fg, theme.unread);
    assert_eq!(find(&t, "a notice").fg, theme.notice);
    // The cursor is on bob and the input has the focus.
    assert_eq!(find(&t, "bob").bg, theme.selection);
    assert_eq!(find(&t, "┏").fg, theme.accent);
}

#[test]
fn the_unread_bar_and_the_help_use_the_theme() {
    let mut app = app();
    app.focus = Focus::Conversation;
    scrolled_up_with_news(&mut app);
    let t = render(&app);
    assert_eq!(find(&t, "new messages below").bg, app.theme.unread);

    app.help = true;
    let t = render(&app);
    assert_eq!(find(&t, "╭").fg, app.theme.accent);
    assert_eq!(find(&t, "Ctrl+C").fg, app.theme.accent);
}

#[test]
fn a_role_set_to_the_terminal_colour_paints_nothing() {
    let mut app = app();
    app.theme.own = Color::Reset;
    let t = render(&app);
    let me = find(&t, "me:");
    assert_eq!(me.fg, Color::Reset);
    assert!(me.modifier.contains(Modifier::BOLD), "only the colour goes");
}

/// Under NO_COLOR (the monochrome theme) nothing is coloured, the unread
/// bar stands out reversed instead of black on a colour, and search uses
/// the theme too.
#[test]
fn the_monochrome_theme_paints_no_colour_anywhere() {
    let mut app = app();
    app.theme = Theme::monochrome();
    app.focus = Focus::Conversation;
    scrolled_up_with_news(&mut app);
    let t = render(&app);
    let bar = find(&t, "new messages below");
    assert!(bar.modifier.contains(Modifier::REVERSED), "{bar:?}");
    for cell in t.backend().buffer().content() {
        assert_eq!(
            (cell.fg, cell.bg),
            (Color::Reset, Color::Reset),
            "{cell:?} is coloured"
        );
    }
}

/// The first conversation, 40 messages long, scrolled up with news below.
fn scrolled_up_with_news(app: &mut App) {
    let alice = &mut app.peers[0].conversation;
    for i in 0..40 {
        alice
            .entries
            .push(own(TS, Delivery::Delivered, &format!("n{i}")));
    }
    alice.scroll = 5;
    alice.unseen_below = true;
}
