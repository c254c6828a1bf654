//! The chat screen's side of encrypted sessions and pinned keys: the
//! [`Security`] mark of a peer's session, the loud warning when a session
//! is refused for its key, verification codes, `/verify` and `/trust`, the
//! network task's answers to them, and a conversation that continues under
//! a peer's new id. Pure, like the rest of `app`.

use super::update::{find, open, quoted, ring, system, upsert};
use super::{App, Conversation, Effect, Entry, EntryKind, PeerEntry};
use crate::net::{Link, NetCommand};
use crate::peer::PeerId;
use crate::protocol::{Fingerprint, Refusal};
use crate::sanitize;

/// Longest warning or answer from the network task kept, in cells: a key
/// warning names two fingerprints of 79 characters each.
const MAX_WARNING: usize = 800;

/// What `/trust` takes.
pub(super) const TRUST_USAGE: &str = "usage: /trust KEY moves this conversation to the key that \
     starts with KEY (at least 8 hex digits), when a notice here showed this peer's new key";

/// What `/verify` takes.
pub(super) const VERIFY_USAGE: &str =
    "usage: /verify shows the code to compare; /verify yes once both screens show the same code";

/// How the session with a peer is protected, as the chat screen marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Encrypted; the peer proved the key pinned for its name, and people
    /// compared the verification code for that key.
    Verified,
    /// Encrypted; the peer proved the key pinned for its name.
    Encrypted,
    /// Encrypted, but the peer presented no certificate (a phone script):
    /// private on the wire, its name unproven.
    Unauthenticated,
    /// Not encrypted: the framed protocol or raw text in clear.
    Plaintext,
}

impl Security {
    /// The mark of a session protected as `link` says.
    pub fn of(link: &Link) -> Self {
        match link {
            Link::Authenticated { verified: true, .. } => Security::Verified,
            Link::Authenticated { .. } => Security::Encrypted,
            Link::Unauthenticated => Security::Unauthenticated,
            Link::Plain => Security::Plaintext,
        }
    }
}

impl PeerEntry {
    /// How the open session with this peer is protected. `None` without a
    /// session (offline, or online but not connected): a mark speaks of the
    /// session on screen, and the next one is judged anew (a changed key is
    /// refused), so the last session's mark would promise too much.
    pub fn security(&self) -> Option<Security> {
        if !self.connected {
            return None;
        }
        self.link.as_ref().map(Security::of)
    }

    /// The key of the last verification code shown in this conversation.
    fn code_shown_for(&self) -> Option<Fingerprint> {
        self.conversation
            .entries
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EntryKind::Code { theirs, .. } => Some(*theirs),
                _ => None,
            })
    }
}

/// `"name"`, escaped, for lantalk's own lines.
fn named(name: &str) -> String {
    format!("\"{}\"", quoted(name))
}

/// A session opened: the first one with a key says that key is pinned now
/// and how to check it.
pub(super) fn opened(entry: &mut PeerEntry, link: &Link, now: u64) {
    if let Link::Authenticated { first: true, .. } = link {
        let line = format!(
            "first encrypted session with {}: this conversation belongs to its key from now on; /verify shows a code to compare on both screens",
            named(&entry.name)
        );
        system(entry, now, line);
    }
}

/// The session a `/connect` to `typed` opened: who answered there, how,
/// with which key; a line in its conversation and the notice. Plaintext is
/// said loudly: a typed address may reach anything.
pub(super) fn reached(
    app: &mut App,
    typed: &str,
    peer: &crate::peer::PeerInfo,
    addr: std::net::SocketAddr,
    link: &Link,
    now: u64,
) {
    let who = sanitize::one_line(&crate::peer::labelled(&peer.name, &peer.id), 80);
    let typed = sanitize::one_line(typed, 80);
    let line = match link {
        Link::Authenticated { fp, .. } => format!(
            "/connect {typed} reached {who} at {addr}: {}, key {}",
            link.describe(),
            fp.grouped()
        ),
        Link::Unauthenticated => format!(
            "/connect {typed} reached {who} at {addr}: {}, no key (nothing proves who it is)",
            link.describe()
        ),
        Link::Plain => format!(
            "/connect {typed} reached {who} at {addr} in PLAINTEXT: anyone on the network can \
             read and change this conversation"
        ),
    };
    if let Some(entry) = find(app, &peer.id) {
        system(entry, now, line.clone());
    }
    app.notice = Some(line);
}

/// `NetEvent::Refused`: a warning line in every conversation with that
/// name, and a warning above the input that stays until Esc,
/// whatever is on screen. A peer refused again and again (it retries) adds
/// no second identical line.
pub(super) fn refused(app: &mut App, refusal: &Refusal, now: u64, fx: &mut Vec<Effect>) {
    let name = refusal.name().map(str::to_owned);
    let why = sanitize::one_line(&refusal.to_string(), MAX_WARNING);
    if let Some(name) = &name {
        for peer in app.peers.iter_mut().filter(|p| p.name == *name) {
            let last = peer.conversation.entries.last();
            if last.is_some_and(|e| e.kind == EntryKind::Warning && e.body == why) {
                continue;
            }
            peer.conversation.push(Entry {
                ts: now,
                kind: EntryKind::Warning,
                body: why.clone(),
                seq: None,
            });
        }
    }
    let alert = format!("{why} (Esc hides this)");
    if app.alert.as_ref() != Some(&alert) {
        ring(app, now, fx);
    }
    app.alert = Some(alert);
}

/// `NetEvent::Verification`: the code on a row of its own in the
/// conversation (and in the notice when that is not on screen); a verified
/// key marks the open session verified.
pub(super) fn verification(
    app: &mut App,
    peer: &str,
    code: String,
    theirs: Fingerprint,
    verified: bool,
    now: u64,
) {
    let on_screen = app.open.as_deref() == Some(peer);
    let me = named(&app.me.name);
    let Some(entry) = find(app, peer) else {
        app.notice = Some(format!("verification code: {code}"));
        return;
    };
    if verified
        && let Some(Link::Authenticated {
            fp, verified: v, ..
        }) = &mut entry.link
        && *fp == theirs
    {
        *v = true;
    }
    let name = named(&entry.name);
    let body = if verified {
        format!("{name} is verified: this code matched on both screens ✓")
    } else {
        format!(
            "the same code must show on {name}'s screen (its /verify, or `lantalk verify {me}`); \
             if it does, type /verify yes"
        )
    };
    let elsewhere = format!("verification code for {name}: {code}");
    entry.conversation.push(Entry {
        ts: now,
        kind: EntryKind::Code {
            code,
            theirs,
            verified,
        },
        body,
        seq: None,
    });
    if !on_screen {
        app.notice = Some(elsewhere);
    }
}

/// `NetEvent::Namesake`: a new key named like `known` connected. Said once
/// in `known`'s conversation: it is another peer, and how to move this
/// conversation to it if it is the same one (the exact key `/trust` takes).
pub(super) fn namesake(
    app: &mut App,
    known: &PeerId,
    peer: &crate::peer::PeerInfo,
    fp: &Fingerprint,
    now: u64,
) {
    let start: String = fp
        .to_string()
        .chars()
        .take(crate::peer::KEY_START)
        .collect();
    let text = format!(
        "another key named {} connected: {}. It is another peer ({}) and gets nothing of this \
         conversation. If it is this peer with a new key (reinstalled, a new device), type \
         /trust {start} here to move this conversation, and what waits for it, to that key",
        named(&peer.name),
        fp.grouped(),
        crate::peer::labelled(&peer.name, &peer.id),
    );
    notice(app, known, &text, now);
}

/// `NetEvent::Notice`: a line in the peer's conversation, and the notice
/// when that is not on screen.
pub(super) fn notice(app: &mut App, peer: &str, text: &str, now: u64) {
    let text = sanitize::one_line(text, MAX_WARNING);
    let on_screen = app.open.as_deref() == Some(peer);
    match find(app, peer) {
        Some(entry) => {
            system(entry, now, text.clone());
            if !on_screen {
                app.notice = Some(text);
            }
        }
        None => app.notice = Some(text),
    }
}

/// `NetEvent::Merged`: the conversation with `from` continues as the one
/// with `into`. Its entries, unread count and history state move over (into
/// a new row if `into` is not listed yet); `from`'s row goes, unless it is
/// online (then it stays, empty); if it was open, `into` opens.
pub(super) fn merged(app: &mut App, from: &PeerId, into: &PeerId) {
    if from == into {
        return;
    }
    // Pages asked for under an id merged earlier go to the newest one.
    for target in app.merged.values_mut() {
        if target == from {
            *target = into.clone();
        }
    }
    app.merged.insert(from.clone(), into.clone());
    if let Some(search) = &mut app.search {
        for hit in &mut search.hits {
            if hit.record.peer == *from {
                hit.record.peer = into.clone();
            }
        }
    }
    let Some(at) = app.peers.iter().position(|p| p.id == *from) else {
        return;
    };
    let was_open = app.open.as_deref() == Some(from);
    // The peer under the cursor, by id (the old row counts as the new one):
    // removing a row above it must not move the cursor to another peer.
    let under_cursor = app.peers.get(app.cursor).map(|p| {
        if p.id == *from {
            into.clone()
        } else {
            p.id.clone()
        }
    });
    let exists = app.peers.iter().any(|p| p.id == *into);
    let old = &mut app.peers[at];
    if !exists && !old.online() {
        // The row itself carries on under the new id.
        old.id = into.clone();
    } else {
        let on = old.conversation.backlog.on;
        let conversation = std::mem::take(&mut old.conversation);
        old.conversation.backlog.on = on;
        let unread = std::mem::take(&mut old.unread);
        let (name, host, last) = (old.name.clone(), old.host.clone(), old.last_activity);
        if !old.online() {
            app.peers.remove(at);
        }
        let entry = upsert(app, into, &name);
        if !exists {
            entry.host = host;
        }
        entry.conversation.absorb(conversation);
        entry.unread += unread;
        entry.last_activity = entry.last_activity.max(last);
    }
    if was_open {
        open(app, into);
    }
    // `on_net` sorts the peers next, keeping the one under the cursor.
    if let Some(i) = under_cursor.and_then(|id| app.peers.iter().position(|p| p.id == id)) {
        app.cursor = i;
    }
}

impl Conversation {
    /// Takes in `other`'s entries (the same peer under another id), merged
    /// by time, without copies of a message both hold, and its history
    /// state; then keeps within the caps.
    pub(super) fn absorb(&mut self, mut other: Conversation) {
        self.drop_note();
        other.drop_note();
        let have: std::collections::HashSet<(bool, String)> = self
            .entries
            .iter()
            .filter_map(|e| e.key().map(|(o, id)| (o, id.to_owned())))
            .collect();
        // The same warning went into both conversations (they had the name).
        let warned: std::collections::HashSet<String> = self
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Warning))
            .map(|e| e.body.clone())
            .collect();
        let theirs: Vec<Entry> = other
            .entries
            .into_iter()
            .filter(|e| {
                e.key()
                    .is_none_or(|(o, id)| !have.contains(&(o, id.to_owned())))
            })
            .filter(|e| !(matches!(e.kind, EntryKind::Warning) && warned.contains(&e.body)))
            .collect();
        let ours = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity(ours.len() + theirs.len());
        let (mut a, mut b) = (ours.into_iter().peekable(), theirs.into_iter().peekable());
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.ts <= y.ts,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            merged.extend(next);
        }
        self.body_bytes = merged.iter().map(|e| e.body.len()).sum();
        self.entries = merged;
        self.dropped += other.dropped;
        let (b, o) = (&mut self.backlog, other.backlog);
        b.on |= o.on;
        b.stored |= o.stored;
        b.more |= o.more;
        b.loading |= o.loading;
        b.full |= o.full;
        b.locate = b.locate.take().or(o.locate);
        b.undelivered_elsewhere += o.undelivered_elsewhere;
        self.scroll = 0;
        self.unseen_below = false;
        self.jump = self.jump.take().or(other.jump);
        self.highlight = self.highlight.take().or(other.highlight);
        if self.dropped > 0 && !self.backlog.on {
            self.put_note();
        }
        self.keep_within_caps();
    }

    /// Removes the note saying how many entries were dropped (the count stays).
    fn drop_note(&mut self) {
        if self.note {
            self.body_bytes -= self.entries[0].body.len();
            self.entries.remove(0);
            self.note = false;
        }
    }
}

/// `/verify` (show the code) and `/verify yes` (the codes matched) for the
/// open conversation. `yes` needs the code shown here first, for the key
/// the peer has now.
pub(super) fn verify_command(app: &mut App, arg: &str, fx: &mut Vec<Effect>) -> Result<(), String> {
    let confirmed = match arg {
        "" => false,
        "yes" => true,
        _ => return Err(VERIFY_USAGE.into()),
    };
    let Some(peer) = app.open_peer() else {
        return Err(
            "no conversation open: open the conversation of the peer to verify, then /verify"
                .into(),
        );
    };
    if confirmed {
        let current = match (peer.connected, &peer.link) {
            (true, Some(Link::Authenticated { fp, .. })) => Some(*fp),
            _ => None,
        };
        match (peer.code_shown_for(), current) {
            (None, _) => {
                return Err(
                    "type /verify first and compare the code with the one on the other screen"
                        .into(),
                );
            }
            (Some(shown), Some(now)) if shown != now => {
                return Err(
                    "the key changed since that code was shown: /verify again and compare the new code"
                        .into(),
                );
            }
            _ => {}
        }
    }
    let peer = peer.id.clone();
    fx.push(Effect::Net(NetCommand::Verify { peer, confirmed }));
    Ok(())
}

/// `/trust KEY` in a conversation: the key that starts with `KEY` (as the
/// notice of a new key under this peer's name shows it) is this peer's;
/// the conversation moves to it. Hides the warning.
pub(super) fn trust_command(app: &mut App, arg: &str, fx: &mut Vec<Effect>) -> Result<(), String> {
    let Some(peer) = app.open.clone() else {
        return Err(
            "no conversation open: /trust KEY in the conversation to move to the key KEY".into(),
        );
    };
    if arg.is_empty() {
        return Err(TRUST_USAGE.into());
    }
    app.alert = None;
    fx.push(Effect::Net(NetCommand::Trust {
        peer,
        key: arg.to_owned(),
    }));
    Ok(())
}
