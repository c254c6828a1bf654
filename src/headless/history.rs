//! `lantalk history [PEER] [--json] [--limit N] [--search WORDS]`: the
//! stored conversation with one peer, oldest first, or without PEER the
//! list of conversations, from the history database of the data directory. Reads only: it never creates the database, and it can
//! run next to a chat screen or `listen` using the same file.
//!
//! As in `listen`, what peers wrote reaches the terminal only through
//! [`crate::sanitize`] (escaped, names on one line), and `--json` is exact
//! with terminal-active characters as `\uXXXX`.

use std::borrow::Cow;
use std::io::Write as _;
use std::net::IpAddr;

use anyhow::anyhow;
use chrono::TimeZone as _;

use super::{Exit, Failure};
use crate::identity;
use crate::options::Options;
use crate::peer::PeerKind;
use crate::sanitize;
use crate::store::{Conversation, Record, State, Store};

/// How many known conversations an "unknown peer" error names.
const NAMES_SHOWN: usize = 20;

/// `lantalk history`
pub async fn history(
    options: &Options,
    peer: Option<&str>,
    json: bool,
    limit: usize,
    search: Option<String>,
) -> Result<(), Failure> {
    if !options.history {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("--no-history: there is no history to show"),
        ));
    }
    let dir = options.data_dir()?;
    let file = Store::file_in(&dir);
    if !file.exists() {
        return Err(Failure::new(
            Exit::NotFound,
            anyhow!(
                "no history yet: {} does not exist (nothing was sent or received with this data directory)",
                file.display()
            ),
        ));
    }
    let store = Store::open_existing(&dir).map_err(Failure::from_other)?;
    let conversations = store.conversations().await.map_err(Failure::from_other)?;
    let Some(peer) = peer else {
        if search.is_some() {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!("--search looks in one conversation: name the PEER"),
            ));
        }
        let mut out = String::new();
        for conversation in &conversations {
            if json {
                out.push_str(&json_conversation(conversation));
            } else {
                out.push_str(&plain_conversation(conversation, &conversations));
            }
            out.push('\n');
        }
        return write_out(&out);
    };
    let conversation = find(&conversations, peer)?;

    let records = match search {
        Some(words) => {
            let mut found = store
                .search(Some(conversation.peer.clone()), words, limit)
                .await
                .map_err(Failure::from_other)?;
            found.reverse();
            found
        }
        None => {
            let (records, more) = store
                .page(conversation.peer.clone(), None, limit)
                .await
                .map_err(Failure::from_other)?;
            if more {
                status!("older messages are not shown (--limit N shows the newest N)");
            }
            records
        }
    };

    let me = identity::display_name(options.name.as_deref());
    let mut out = String::new();
    for record in &records {
        if json {
            out.push_str(&json_line(record, conversation));
        } else {
            out.push_str(&plain_line(record, conversation, &me));
        }
        out.push('\n');
    }
    write_out(&out)
}

/// Writes `out` on standard output.
fn write_out(out: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `lantalk history x | head` closes the pipe early: not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::from_other(anyhow!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// `YYYY-MM-DD HH:MM  NAME  KIND[, N undelivered]`, newest first: NAME is
/// what `lantalk history NAME` takes (`name#tag` where peers share a name).
fn plain_conversation(conversation: &Conversation, all: &[Conversation]) -> String {
    let shared = all
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case(&conversation.name))
        .count()
        > 1;
    let name = if shared {
        crate::peer::labelled(&conversation.name, &conversation.peer)
    } else {
        conversation.name.clone()
    };
    let undelivered = match conversation.undelivered {
        0 => String::new(),
        n => format!(", {n} undelivered"),
    };
    format!(
        "{}  {}  {}{undelivered}",
        local_time(conversation.last_ts),
        sanitize::short_name(&name),
        kind_name(&conversation.kind),
    )
}

/// One JSON object per conversation: `peer` (its key), `name` (latest),
/// `kind` (`lantalk` or `raw`), `last_ts` (Unix ms), `undelivered`.
fn json_conversation(conversation: &Conversation) -> String {
    let json = serde_json::json!({
        "peer": conversation.peer,
        "name": conversation.name,
        "kind": kind_name(&conversation.kind),
        "last_ts": conversation.last_ts,
        "undelivered": conversation.undelivered,
    })
    .to_string();
    match sanitize::json_for_terminal(&json) {
        Cow::Borrowed(_) => json,
        Cow::Owned(safe) => safe,
    }
}

fn kind_name(kind: &PeerKind) -> &'static str {
    match kind {
        PeerKind::Lantalk => "lantalk",
        PeerKind::Raw(_) => "raw",
        PeerKind::Web => "web",
    }
}

/// The conversation `peer` names: by key (as `--json` prints it), by
/// `raw IP` or `raw IP:PORT` (a raw peer's address), by latest name,
/// case-insensitive, or, where several peers share a name, by `name#tag`
/// (the start of the id, as the chat screen and `peers` show it).
fn find<'a>(conversations: &'a [Conversation], peer: &str) -> Result<&'a Conversation, Failure> {
    if let Some(c) = conversations.iter().find(|c| c.peer == peer) {
        return Ok(c);
    }
    if let Some(ip) = raw_address(peer)
        && let Some(c) = conversations
            .iter()
            .find(|c| c.kind == PeerKind::Raw(ip.to_canonical()))
    {
        return Ok(c);
    }
    let named: Vec<&Conversation> = conversations
        .iter()
        .filter(|c| crate::peer::names(peer, &c.name, &c.peer))
        .collect();
    match named[..] {
        [one] => Ok(one),
        [] => {
            let mut names: Vec<String> = conversations
                .iter()
                .take(NAMES_SHOWN)
                .map(|c| format!("{:?}", sanitize::short_name(&c.name)))
                .collect();
            if conversations.len() > NAMES_SHOWN {
                names.push(format!("and {} more", conversations.len() - NAMES_SHOWN));
            }
            let known = if names.is_empty() {
                "there are none yet".to_owned()
            } else {
                format!("conversations: {}", names.join(", "))
            };
            Err(Failure::new(
                Exit::NotFound,
                anyhow!("no conversation with {peer:?} in the history; {known}"),
            ))
        }
        ref several => {
            let ids: Vec<String> = several
                .iter()
                .map(|c| sanitize::short_name(&crate::peer::labelled(&c.name, &c.peer)))
                .collect();
            Err(Failure::new(
                Exit::Usage,
                anyhow!(
                    "{peer:?} names {} conversations (peers that share a name): {}; \
                     give one of these",
                    several.len(),
                    ids.join(", ")
                ),
            ))
        }
    }
}

/// The address in what the user typed: `raw 192.168.1.23` or `raw
/// 192.168.1.23:51234` (as raw peers are named).
fn raw_address(peer: &str) -> Option<IpAddr> {
    let addr = peer.strip_prefix("raw ")?.trim();
    match addr.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => Some(addr.parse::<std::net::SocketAddr>().ok()?.ip()),
    }
}

/// `YYYY-MM-DD HH:MM NAME: TEXT`, escaped for the terminal; our texts that
/// did not arrive say so at the end.
fn plain_line(record: &Record, conversation: &Conversation, me: &str) -> String {
    let who = if record.outgoing {
        sanitize::short_name(me)
    } else {
        sanitize::short_name(&conversation.name)
    };
    let body = sanitize::escape_for_terminal(&record.body, true);
    // Continuation lines of a multi-line message are indented, as in `listen`.
    let body = body.replace('\n', "\n  ");
    let fate = match (record.outgoing, record.state) {
        (false, _) | (true, State::Delivered) => "",
        (true, State::Pending) => " [pending]",
        // A raw peer never acknowledges: sent is all there is to know (the
        // chat screen says `(sent)` too).
        (true, State::Sent) if !conversation.kind.capabilities().acks => " (sent)",
        (true, State::Sent) => " [not acknowledged]",
        (true, State::Failed) => " [failed]",
    };
    format!("{} {who}: {body}{fate}", local_time(record.ts))
}

/// One JSON object: `peer` and `name` are the conversation's key and latest
/// name, `outgoing` says who wrote the text; `id` is null for a raw line.
fn json_line(record: &Record, conversation: &Conversation) -> String {
    let json = serde_json::json!({
        "seq": record.seq,
        "peer": conversation.peer,
        "name": conversation.name,
        "outgoing": record.outgoing,
        "id": (!record.id.is_empty()).then_some(&record.id),
        "ts": record.ts,
        "body": record.body,
        "state": state_name(record.state),
    })
    .to_string();
    match sanitize::json_for_terminal(&json) {
        Cow::Borrowed(_) => json,
        Cow::Owned(safe) => safe,
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Sent => "sent",
        State::Delivered => "delivered",
        State::Failed => "failed",
    }
}

/// Unix ms as local `YYYY-MM-DD HH:MM`; question marks for a timestamp out
/// of range (a peer's clock can say anything).
fn local_time(ts: u64) -> String {
    i64::try_from(ts)
        .ok()
        .and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single())
        .map_or_else(
            || "????-??-?? ??:??".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(peer: &str, name: &str) -> Conversation {
        Conversation {
            peer: peer.into(),
            name: name.into(),
            kind: match peer.strip_prefix("raw-") {
                Some(ip) => PeerKind::Raw(ip.parse().unwrap()),
                None => PeerKind::Lantalk,
            },
            last_ts: 0,
            undelivered: 0,
        }
    }

    #[test]
    fn peers_are_found_by_key_raw_address_or_latest_name() {
        let list = [
            conv("aaaa", "Laptop"),
            conv("raw-192.168.1.23", "raw 192.168.1.23:5000"),
            conv("bbbb1111", "twin"),
            conv("cccc2222", "twin"),
        ];
        assert_eq!(find(&list, "aaaa").unwrap().peer, "aaaa");
        assert_eq!(find(&list, "laptop").unwrap().peer, "aaaa");
        assert_eq!(find(&list, "LAPTOP").unwrap().peer, "aaaa");
        for raw in [
            "raw 192.168.1.23",
            "raw 192.168.1.23:6000",
            "raw-192.168.1.23",
            "raw ::ffff:192.168.1.23",
        ] {
            assert_eq!(find(&list, raw).unwrap().peer, "raw-192.168.1.23", "{raw}");
        }
        let twins = find(&list, "twin").unwrap_err();
        assert_eq!(twins.exit, Exit::Usage);
        assert!(twins.to_string().contains("twin#bbbb"), "{twins}");
        assert_eq!(find(&list, "twin#cccc").unwrap().peer, "cccc2222");
        assert_eq!(find(&list, "Twin#bbbb1").unwrap().peer, "bbbb1111");
        assert!(find(&list, "twin#dddd").is_err());
        let unknown = find(&list, "phone").unwrap_err();
        assert_eq!(unknown.exit, Exit::NotFound);
        assert!(unknown.to_string().contains(r#""Laptop""#), "{unknown}");
        assert!(
            find(&[], "phone")
                .unwrap_err()
                .to_string()
                .contains("none yet")
        );
    }

    /// A reply to a raw peer reads `(sent)`, as in the chat screen: such a
    /// peer never acknowledges, so nothing more is waited for.
    #[test]
    fn replies_to_raw_peers_read_sent_as_in_the_chat_screen() {
        let reply = |peer: &str| Record {
            seq: 1,
            peer: peer.into(),
            outgoing: true,
            id: "1".into(),
            ts: 0,
            body: "hi".into(),
            state: State::Sent,
        };
        let raw = conv("raw-192.168.1.23", "raw 192.168.1.23:5000");
        let line = plain_line(&reply("raw-192.168.1.23"), &raw, "me");
        assert!(line.ends_with("me: hi (sent)"), "{line}");
        let lantalk = conv("aaaa", "laptop");
        let line = plain_line(&reply("aaaa"), &lantalk, "me");
        assert!(line.ends_with("me: hi [not acknowledged]"), "{line}");
    }

    #[test]
    fn conversations_are_listed_by_the_name_history_takes() {
        let list = [
            conv("aaaa", "Laptop"),
            conv("raw-192.168.1.23", "raw 192.168.1.23:5000"),
            conv("bbbb1111", "twin"),
            conv("cccc2222", "twin"),
        ];
        let lines: Vec<String> = list.iter().map(|c| plain_conversation(c, &list)).collect();
        assert!(lines[0].ends_with("  Laptop  lantalk"), "{lines:?}");
        assert!(
            lines[1].ends_with("  raw 192.168.1.23:5000  raw"),
            "{lines:?}"
        );
        assert!(lines[2].ends_with("  twin#bbbb  lantalk"), "{lines:?}");
        let json: serde_json::Value = serde_json::from_str(&json_conversation(&list[1])).unwrap();
        assert_eq!(json["kind"], "raw");
        assert_eq!(json["peer"], "raw-192.168.1.23");
    }

    #[test]
    fn timestamps_out_of_range_are_shown_as_such() {
        assert_eq!(local_time(u64::MAX), "????-??-?? ??:??");
        assert_eq!(local_time(i64::MAX as u64), "????-??-?? ??:??");
        assert_eq!(local_time(0).len(), "1970-01-01 00:00".len());
    }
}
