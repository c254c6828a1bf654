//! `lantalk peers`: browse for a while and list what was found.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::{Failure, secs, start_discovery};
use crate::cli::Global;
use crate::net::{self, Peer};
use crate::sanitize::escape_for_terminal;

/// How many ignored advertisements are named on stderr; the rest are counted.
const IGNORED_SHOWN: usize = 10;

/// `lantalk peers`
pub(super) async fn peers(global: &Global, json: bool, timeout: Duration) -> Result<(), Failure> {
    let discovery = start_discovery(global)?;
    let mut events = discovery.browse(None).map_err(Failure::from_other)?;
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
    let mut out = String::new();
    if json {
        for p in &list {
            let addrs: Vec<String> = p.addrs.iter().map(|a| ip_text(*a)).collect();
            let obj = serde_json::json!({
                "name": p.name, "nick": p.nick, "host": p.host,
                "addresses": addrs, "port": p.port, "id": p.id,
                "problem": p.problem,
            });
            out.push_str(&obj.to_string());
            out.push('\n');
        }
    } else if !list.is_empty() {
        out.push_str(&peer_table(&list));
    }
    for p in list.iter().filter(|p| p.problem.is_some()) {
        status!(
            "{}: {} (lantalk will not talk to it)",
            escape_for_terminal(&p.name, false),
            p.problem.as_deref().unwrap_or_default()
        );
    }
    let mut ignored: Vec<_> = ignored.into_iter().collect();
    ignored.sort();
    for ((name, host), why) in ignored.iter().take(IGNORED_SHOWN) {
        status!(
            "ignored {:?} on {}: {why}",
            escape_for_terminal(name, false),
            escape_for_terminal(host, false)
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

fn peer_table(list: &[Peer]) -> String {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|p| {
            let addrs: Vec<String> = p.addrs.iter().map(|a| ip_text(*a)).collect();
            [
                escape_for_terminal(&p.name, false).into_owned(),
                escape_for_terminal(&p.host, false).into_owned(),
                addrs.join(","),
                p.port.to_string(),
                p.id.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "HOST", "ADDRESSES", "PORT", "ID"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
