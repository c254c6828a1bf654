//! Benchmark #9b: how long drawing the chat screen takes with a long
//! conversation open, without a terminal: `lantalk::ui::draw` into a ratatui
//! `TestBackend` of 120×40 cells, with 100,000 messages in the open
//! conversation, next to the same screen with 100 messages. Only the visible
//! messages should be laid out, so the two should cost about the same. A
//! second row draws the 100,000 scrolled to the top: the layout walks from
//! the newest message back to the window shown, so that one costs more.
//!
//! Uses only the crate's public API (`lantalk::app`, `lantalk::ui`); the
//! conversation is built here, as the unit tests build theirs.
//!
//! `cargo bench --bench screen`; `LANTALK_BENCH_QUICK=1` for a short run.
//! Without `--bench` (as in `cargo test --benches`) it is a smoke test.
//! Progress goes to stderr, the table row to stdout (and `$LANTALK_BENCH_OUT`).

mod support;

use std::time::Instant;

use lantalk::app::{App, Delivery, DiscoveryState, Entry, EntryKind, Me, PeerEntry};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::{Stats, pick};

/// The terminal size, as in the TUI benchmarks (#7–#10).
const SIZE: (u16, u16) = (120, 40);

/// 2026-11-25 22:40 UTC.
const START_MS: u64 = 1_795_646_400_000;
const MINUTE: u64 = 60_000;

/// `n` messages, alternately from alice (long enough to wrap) and ours (delivered).
fn conversation(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let ts = START_MS + i as u64 * MINUTE;
            if i % 2 == 0 {
                Entry {
                    ts,
                    kind: EntryKind::Peer {
                        from: "alice".into(),
                        id: format!("p{ts}"),
                    },
                    body: format!(
                        "message number {i} from alice, long enough to wrap at least once here"
                    ),
                    seq: None,
                }
            } else {
                Entry {
                    ts,
                    kind: EntryKind::Own {
                        id: format!("m{ts}"),
                        state: Delivery::Delivered,
                    },
                    body: format!("reply {i}"),
                    seq: None,
                }
            }
        })
        .collect()
}

fn peer(n: u8, name: &str, host: &str) -> PeerEntry {
    PeerEntry {
        id: format!("{n:032x}").into(),
        name: name.into(),
        host: host.into(),
        addrs: Vec::new(),
        discovered: true,
        problem: None,
        kind: lantalk::peer::PeerKind::Lantalk,
        connected: false,
        link: None,
        unread: 0,
        last_activity: 0,
        conversation: Default::default(),
    }
}

/// The chat screen with alice's conversation (connected, `n` messages) open.
fn chatting(n: usize) -> App {
    let mut alice = peer(1, "alice", "laptop.local.");
    alice.connected = true;
    alice.conversation.entries = conversation(n);
    App {
        me: Me {
            name: "me".into(),
            id: "f".repeat(32),
            port: 7654,
            addr: Some("192.168.1.20".parse().expect("an address")),
            not_listening: None,
        },
        discovery: DiscoveryState::Active,
        open: Some(alice.id.clone()),
        peers: vec![alice, peer(2, "bob", "bob-pc.local.")],
        ..App::default()
    }
}

/// Milliseconds per full draw of `app`, one figure per repetition.
fn draw_ms(label: &str, app: &App, reps: usize) -> Vec<f64> {
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("test backend");
    let mut draw = || {
        let started = Instant::now();
        terminal
            .draw(|f| {
                lantalk::ui::draw(f, app);
            })
            .expect("test backend");
        started.elapsed().as_secs_f64() * 1e3
    };
    let first = draw();
    eprintln!("  {label}: first draw {first:.3} ms");
    (0..reps).map(|_| draw()).collect()
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let reps = if smoke { 3 } else { pick(200, 20) };
    eprintln!(
        "#9b chat screen drawn into a TestBackend {}x{}, {reps} draws each{}",
        SIZE.0,
        SIZE.1,
        if smoke {
            " (smoke test: no table row)"
        } else {
            ""
        }
    );
    let long = chatting(100_000);
    let short = chatting(100);
    let ours = Stats::of(&draw_ms("100,000 messages", &long, reps));
    let baseline = Stats::of(&draw_ms("100 messages", &short, reps));
    eprintln!(
        "  100,000 messages: {} | 100 messages: {}",
        ours.show("ms/frame"),
        baseline.show("ms/frame")
    );
    // Scrolled to the oldest message in memory, as Home in the conversation
    // pane does: rows are laid out from the newest message back to the
    // window, so a frame there costs what the whole conversation does.
    let mut top = chatting(100_000);
    top.peers[0].conversation.scroll = usize::MAX / 2;
    let top_reps = if smoke { 1 } else { pick(20, 3) };
    let at_top = Stats::of(&draw_ms("100,000 messages, at the top", &top, top_reps));
    eprintln!(
        "  100,000 messages, scrolled to the top: {}",
        at_top.show("ms/frame")
    );
    if smoke {
        return;
    }
    support::row(
        "9b",
        &format!(
            "chat screen drawn by `lantalk::ui::draw` into a ratatui TestBackend ({}×{}), 100,000 messages open, {reps} draws",
            SIZE.0, SIZE.1
        ),
        &ours.show("ms/frame"),
        &format!("100 messages open: {}", baseline.show("ms/frame")),
        &format!("{:.2} (vs 100 messages)", ours.median / baseline.median),
        "report ms per frame",
        None,
    );
    support::row(
        "9b",
        &format!(
            "chat screen drawn by `lantalk::ui::draw` into a ratatui TestBackend ({}×{}), 100,000 messages open, scrolled to the oldest (Home), {top_reps} draws",
            SIZE.0, SIZE.1
        ),
        &at_top.show("ms/frame"),
        &format!("at the newest: {}", ours.show("ms/frame")),
        &format!("{:.0} (vs at the newest)", at_top.median / ours.median),
        "report ms per frame",
        None,
    );
}
