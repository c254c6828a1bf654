//! Benchmark #11: how many received texts the history database commits per
//! second, through the crate's own `Store` handle, by batch size.
//!
//! Every figure is `Store::received` on a fresh `history.sqlite3` (WAL,
//! `synchronous = NORMAL`, bodies indexed by FTS5) in a temporary
//! directory under `target/`: texts of 100 bytes of words, in batches of 1,
//! 16, 256 and 4096 texts per call, each call awaited before the next (one
//! transaction per call), counted once the answer (= COMMIT) arrives. One
//! more line: 1 text per call but 256 callers at once, which the store's
//! group commit turns into shared transactions.
//!
//! Baselines, in the same run: the same store with its FTS5 table replaced
//! by one that ignores every row (what full-text search costs), and
//! appending the same texts as JSON lines
//! to a file with one `write` per batch and no fsync (the durability of
//! `synchronous = NORMAL`: safe against a killed process, not a power cut).
//!
//! `cargo bench --bench store`; `LANTALK_BENCH_QUICK=1` for a short run.
//! Without `--bench` (as in `cargo test --benches`) it is a smoke test.
//! Progress goes to stderr, the table rows to stdout (and `$LANTALK_BENCH_OUT`).

mod support;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use lantalk::protocol::Text;
use lantalk::store::{PeerRef, Store};
use support::{Stats, num, pick};

const BODY_LEN: usize = 100;
const BATCHES: [usize; 4] = [1, 16, 256, 4096];

/// How the texts are kept.
#[derive(Clone, Copy, PartialEq)]
enum Sink {
    Store,
    StoreWithoutFts,
    Append,
}

/// Reproducible bodies of 100 bytes of words (so FTS5 has words to index).
fn bodies(n: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "dinner", "at", "eight", "bring", "the", "cake", "from", "fridge", "second", "shelf",
        "behind", "milk", "build", "done", "meeting", "moved", "tomorrow", "morning", "coffee",
        "café", "好的", "👍", "ok", "see", "you", "later", "laptop", "phone", "printer", "broken",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            let mut body = format!("{i} ");
            while body.len() < BODY_LEN {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
                body.push(' ');
            }
            while body.len() > BODY_LEN {
                body.pop();
            }
            body
        })
        .collect()
}

fn texts(bodies: &[String], from: &PeerRef) -> Vec<(PeerRef, Text)> {
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            (
                from.clone(),
                Text {
                    id: format!("bench-{i}"),
                    ts: 1_790_000_000_000 + i as u64,
                    body: body.clone(),
                },
            )
        })
        .collect()
}

/// Texts per second for `n` texts in batches of `batch` into `sink`.
async fn run(sink: Sink, batch: usize, callers: usize, bodies: &[String]) -> Result<f64> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let from = PeerRef::new(
        "0123456789abcdef0123456789abcdef".into(),
        "phone",
        lantalk::peer::PeerKind::Lantalk,
    );
    let all = texts(bodies, &from);
    if sink == Sink::Append {
        return append(dir.path(), batch, &all);
    }
    let store = Store::open(dir.path())?;
    if sink == Sink::StoreWithoutFts {
        // The full-text index replaced by a table that ignores every row.
        rusqlite::Connection::open(store.path())?.execute_batch(
            "DROP TABLE messages_fts;
             CREATE TABLE messages_fts (rowid INTEGER PRIMARY KEY, body TEXT);
             CREATE TRIGGER ignore BEFORE INSERT ON messages_fts BEGIN SELECT raise(IGNORE); END;",
        )?;
    }
    let chunks: Vec<Vec<(PeerRef, Text)>> = all.chunks(batch).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    if callers == 1 {
        for chunk in chunks {
            store.received(chunk).await?;
        }
    } else {
        // `callers` tasks, each awaiting its own calls: the store takes what
        // is waiting in one transaction.
        let mut per_caller: Vec<Vec<Vec<(PeerRef, Text)>>> = vec![Vec::new(); callers];
        for (i, chunk) in chunks.into_iter().enumerate() {
            per_caller[i % callers].push(chunk);
        }
        let tasks: Vec<_> = per_caller
            .into_iter()
            .map(|calls| {
                let store = store.clone();
                tokio::spawn(async move {
                    for chunk in calls {
                        store.received(chunk).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
    }
    let rate = bodies.len() as f64 / started.elapsed().as_secs_f64();
    drop(store);
    Ok(rate)
}

/// The plain-file baseline: JSON lines, one `write` per batch, no fsync.
fn append(dir: &Path, batch: usize, all: &[(PeerRef, Text)]) -> Result<f64> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("history.jsonl"))?;
    let started = Instant::now();
    let mut buf = Vec::with_capacity(batch * 200);
    for chunk in all.chunks(batch) {
        buf.clear();
        for (peer, text) in chunk {
            serde_json::to_writer(
                &mut buf,
                &serde_json::json!({"peer": peer.key, "id": text.id, "ts": text.ts, "body": text.body}),
            )?;
            buf.push(b'\n');
        }
        file.write_all(&buf)?;
    }
    Ok(all.len() as f64 / started.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let reps = if smoke { 1 } else { pick(3, 1) };
    // Fewer texts when each is its own commit.
    let n_for = |batch: usize| {
        if smoke {
            2_000
        } else if batch == 1 {
            pick(20_000, 2_000)
        } else {
            pick(200_000, 20_000)
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    eprintln!(
        "#11 history: texts of {BODY_LEN} B committed by Store::received, {reps} repetition(s){}",
        if smoke {
            " (smoke test: no table rows)"
        } else {
            ""
        }
    );
    let mut cases: Vec<(usize, usize)> = BATCHES.iter().map(|&b| (b, 1)).collect();
    cases.push((1, 256));
    for (batch, callers) in cases {
        let bodies = bodies(n_for(batch));
        let mut figures = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..reps {
            for (i, sink) in [Sink::Store, Sink::StoreWithoutFts, Sink::Append]
                .into_iter()
                .enumerate()
            {
                figures[i].push(runtime.block_on(run(sink, batch, callers, &bodies))?);
            }
        }
        let [ours, no_fts, file] = figures.map(|f| Stats::of(&f));
        let how = if callers == 1 {
            format!("batches of {batch}")
        } else {
            format!("1 text per call, {callers} callers at once")
        };
        eprintln!(
            "  {how}: {} | without FTS5 {} | append to a file {}",
            ours.show("texts/s"),
            no_fts.show("texts/s"),
            file.show("texts/s")
        );
        if smoke {
            continue;
        }
        support::row(
            "11",
            &format!(
                "history: texts of 100 B committed per second, {how} (N = {})",
                bodies.len()
            ),
            &ours.show("texts/s"),
            &format!(
                "same without FTS5: {}; JSON lines appended to a file, one write per batch: {}",
                no_fts.show("texts/s"),
                file.show("texts/s")
            ),
            &format!(
                "{:.2} of no-FTS5, {} of the file",
                ours.median / no_fts.median,
                num(ours.median / file.median)
            ),
            "—",
            None,
        );
    }
    Ok(())
}
