//! How the chat screen shows encrypted sessions: the protection marks in
//! the peers list and in the conversation's title, a refused key's warning
//! (in the conversation and above the input) and a verification code, as
//! insta snapshots plus the colours the snapshots cannot show.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};

use super::draw;
use crate::app::{App, Conversation, DiscoveryState, Entry, EntryKind, Focus, Me, PeerEntry};
use crate::net::Link;
use crate::protocol::{Fingerprint, verification_code};

/// 2026-11-26 09:15 UTC, a Thursday.
const THU_0915: u64 = 1_795_684_500_000;
const MINUTE: u64 = 60_000;

fn fp(byte: char) -> Fingerprint {
    byte.to_string().repeat(64).parse().unwrap()
}

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

/// A peer with session `sid` (if any) protected as `link` says.
fn peer(n: u8, name: &str, host: &str, sid: Option<u64>, link: Option<Link>) -> PeerEntry {
    PeerEntry {
        id: format!("{n:032x}").into(),
        name: name.into(),
        host: host.into(),
        addrs: Vec::new(),
        discovered: sid.is_some(),
        problem: None,
        kind: crate::peer::PeerKind::Lantalk,
        connected: sid.is_some(),
        link,
        unread: 0,
        last_activity: 0,
        conversation: Conversation::default(),
    }
}

fn authenticated(byte: char, verified: bool) -> Option<Link> {
    Some(Link::Authenticated {
        fp: fp(byte),
        verified,
        first: false,
    })
}

fn entry(ts: u64, kind: EntryKind, body: &str) -> Entry {
    Entry {
        ts,
        kind,
        body: body.into(),
        seq: None,
    }
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

/// Column and row of the first cell of `needle` on screen.
fn find(t: &Terminal<TestBackend>, needle: &str) -> (u16, u16) {
    let buf = t.backend().buffer();
    for y in 0..buf.area.height {
        let row: Vec<&str> = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        for x in 0..row.len() {
            let mut s = String::new();
            for sym in &row[x..] {
                s.push_str(sym);
                if s.len() >= needle.len() {
                    break;
                }
            }
            if s == needle {
                return (x as u16, y);
            }
        }
    }
    panic!("{needle:?} not on screen");
}

fn cell(t: &Terminal<TestBackend>, (x, y): (u16, u16)) -> &ratatui::buffer::Cell {
    &t.backend().buffer()[(x, y)]
}

/// Every kind of session, one peer each, plus one offline that had one.
fn every_mark() -> App {
    let mut app = app();
    let mut alice = peer(
        1,
        "alice",
        "laptop.local.",
        Some(1),
        authenticated('a', true),
    );
    let code = verification_code(&fp('f'), &fp('a'));
    alice.conversation.entries = vec![
        entry(
            THU_0915,
            EntryKind::System,
            "first encrypted session with \"alice\": its key is pinned now; /verify shows a code to compare on both screens",
        ),
        entry(
            THU_0915 + MINUTE,
            EntryKind::Code {
                code: code.clone(),
                theirs: fp('a'),
                verified: false,
            },
            "the same code must show on \"alice\"'s screen (its /verify, or `lantalk verify \"me\"`); if it does, type /verify yes",
        ),
        entry(
            THU_0915 + 2 * MINUTE,
            EntryKind::Code {
                code,
                theirs: fp('a'),
                verified: true,
            },
            "\"alice\" is verified: this code matched on both screens ✓",
        ),
    ];
    let mut bob = peer(
        2,
        "bob",
        "bob-pc.local.",
        Some(2),
        authenticated('b', false),
    );
    bob.unread = 2;
    let phone = peer(
        3,
        "phone",
        "192.168.1.31:50110",
        Some(3),
        Some(Link::Unauthenticated),
    );
    let mut nc = peer(
        4,
        "raw 192.168.1.50",
        "192.168.1.50:51234",
        Some(4),
        Some(Link::Plain),
    );
    nc.kind = crate::peer::PeerKind::Raw("192.168.1.50".parse().unwrap());
    let old = peer(5, "oldtalk", "oldtalk.local.", Some(5), Some(Link::Plain));
    let erin = peer(6, "erin", "erin.local.", None, authenticated('e', true));
    app.peers = vec![alice, bob, phone, nc, old, erin];
    app.open = Some(app.peers[0].id.clone());
    app
}

#[test]
fn every_mark_in_the_peers_list_and_the_verified_title() {
    let mut app = every_mark();
    app.focus = Focus::Peers;
    let t = render(&app, 80, 24);
    insta::assert_snapshot!("security_marks", t.backend());

    // Plaintext is loud: bold in the error colour, in the list and the title.
    let plain = find(&t, "plain");
    assert_eq!(cell(&t, plain).fg, Color::Red);
    assert!(cell(&t, plain).modifier.contains(Modifier::BOLD));
    // Verified in the delivered colour, bold; encrypted in the online colour;
    // unauthenticated in the notice colour.
    let verified = find(&t, "enc✓");
    assert_eq!(cell(&t, verified).fg, Color::Green);
    assert!(cell(&t, verified).modifier.contains(Modifier::BOLD));
    let title = find(&t, "encrypted, verified ✓");
    assert_eq!(title.1, 0, "in the top border");
    assert_eq!(cell(&t, title).fg, Color::Green);
    let unauthenticated = find(&t, "enc?");
    assert_eq!(cell(&t, unauthenticated).fg, Color::Yellow);
    // The code stands out: bold, in the accent colour.
    // (It takes two rows here: 8 groups of 5 digits.)
    let code = verification_code(&fp('f'), &fp('a'));
    let at = find(&t, &code[..23]);
    assert_eq!(cell(&t, at).fg, Color::Cyan);
    assert!(cell(&t, at).modifier.contains(Modifier::BOLD));
    // Once verified, in the delivered colour.
    let verified_code = (at.0, at.1 + 5);
    assert_eq!(cell(&t, verified_code).symbol(), &code[..1]);
    assert_eq!(cell(&t, verified_code).fg, Color::Green);
}

#[test]
fn every_mark_in_the_title_wide_and_narrow() {
    let mut app = every_mark();
    let mut rows = Vec::new();
    for width in [80, 44] {
        for at in 0..app.peers.len() {
            app.open = Some(app.peers[at].id.clone());
            let t = render(&app, width, 12);
            let buf = t.backend().buffer();
            let top: String = (0..width).map(|x| buf[(x, 0)].symbol()).collect();
            rows.push(format!("{width:>2} {top}"));
        }
    }
    insta::assert_snapshot!("security_titles", rows.join("\n"));

    // Plaintext in the title: bold, in the error colour.
    app.open = Some(app.peers[3].id.clone());
    let t = render(&app, 80, 12);
    let at = find(&t, "plaintext, not encrypted");
    assert_eq!(at.1, 0);
    assert_eq!(cell(&t, at).fg, Color::Red);
    assert!(cell(&t, at).modifier.contains(Modifier::BOLD));
}

#[test]
fn a_refusal_warns_in_the_conversation_and_above_the_input() {
    let mut app = every_mark();
    let why = crate::protocol::Refusal::AdvertMismatch {
        name: "bob".into(),
        advertised: fp('b'),
        presented: fp('c'),
    }
    .to_string();
    app.peers[1].conversation.entries = vec![
        entry(THU_0915, EntryKind::System, "bob is online"),
        entry(THU_0915 + MINUTE, EntryKind::Warning, &why),
    ];
    app.peers[1].connected = false;
    app.peers[1].discovered = false;
    app.open = Some(app.peers[1].id.clone());
    app.alert = Some(format!("{why} (Esc hides this)"));
    let t = render(&app, 80, 24);
    insta::assert_snapshot!("refused", t.backend());
    let line = find(&t, "!! \"bob\" advertises");
    assert_eq!(cell(&t, line).fg, Color::Red);
    assert!(cell(&t, line).modifier.contains(Modifier::BOLD));
    let alert = find(&t, "\"bob\" advertises the key");
    assert_eq!(cell(&t, alert).fg, Color::Red);
    assert!(cell(&t, alert).modifier.contains(Modifier::BOLD));
    find(&t, &fp('b').grouped()[..39]);

    // A long warning takes at most four rows, and the input keeps its own
    // even on the smallest screen.
    app.alert = Some("x ".repeat(400));
    let t = render(&app, 80, 24);
    let rows: Vec<String> = (0..24)
        .map(|y| {
            (26..80)
                .map(|x| t.backend().buffer()[(x, y)].symbol())
                .collect()
        })
        .collect();
    let alert_rows = rows.iter().filter(|r| r.starts_with(" x x")).count();
    assert_eq!(alert_rows, 4, "{rows:#?}");
    assert!(
        rows.iter().any(|r| r.trim_end().ends_with('…')),
        "{rows:#?}"
    );
    let t = render(&app, 40, 10);
    find(&t, "Type a message");
}

/// Two peers that go by one name (two keys: a reinstalled phone, two
/// devices with the default hostname) are told apart by the start of their
/// ids, in the list and in the titles; a name nobody shares stays bare.
#[test]
fn peers_that_share_a_name_are_shown_with_the_start_of_their_id() {
    let mut app = app();
    app.peers = vec![
        peer(
            0x3f,
            "phone",
            "phone-a.local.",
            Some(1),
            authenticated('a', false),
        ),
        peer(
            0x9c,
            "Phone",
            "phone-b.local.",
            Some(2),
            authenticated('b', false),
        ),
        peer(
            0x11,
            "laptop",
            "laptop.local.",
            Some(3),
            authenticated('c', false),
        ),
    ];
    app.peers[0].id = format!("3f2a{}", "0".repeat(28)).into();
    app.peers[1].id = format!("9c01{}", "0".repeat(28)).into();
    app.open = Some(app.peers[1].id.clone());
    let t = render(&app, 80, 12);
    find(&t, "phone#3f2a");
    find(&t, "Phone#9c01");
    find(&t, "Message to Phone#9c01");
    let title = find(&t, "Phone#9c01 ");
    assert!(cell(&t, title).modifier.contains(Modifier::BOLD));
    let rows: Vec<String> = (0..12)
        .map(|y| {
            (0..80)
                .map(|x| t.backend().buffer()[(x, y)].symbol())
                .collect()
        })
        .collect();
    assert!(
        rows.iter()
            .any(|r| r.contains("laptop") && !r.contains("laptop#")),
        "{rows:#?}"
    );
    // A long name keeps its tag when cut.
    app.peers[0].name = "a-very-long-phone-name-indeed".into();
    app.peers[1].name = "a-very-long-phone-name-indeed".into();
    let t = render(&app, 80, 12);
    find(&t, "…#3f2a");
}
