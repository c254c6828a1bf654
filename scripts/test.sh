#!/usr/bin/env bash
# The one test command: every test, including those that a plain
# `cargo test` lists as ignored because they need root (network namespaces,
# bind mounts), tmux (the chat screen in a real terminal) or tcpdump.
#
#   scripts/test.sh            every test
#   scripts/test.sh WORDS...   only tests whose names contain one of WORDS
#                              (arguments go to the test binaries)
#
# As root it first installs what the tests need and is missing (Debian
# packages, with apt-get). Without root it says what is missing and runs
# anyway: the tests that need it fail, saying why. No test is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, for what is missing.
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
python3 -c "import ensurepip" 2>/dev/null || missing+=(python3-venv) # for python-zeroconf
command -v openssl >/dev/null || missing+=(openssl) # phone.py makes its key with it
[ -x /usr/bin/tmux ] || missing+=(tmux) # the tests run this path
command -v tcpdump >/dev/null || missing+=(tcpdump)
type -P kill >/dev/null || missing+=(procps) # the program, not the shell's builtin
# The web client's tests drive the page in headless Chromium over WebDriver
# (tests/common/browser.rs runs these paths).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)

root=0
[ "$(id -u)" = 0 ] && root=1

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$root" = 1 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq "${missing[@]}"; then
      missing=()
    else
      echo "test.sh: could not install ${missing[*]}" >&2
    fi
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: missing ${missing[*]} (Debian packages): the tests that need them will fail." >&2
  [ "$root" = 1 ] || echo "test.sh: run as root to have them installed." >&2
fi
# python-zeroconf, the other mDNS stack tests/interop.rs runs against, in a
# virtual environment in the build directory (where the tests look for it).
ZEROCONF_VERSION=0.154.0
venv="${CARGO_TARGET_DIR:-target}/zeroconf-venv"
if ! "$venv/bin/python" -c "import zeroconf" 2>/dev/null; then
  if [ "$root" = 1 ]; then
    echo "test.sh: installing python-zeroconf $ZEROCONF_VERSION into $venv" >&2
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "zeroconf==$ZEROCONF_VERSION"; }; then
      echo "test.sh: could not install python-zeroconf: tests/interop.rs will fail." >&2
    fi
  else
    echo "test.sh: python-zeroconf missing in $venv: tests/interop.rs will fail." >&2
  fi
fi
if [ "$root" = 0 ]; then
  echo "test.sh: not root: the tests that build network namespaces or bind mounts will fail." >&2
fi

exec cargo test --locked --no-fail-fast -- --include-ignored "$@"
