#!/usr/bin/env bash
# The figures of the README's Reliability table, in one command: runs the
# hardening tests against the real binary with their output shown, then
# prints every line they measured ("figure: ...") and the test summaries.
#
#   scripts/reliability.sh
#
# The namespace tests (dead peers, poisoned discovery, environment faults,
# encrypted sessions and keys) need root, and the chat-screen ones tmux:
# they are run too (a plain `cargo test` only lists them as ignored), and
# without root or tmux they fail, saying what is missing (scripts/test.sh,
# as root, installs it). Exits non-zero if any test fails. Nothing here
# fails on a timing: the figures are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --test hostile --test floods --test injection --test discovery \
  --test faults --test tui --test security -- --include-ignored --nocapture >"$log" 2>&1 || status=$?
echo "Figures (debug build, as 'cargo test' runs it; $(nproc) cores):"
grep -h '^figure:' "$log" | sed 's/^figure: /  /' || true
echo
grep -hE '^test result|^test .* FAILED' "$log" || true
if [ "$status" != 0 ]; then
  echo "some tests failed:" >&2
  sed -n '/^failures:/,/^test result/p' "$log" >&2
fi
exit "$status"
