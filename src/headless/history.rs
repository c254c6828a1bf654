//! `lantalk history PEER`: a conversation from the history database, oldest
//! first, or the messages in it that match `--search`.

use anyhow::anyhow;
use chrono::{Local, TimeZone};
use tokio::io::AsyncWriteExt;

use super::{Exit, Failure, identity_of};
use crate::cli::Global;
use crate::sanitize;
use crate::store::{Conversation, Record, State, Store};

/// `lantalk history PEER [--json] [--limit N] [--search WORDS]`
pub(super) async fn history(
    global: &Global,
    peer: &str,
    json: bool,
    limit: usize,
    search: Option<String>,
) -> Result<(), Failure> {
    if global.no_history {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("history is off (--no-history, or history = false in the config file)"),
        ));
    }
    let me = identity_of(global, false)?;
    let path = me.dir.join("history.sqlite3");
    if !path.exists() {
        return Err(Failure::new(
            Exit::NotFound,
            anyhow!("no history yet ({} does not exist)", path.display()),
        ));
    }
    let store = Store::open(&me.dir).map_err(Failure::from_other)?;
    let conversations = store.conversations().await.map_err(Failure::from_other)?;
    let Some(conv) = find(&conversations, peer) else {
        let known: Vec<String> = conversations
            .iter()
            .map(|c| format!("{:?}", sanitize::short_name(&c.name)))
            .collect();
        let known = if known.is_empty() {
            "none yet".to_owned()
        } else {
            known.join(", ")
        };
        return Err(Failure::new(
            Exit::NotFound,
            anyhow!(
                "no conversation with {:?} (conversations: {known})",
                sanitize::short_name(peer)
            ),
        ));
    };
    let records = match search {
        Some(words) => {
            let mut found = store
                .search(Some(conv.peer.clone()), words, limit)
                .await
                .map_err(Failure::from_other)?;
            found.reverse();
            found
        }
        None => {
            store
                .page(conv.peer.clone(), None, limit)
                .await
                .map_err(Failure::from_other)?
                .0
        }
    };
    let mut out = String::new();
    for r in &records {
        let name = if r.outgoing {
            &me.hello.name
        } else {
            &conv.name
        };
        if json {
            let obj = serde_json::json!({
                "seq": r.seq, "peer": r.peer, "name": name, "outgoing": r.outgoing,
                "id": r.id, "ts": r.ts, "body": r.body, "state": state_name(r.state),
            });
            out.push_str(&sanitize::json_for_terminal(&obj.to_string()));
        } else {
            out.push_str(&line(r, name));
        }
        out.push('\n');
    }
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(out.as_bytes())
        .await
        .and(stdout.flush().await)
        .map_err(|e| Failure::from_other(anyhow!("cannot write to standard output: {e}")))
}

/// The conversation `query` names: its key, `raw IP`, or its latest name
/// (case-insensitive).
fn find<'a>(conversations: &'a [Conversation], query: &str) -> Option<&'a Conversation> {
    let raw = query
        .strip_prefix("raw ")
        .map(|ip| format!("raw-{}", ip.trim()));
    conversations
        .iter()
        .find(|c| c.peer == query || raw.as_deref() == Some(c.peer.as_str()))
        .or_else(|| {
            conversations
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(query))
        })
}

/// `2026-11-26 07:20 name: body`, escaped, continuation lines indented, and
/// a note after our own texts that were not delivered.
fn line(r: &Record, name: &str) -> String {
    let when = i64::try_from(r.ts)
        .ok()
        .and_then(|ms| Local.timestamp_millis_opt(ms).single())
        .map_or_else(
            || "????-??-?? --:--".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        );
    let body = sanitize::escape_for_terminal(&r.body, true).replace('\n', "\n  ");
    let note = match (r.outgoing, r.state) {
        (true, State::Pending) => " (waiting)",
        (true, State::Sent) => " (not acknowledged yet)",
        (true, State::Failed) => " (not delivered)",
        _ => "",
    };
    format!("{when} {}: {body}{note}", sanitize::short_name(name))
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Sent => "sent",
        State::Delivered => "delivered",
        State::Failed => "failed",
    }
}
