//! [`update`]: how keys, pastes and network events change the [`App`], and
//! which [`Effect`]s they ask for. Keys live in `keys.rs`, commands typed
//! in the input in `commands.rs`, encrypted sessions (marks, refused keys,
//! verification codes, ids that change) in `trust.rs`, history in
//! `history.rs`; this file is the dispatcher and the conversation logic.

use crossterm::event::KeyEventKind;

use super::keys::{WHEEL_ROWS, on_key, scroll_down, scroll_up};
use super::{Action, App, Delivery, Effect, Entry, EntryKind, Focus, PeerEntry};
use crate::net::{CloseReason, NetEvent, Presence};
use crate::peer::{PeerId, PeerKind};
use crate::protocol::Text;
use crate::sanitize;

/// Longest peer-supplied reason (an `error` message) quoted in a line, in cells.
const MAX_REASON: usize = 200;

/// The shortest time between two bells, in ms: a flood of messages rings once.
pub const BELL_GAP_MS: u64 = 1_000;

/// Applies `action` at time `now` (Unix ms) and returns what to do outside.
pub fn update(app: &mut App, action: Action, now: u64) -> Vec<Effect> {
    let mut fx = Vec::new();
    app.now = now;
    match action {
        Action::Key(key) if key.kind != KeyEventKind::Release => on_key(app, key, now, &mut fx),
        Action::Key(_) => {}
        Action::Paste(text) => {
            app.help = false;
            app.qr = None;
            app.search = None;
            app.focus = Focus::Input;
            app.resort_due = true;
            app.input.insert_str(&text);
        }
        Action::Scroll(notches) if app.search.is_some() => {
            super::history::search_wheel(app, notches);
        }
        Action::Scroll(notches) => {
            let rows = notches.unsigned_abs() as usize * WHEEL_ROWS;
            if notches > 0 {
                scroll_up(app, rows, &mut fx);
            } else {
                scroll_down(app, rows);
            }
        }
        Action::Resize(w, h) => app.size = (w, h),
        Action::Tick => {}
        Action::Net(event) => on_net(app, event, now, &mut fx),
        Action::Qr(Ok(view)) => {
            app.help = false;
            app.search = None;
            app.qr = Some(view);
        }
        Action::Qr(Err(why)) => {
            app.notice = Some(format!("cannot show the address for a phone: {why}"));
        }
    }
    if app.resort_due {
        sort_peers(app);
    }
    fx
}

/// Puts a peer's conversation on screen and marks it read. What was typed
/// for the conversation left stays with it, and the one opened gets back
/// what was typed for it.
pub(super) fn open(app: &mut App, id: &str) {
    if app.open.as_deref() != Some(id) {
        if let Some(left) = app.open.clone() {
            let draft = app.input.take();
            app.history_pos = None;
            if draft.is_empty() {
                app.drafts.remove(&left);
            } else {
                app.drafts.insert(left, draft);
            }
        }
        // Typed before any conversation was open: it stays where it is.
        if app.input.is_empty()
            && let Some(draft) = app.drafts.remove(id)
        {
            app.input.set(draft);
        }
    }
    app.open = Some(PeerId::new(id));
    app.view.max_scroll = None;
    if let Some(peer) = find(app, id) {
        peer.unread = 0;
        peer.conversation.unseen_below = false;
    }
    sort_peers(app);
}

fn on_net(app: &mut App, event: NetEvent, now: u64, fx: &mut Vec<Effect>) {
    match event {
        NetEvent::Listening {
            addrs,
            port,
            fell_back_from,
        } => {
            app.me.port = port;
            app.me.addr = addrs.first().copied();
            app.me.not_listening = None;
            if let Some(busy) = fell_back_from {
                app.notice = Some(format!("port {busy} is busy; listening on {port} instead"));
            }
        }
        NetEvent::NotListening(why) => app.me.not_listening = Some(why),
        NetEvent::DiscoveryActive => app.discovery = super::DiscoveryState::Active,
        NetEvent::DiscoveryDisabled => {
            app.discovery = super::DiscoveryState::Off("mDNS off".into());
        }
        NetEvent::DiscoveryOff(why) => app.discovery = super::DiscoveryState::Off(why),
        NetEvent::DiscoveryLimited(why) => app.discovery = super::DiscoveryState::Limited(why),
        NetEvent::Renamed(name) => {
            app.notice = Some(format!(
                "the name {:?} is taken here; others see you as {name:?}",
                app.me.name
            ));
        }
        NetEvent::JoinRequest {
            req,
            name,
            addr,
            agent,
        } => {
            let browser = browser_of(&agent);
            let text = format!(
                "{name} at {} ({browser}) asks to join from a browser: Ctrl+Y accept, Ctrl+D decline",
                addr.ip()
            );
            app.joins.push_back(super::JoinRequest { req, text });
            fx.push(Effect::Bell);
        }
        NetEvent::HostRenamed(host) => {
            // The old name now leads to the other device: not shown again,
            // also not in an open `/qr` overlay.
            if let Some(old) = app.host.replace(host.clone()) {
                if let Some(local) = app.qr.as_mut().and_then(|v| v.local.as_mut()) {
                    *local = local.replacen(&format!("//{old}:"), &format!("//{host}:"), 1);
                }
            } else {
                app.host = None;
            }
            app.notice = Some(format!(
                "another device on this network has your host name; yours is now {host:?}"
            ));
        }
        NetEvent::PeerUp(peer) => peer_up(app, peer, now),
        NetEvent::PeerDown(id) => {
            if let Some(entry) = find(app, &id) {
                entry.discovered = false;
                if !entry.connected {
                    let line = format!("{} is offline", quoted(&entry.name));
                    system(entry, now, line);
                }
            }
            forget_if_idle(app, &id);
        }
        NetEvent::SessionOpened {
            peer, addr, link, ..
        } => {
            let entry = upsert(app, &peer.id, &peer.name);
            if !entry.discovered {
                entry.host = addr.to_string();
            }
            entry.name = peer.name.clone();
            entry.connected = true;
            entry.kind = peer.kind;
            entry.link = Some(link);
            super::trust::opened(entry, &link, now);
            if let Some(typed) = app.connecting.take() {
                super::trust::reached(app, &typed, &peer, addr, &link, now);
            }
            open_if_none(app, &peer.id);
        }
        NetEvent::SessionClosed {
            peer: id,
            reason,
            connected,
            ..
        } => {
            if let Some(entry) = find(app, &id) {
                entry.connected = connected;
                if !matches!(
                    reason,
                    CloseReason::Bye | CloseReason::Local | CloseReason::Eof
                ) {
                    let line = format!(
                        "connection to {} closed: {}",
                        quoted(&entry.name),
                        sanitize::one_line(&reason.to_string(), MAX_REASON)
                    );
                    system(entry, now, line);
                } else if !entry.online() {
                    let line = format!("{} is offline", quoted(&entry.name));
                    system(entry, now, line);
                }
            }
            forget_if_idle(app, &id);
        }
        NetEvent::Text { from, text, .. } => received(app, from, text, now, fx),
        NetEvent::Sending { to, texts } => sent_elsewhere(app, &to, texts, now),
        NetEvent::Acked { peer, ids } => {
            if let Some(entry) = find(app, &peer) {
                let missing = ids.len() - set_state(entry, &ids, &Delivery::Delivered);
                // Ours only in history (sent from the outbox at start).
                let b = &mut entry.conversation.backlog;
                b.undelivered_elsewhere = b.undelivered_elsewhere.saturating_sub(missing);
            }
        }
        NetEvent::Waiting {
            to, ids, reason, ..
        } => {
            if let Some(entry) = find(app, &to) {
                set_state(entry, &ids, &Delivery::Waiting(reason));
            }
        }
        NetEvent::SendFailed { to, ids, reason } => {
            if let Some(entry) = find(app, &to) {
                let reason = sanitize::one_line(&reason, MAX_REASON);
                set_state(entry, &ids, &Delivery::Failed(reason.clone()));
                let line = format!(
                    "could not deliver {} message(s) to {}: {reason}",
                    ids.len(),
                    quoted(&entry.name)
                );
                system(entry, now, line);
            }
        }
        NetEvent::Conversations(list) => super::history::conversations(app, list),
        NetEvent::History {
            peer,
            records,
            more,
        } => {
            // Asked for before the conversation moved to the peer's new id.
            let peer = app.merged.get(&peer).cloned().unwrap_or(peer);
            super::history::page(app, peer, records, more, fx);
        }
        NetEvent::Found { words, records } => super::history::found(app, words, records),
        NetEvent::HistoryOff(why) => super::history::off(app, why),
        NetEvent::Refused { refusal, .. } => super::trust::refused(app, &refusal, now, fx),
        NetEvent::Verification {
            peer,
            code,
            theirs,
            verified,
            ..
        } => super::trust::verification(app, &peer, code, theirs, verified, now),
        NetEvent::Notice { peer, text } => super::trust::notice(app, &peer, &text, now),
        NetEvent::PeerRenamed { peer, name } => {
            if let Some(entry) = find(app, &peer)
                && entry.name != name
            {
                let line = format!("{} is now called {}", quoted(&entry.name), quoted(&name));
                entry.name = name;
                system(entry, now, line);
            }
        }
        NetEvent::Namesake { known, peer, fp } => {
            super::trust::namesake(app, &known, &peer, &fp, now)
        }
        NetEvent::Merged { from, into } => super::trust::merged(app, &from, &into),
        NetEvent::ConnectFailed { target, reason, .. } => {
            app.connecting = None;
            app.notice = Some(format!("could not connect to {target}: {reason}"));
        }
    }
    sort_peers(app);
}

fn peer_up(app: &mut App, peer: Presence, now: u64) {
    let id = peer.id.clone();
    let entry = upsert(app, &id, &peer.name);
    let was_online = entry.online();
    entry.name = peer.name;
    entry.host = peer.host;
    entry.addrs = peer.addrs;
    entry.discovered = true;
    if !was_online && has_messages(entry) {
        let line = format!("{} is online", quoted(&entry.name));
        system(entry, now, line);
    }
    if peer.problem != entry.problem {
        if let Some(problem) = &peer.problem {
            let line = format!("{} {problem}: messages cannot be sent to it", entry.name);
            system(entry, now, line);
        }
        entry.problem = peer.problem;
    }
    open_if_none(app, &id);
}

/// With nothing on screen, the first peer to appear is opened: two devices in
/// a room should be able to type at once.
fn open_if_none(app: &mut App, id: &str) {
    if app.open.is_none() {
        open(app, id);
    }
}

/// A text from a peer: shown, counted unread when not on screen, rung for.
/// (The network task acknowledges it once it is in the history database.)
fn received(app: &mut App, peer_id: PeerId, text: Text, now: u64, fx: &mut Vec<Effect>) {
    open_if_none(app, &peer_id);
    let on_screen = app.open.as_deref() == Some(peer_id.as_str());
    let Some(entry) = find(app, &peer_id) else {
        return;
    };
    let from = entry.name.clone();
    push(
        entry,
        Entry {
            ts: text.ts,
            kind: EntryKind::Peer { from, id: text.id },
            body: text.body,
            seq: None,
        },
    );
    entry.last_activity = now;
    if on_screen {
        if entry.conversation.scroll > 0 {
            entry.conversation.unseen_below = true;
        }
    } else {
        entry.unread += 1;
        ring(app, now, fx);
    }
}

/// Texts `lantalk send` handed to our node: ours, in the conversation as
/// if typed here (their acks arrive as for those), without moving the
/// scroll or taking the screen from another conversation.
fn sent_elsewhere(app: &mut App, to: &PeerId, texts: Vec<Text>, now: u64) {
    open_if_none(app, to);
    let on_screen = app.open.as_ref() == Some(to);
    let Some(entry) = find(app, to) else {
        return;
    };
    let state = if entry.kind.capabilities().acks {
        Delivery::Sending
    } else {
        Delivery::Sent
    };
    for text in texts {
        push(
            entry,
            Entry {
                ts: text.ts,
                kind: EntryKind::Own {
                    id: text.id,
                    state: state.clone(),
                },
                body: text.body,
                seq: None,
            },
        );
    }
    entry.last_activity = now;
    if on_screen && entry.conversation.scroll > 0 {
        entry.conversation.unseen_below = true;
    }
    sort_peers(app);
}

/// Rings the bell, if it is on; once per [`BELL_GAP_MS`] however many
/// messages arrive: a peer cannot make the terminal ring a thousand times.
pub(super) fn ring(app: &mut App, now: u64, fx: &mut Vec<Effect>) {
    if app.bell
        && app
            .last_bell
            .is_none_or(|t| now.saturating_sub(t) >= BELL_GAP_MS)
    {
        app.last_bell = Some(now);
        fx.push(Effect::Bell);
    }
}

/// A peer's name as quoted in a system line: escaped, one line, bounded.
/// (Drawing escapes again; escaping is idempotent.)
pub(super) fn quoted(name: &str) -> String {
    sanitize::name(name).into_owned()
}

/// Moves our messages `ids` to `state` (a delivered one stays delivered);
/// returns how many of them are in memory.
fn set_state(entry: &mut PeerEntry, ids: &[String], state: &Delivery) -> usize {
    // Recent messages are the likely ones: search from the end.
    let mut left = ids.len();
    for e in entry.conversation.entries.iter_mut().rev() {
        if left == 0 {
            break;
        }
        if let EntryKind::Own { id, state: s } = &mut e.kind
            && ids.contains(id)
        {
            if *s != Delivery::Delivered {
                *s = state.clone();
            }
            left -= 1;
        }
    }
    ids.len() - left
}

pub(super) fn push(entry: &mut PeerEntry, e: Entry) {
    // While scrolled up, keep the view still: the new rows go below it.
    entry.conversation.push(e);
}

pub(super) fn system(entry: &mut PeerEntry, now: u64, body: String) {
    push(
        entry,
        Entry {
            ts: now,
            kind: EntryKind::System,
            body,
            seq: None,
        },
    );
}

fn has_messages(entry: &PeerEntry) -> bool {
    entry
        .conversation
        .entries
        .iter()
        .any(|e| e.kind.is_message())
}

/// A peer that is gone and has no conversation (in memory or in history)
/// leaves the list.
fn forget_if_idle(app: &mut App, id: &str) {
    if app.open.as_deref() == Some(id) {
        return;
    }
    app.peers
        .retain(|p| p.id != id || p.online() || has_messages(p) || p.conversation.backlog.stored);
}

pub(super) fn find<'a>(app: &'a mut App, id: &str) -> Option<&'a mut PeerEntry> {
    app.peers.iter_mut().find(|p| p.id == id)
}

pub(super) fn open_mut(app: &mut App) -> Option<&mut PeerEntry> {
    let id = app.open.clone()?;
    find(app, &id)
}

pub(super) fn upsert<'a>(app: &'a mut App, id: &str, name: &str) -> &'a mut PeerEntry {
    let history = app.history_mode == super::HistoryMode::On;
    let index = match app.peers.iter().position(|p| p.id == id) {
        Some(i) => i,
        None => {
            let mut conversation = super::Conversation::default();
            // New this session: nothing older is stored.
            conversation.backlog.on = history;
            app.peers.push(PeerEntry {
                id: PeerId::new(id),
                name: name.to_owned(),
                host: String::new(),
                addrs: Vec::new(),
                discovered: false,
                problem: None,
                kind: PeerKind::Lantalk,
                connected: false,
                link: None,
                unread: 0,
                last_activity: 0,
                conversation,
            });
            app.peers.len() - 1
        }
    };
    &mut app.peers[index]
}

/// Unread first, then connected, then online, then most recently active,
/// then by name; the cursor stays on the same peer. Not while the user
/// moves through the list (the peers pane has the focus, or Ctrl+N / Ctrl+P
/// was pressed lately): it is sorted when that ends.
pub(super) fn sort_peers(app: &mut App) {
    if app.focus == Focus::Peers || app.now < app.order_held_until {
        app.resort_due = true;
        return;
    }
    app.resort_due = false;
    let at = app.peers.get(app.cursor).map(|p| p.id.clone());
    app.peers.sort_by(|a, b| {
        let key = |p: &PeerEntry| {
            (
                p.unread == 0,
                !p.connected,
                !p.online(),
                std::cmp::Reverse(p.last_activity),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.id.cmp(&b.id))
    });
    app.cursor = at
        .and_then(|id| app.peers.iter().position(|p| p.id == id))
        .unwrap_or(0)
        .min(app.peers.len().saturating_sub(1));
}

/// The browser's family from its user agent, for a join request: enough to
/// tell "the phone in my hand" from something else.
fn browser_of(agent: &str) -> String {
    let has = |word: &str| agent.contains(word);
    let browser = if has("Firefox/") {
        "Firefox"
    } else if has("Edg/") {
        "Edge"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else {
        "a browser"
    };
    let system = if has("Android") {
        " on Android"
    } else if has("iPhone") || has("iPad") {
        " on iOS"
    } else if has("Windows") {
        " on Windows"
    } else if has("Mac OS X") {
        " on macOS"
    } else if has("Linux") {
        " on Linux"
    } else {
        ""
    };
    format!("{browser}{system}")
}
