//! Shared by the benchmark programs: quick mode, statistics, and the table
//! rows that `scripts/bench.sh` collects into `BENCHMARKS.md`.
#![allow(dead_code)] // each bench program uses a different subset

use std::io::Write;
use std::time::Duration;

/// `LANTALK_BENCH_QUICK=1`: small counts and few repetitions, to prove the
/// suite still runs (CI), not to measure.
pub fn quick() -> bool {
    std::env::var("LANTALK_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// `full` normally, `quick` in quick mode.
pub fn pick<T>(full: T, quick_value: T) -> T {
    if quick() { quick_value } else { full }
}

/// Median and spread (min..max) of repeated measurements.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// The median.
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Stats {
    /// Statistics of `values` (at least one).
    pub fn of(values: &[f64]) -> Stats {
        assert!(!values.is_empty(), "no measurements");
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `median (min–max) unit`, with a sensible number of digits.
    pub fn show(&self, unit: &str) -> String {
        format!(
            "{} ({}–{}) {unit}",
            num(self.median),
            num(self.min),
            num(self.max)
        )
    }
}

/// A number with three significant digits, thousands separated.
pub fn num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Seconds as f64.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One row of the results table. `met`: whether the target is reached
/// (`None` when there is no target). Printed, and appended to the file named
/// by `LANTALK_BENCH_OUT` when set.
pub fn row(
    num: &str,
    name: &str,
    ours: &str,
    baseline: &str,
    ratio: &str,
    target: &str,
    met: Option<bool>,
) {
    let verdict = match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    };
    let line = format!("| {num} | {name} | {ours} | {baseline} | {ratio} | {target} | {verdict} |");
    println!("{line}");
    if let Ok(path) = std::env::var("LANTALK_BENCH_OUT") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        match file {
            Ok(mut f) => {
                let _ = writeln!(f, "{line}");
            }
            Err(e) => eprintln!("cannot append to {path}: {e}"),
        }
    }
}
