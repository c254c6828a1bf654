//! The TUI's state and its transitions: one [`App`] model, one [`Action`]
//! enum in, [`Effect`]s out. Pure: no tokio, no terminal, no clocks (the time
//! arrives with each action), so every behaviour is a plain unit test.
//!
//! Reads only plain data types from `net`, `protocol` and `store`.

mod commands;
mod history;
pub mod input;
mod keys;
mod theme;
mod trust;
mod update;

use std::net::SocketAddr;

pub use history::{Backlog, HistoryMode, MessageKey, SearchHit, SearchView, TopLine};
pub use input::{Input, InputLayout};
pub use theme::Theme;
pub use trust::Security;
pub use update::update;

use crate::peer::{PeerId, PeerKind};

/// Which pane receives keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    /// The peers list (left).
    Peers,
    /// The message pane (scrolling keys).
    Conversation,
    /// The input line (typing).
    #[default]
    Input,
}

/// State of mDNS discovery, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DiscoveryState {
    /// Starting up.
    #[default]
    Starting,
    /// Advertising and browsing.
    Active,
    /// Not running, with the reason shown to the user (e.g. "mDNS off").
    Off(String),
    /// Running but limited, and why (e.g. no network besides loopback).
    Limited(String),
}

/// Delivery state of one of our own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Queued or on the wire, not yet acknowledged ("sending…").
    Sending,
    /// Acknowledged by the peer (✓).
    Delivered,
    /// Written to a raw text peer, which never acknowledges.
    Sent,
    /// Not acknowledged yet and waiting for the peer to be reachable again;
    /// sent again automatically, and why it waits.
    Waiting(String),
    /// Could not be delivered, and why.
    Failed(String),
}

/// What one entry of a conversation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A message we sent.
    Own {
        /// Message id, matched against acks.
        id: String,
        /// Delivery state.
        state: Delivery,
    },
    /// A message the peer sent.
    Peer {
        /// The peer's display name at the time.
        from: String,
        /// Message id, to recognise it in a page of history.
        id: String,
    },
    /// A line from lantalk itself: peer online/offline, connection failed and why.
    System,
    /// A line from lantalk that must not be missed, drawn in the error
    /// colour: a session refused for its key (both fingerprints, and how
    /// to accept the new key).
    Warning,
    /// The verification code of the session with the peer, drawn on a row
    /// of its own; `body` says what to do with it.
    Code {
        /// The code, the same on both screens.
        code: String,
        /// The peer's key it was computed from.
        theirs: crate::protocol::Fingerprint,
        /// The key is marked verified.
        verified: bool,
    },
}

impl EntryKind {
    /// A message, ours or the peer's (not a line from lantalk).
    pub fn is_message(&self) -> bool {
        matches!(self, EntryKind::Own { .. } | EntryKind::Peer { .. })
    }
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unix milliseconds (our clock for own and system lines, the sender's for theirs).
    pub ts: u64,
    /// Own, peer's, or a line from lantalk (system, warning, code).
    pub kind: EntryKind,
    /// The text, as received (the UI escapes it for display).
    pub body: String,
    /// Its position in the history database, for messages that came from
    /// it (`None` for live messages and system lines).
    pub seq: Option<i64>,
}

impl Entry {
    /// Which message this is (`None` for a system line).
    pub fn key(&self) -> Option<(bool, &str)> {
        match &self.kind {
            EntryKind::Own { id, .. } => Some((true, id)),
            EntryKind::Peer { id, .. } => Some((false, id)),
            EntryKind::System | EntryKind::Warning | EntryKind::Code { .. } => None,
        }
    }
}

/// A conversation keeps at most this many entries in memory; older ones are
/// dropped (and counted in one system line at the top). More than anyone
/// scrolls back through in a terminal, about 24 MB with chat-sized
/// messages, and above the 100,000 messages (plus system lines such as
/// "is offline") that the typing and memory benchmarks fill, so that those
/// still measure a whole 100,000-message conversation.
pub const MAX_ENTRIES: usize = 120_000;

/// ... and at most this many bytes of message bodies, whichever limit comes
/// first: 120,000 messages near the 1 MiB frame limit would otherwise be
/// 120 GB. Together the two bound one conversation to about 50 MB however
/// fast a peer sends.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// The message that says how many older entries were dropped (without
/// history: with history they can be loaded again, and the top line says so).
pub fn trimmed_note(dropped: usize) -> String {
    if dropped == 1 {
        "1 older message is not kept in memory".into()
    } else {
        format!("{dropped} older messages are not kept in memory")
    }
}

/// The messages with one peer and how the pane is scrolled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Oldest first. Add with [`Conversation::push`], which keeps the caps.
    pub entries: Vec<Entry>,
    /// Rows scrolled up from the bottom; 0 follows new messages.
    pub scroll: usize,
    /// Messages arrived while scrolled up ("new messages below").
    pub unseen_below: bool,
    /// Entries dropped to stay within [`MAX_ENTRIES`] and
    /// [`MAX_BODY_BYTES`].
    pub dropped: usize,
    /// `entries[0]` is the system line saying how many were dropped (only
    /// without history: with it, dropped messages can be loaded again).
    pub note: bool,
    /// Total length of the bodies in `entries`.
    pub body_bytes: usize,
    /// What is in the history database beyond the entries in memory.
    pub backlog: Backlog,
    /// A message to bring into view (a search result), once it is loaded;
    /// drawing positions it and reports the scroll in [`View::jumped`].
    pub jump: Option<MessageKey>,
    /// A message drawn highlighted (the search result jumped to), until the next key.
    pub highlight: Option<MessageKey>,
}

impl Conversation {
    /// Appends `entry`, dropping the oldest entries when a cap is exceeded.
    ///
    /// Trimming goes a sixteenth below the caps, so that a flood pays for
    /// moving the kept entries once per several thousand messages instead of
    /// on every one.
    pub fn push(&mut self, entry: Entry) {
        self.body_bytes += entry.body.len();
        self.entries.push(entry);
        self.keep_within_caps();
    }

    /// Trims (see [`Conversation::push`]) once a cap is exceeded.
    pub(super) fn keep_within_caps(&mut self) {
        if self.entries.len() > MAX_ENTRIES || self.body_bytes > MAX_BODY_BYTES {
            self.trim(
                MAX_ENTRIES - MAX_ENTRIES / 16,
                MAX_BODY_BYTES - MAX_BODY_BYTES / 16,
            );
        }
    }

    /// Writes the system line at the top saying how many entries went
    /// (`dropped`): in place of the old one, or inserted once.
    pub(super) fn put_note(&mut self) {
        let note = Entry {
            // Dated like the oldest kept entry, so date separators stay in order.
            ts: self.entries.get(usize::from(self.note)).map_or(0, |e| e.ts),
            kind: EntryKind::System,
            body: trimmed_note(self.dropped),
            seq: None,
        };
        self.body_bytes += note.body.len();
        if self.note {
            self.body_bytes -= self.entries[0].body.len();
            self.entries[0] = note;
        } else {
            self.entries.insert(0, note);
            self.note = true;
        }
    }

    /// Drops the oldest entries until at most `entries` remain (the note
    /// included) and their bodies take at most `bytes`; the newest entry
    /// always stays. Without history a system line at the top says how many
    /// went; with history they stay loadable ([`Backlog::more`]).
    fn trim(&mut self, entries: usize, bytes: usize) {
        let first = usize::from(self.note);
        let use_note = self.note || !self.backlog.on;
        let mut end = first;
        // Counting the note, which exists after any trim that uses one.
        let mut left = self.entries.len() + usize::from(use_note && !self.note);
        let mut body_bytes = self.body_bytes;
        // The note's own body is replaced below; count it out meanwhile.
        if self.note {
            body_bytes -= self.entries[0].body.len();
        }
        while end + 1 < self.entries.len() && (left > entries || body_bytes > bytes) {
            body_bytes -= self.entries[end].body.len();
            left -= 1;
            end += 1;
        }
        if end == first {
            return;
        }
        let removed = end - first;
        let undelivered = self.entries[first..end]
            .iter()
            .filter(|e| history::undelivered(e))
            .count();
        self.entries.drain(first..end);
        self.dropped += removed;
        self.backlog.undelivered_elsewhere += undelivered;
        if !use_note {
            self.backlog.more = true;
            self.backlog.full = false;
            self.body_bytes = body_bytes;
            return;
        }
        // Counted with the old note's body, which `put_note` replaces.
        self.body_bytes = body_bytes
            + if self.note {
                self.entries[0].body.len()
            } else {
                0
            };
        self.put_note();
    }
}

/// A peer as the TUI knows it: discovered, connected, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// The peer's key.
    pub id: PeerId,
    /// Display name.
    pub name: String,
    /// mDNS host (e.g. `laptop.local.`), or the address it connected from.
    pub host: String,
    /// Addresses to dial, best first (empty for peers known only by their connection).
    pub addrs: Vec<SocketAddr>,
    /// Seen on mDNS right now.
    pub discovered: bool,
    /// Why we cannot talk to this discovered peer (e.g. it speaks another
    /// protocol version); messages to it are refused with this reason.
    pub problem: Option<String>,
    /// How it reaches us (what it can do comes from this: a raw text
    /// connection never acknowledges and cannot be dialled back).
    pub kind: PeerKind,
    /// A session with it is open.
    pub connected: bool,
    /// How the latest session is protected (encrypted, verified, plaintext).
    pub link: Option<crate::net::Link>,
    /// Messages received while this conversation was not on screen.
    pub unread: usize,
    /// Unix ms of the last message either way, for sorting.
    pub last_activity: u64,
    /// The conversation.
    pub conversation: Conversation,
}

impl PeerEntry {
    /// Online: discovered on the network or connected.
    pub fn online(&self) -> bool {
        self.discovered || self.connected
    }

    /// Our texts to this peer not yet delivered, in memory or only in history.
    pub fn undelivered(&self) -> usize {
        let conv = &self.conversation;
        conv.entries
            .iter()
            .filter(|e| history::undelivered(e))
            .count()
            + conv.backlog.undelivered_elsewhere
    }
}

/// Who we are, for the status bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Me {
    /// Our display name.
    pub name: String,
    /// Our peer id.
    pub id: String,
    /// The port we listen on (0 until known).
    pub port: u16,
    /// Our best address for others to reach us (`None`: not known, or no network).
    pub addr: Option<std::net::IpAddr>,
    /// Why nobody can connect to us, when we could not listen (we still
    /// connect to others).
    pub not_listening: Option<String>,
}

/// A browser without the join token asking to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The request's number, for the answer.
    pub req: u64,
    /// What the chat screen shows: name, address, browser.
    pub text: String,
}

/// The whole TUI state.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Who we are.
    pub me: Me,
    /// Every peer, in display order (unread and active first; see `update::sort_peers`).
    pub peers: Vec<PeerEntry>,
    /// Index into `peers` of the highlighted peer in the peers pane.
    pub cursor: usize,
    /// Id of the peer whose conversation is on screen.
    pub open: Option<PeerId>,
    /// Which pane has the keys.
    pub focus: Focus,
    /// The input line.
    pub input: Input,
    /// Sent lines and commands, oldest first, for Up/Down recall.
    pub history: Vec<String>,
    /// Position while browsing history (`None`: editing a new line).
    pub history_pos: Option<usize>,
    /// A hint or error shown above the input until the next key (e.g. unknown command).
    pub notice: Option<String>,
    /// A warning shown above the input in the error colour until Esc, a
    /// newer warning or `/trust`: a session refused for who it is.
    pub alert: Option<String>,
    /// Browsers without the join token waiting for an answer, oldest
    /// first: the first is shown above the input until Ctrl+Y or Ctrl+D.
    pub joins: std::collections::VecDeque<JoinRequest>,
    /// The address of a `/connect` not answered yet: the session it opens
    /// is told (who answered, how, with which key).
    pub connecting: Option<String>,
    /// Peer ids whose conversation continues under another id
    /// ([`NetEvent::Merged`](crate::net::NetEvent::Merged)): a page of
    /// history asked for under the old id goes to the new one.
    pub merged: std::collections::HashMap<PeerId, PeerId>,
    /// The help overlay is shown.
    pub help: bool,
    /// Rows the help overlay is scrolled down (kept within
    /// [`View::help_max_scroll`]).
    pub help_scroll: usize,
    /// What was typed and not sent in each conversation left for another
    /// (the open one's draft is [`App::input`]).
    pub drafts: std::collections::HashMap<PeerId, String>,
    /// The peers list keeps its order until this time (Unix ms): Ctrl+N /
    /// Ctrl+P go through it as shown. See [`ORDER_HOLD_MS`].
    pub order_held_until: u64,
    /// The list was not re-sorted while held; it is once the hold ends.
    pub resort_due: bool,
    /// The time of the action being applied (Unix ms), as given to `update`.
    pub now: u64,
    /// mDNS state for the status bar.
    pub discovery: DiscoveryState,
    /// Ring the bell for messages in conversations not on screen.
    pub bell: bool,
    /// The colours of the chat screen.
    pub theme: Theme,
    /// When the bell last rang (Unix ms): it rings at most once a second.
    pub last_bell: Option<u64>,
    /// Terminal size (columns, rows), from resize events.
    pub size: (u16, u16),
    /// The user asked to quit.
    pub quitting: bool,
    /// Counter for our message ids.
    pub next_msg: u64,
    /// Random prefix making our message ids unique across runs.
    pub msg_prefix: String,
    /// Local time zone's offset from UTC in seconds, for showing times.
    pub utc_offset: i32,
    /// What the last draw found out about the conversation pane (page height,
    /// how far it can scroll); fed back by the terminal loop after drawing.
    pub view: View,
    /// Whether history is kept (from the network task).
    pub history_mode: HistoryMode,
    /// The search results overlay, while it is open.
    pub search: Option<SearchView>,
    /// The overlay with the address a phone opens and its QR code (`/qr`),
    /// while it is open.
    pub qr: Option<QrView>,
    /// Our mDNS host name (`laptop.local`), `None` without mDNS: the
    /// address a phone can use by name.
    pub host: Option<String>,
}

/// What the `/qr` overlay shows: the chat page's address for a phone,
/// made outside (it reads the interfaces and the data directory's token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrView {
    /// `http://ADDR:PORT/#t=TOKEN`: what the code holds.
    pub url: String,
    /// The same by `.local` name, where mDNS answers for it.
    pub local: Option<String>,
    /// Other addresses of this machine, `ADDR (IFACE)`.
    pub others: Vec<String>,
    /// Why a phone may not reach `url`.
    pub warning: Option<String>,
    /// The QR code of `url`: rows of half blocks, light modules drawn
    /// (`█▀▄`), quiet zone included; all rows equally wide.
    pub code: Vec<String>,
    /// The token was just replaced (`/qr new`).
    pub new_token: bool,
}

/// How long the peers list holds still after Ctrl+N / Ctrl+P, in ms
/// (it also holds while the peers pane has the focus).
pub const ORDER_HOLD_MS: u64 = 3_000;

/// Facts about the conversation pane that only drawing can know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Rows of messages visible at once (a page for PgUp/PgDn).
    pub page: usize,
    /// The largest useful `scroll`, once the drawing reached the oldest entry.
    pub max_scroll: Option<usize>,
    /// The scroll that brings [`Conversation::jump`] into view, when the
    /// drawing found that message (it is drawn there already).
    pub jumped: Option<usize>,
    /// Rows of the help overlay visible at once.
    pub help_page: usize,
    /// How far the help overlay scrolls (0 when it fits).
    pub help_max_scroll: usize,
}

impl Default for View {
    fn default() -> Self {
        Self {
            page: 10,
            max_scroll: None,
            jumped: None,
            help_page: 10,
            help_max_scroll: 0,
        }
    }
}

impl App {
    /// A fresh app for a user with this name and id.
    pub fn new(name: String, id: String, msg_prefix: String, utc_offset: i32) -> Self {
        Self {
            me: Me {
                name,
                id,
                ..Me::default()
            },
            msg_prefix,
            utc_offset,
            bell: true,
            ..Self::default()
        }
    }

    /// The peer whose conversation is on screen.
    pub fn open_peer(&self) -> Option<&PeerEntry> {
        let id = self.open.as_deref()?;
        self.peers.iter().find(|p| p.id == id)
    }

    /// The name `peer` is shown under: `name#tag` (the start of its id) when
    /// another listed peer goes by the same name, so the two can be told
    /// apart; a name is only a label, a peer is its key.
    pub fn shown_name(&self, peer: &PeerEntry) -> String {
        self.name_of(&peer.name, &peer.id)
    }

    /// [`App::shown_name`] for the peer `id` named `name` (a search hit).
    pub fn name_of(&self, name: &str, id: &PeerId) -> String {
        let shared = self
            .peers
            .iter()
            .any(|p| p.id != *id && p.name.eq_ignore_ascii_case(name));
        let name = crate::sanitize::name(name);
        if shared {
            format!("{name}#{}", id.tag())
        } else {
            name.into_owned()
        }
    }

    /// When the app wants an [`Action::Tick`] (Unix ms): the end of the
    /// hold on the peers list's order, if a re-sort waits for it.
    pub fn wake_at(&self) -> Option<u64> {
        (self.resort_due && self.focus != Focus::Peers).then_some(self.order_held_until)
    }

    /// Every draft, the open conversation's included (what is in the
    /// input), by peer id: what to keep for the next run.
    pub fn drafts_to_keep(&self) -> std::collections::BTreeMap<String, String> {
        let mut drafts: std::collections::BTreeMap<String, String> = self
            .drafts
            .iter()
            .filter(|(_, text)| !text.is_empty())
            .map(|(id, text)| (id.to_string(), text.clone()))
            .collect();
        if let Some(open) = &self.open
            && !self.input.is_empty()
        {
            drafts.insert(open.to_string(), self.input.text().to_owned());
        }
        drafts
    }

    /// The `.local` name a phone can open the chat page by: our mDNS host
    /// name while mDNS runs.
    pub fn local_name(&self) -> Option<&str> {
        match self.discovery {
            DiscoveryState::Off(_) => None,
            _ => self.host.as_deref(),
        }
    }

    /// Total unread messages, for the terminal title.
    pub fn unread_total(&self) -> usize {
        self.peers.iter().map(|p| p.unread).sum()
    }

    /// Records what drawing found out, and keeps `scroll` within it.
    pub fn set_view(&mut self, view: View) {
        self.view = view;
        self.help_scroll = self.help_scroll.min(view.help_max_scroll);
        let Some(id) = self.open.clone() else { return };
        let Some(peer) = self.peers.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let conv = &mut peer.conversation;
        if let Some(scroll) = view.jumped {
            conv.scroll = scroll;
            conv.jump = None;
        }
        if let Some(max) = view.max_scroll
            && conv.scroll > max
        {
            conv.scroll = max;
        }
    }
}

/// Input to [`update`]: everything that can happen.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key press.
    Key(crossterm::event::KeyEvent),
    /// Bracketed paste: the whole pasted text at once.
    Paste(String),
    /// Mouse wheel: positive scrolls up (older), negative down.
    Scroll(i32),
    /// The terminal was resized.
    Resize(u16, u16),
    /// Time passed: the deadline of [`App::wake_at`] came.
    Tick,
    /// Something happened on the network.
    Net(crate::net::NetEvent),
    /// The address for a phone that [`Effect::Qr`] asked for, or why there
    /// is none.
    Qr(Result<QrView, String>),
}

/// What [`update`] asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Something for the network: send, connect, rename, load history, search.
    Net(crate::net::NetCommand),
    /// Ring the terminal bell.
    Bell,
    /// Make the address a phone opens (for the port we listen on, with a
    /// new join token when `new_token`) and answer with [`Action::Qr`].
    Qr {
        /// Replace the join token first.
        new_token: bool,
    },
    /// Leave: bye to every session, goodbye on mDNS, restore the terminal.
    Quit,
}
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod qr_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;
