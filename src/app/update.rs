//! [`update`]: how keys, pastes and network events change the [`App`], and
//! which [`Effect`]s they ask for. Commands typed in the input live in
//! `commands.rs`, encrypted sessions (marks, refused keys, verification
//! codes, ids that change) in `trust.rs`, history in `history.rs`; this
//! file is the dispatcher and the conversation logic.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{Action, App, Delivery, Effect, Entry, EntryKind, Focus, PeerEntry};
use crate::net::node::{NetCommand, NetEvent};
use crate::net::{CloseReason, Peer};
use crate::protocol::Text;
use crate::sanitize;

/// Rows the mouse wheel scrolls per notch.
const WHEEL_ROWS: usize = 3;

/// Longest peer-supplied reason (an `error` message) quoted in a line, in cells.
const MAX_REASON: usize = 200;

/// The shortest time between two bells, in ms: a flood of messages rings once.
pub const BELL_GAP_MS: u64 = 1_000;

/// Applies `action` at time `now` (Unix ms) and returns what to do outside.
pub fn update(app: &mut App, action: Action, now: u64) -> Vec<Effect> {
    let mut fx = Vec::new();
    match action {
        Action::Key(key) if key.kind != KeyEventKind::Release => on_key(app, key, now, &mut fx),
        Action::Key(_) => {}
        Action::Paste(text) => {
            app.help = false;
            app.search = None;
            app.focus = Focus::Input;
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
        Action::Net(event) => on_net(app, event, now, &mut fx),
    }
    fx
}

fn on_key(app: &mut App, key: KeyEvent, now: u64, fx: &mut Vec<Effect>) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    app.notice = None;
    if ctrl && key.code == KeyCode::Char('c') {
        app.quitting = true;
        fx.push(Effect::Quit);
        return;
    }
    if app.help {
        // Any key closes the help; it does nothing else.
        app.help = false;
        return;
    }
    if app.search.is_some() {
        return super::history::search_key(app, key, fx);
    }
    // The search result jumped to stays highlighted until the next key.
    if let Some(peer) = open_mut(app) {
        peer.conversation.highlight = None;
    }
    let help_key = key.code == KeyCode::F(1)
        || (key.code == KeyCode::Char('?')
            && !ctrl
            && !alt
            && (app.focus != Focus::Input || app.input.is_empty()));
    if help_key {
        app.help = true;
        return;
    }
    match key.code {
        KeyCode::Tab => {
            app.focus = match app.focus {
                Focus::Input => Focus::Peers,
                Focus::Peers => Focus::Conversation,
                Focus::Conversation => Focus::Input,
            };
            return;
        }
        KeyCode::BackTab => {
            app.focus = match app.focus {
                Focus::Input => Focus::Conversation,
                Focus::Conversation => Focus::Peers,
                Focus::Peers => Focus::Input,
            };
            return;
        }
        KeyCode::Char('n') if ctrl => return switch_conversation(app, 1),
        KeyCode::Char('p') if ctrl => return switch_conversation(app, -1),
        KeyCode::PageUp => return scroll_up(app, app.view.page.max(1), fx),
        KeyCode::PageDown => return scroll_down(app, app.view.page.max(1)),
        KeyCode::Esc => {
            app.focus = Focus::Input;
            app.alert = None;
            return;
        }
        _ => {}
    }
    match app.focus {
        Focus::Peers => peers_key(app, key),
        Focus::Conversation => conversation_key(app, key, fx),
        Focus::Input => input_key(app, key, ctrl, alt, now, fx),
    }
}

fn peers_key(app: &mut App, key: KeyEvent) {
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => app.cursor = app.cursor.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => {
            app.cursor = (app.cursor + 1).min(app.peers.len().saturating_sub(1));
        }
        KeyCode::Home => app.cursor = 0,
        KeyCode::End => app.cursor = app.peers.len().saturating_sub(1),
        KeyCode::Enter => {
            if let Some(id) = app.peers.get(app.cursor).map(|p| p.id.clone()) {
                open(app, &id);
                app.focus = Focus::Input;
            }
        }
        _ => {}
    }
}

fn conversation_key(app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) {
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => scroll_up(app, 1, fx),
        KeyCode::Down | KeyCode::Char('j') => scroll_down(app, 1),
        // Past the top; the next draw clamps it to the oldest message. The
        // oldest in memory may not be the oldest there is: ask for more.
        KeyCode::Home | KeyCode::Char('g') => {
            scroll_up(app, usize::MAX / 2, fx);
            super::history::load_older(app, fx);
        }
        KeyCode::End | KeyCode::Char('G') => scroll_down(app, usize::MAX),
        _ => {}
    }
}

fn input_key(app: &mut App, key: KeyEvent, ctrl: bool, alt: bool, now: u64, fx: &mut Vec<Effect>) {
    let input = &mut app.input;
    match key.code {
        KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => {
            input.insert_char('\n')
        }
        KeyCode::Enter => submit(app, now, fx),
        KeyCode::Char('a') if ctrl => input.home(),
        KeyCode::Char('e') if ctrl => input.end(),
        KeyCode::Char('w') if ctrl => input.kill_word_back(),
        KeyCode::Char('u') if ctrl => input.kill_to_line_start(),
        KeyCode::Char('k') if ctrl => input.kill_to_line_end(),
        KeyCode::Char('b') if alt => input.word_left(),
        KeyCode::Char('f') if alt => input.word_right(),
        KeyCode::Char(c) if !ctrl && !alt => {
            app.history_pos = None;
            input.insert_char(c);
        }
        KeyCode::Backspace if ctrl || alt => input.kill_word_back(),
        KeyCode::Backspace => input.backspace(),
        KeyCode::Delete => input.delete(),
        KeyCode::Left if ctrl || alt => input.word_left(),
        KeyCode::Right if ctrl || alt => input.word_right(),
        KeyCode::Left => input.left(),
        KeyCode::Right => input.right(),
        KeyCode::Home => input.home(),
        KeyCode::End => input.end(),
        // In a multi-line input Up/Down move between lines; at the edge they recall history.
        KeyCode::Up if !input.move_up() => recall(app, -1),
        KeyCode::Down if !input.move_down() => recall(app, 1),
        _ => {}
    }
}

/// Up/Down through the history of sent lines; past the newest, an empty input.
fn recall(app: &mut App, step: isize) {
    if app.history.is_empty() {
        return;
    }
    let last = app.history.len() - 1;
    let next = match (app.history_pos, step < 0) {
        (None, true) => Some(last),
        (None, false) => return,
        (Some(0), true) => Some(0),
        (Some(i), true) => Some(i - 1),
        (Some(i), false) if i >= last => None,
        (Some(i), false) => Some(i + 1),
    };
    app.history_pos = next;
    app.input
        .set(next.map(|i| app.history[i].clone()).unwrap_or_default());
}

/// Enter in the input: a command, or a message to the open conversation.
fn submit(app: &mut App, now: u64, fx: &mut Vec<Effect>) {
    let line = app.input.take();
    app.history_pos = None;
    if line.trim().is_empty() {
        return;
    }
    if app.history.last() != Some(&line) {
        app.history.push(line.clone());
    }
    // `//text` sends "/text"; any other leading slash is a command.
    let body = match line.strip_prefix('/') {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        Some(_) => return super::commands::run(app, &line, fx),
        None => line.clone(),
    };
    let Some(to) = app.open.clone() else {
        app.notice = Some(
            "no conversation open: pick a peer (Tab, ↑/↓, Enter) or /connect HOST:PORT".into(),
        );
        app.input.set(line);
        return;
    };
    app.next_msg += 1;
    let id = format!("{}-{}", app.msg_prefix, app.next_msg);
    let text = Text {
        id: id.clone(),
        ts: now,
        body: body.clone(),
    };
    if let Some(problem) = find(app, &to).and_then(|p| p.problem.clone()) {
        // It would refuse our hello: say why now instead of dialling.
        app.notice = Some(format!("cannot send: this peer {problem}"));
        app.input.set(line);
        return;
    }
    if let Some(peer) = find(app, &to) {
        // A raw peer never acknowledges: its messages are only ever "sent".
        let state = if peer.raw {
            Delivery::Sent
        } else {
            Delivery::Sending
        };
        push(
            peer,
            Entry {
                ts: now,
                kind: EntryKind::Own { id, state },
                body,
                seq: None,
            },
        );
        peer.last_activity = now;
        peer.conversation.scroll = 0;
        peer.conversation.unseen_below = false;
    }
    fx.push(Effect::Net(NetCommand::Send { to, text }));
    sort_peers(app);
}

/// Scrolls towards older messages; reaching the top of what is in memory
/// asks for the page before it.
fn scroll_up(app: &mut App, rows: usize, fx: &mut Vec<Effect>) {
    let max = app.view.max_scroll;
    let mut at_top = false;
    if let Some(peer) = open_mut(app) {
        let c = &mut peer.conversation;
        c.jump = None;
        c.scroll = c.scroll.saturating_add(rows);
        if let Some(max) = max {
            at_top = c.scroll >= max;
            c.scroll = c.scroll.min(max);
        }
    }
    if at_top {
        super::history::load_older(app, fx);
    }
}

fn scroll_down(app: &mut App, rows: usize) {
    if let Some(peer) = open_mut(app) {
        let c = &mut peer.conversation;
        c.jump = None;
        c.scroll = c.scroll.saturating_sub(rows);
        if c.scroll == 0 {
            c.unseen_below = false;
        }
    }
}

fn switch_conversation(app: &mut App, step: isize) {
    if app.peers.is_empty() {
        return;
    }
    let n = app.peers.len() as isize;
    let current = app
        .open
        .as_deref()
        .and_then(|id| app.peers.iter().position(|p| p.id == id))
        .map_or(if step > 0 { -1 } else { 0 }, |i| i as isize);
    let next = (current + step).rem_euclid(n) as usize;
    let id = app.peers[next].id.clone();
    open(app, &id);
}

/// Puts a peer's conversation on screen and marks it read.
pub(super) fn open(app: &mut App, id: &str) {
    app.open = Some(id.to_owned());
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
            if let Some(busy) = fell_back_from {
                app.notice = Some(format!("port {busy} is busy; listening on {port} instead"));
            }
        }
        NetEvent::DiscoveryActive => app.discovery = super::DiscoveryState::Active,
        NetEvent::DiscoveryOff(why) => app.discovery = super::DiscoveryState::Off(why),
        NetEvent::DiscoveryLimited(why) => app.discovery = super::DiscoveryState::Limited(why),
        NetEvent::Renamed(name) => {
            app.notice = Some(format!(
                "the name {:?} is taken here; others see you as {name:?}",
                app.me.name
            ));
        }
        NetEvent::PeerUp(peer) => peer_up(app, peer, now),
        NetEvent::PeerDown(peer) => {
            if let Some(entry) = find(app, &peer.id) {
                entry.discovered = false;
                if entry.session.is_none() {
                    let line = format!("{} is offline", quoted(&entry.name));
                    system(entry, now, line);
                }
            }
            forget_if_idle(app, &peer.id);
        }
        NetEvent::SessionOpened {
            sid,
            peer,
            addr,
            raw,
            link,
        } => {
            app.sessions.insert(sid, peer.id.clone());
            let entry = upsert(app, &peer.id, &peer.name);
            if !entry.discovered {
                entry.host = addr.to_string();
            }
            entry.name = peer.name;
            entry.session = Some(sid);
            entry.raw = raw;
            entry.link = Some(link);
            super::trust::opened(entry, &link, now);
            open_if_none(app, &peer.id);
        }
        NetEvent::SessionClosed { sid, reason } => {
            let Some(id) = app.sessions.remove(&sid) else {
                return;
            };
            let other = app
                .sessions
                .iter()
                .find(|(_, p)| **p == id)
                .map(|(s, _)| *s);
            if let Some(entry) = find(app, &id) {
                if entry.session == Some(sid) {
                    entry.session = other;
                }
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
        NetEvent::Text { sid, text } => received(app, sid, text, now, fx),
        NetEvent::Acked { sid, id } => {
            let Some(peer_id) = app.sessions.get(&sid).cloned() else {
                return;
            };
            if let Some(entry) = find(app, &peer_id)
                && !set_state(entry, &[id], &Delivery::Delivered)
            {
                // One of ours only in history (sent from the outbox at start).
                let b = &mut entry.conversation.backlog;
                b.undelivered_elsewhere = b.undelivered_elsewhere.saturating_sub(1);
            }
        }
        NetEvent::Waiting { to, ids, reason } => {
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
        NetEvent::Refused {
            name,
            why,
            key_changed,
            ..
        } => super::trust::refused(app, name, &why, key_changed, now, fx),
        NetEvent::Verification {
            peer,
            code,
            theirs,
            verified,
            ..
        } => super::trust::verification(app, &peer, code, theirs, verified, now),
        NetEvent::Notice { peer, text } => super::trust::notice(app, &peer, &text, now),
        NetEvent::Merged { from, into } => super::trust::merged(app, &from, &into),
        NetEvent::ConnectFailed { target, reason } => {
            app.notice = Some(format!("could not connect to {target}: {reason}"));
        }
    }
    sort_peers(app);
}

fn peer_up(app: &mut App, peer: Peer, now: u64) {
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
fn received(app: &mut App, sid: u64, text: Text, now: u64, fx: &mut Vec<Effect>) {
    let Some(peer_id) = app.sessions.get(&sid).cloned() else {
        return;
    };
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
/// false when some of them are not in memory.
fn set_state(entry: &mut PeerEntry, ids: &[String], state: &Delivery) -> bool {
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
    left == 0
}

fn push(entry: &mut PeerEntry, e: Entry) {
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

fn open_mut(app: &mut App) -> Option<&mut PeerEntry> {
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
                id: id.to_owned(),
                name: name.to_owned(),
                host: String::new(),
                addrs: Vec::new(),
                discovered: false,
                problem: None,
                raw: false,
                session: None,
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
/// then by name; the cursor stays on the same peer.
pub(super) fn sort_peers(app: &mut App) {
    let at = app.peers.get(app.cursor).map(|p| p.id.clone());
    app.peers.sort_by(|a, b| {
        let key = |p: &PeerEntry| {
            (
                p.unread == 0,
                p.session.is_none(),
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
