#!/usr/bin/env bash
# Before and after in one run: the benchmarks of another commit (REV) and
# of this tree, one after the other, ROUNDS times, on the same machine at
# the same time. Prints both sets of table rows, side by side per round.
#
#   scripts/bench-against.sh REV [ROUNDS]      default: 1 round
#
# Which benchmarks: LANTALK_BENCH_SUITES (default "session processes 6b"):
# `session` (rows 2, 3, 12), `processes` (rows 4, 7-10) and `6b` (benches/
# lan.sh, 50 senders into one listen; needs root). REV is built in a git
# worktree under target/bench-against with a target directory of its own
# (the first build takes several minutes). Like scripts/bench.sh, this
# reports figures and never fails on a timing.
set -euo pipefail
cd "$(dirname "$0")/.."

rev=${1:?usage: scripts/bench-against.sh REV [ROUNDS]}
rounds=${2:-1}
suites=${LANTALK_BENCH_SUITES:-session processes 6b}
base=target/bench-against/$(git rev-parse --short "$rev")
out=target/bench-against/rows
mkdir -p "$out"

if [ ! -d "$base" ]; then
  git worktree add --detach "$base" "$rev"
fi

# Runs the suites of the tree in $1, writing table rows to $2.
bench() {
  local tree=$1 rows=$2
  (
    cd "$tree"
    export LANTALK_BENCH_OUT=$rows LANTALK_BENCH_QUICK=0
    cargo build --release --locked -q
    for suite in $suites; do
      case $suite in
        6b) LANTALK_BENCH_ONLY=6b bash benches/lan.sh target/release/lantalk ;;
        *) cargo bench --locked -q --bench "$suite" ;;
      esac
    done
  )
}

for round in $(seq 1 "$rounds"); do
  : > "$out/before-$round"
  : > "$out/after-$round"
  bench "$base" "$PWD/$out/before-$round"
  bench . "$PWD/$out/after-$round"
done

for round in $(seq 1 "$rounds"); do
  echo
  echo "## round $round: $rev (before)"
  sort -t'|' -k2,2V "$out/before-$round"
  echo
  echo "## round $round: $(git describe --always --dirty) (after)"
  sort -t'|' -k2,2V "$out/after-$round"
done
