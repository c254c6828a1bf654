//! The chat screen's side of history: conversations listed from the
//! database, pages of older messages merged in front of the ones in memory
//! (asked for when scrolling reaches the top), `/search` and its results
//! overlay, and whether history is kept at all.
//!
//! The network task owns the database: it sends the list of conversations
//! and each one's newest page at start, answers [`NetCommand::LoadHistory`]
//! with a page and [`NetCommand::Search`] with results. Everything here is
//! pure, like the rest of `app`.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent};

use super::update::{find, open, sort_peers, upsert};
use super::{
    App, Conversation, Delivery, Effect, Entry, EntryKind, Focus, MAX_BODY_BYTES, MAX_ENTRIES,
    PeerEntry,
};
use crate::net::{HistoryOff, NetCommand};
use crate::peer::{PeerId, PeerKind};
use crate::store::{self, Record, State};

/// Whether history is kept, as the network task said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HistoryMode {
    /// Not known yet (the network task has not said).
    #[default]
    Unknown,
    /// Kept: conversations were listed.
    On,
    /// Off because of `--no-history`: said discreetly.
    Disabled,
    /// Off because the database failed, and why (shown in the status bar).
    Off(String),
}

/// What the history database holds beyond a conversation's entries in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// History is kept for this conversation: older messages can be loaded.
    pub on: bool,
    /// The database has messages with this peer (it stays listed offline).
    pub stored: bool,
    /// Messages older than the oldest in memory exist in the database.
    pub more: bool,
    /// A page was asked for (or is coming unasked at start) and has not arrived.
    pub loading: bool,
    /// The oldest message in memory came live, so its position in the
    /// database is unknown: pages are read from the newest back until it is
    /// found (only after a flood pushed every loaded message out of memory).
    pub locate: Option<MessageKey>,
    /// Memory is full ([`MAX_ENTRIES`], [`MAX_BODY_BYTES`]): older messages
    /// stay in the database (`lantalk history` shows them).
    pub full: bool,
    /// Our undelivered texts to this peer that are not in memory.
    pub undelivered_elsewhere: usize,
}

/// Which message: ours or theirs, its id, and its seq when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    /// One of ours.
    pub outgoing: bool,
    /// The protocol id.
    pub id: String,
    /// Its position in the database.
    pub seq: Option<i64>,
}

impl MessageKey {
    /// This key names `entry`.
    pub fn matches(&self, entry: &Entry) -> bool {
        (self.seq.is_some() && entry.seq == self.seq)
            || entry.key() == Some((self.outgoing, self.id.as_str()))
    }
}

/// The dim line above a conversation's oldest entry, when history is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopLine {
    /// A page is on its way.
    Loading,
    /// Older messages exist: scrolling up loads them.
    More,
    /// Older messages exist but memory is full.
    InHistory,
    /// Nothing is older.
    Beginning,
}

impl TopLine {
    /// What the line says.
    pub fn text(self) -> &'static str {
        match self {
            TopLine::Loading => "loading older messages…",
            TopLine::More => "older messages in history: scroll up to load them",
            TopLine::InHistory => "older messages are in history (lantalk history)",
            TopLine::Beginning => "beginning of the conversation",
        }
    }
}

impl Conversation {
    /// The line to draw above the oldest entry (`None` without history).
    pub fn top_line(&self) -> Option<TopLine> {
        let b = &self.backlog;
        if !b.on {
            return None;
        }
        Some(if b.loading {
            TopLine::Loading
        } else if !b.more {
            TopLine::Beginning
        } else if b.full {
            TopLine::InHistory
        } else {
            TopLine::More
        })
    }

    /// Whether the message `key` is in memory.
    pub fn holds(&self, key: &MessageKey) -> bool {
        self.entries.iter().rev().any(|e| key.matches(e))
    }

    /// Puts a page of history (oldest first) in front of the entries in
    /// memory, skipping messages already there and keeping within the caps
    /// (the newest of the page go in first). Returns how many went in.
    fn merge(&mut self, records: &[Record], name: &str, kind: PeerKind) -> usize {
        let undelivered = records.iter().filter(|r| pending(r)).count();
        self.backlog.undelivered_elsewhere = self
            .backlog
            .undelivered_elsewhere
            .saturating_sub(undelivered);
        let fresh: Vec<&Record> = {
            let have: HashSet<(bool, &str)> = self.entries.iter().filter_map(Entry::key).collect();
            records
                .iter()
                .filter(|r| !have.contains(&(r.outgoing, r.id.as_str())))
                .collect()
        };
        // The newest that fit.
        let mut room = MAX_ENTRIES.saturating_sub(self.entries.len());
        let mut bytes = MAX_BODY_BYTES.saturating_sub(self.body_bytes);
        let mut take = 0;
        for r in fresh.iter().rev() {
            if room == 0 || r.body.len() > bytes {
                break;
            }
            room -= 1;
            bytes -= r.body.len();
            take += 1;
        }
        if take < fresh.len() {
            self.backlog.full = true;
            self.backlog.more = true;
            // Those left out count as undelivered elsewhere again.
            let skipped = fresh[..fresh.len() - take]
                .iter()
                .filter(|r| pending(r))
                .count();
            self.backlog.undelivered_elsewhere += skipped;
        }
        let new: Vec<Entry> = fresh[fresh.len() - take..]
            .iter()
            .map(|r| entry_from(r, name, kind))
            .collect();
        let Some(first_seq) = new.first().and_then(|e| e.seq) else {
            return 0;
        };
        // In front of everything, after the note and any older loaded
        // message (a page is older than what is loaded; this keeps order
        // even if one is not).
        let at = self
            .entries
            .iter()
            .enumerate()
            .position(|(i, e)| !((i == 0 && self.note) || e.seq.is_some_and(|s| s < first_seq)))
            .unwrap_or(self.entries.len());
        self.body_bytes += new.iter().map(|e| e.body.len()).sum::<usize>();
        let count = new.len();
        self.entries.splice(at..at, new);
        count
    }
}

/// One of our texts on its way (in memory): pending or sent, not acknowledged.
pub(super) fn undelivered(entry: &Entry) -> bool {
    matches!(
        entry.kind,
        EntryKind::Own {
            state: Delivery::Sending | Delivery::Waiting(_),
            ..
        }
    )
}

/// A stored text of ours not delivered yet.
fn pending(r: &Record) -> bool {
    r.outgoing && matches!(r.state, State::Pending | State::Sent)
}

/// A stored message as a conversation entry, with `name` for the peer's and
/// the delivery states mapped to the marks: pending ◷, sent …,
/// delivered ✓, failed ✗.
pub fn entry_from(r: &Record, name: &str, peer: PeerKind) -> Entry {
    let kind = if r.outgoing {
        let state = match r.state {
            State::Pending => Delivery::Waiting(format!("waiting for {name}")),
            // A peer that never acknowledges: written is all there is.
            State::Sent if !peer.capabilities().acks => Delivery::Sent,
            State::Sent => Delivery::Sending,
            State::Delivered => Delivery::Delivered,
            State::Failed => Delivery::Failed("not delivered".into()),
        };
        EntryKind::Own {
            id: r.id.clone(),
            state,
        }
    } else {
        EntryKind::Peer {
            from: name.to_owned(),
            id: r.id.clone(),
        }
    };
    Entry {
        ts: r.ts,
        kind,
        body: r.body.clone(),
        seq: Some(r.seq),
    }
}

/// `NetEvent::Conversations`: every peer with history is listed (offline
/// ones too), its newest page is on its way, and with nothing on screen the
/// most recent conversation opens.
pub(super) fn conversations(app: &mut App, list: Vec<store::Conversation>) {
    app.history_mode = HistoryMode::On;
    for peer in &mut app.peers {
        peer.conversation.backlog.on = true;
    }
    for c in &list {
        let entry = upsert(app, &c.peer, &c.name);
        if !entry.online() {
            entry.name = c.name.clone();
            entry.kind = c.kind;
        }
        if entry.host.is_empty()
            && let Some(ip) = c.kind.address()
        {
            entry.host = ip.to_string();
        }
        entry.last_activity = entry.last_activity.max(c.last_ts);
        let b = &mut entry.conversation.backlog;
        b.stored = true;
        b.loading = true;
        b.more = true;
        b.undelivered_elsewhere = usize::try_from(c.undelivered).unwrap_or(usize::MAX);
    }
    if app.open.is_none()
        && let Some(c) = list.first()
    {
        open(app, &c.peer);
    }
    sort_peers(app);
}

/// `NetEvent::History`: a page (oldest first) goes in front of what is in
/// memory; a pending search jump or a search for the oldest live message
/// asks for the next page.
pub(super) fn page(
    app: &mut App,
    peer: PeerId,
    records: Vec<Record>,
    more: bool,
    fx: &mut Vec<Effect>,
) {
    let on_screen = app.open.as_deref() == Some(peer.as_str());
    let on = app.history_mode == HistoryMode::On;
    // Pages come after the conversation was listed (with its name and kind).
    let entry = upsert(app, &peer, &peer);
    if !records.is_empty() {
        entry.conversation.backlog.stored = true;
    }
    let (name, raw) = (entry.name.clone(), entry.kind);
    let conv = &mut entry.conversation;
    conv.backlog.on |= on;
    conv.backlog.loading = false;
    let added = match conv.backlog.locate.take() {
        None => {
            conv.backlog.more = more;
            conv.merge(&records, &name, raw)
        }
        Some(oldest) => match records.iter().position(|r| oldest.matches_record(r)) {
            // Found: what is older than it is what was dropped.
            Some(at) => {
                conv.backlog.more = more;
                conv.merge(&records[..at], &name, raw)
            }
            None if more && !records.is_empty() => {
                let before = records[0].seq;
                conv.backlog.locate = Some(oldest);
                conv.backlog.loading = true;
                fx.push(Effect::Net(NetCommand::LoadHistory {
                    peer: peer.clone(),
                    before: Some(before),
                }));
                0
            }
            // It was never stored: nothing older can be loaded.
            None => {
                conv.backlog.more = false;
                0
            }
        },
    };
    // A search result not reached yet: the next page, or give up.
    if let Some(target) = conv.jump.clone()
        && !conv.backlog.loading
        && !conv.holds(&target)
        && !request_older(entry, fx)
    {
        entry.conversation.jump = None;
        if on_screen {
            app.notice = Some(TOO_FAR.into());
        }
    }
    if on_screen && added > 0 {
        // The pane grew upwards: the next draw says how far it scrolls now.
        app.view.max_scroll = None;
    }
}

impl MessageKey {
    fn matches_record(&self, r: &Record) -> bool {
        self.seq == Some(r.seq) || (self.outgoing == r.outgoing && self.id == r.id)
    }
}

/// `NetEvent::HistoryOff`: nothing more is loaded; the status bar says why
/// (discreetly for `--no-history`).
pub(super) fn off(app: &mut App, off: HistoryOff) {
    app.history_mode = match off {
        HistoryOff::Disabled => HistoryMode::Disabled,
        HistoryOff::NothingToSearch => {
            app.notice = Some(off.to_string());
            return;
        }
        other => HistoryMode::Off(other.to_string()),
    };
    for peer in &mut app.peers {
        let b = &mut peer.conversation.backlog;
        b.on = false;
        b.loading = false;
        b.locate = None;
        peer.conversation.jump = None;
    }
}

/// Asks for the page before the oldest message in memory of the open
/// conversation, once: not while a page is on its way, not when nothing is
/// older, not when memory is full.
pub(super) fn load_older(app: &mut App, fx: &mut Vec<Effect>) {
    let Some(id) = app.open.clone() else { return };
    if let Some(peer) = find(app, &id) {
        request_older(peer, fx);
    }
}

/// [`load_older`] for one peer; false when nothing can be asked for.
fn request_older(peer: &mut PeerEntry, fx: &mut Vec<Effect>) -> bool {
    let conv = &mut peer.conversation;
    let b = &conv.backlog;
    if !b.on || !b.more || b.full {
        return false;
    }
    if b.loading {
        return true;
    }
    let oldest = conv.entries.iter().find_map(|e| {
        e.key().map(|(outgoing, id)| MessageKey {
            outgoing,
            id: id.to_owned(),
            seq: e.seq,
        })
    });
    let before = match oldest {
        Some(MessageKey { seq: Some(seq), .. }) => Some(seq),
        Some(live) => {
            // Where it is in the database is unknown: from the newest back.
            conv.backlog.locate = Some(live);
            None
        }
        None => None,
    };
    conv.backlog.loading = true;
    fx.push(Effect::Net(NetCommand::LoadHistory {
        peer: peer.id.clone(),
        before,
    }));
    true
}

/// One search result, with the peer's name when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The message.
    pub record: Record,
    /// Its conversation's name.
    pub name: String,
}

/// The search results overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchView {
    /// What was searched for.
    pub words: String,
    /// Newest first.
    pub hits: Vec<SearchHit>,
    /// The highlighted result.
    pub cursor: usize,
}

/// Said when a search result cannot be brought into memory.
const TOO_FAR: &str = "that message is too far back to show here; `lantalk history` has it";

/// Rows PgUp/PgDn move the cursor in the results.
const RESULTS_PAGE: usize = 10;

/// `/search WORDS`.
pub(super) fn search(app: &mut App, words: &str, fx: &mut Vec<Effect>) -> Result<(), String> {
    if words.is_empty() {
        return Err("usage: /search WORDS (finds messages in every conversation)".into());
    }
    if matches!(
        app.history_mode,
        HistoryMode::Disabled | HistoryMode::Off(_)
    ) {
        return Err("history is off: there is nothing to search".into());
    }
    app.notice = Some(format!("searching for {words}…"));
    fx.push(Effect::Net(NetCommand::Search(words.to_owned())));
    Ok(())
}

/// `NetEvent::Found`: the results overlay, or a notice when nothing matched.
pub(super) fn found(app: &mut App, words: String, records: Vec<Record>) {
    if records.is_empty() {
        app.notice = Some(format!("no messages match {words}"));
        app.search = None;
        return;
    }
    app.notice = None;
    let hits = records
        .into_iter()
        .map(|record| {
            let name = app
                .peers
                .iter()
                .find(|p| p.id == record.peer)
                .map_or_else(|| record.peer.to_string(), |p| p.name.clone());
            SearchHit { record, name }
        })
        .collect();
    app.search = Some(SearchView {
        words,
        hits,
        cursor: 0,
    });
}

/// A key while the results overlay is open: ↑/↓ (PgUp/PgDn, Home/End) move,
/// Enter opens the conversation at that message, Esc closes.
/// Keys over the search results: arrows and pages move, Enter opens, Esc
/// closes; any other key closes them and then does what it does (a
/// character is typed in the input). Returns whether the key was used up.
pub(super) fn search_key(app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) -> bool {
    let Some(view) = &mut app.search else {
        return false;
    };
    let last = view.hits.len().saturating_sub(1);
    match key.code {
        KeyCode::Up => view.cursor = view.cursor.saturating_sub(1),
        KeyCode::Down => view.cursor = (view.cursor + 1).min(last),
        KeyCode::PageUp => view.cursor = view.cursor.saturating_sub(RESULTS_PAGE),
        KeyCode::PageDown => view.cursor = (view.cursor + RESULTS_PAGE).min(last),
        KeyCode::Home => view.cursor = 0,
        KeyCode::End => view.cursor = last,
        KeyCode::Esc => app.search = None,
        KeyCode::Enter => {
            let hit = view.hits.get(view.cursor).cloned();
            app.search = None;
            if let Some(hit) = hit {
                jump_to(app, hit, fx);
            }
        }
        _ => {
            app.search = None;
            return false;
        }
    }
    true
}

/// The mouse wheel over the results moves the cursor (positive: up).
pub(super) fn search_wheel(app: &mut App, notches: i32) {
    let Some(view) = &mut app.search else { return };
    let step = notches.unsigned_abs() as usize;
    view.cursor = if notches > 0 {
        view.cursor.saturating_sub(step)
    } else {
        (view.cursor + step).min(view.hits.len().saturating_sub(1))
    };
}

/// Opens a search result's conversation and brings the message into view,
/// loading older pages until it is in memory.
fn jump_to(app: &mut App, hit: SearchHit, fx: &mut Vec<Effect>) {
    let r = hit.record;
    let listed = app.peers.iter().any(|p| p.id == r.peer);
    let peer = upsert(app, &r.peer, &hit.name);
    if !listed {
        // Not listed at start, yet in the database: its pages can be asked for.
        peer.conversation.backlog.stored = true;
        peer.conversation.backlog.more = true;
    }
    open(app, &r.peer);
    app.focus = Focus::Conversation;
    let target = MessageKey {
        outgoing: r.outgoing,
        id: r.id,
        seq: Some(r.seq),
    };
    let Some(peer) = find(app, &r.peer) else {
        return;
    };
    let conv = &mut peer.conversation;
    conv.jump = Some(target.clone());
    conv.highlight = Some(target.clone());
    if !conv.holds(&target) && !conv.backlog.loading && !request_older(peer, fx) {
        peer.conversation.jump = None;
        app.notice = Some(TOO_FAR.into());
    }
}
