//! Keys in the chat screen: focus, the peers list, scrolling the
//! conversation, editing and sending in the input (commands go to
//! `commands.rs`). Pure, like the rest of `app`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::update::{find, open, open_mut, push, sort_peers};
use super::{App, Delivery, Effect, Entry, EntryKind, Focus};
use crate::net::NetCommand;
use crate::protocol::Text;

/// Rows the mouse wheel scrolls per notch.
pub(super) const WHEEL_ROWS: usize = 3;

pub(super) fn on_key(app: &mut App, key: KeyEvent, now: u64, fx: &mut Vec<Effect>) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    app.notice = None;
    if ctrl && key.code == KeyCode::Char('c') {
        // As in a shell: a half-typed line is cleared, an empty one quits.
        app.help = false;
        app.qr = None;
        if !app.input.is_empty() {
            app.input.take();
            app.history_pos = None;
            return;
        }
        app.quitting = true;
        fx.push(Effect::Quit);
        return;
    }
    if ctrl
        && let KeyCode::Char(c @ ('y' | 'd')) = key.code
        && let Some(request) = app.joins.pop_front()
    {
        fx.push(Effect::Net(NetCommand::AnswerJoin {
            req: request.req,
            accept: c == 'y',
        }));
        return;
    }
    if app.help && help_key(app, key) {
        return;
    }
    // Any key closes the phone's address; Esc and Enter do nothing else,
    // any other key then does what it does (nothing typed is lost).
    if app.qr.take().is_some() && matches!(key.code, KeyCode::Esc | KeyCode::Enter) {
        return;
    }
    if app.search.is_some() && super::history::search_key(app, key, fx) {
        return;
    }
    // The search result jumped to stays highlighted until the next key.
    if let Some(peer) = open_mut(app) {
        peer.conversation.highlight = None;
    }
    if key.code == KeyCode::F(1) {
        app.help = true;
        app.help_scroll = 0;
        return;
    }
    // A character typed anywhere is text: it goes to the input, whichever
    // pane had the focus, so nothing typed is ever lost.
    if let KeyCode::Char(_) = key.code
        && !ctrl
        && !alt
        && app.focus != Focus::Input
    {
        set_focus(app, Focus::Input);
    }
    match key.code {
        KeyCode::Tab => {
            let next = match app.focus {
                Focus::Input => Focus::Peers,
                Focus::Peers => Focus::Conversation,
                Focus::Conversation => Focus::Input,
            };
            return set_focus(app, next);
        }
        KeyCode::BackTab => {
            let next = match app.focus {
                Focus::Input => Focus::Conversation,
                Focus::Conversation => Focus::Peers,
                Focus::Peers => Focus::Input,
            };
            return set_focus(app, next);
        }
        KeyCode::Char('n') if ctrl => return switch_conversation(app, 1, now),
        KeyCode::Char('p') if ctrl => return switch_conversation(app, -1, now),
        KeyCode::PageUp => return scroll_up(app, app.view.page.max(1), fx),
        KeyCode::PageDown => return scroll_down(app, app.view.page.max(1)),
        KeyCode::Esc => {
            set_focus(app, Focus::Input);
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

/// Keys while the help is open: arrows and pages scroll it, Esc, F1 and
/// Enter close it; any other key closes it and then does what it does
/// (a character is typed). Returns whether the key was used up.
fn help_key(app: &mut App, key: KeyEvent) -> bool {
    let max = app.view.help_max_scroll;
    let page = app.view.help_page.max(1);
    let scroll = &mut app.help_scroll;
    match key.code {
        KeyCode::Up => *scroll = scroll.saturating_sub(1),
        KeyCode::Down => *scroll = (*scroll + 1).min(max),
        KeyCode::PageUp => *scroll = scroll.saturating_sub(page),
        KeyCode::PageDown => *scroll = (*scroll + page).min(max),
        KeyCode::Home => *scroll = 0,
        KeyCode::End => *scroll = max,
        KeyCode::Esc | KeyCode::F(1) | KeyCode::Enter => app.help = false,
        _ => {
            app.help = false;
            return false;
        }
    }
    true
}

/// Moves the keys to `focus`. Leaving the peers list puts it back in order
/// (it holds still while the cursor moves through it).
fn set_focus(app: &mut App, focus: Focus) {
    app.focus = focus;
    if focus != Focus::Peers {
        sort_peers(app);
    }
}

fn peers_key(app: &mut App, key: KeyEvent) {
    match key.code {
        KeyCode::Up => app.cursor = app.cursor.saturating_sub(1),
        KeyCode::Down => {
            app.cursor = (app.cursor + 1).min(app.peers.len().saturating_sub(1));
        }
        KeyCode::Home => app.cursor = 0,
        KeyCode::End => app.cursor = app.peers.len().saturating_sub(1),
        KeyCode::Enter => {
            if let Some(id) = app.peers.get(app.cursor).map(|p| p.id.clone()) {
                open(app, &id);
                set_focus(app, Focus::Input);
            }
        }
        _ => {}
    }
}

fn conversation_key(app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) {
    match key.code {
        KeyCode::Up => scroll_up(app, 1, fx),
        KeyCode::Down => scroll_down(app, 1),
        // Past the top; the next draw clamps it to the oldest message. The
        // oldest in memory may not be the oldest there is: ask for more.
        KeyCode::Home => {
            scroll_up(app, usize::MAX / 2, fx);
            super::history::load_older(app, fx);
        }
        KeyCode::End => scroll_down(app, usize::MAX),
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
        // A peer that never acknowledges (raw text): its messages are only
        // ever "sent".
        let state = if peer.kind.capabilities().acks {
            Delivery::Sending
        } else {
            Delivery::Sent
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
    fx.push(Effect::Net(NetCommand::Send {
        to,
        texts: vec![text],
    }));
    sort_peers(app);
}

/// Scrolls towards older messages; reaching the top of what is in memory
/// asks for the page before it.
pub(super) fn scroll_up(app: &mut App, rows: usize, fx: &mut Vec<Effect>) {
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

pub(super) fn scroll_down(app: &mut App, rows: usize) {
    if let Some(peer) = open_mut(app) {
        let c = &mut peer.conversation;
        c.jump = None;
        c.scroll = c.scroll.saturating_sub(rows);
        if c.scroll == 0 {
            c.unseen_below = false;
        }
    }
}

/// Ctrl+N / Ctrl+P: the next or previous conversation in the list as it
/// is shown; the list holds still meanwhile (see [`super::ORDER_HOLD_MS`]),
/// so pressing on goes through every peer once.
fn switch_conversation(app: &mut App, step: isize, now: u64) {
    if app.peers.is_empty() {
        return;
    }
    app.order_held_until = now + super::ORDER_HOLD_MS;
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
