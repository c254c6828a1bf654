//! `lantalk peers`: browse for a while and list what was found.
//!
//! Names, hosts and TXT `nick`s come from anyone on the network: the table
//! shows them escaped and cut (see [`crate::sanitize`]); `--json` keeps them
//! exact, with characters that could act on a terminal as `\uXXXX` escapes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use unicode_width::UnicodeWidthStr;

use super::{Failure, secs, start_discovery};
use crate::net::{self, Peer};
use crate::options::Options;
use crate::sanitize;
use crate::trust::{Known, KnownPeers};

/// How many ignored advertisements are named on stderr; the rest are counted.
const IGNORED_SHOWN: usize = 10;

/// `lantalk peers`
pub async fn peers(options: &Options, json: bool, timeout: Duration) -> Result<(), Failure> {
    let discovery = start_discovery(options).await?;
    let mut events = discovery.browse(None).map_err(Failure::from_discovery)?;
    let mut found: HashMap<String, Peer> = HashMap::new();
    // Advertisements that are not usable peers, by name and host: said on stderr.
    let mut ignored: HashMap<(String, String), String> = HashMap::new();
    let deadline = Instant::now() + timeout;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(net::PeerEvent::Up(peer)) => {
                    // Set aside while incomplete (e.g. its TXT record came late), usable now.
                    ignored.remove(&(peer.name.clone(), peer.host.clone()));
                    found.insert(peer.id.clone(), peer);
                }
                Some(net::PeerEvent::Down(peer)) => { found.remove(&peer.id); }
                Some(net::PeerEvent::Ignored(i)) => { ignored.insert((i.name, i.host), i.why); }
                Some(net::PeerEvent::Health(health)) => {
                    if let Some(why) = health.limitation() {
                        status!("{why}");
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    discovery.shutdown().await;
    let mut list: Vec<Peer> = found.into_values().collect();
    list.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    // What this data directory knows of their keys (nothing if there is none).
    let known = match options.data_dir() {
        Ok(dir) => KnownPeers::new(&dir).list().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut out = String::new();
    if json {
        for p in &list {
            let addrs: Vec<String> = p.addrs.iter().map(|a| ip_text(*a)).collect();
            let obj = serde_json::json!({
                "name": p.name, "nick": p.nick, "host": p.host,
                "addresses": addrs, "port": p.port, "id": p.id,
                "fp": p.fp, "key": key_state(p, &known),
                "problem": p.problem,
            });
            out.push_str(&sanitize::json_for_terminal(&obj.to_string()));
            out.push('\n');
        }
    } else if !list.is_empty() {
        out.push_str(&peer_table(&list, &known));
    }
    for p in list.iter().filter(|p| p.problem.is_some()) {
        status!(
            "{}: {} (lantalk will not talk to it)",
            sanitize::short_name(&p.name),
            sanitize::one_line(p.problem.as_deref().unwrap_or_default(), 200)
        );
    }
    let mut ignored: Vec<_> = ignored.into_iter().collect();
    ignored.sort();
    for ((name, host), why) in ignored.iter().take(IGNORED_SHOWN) {
        status!(
            "ignored \"{}\" on {}: {}",
            sanitize::short_name(name),
            sanitize::short_name(host),
            sanitize::one_line(why, 200)
        );
    }
    if ignored.len() > IGNORED_SHOWN {
        status!(
            "… and {} more advertisements ignored",
            ignored.len() - IGNORED_SHOWN
        );
    }
    if list.is_empty() {
        status!(
            "no peers found in {} s (is anyone running lantalk? is multicast blocked?)",
            secs(timeout)
        );
    }
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(out.as_bytes())
        .await
        .context("cannot write to standard output")?;
    stdout
        .flush()
        .await
        .context("cannot write to standard output")?;
    Ok(())
}

/// An address as text without the port; IPv6 with `%scope` when link-local.
fn ip_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
        other => other.ip().to_string(),
    }
}

/// What we know of a peer's advertised key, as `send NAME` will treat it:
/// - `verified` / `known`: a key met before (the codes were compared or not);
/// - `new`: a key never met, under names no key is known by;
/// - `other-key`: a key never met, under a name known by another key
///   (another device of that name, or someone pretending): `send NAME`
///   will not use it; `send NAME#TAG` will;
/// - `plaintext`: it offers no key (a lantalk from before TLS);
/// - `WRONG-KEY`: it claims the id of a key we know, with another key or
///   none: lantalk refuses it.
fn key_state(peer: &Peer, known: &[Known]) -> &'static str {
    let host = peer.host.trim_end_matches('.');
    let host = host.strip_suffix(".local").unwrap_or(host);
    let by_id = known.iter().find(|k| k.id() == peer.id);
    let Some(fp) = peer.fp else {
        return if by_id.is_some() {
            "WRONG-KEY"
        } else {
            "plaintext"
        };
    };
    if let Some(k) = by_id
        && k.fp != fp
    {
        return "WRONG-KEY";
    }
    match known.iter().find(|k| k.fp == fp) {
        Some(k) if k.verified => "verified",
        Some(_) => "known",
        None => {
            let named = known.iter().any(|k| {
                k.replaced_by.is_none()
                    && [peer.nick.as_str(), peer.name.as_str(), host]
                        .iter()
                        .any(|n| k.name.eq_ignore_ascii_case(n))
            });
            if named { "other-key" } else { "new" }
        }
    }
}

/// The name a row shows: `name#tag` when another listed peer goes by the
/// same name, so that the two can be told apart (and named to `send`).
fn row_name(p: &Peer, list: &[Peer]) -> String {
    let shared = list
        .iter()
        .any(|o| o.id != p.id && o.name.eq_ignore_ascii_case(&p.name));
    let name = sanitize::short_name(&p.name);
    if shared {
        format!("{name}#{}", crate::peer::PeerId::new(p.id.clone()).tag())
    } else {
        name
    }
}

fn peer_table(list: &[Peer], known: &[Known]) -> String {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|p| {
            let addrs: Vec<String> = p.addrs.iter().map(|a| ip_text(*a)).collect();
            [
                row_name(p, list),
                sanitize::one_line(&p.host, sanitize::MAX_NAME_WIDTH),
                addrs.join(","),
                p.port.to_string(),
                key_state(p, known).to_owned(),
                p.id.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "HOST", "ADDRESSES", "PORT", "KEY", "ID"].map(str::to_owned);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            // Padded by display width: `{:<w$}` would count chars, and a
            // wide name (CJK, emoji) would push its row out of line.
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.width())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, host: &str, id: char) -> Peer {
        Peer {
            name: name.into(),
            nick: name.into(),
            host: host.into(),
            addrs: vec!["10.0.0.2:7342".parse().unwrap()],
            port: 7342,
            id: id.to_string().repeat(32),
            fullname: format!("{name}._lantalk._tcp.local."),
            fp: None,
            problem: None,
        }
    }

    /// Names and hosts from mDNS records are printed escaped, one line each,
    /// cut, and the columns stay aligned whatever their width.
    #[test]
    fn the_table_shows_hostile_names_harmless_and_aligned() {
        let table = peer_table(
            &[
                peer("ev\x1b]2;pwned\x07il\u{202e}", "h\x1b[2J.local.", 'a'),
                peer("bob\nfake row", "bob.local.", 'b'),
                peer("世界👋", "w.local.", 'c'),
                peer(&"x".repeat(300), "x.local.", 'd'),
                peer("", "e.local.", 'e'),
            ],
            &[],
        );
        eprintln!("{table}");
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 6, "one row per peer and a header:\n{table}");
        assert!(
            rows[1].starts_with("ev^[]2;pwned^Gil\\u{202e}  "),
            "{table}"
        );
        assert!(rows[1].contains("h^[[2J.local."), "{table}");
        assert!(rows[2].starts_with("bob^Jfake row "), "{table}");
        assert!(
            rows[4].starts_with(&format!("{}… ", "x".repeat(sanitize::MAX_NAME_WIDTH - 1))),
            "{table}"
        );
        assert!(rows[5].starts_with(sanitize::NO_NAME), "{table}");
        assert!(!table.contains('\x1b') && !table.contains('\u{202e}'));
        // The HOST column starts at the same cell on every row.
        let host_at: Vec<usize> = rows
            .iter()
            .map(|r| {
                let i = r.find(".local.").unwrap_or_else(|| r.find("HOST").unwrap());
                let start = r[..i].rfind("  ").unwrap() + 2;
                r[..start].width()
            })
            .collect();
        assert!(
            host_at.iter().all(|&c| c == host_at[0]),
            "{host_at:?}\n{table}"
        );
    }

    #[test]
    fn the_key_column_says_what_lantalk_will_do_with_the_peer() {
        use crate::protocol::Fingerprint;
        let (a, b) = (Fingerprint::of_cert(b"a"), Fingerprint::of_cert(b"b"));
        let known = |fp, verified| Known {
            name: "laptop".into(),
            fp,
            verified,
            since: 0,
            addrs: Vec::new(),
            inbound: false,
            replaced_by: None,
        };
        let mut p = peer("laptop", "laptop.local.", 'a');
        p.id = a.peer_id();
        assert_eq!(key_state(&p, &[known(b, false)]), "plaintext");
        assert_eq!(
            key_state(&p, &[known(a, false)]),
            "WRONG-KEY",
            "a known id without its key"
        );
        p.fp = Some(a);
        assert_eq!(key_state(&p, &[]), "new");
        assert_eq!(key_state(&p, &[known(a, false)]), "known");
        assert_eq!(key_state(&p, &[known(a, true)]), "verified");
        assert_eq!(key_state(&p, &[known(b, true)]), "other-key");
        assert_eq!(key_state(&p, &[known(b, false), known(a, false)]), "known");
        let mut moved = known(b, false);
        moved.replaced_by = Some(a);
        assert_eq!(
            key_state(&p, &[moved]),
            "new",
            "a key moved away from is no pin"
        );
        let mut other_name = known(b, false);
        other_name.name = "phone".into();
        assert_eq!(key_state(&p, &[other_name]), "new");
        p.id = b.peer_id();
        assert_eq!(
            key_state(&p, &[known(b, false)]),
            "WRONG-KEY",
            "b's id, a's key"
        );
        let table = peer_table(std::slice::from_ref(&p), &[known(b, false)]);
        assert!(table.lines().next().unwrap().contains("KEY"), "{table}");
        assert!(table.contains("WRONG-KEY"), "{table}");
    }

    #[test]
    fn peers_that_share_a_name_are_listed_with_the_start_of_their_id() {
        let a = peer("vm", "vm.local.", 'a');
        let b = peer("vm", "vm.local.", 'b');
        let c = peer("phone", "phone.local.", 'c');
        let table = peer_table(&[a, b, c], &[]);
        assert!(table.contains("vm#aaaa "), "{table}");
        assert!(table.contains("vm#bbbb "), "{table}");
        assert!(
            table.contains("phone ") && !table.contains("phone#"),
            "{table}"
        );
    }
}
