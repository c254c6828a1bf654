//! Encrypted sessions on the chat screen as plain `update` tests: the
//! marks, `/verify` and `/trust`, and the network task's `Refused`,
//! `Verification`, `Notice` and `Merged`.

use crossterm::event::KeyCode;

use super::test_support::*;
use super::*;
use crate::net::Link;
use crate::net::{CloseReason, Presence};
use crate::net::{NetCommand, NetEvent};
use crate::protocol::{Fingerprint, Refusal, Text, verification_code};
use crate::store::{Record, State};

const OLD: &str = "11111111111111111111111111111111";
const NEW: &str = "22222222222222222222222222222222";
const OTHER: &str = "33333333333333333333333333333333";

fn fp(byte: char) -> Fingerprint {
    byte.to_string().repeat(64).parse().unwrap()
}

fn authenticated(byte: char, verified: bool, first: bool) -> Link {
    Link::Authenticated {
        fp: fp(byte),
        verified,
        first,
    }
}

fn peer<'a>(app: &'a App, id: &str) -> &'a PeerEntry {
    app.peers
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("no peer {id}: {:?}", app.peers))
}

fn last(app: &App, id: &str) -> Entry {
    peer(app, id).conversation.entries.last().cloned().unwrap()
}

/// A message from the peer on session `sid`.
fn text(app: &mut App, sid: u64, id: &str, ts: u64, body: &str) {
    let text = Text {
        id: id.into(),
        ts,
        body: body.into(),
    };
    net(app, text_on(sid, text));
}

/// A peer refused because it presented another key than it advertises.
fn mismatch(name: &str) -> NetEvent {
    NetEvent::Refused {
        addr: None,
        refusal: Refusal::AdvertMismatch {
            name: name.into(),
            advertised: fp('a'),
            presented: fp('b'),
        },
    }
}

#[test]
fn each_link_gets_its_mark_while_the_session_is_open() {
    let mut app = app();
    let cases = [
        (authenticated('a', true, false), Security::Verified),
        (authenticated('a', false, false), Security::Encrypted),
        (authenticated('a', false, true), Security::Encrypted),
        (Link::Unauthenticated, Security::Unauthenticated),
        (Link::Plain, Security::Plaintext),
    ];
    for (sid, (link, mark)) in (1..).zip(cases) {
        opened(&mut app, sid, OLD, "bob", link);
        assert_eq!(peer(&app, OLD).security(), Some(mark), "{link:?}");
        net(&mut app, closed(sid, CloseReason::Bye));
        // Offline: no mark (the next session is judged anew).
        assert_eq!(peer(&app, OLD).security(), None, "{link:?} after close");
    }
}

#[test]
fn a_discovered_peer_without_a_session_has_no_mark() {
    let mut app = app();
    let bob = Presence {
        name: "bob".into(),
        host: "bob.local.".into(),
        addrs: vec!["10.0.0.2:7342".parse().unwrap()],
        id: OLD.into(),
        problem: None,
    };
    net(&mut app, NetEvent::PeerUp(bob));
    assert!(peer(&app, OLD).online());
    assert_eq!(peer(&app, OLD).security(), None);
}

#[test]
fn the_first_session_with_a_key_says_the_conversation_is_its_and_how_to_check_it() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, true));
    let line = last(&app, OLD);
    assert_eq!(line.kind, EntryKind::System);
    assert!(line.body.contains("belongs to its key"), "{}", line.body);
    assert!(line.body.contains("/verify"), "{}", line.body);
    // A later session with the known key says nothing.
    opened(&mut app, 2, NEW, "carol", authenticated('c', false, false));
    assert!(peer(&app, NEW).conversation.entries.is_empty());
}

#[test]
fn verify_asks_for_the_code_of_the_open_conversation() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    assert_eq!(app.open.as_deref(), Some(OLD));
    assert_eq!(
        command(&mut app, "/verify"),
        vec![Effect::Net(NetCommand::Verify {
            peer: OLD.into(),
            confirmed: false
        })]
    );
    assert!(app.input.is_empty());
}

#[test]
fn verify_yes_needs_the_code_shown_first_for_the_key_the_peer_has_now() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    // Not compared yet: refused, the line given back to edit.
    assert_eq!(command(&mut app, "/verify yes"), vec![]);
    assert!(
        app.notice.as_deref().unwrap().contains("/verify first"),
        "{:?}",
        app.notice
    );
    assert_eq!(app.input.text(), "/verify yes");
    app.input.take();

    // The code for another key than the session's does not count.
    let verification = |theirs: Fingerprint, verified: bool| NetEvent::Verification {
        peer: OLD.into(),
        code: verification_code(&fp('f'), &theirs),
        ours: fp('f'),
        theirs,
        verified,
    };
    net(&mut app, verification(fp('b'), false));
    assert_eq!(command(&mut app, "/verify yes"), vec![]);
    assert!(app.notice.as_deref().unwrap().contains("key changed"));
    app.input.take();

    net(&mut app, verification(fp('a'), false));
    assert_eq!(
        command(&mut app, "/verify yes"),
        vec![Effect::Net(NetCommand::Verify {
            peer: OLD.into(),
            confirmed: true
        })]
    );
}

#[test]
fn verify_with_anything_else_or_nothing_open_explains() {
    let mut app = app();
    assert_eq!(command(&mut app, "/verify"), vec![]);
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .starts_with("no conversation open"),
        "{:?}",
        app.notice
    );
    app.input.take();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    assert_eq!(command(&mut app, "/verify please"), vec![]);
    assert_eq!(app.notice.as_deref(), Some(trust::VERIFY_USAGE));
    assert_eq!(app.input.text(), "/verify please");
}

#[test]
fn trust_takes_the_key_typed_in_the_open_conversation() {
    let mut app = app();
    assert_eq!(command(&mut app, "/trust 3f2a91c0"), vec![]);
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .starts_with("no conversation open"),
        "{:?}",
        app.notice
    );
    app.input.take();

    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    // Without the key: how to use it, nothing sent (a name is not a key).
    assert_eq!(command(&mut app, "/trust"), vec![]);
    assert_eq!(app.notice.as_deref(), Some(trust::TRUST_USAGE));
    app.input.take();

    net(&mut app, mismatch("bob"));
    assert!(app.alert.is_some());
    assert_eq!(
        command(&mut app, "/trust 3f2a 91c0"),
        vec![Effect::Net(NetCommand::Trust {
            peer: OLD.into(),
            key: "3f2a 91c0".into(),
        })]
    );
    assert_eq!(app.alert, None, "the warning was acted on");
}

#[test]
fn connect_says_what_answered_at_the_address() {
    let mut app = app();
    assert!(command(&mut app, "/connect 10.0.0.2:7342").len() == 1);
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, true));
    let said = app.notice.clone().unwrap();
    assert!(said.contains("reached bob#1111 at"), "{said}");
    assert!(said.contains(&fp('a').grouped()), "{said}");
    assert!(last(&app, OLD).body.contains(&fp('a').grouped()));
    // Only the session the /connect opened is told.
    app.notice = None;
    opened(&mut app, 2, NEW, "carol", Link::Plain);
    assert_eq!(app.notice, None);
    // In clear: said loudly.
    command(&mut app, "/connect 10.0.0.3:7342");
    opened(&mut app, 3, OTHER, "old", Link::Plain);
    assert!(
        app.notice.as_deref().unwrap().contains("PLAINTEXT"),
        "{:?}",
        app.notice
    );
}

#[test]
fn a_refusal_is_loud_in_every_conversation_with_that_name_and_above_the_input() {
    let mut app = app();
    // Two peers named bob, and carol, whose conversation is on screen.
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    opened(&mut app, 2, NEW, "bob", Link::Unauthenticated);
    opened(
        &mut app,
        3,
        OTHER,
        "carol",
        authenticated('c', false, false),
    );
    app.open = Some(OTHER.into());
    let fx = net(&mut app, mismatch("bob"));
    assert_eq!(fx, vec![Effect::Bell], "a warning rings");
    for id in [OLD, NEW] {
        let line = last(&app, id);
        assert_eq!(line.kind, EntryKind::Warning);
        assert!(line.body.starts_with("\"bob\" advertises the key"));
        assert!(line.body.contains(&fp('a').grouped()), "{}", line.body);
        assert!(line.body.contains(&fp('b').grouped()), "{}", line.body);
    }
    assert!(peer(&app, OTHER).conversation.entries.is_empty());
    let alert = app.alert.clone().unwrap();
    assert!(alert.starts_with("\"bob\" advertises the key"), "{alert}");
    assert!(alert.ends_with("(Esc hides this)"), "{alert}");

    // The alert outlives other keys, unlike a notice...
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.alert.as_ref(), Some(&alert));
    // ... a retrying peer adds no second identical line, nor a second bell...
    let before = peer(&app, OLD).conversation.entries.len();
    assert_eq!(net(&mut app, mismatch("bob")), vec![]);
    assert_eq!(peer(&app, OLD).conversation.entries.len(), before);
    // ... and Esc hides it.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.alert, None);
}

#[test]
fn a_refusal_without_a_conversation_says_it_all_above_the_input() {
    let mut app = app();
    net(&mut app, mismatch("bob"));
    let alert = app.alert.clone().unwrap();
    assert!(alert.contains(&fp('a').grouped()), "{alert}");
    assert!(alert.contains(&fp('b').grouped()), "{alert}");
    assert!(app.peers.is_empty());

    // Other refusals (a key that is not the advertised one, plaintext
    // refused) are shown as they come.
    net(
        &mut app,
        NetEvent::Refused {
            addr: Some("10.0.0.9:4000".parse().unwrap()),
            refusal: Refusal::EncryptionRequired { name: "eve".into() },
        },
    );
    assert_eq!(
        app.alert.as_deref(),
        Some("refused a plaintext session from \"eve\" (--require-encryption) (Esc hides this)")
    );
}

#[test]
fn a_hostile_refusal_is_one_escaped_line() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob\x1b[2J", Link::Plain);
    net(
        &mut app,
        NetEvent::Refused {
            addr: None,
            refusal: Refusal::KnownPeersUnusable {
                name: "bob\x1b[2J".into(),
                why: format!("evil\n\x1b]52;c;aGk=\x07{}", "x".repeat(5_000)),
            },
        },
    );
    let line = last(&app, OLD);
    assert_eq!(line.kind, EntryKind::Warning);
    assert!(
        !line.body.contains(['\n', '\x1b', '\x07']),
        "{:?}",
        line.body
    );
    assert!(line.body.chars().count() <= 800);
    assert!(!app.alert.as_ref().unwrap().contains('\x1b'));
}

#[test]
fn a_verification_shows_the_code_and_marks_the_peer_verified() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    let code = verification_code(&fp('f'), &fp('a'));
    let event = |verified| NetEvent::Verification {
        peer: OLD.into(),
        code: code.clone(),
        ours: fp('f'),
        theirs: fp('a'),
        verified,
    };
    net(&mut app, event(false));
    let line = last(&app, OLD);
    assert_eq!(
        line.kind,
        EntryKind::Code {
            code: code.clone(),
            theirs: fp('a'),
            verified: false
        }
    );
    assert!(line.body.contains("/verify yes"), "{}", line.body);
    assert!(
        line.body.contains("lantalk verify \"laptop\""),
        "{}",
        line.body
    );
    assert_eq!(peer(&app, OLD).security(), Some(Security::Encrypted));
    // On screen: no notice needed.
    assert_eq!(app.notice, None);

    net(&mut app, event(true));
    assert_eq!(peer(&app, OLD).security(), Some(Security::Verified));
    let line = last(&app, OLD);
    assert!(matches!(line.kind, EntryKind::Code { verified: true, .. }));
    assert!(line.body.contains("verified"), "{}", line.body);
}

#[test]
fn a_verification_of_another_key_or_elsewhere_marks_nothing_but_says_so() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    opened(&mut app, 2, NEW, "carol", authenticated('c', false, false));
    app.open = Some(NEW.into());
    net(
        &mut app,
        NetEvent::Verification {
            peer: OLD.into(),
            code: "1111 2222 3333 4444 5555".into(),
            ours: fp('f'),
            theirs: fp('b'),
            verified: true,
        },
    );
    // Not the session's key: the session is not marked verified.
    assert_eq!(peer(&app, OLD).security(), Some(Security::Encrypted));
    // Not on screen: the notice carries the code.
    assert_eq!(
        app.notice.as_deref(),
        Some("verification code for \"bob\": 1111 2222 3333 4444 5555")
    );
    // A peer not listed at all: the notice only.
    net(
        &mut app,
        NetEvent::Verification {
            peer: OTHER.into(),
            code: "9999 2222 3333 4444 5555".into(),
            ours: fp('f'),
            theirs: fp('d'),
            verified: false,
        },
    );
    assert_eq!(
        app.notice.as_deref(),
        Some("verification code: 9999 2222 3333 4444 5555")
    );
}

#[test]
fn a_notice_is_a_line_in_its_conversation() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    let said = "now trusting the key 2222 … for \"bob\"; compare codes with /verify";
    net(
        &mut app,
        NetEvent::Notice {
            peer: OLD.into(),
            text: said.into(),
        },
    );
    assert_eq!(last(&app, OLD).kind, EntryKind::System);
    assert_eq!(last(&app, OLD).body, said);
    assert_eq!(app.notice, None, "on screen already");
    net(
        &mut app,
        NetEvent::Notice {
            peer: OTHER.into(),
            text: "this lantalk does not use keys".into(),
        },
    );
    assert_eq!(
        app.notice.as_deref(),
        Some("this lantalk does not use keys")
    );
}

#[test]
fn merged_into_an_unlisted_id_keeps_the_row_under_the_new_id() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    text(&mut app, 1, "m1", 1_500, "before the new key");
    net(&mut app, closed(1, CloseReason::Bye));
    assert_eq!(app.open.as_deref(), Some(OLD));
    let before = peer(&app, OLD).clone();
    net(
        &mut app,
        NetEvent::Merged {
            from: OLD.into(),
            into: NEW.into(),
        },
    );
    assert!(app.peers.iter().all(|p| p.id != OLD));
    let now = peer(&app, NEW);
    assert_eq!(now.conversation, before.conversation);
    assert_eq!(now.name, "bob");
    assert_eq!(
        app.open.as_deref(),
        Some(NEW),
        "the open conversation follows"
    );
}

#[test]
fn merged_into_a_listed_peer_interleaves_the_messages_and_drops_the_old_row() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", authenticated('a', false, false));
    text(&mut app, 1, "o1", 1_000, "old one");
    text(&mut app, 1, "o2", 3_000, "old two");
    net(&mut app, closed(1, CloseReason::Bye));
    opened(&mut app, 2, NEW, "bob", authenticated('b', false, false));
    text(&mut app, 2, "n1", 2_000, "new one");
    opened(
        &mut app,
        3,
        OTHER,
        "carol",
        authenticated('c', false, false),
    );
    text(&mut app, 3, "c1", 2_500, "carol");
    // bob's old conversation is open; the new one has an unread message.
    app.open = Some(OLD.into());
    text(&mut app, 2, "n2", 4_000, "new two");
    let unread = peer(&app, NEW).unread;
    assert!(unread > 0);
    app.cursor = app.peers.iter().position(|p| p.id == OLD).unwrap();
    // The warning went into both conversations named bob.
    net(&mut app, mismatch("bob"));

    net(
        &mut app,
        NetEvent::Merged {
            from: OLD.into(),
            into: NEW.into(),
        },
    );
    assert!(app.peers.iter().all(|p| p.id != OLD), "old row gone");
    let warnings = peer(&app, NEW)
        .conversation
        .entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Warning))
        .count();
    assert_eq!(warnings, 1, "one copy of the warning");
    let bob = peer(&app, NEW);
    let bodies: Vec<&str> = bob
        .conversation
        .entries
        .iter()
        .filter(|e| e.kind.is_message())
        .map(|e| e.body.as_str())
        .collect();
    assert_eq!(bodies, ["old one", "new one", "old two", "new two"]);
    let bytes: usize = bob.conversation.entries.iter().map(|e| e.body.len()).sum();
    assert_eq!(bob.conversation.body_bytes, bytes);
    assert_eq!(
        app.open.as_deref(),
        Some(NEW),
        "the open conversation follows"
    );
    assert_eq!(bob.unread, 0, "and is read");
    assert!(bob.connected, "the new id's session stays");
    assert_eq!(app.peers[app.cursor].id, NEW, "the cursor follows");
    assert_eq!(peer(&app, OTHER).conversation.entries.len(), 1);
}

#[test]
fn merged_from_an_online_peer_leaves_its_row_empty() {
    let mut app = app();
    opened(&mut app, 1, OLD, "bob", Link::Plain);
    opened(
        &mut app,
        2,
        OTHER,
        "carol",
        authenticated('c', false, false),
    );
    app.open = Some(OTHER.into());
    // Arrives while carol is on screen: an unread count to carry over.
    text(&mut app, 1, "o1", 1_000, "old one");
    let unread = peer(&app, OLD).unread;
    assert_eq!(unread, 1);
    net(
        &mut app,
        NetEvent::Merged {
            from: OLD.into(),
            into: NEW.into(),
        },
    );
    let old = peer(&app, OLD);
    assert!(old.connected);
    assert!(old.conversation.entries.is_empty());
    assert_eq!(old.unread, 0);
    let new = peer(&app, NEW);
    assert_eq!(new.name, "bob");
    assert_eq!(new.unread, unread);
    assert_eq!(new.conversation.entries.len(), 1);
    assert!(!new.connected);
    assert_eq!(app.open.as_deref(), Some(OTHER), "nothing else moved");
}

#[test]
fn a_page_asked_for_under_the_old_id_goes_to_the_new_one() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(vec![crate::store::Conversation {
            peer: OLD.into(),
            name: "bob".into(),
            kind: crate::peer::PeerKind::Lantalk,
            last_ts: 1_000,
            undelivered: 0,
        }]),
    );
    assert!(peer(&app, OLD).conversation.backlog.loading);
    net(
        &mut app,
        NetEvent::Merged {
            from: OLD.into(),
            into: NEW.into(),
        },
    );
    let record = Record {
        seq: 7,
        peer: NEW.into(),
        outgoing: false,
        id: "h1".into(),
        ts: 900,
        body: "from history".into(),
        state: State::Delivered,
    };
    net(
        &mut app,
        NetEvent::History {
            peer: OLD.into(),
            records: vec![record],
            more: false,
        },
    );
    assert_eq!(app.peers.len(), 1, "{:?}", app.peers);
    let bob = peer(&app, NEW);
    assert!(!bob.conversation.backlog.loading);
    assert_eq!(bob.conversation.entries[0].body, "from history");
}

#[test]
fn a_row_merged_away_above_the_cursor_leaves_the_cursor_on_its_peer() {
    let mut app = app();
    net(
        &mut app,
        NetEvent::Conversations(
            [(OLD, "bob", 3_000), (OTHER, "carol", 2_000)]
                .map(|(peer, name, last_ts)| crate::store::Conversation {
                    peer: peer.into(),
                    name: name.into(),
                    kind: crate::peer::PeerKind::Lantalk,
                    last_ts,
                    undelivered: 0,
                })
                .to_vec(),
        ),
    );
    opened(&mut app, 1, NEW, "bob", authenticated('b', false, false));
    app.cursor = app.peers.iter().position(|p| p.id == OTHER).unwrap();
    let old_at = app.peers.iter().position(|p| p.id == OLD).unwrap();
    assert!(old_at < app.cursor, "{:?}", app.peers);
    net(
        &mut app,
        NetEvent::Merged {
            from: OLD.into(),
            into: NEW.into(),
        },
    );
    assert!(app.peers.iter().all(|p| p.id != OLD));
    assert_eq!(app.peers[app.cursor].id, OTHER, "the cursor stays on carol");
}

#[test]
fn merged_twice_pages_of_the_first_id_go_to_the_last() {
    let mut app = app();
    for (from, into) in [(OLD, NEW), (NEW, OTHER)] {
        net(
            &mut app,
            NetEvent::Merged {
                from: from.into(),
                into: into.into(),
            },
        );
    }
    assert_eq!(app.merged.get(OLD).map(|p| p.as_str()), Some(OTHER));
    assert_eq!(app.merged.get(NEW).map(|p| p.as_str()), Some(OTHER));
}

#[test]
fn absorbing_keeps_the_caps_and_counts_what_was_dropped() {
    let entry = |id: &str, ts: u64| Entry {
        ts,
        kind: EntryKind::Peer {
            from: "bob".into(),
            id: id.into(),
        },
        body: "x".into(),
        seq: None,
    };
    let mut ours = Conversation::default();
    let mut theirs = Conversation::default();
    for i in 0..MAX_ENTRIES / 2 + 10 {
        ours.push(entry(&format!("a{i}"), i as u64 * 2));
        theirs.push(entry(&format!("b{i}"), i as u64 * 2 + 1));
    }
    // A copy of one of ours is not taken twice.
    theirs.push(entry("a0", 0));
    ours.absorb(theirs);
    assert!(ours.entries.len() <= MAX_ENTRIES);
    assert!(ours.note, "without history, a note says how many went");
    assert_eq!(ours.entries[0].body, trimmed_note(ours.dropped));
    assert_eq!(ours.dropped + ours.entries.len() - 1, MAX_ENTRIES + 20);
    let ts: Vec<u64> = ours.entries[1..].iter().map(|e| e.ts).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "in time order");
}
