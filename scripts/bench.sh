#!/usr/bin/env bash
# The benchmark suite, in one command: builds in release mode, runs every
# benchmark (each next to its baseline, in the same run) and writes the table.
#
#   scripts/bench.sh            full run; writes BENCHMARKS.md
#   scripts/bench.sh --quick    small counts, to prove the suite still works;
#                               writes target/BENCHMARKS-quick.md
#
# The namespace benchmarks (discovery, 50 hosts, the page in Chromium) need
# root; without it they are skipped with a note. No benchmark fails on a
# timing: a missed target is reported as "no" in the table.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; fi
export LANTALK_BENCH_QUICK=$quick
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
export LANTALK_BENCH_OUT=$rows

cargo build --release --locked
cargo bench --locked --bench codec
cargo bench --locked --bench session
cargo bench --locked --bench processes
cargo bench --locked --bench store
cargo bench --locked --bench screen
cargo bench --locked --bench web
bash benches/lan.sh target/release/lantalk

if [ "$quick" = 1 ]; then out=target/BENCHMARKS-quick.md; else out=BENCHMARKS.md; fi
command="scripts/bench.sh"
[ "$quick" = 1 ] && command="scripts/bench.sh --quick"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
# Before the table is written: writing it makes the tree differ from the commit.
rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
{
  echo "# Benchmarks"
  echo
  echo "Latest run of \`$command\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores ($cpu), $mem,"
  echo "Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2), lantalk $rev."
  echo "Each comparison runs both sides in the same run, one after the other; figures are"
  echo "medians with the spread (min–max) over the repetitions. Targets come from issues #4 and #8 (TLS, #12; web client, #18)."
  echo
  echo "| # | benchmark | lantalk | compared with | ratio | target | met |"
  echo "|---|---|---|---|---|---|---|"
  # By row number, "9" before "9b": the number without its padding, first.
  awk -F'|' '{ n = $2; gsub(/ /, "", n); print n "\t" $0 }' "$rows" | sort -t$'\t' -k1,1V | cut -f2-
  echo
  if [ -f benches/NOTES.md ]; then cat benches/NOTES.md; fi
} > "$out"
echo
echo "wrote $out"
cat "$out"
