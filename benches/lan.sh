#!/usr/bin/env bash
# LAN benchmarks for lantalk: discovery latency (#5a, #5b) and scale (#6a, #6b)
# on a LAN built out of network namespaces joined by a bridge (see
# ../shared/lan-testing.md and tests/common/lan.rs).
#
#   benches/lan.sh [BINARY]          # default: target/release/lantalk (built if missing)
#   LANTALK_BENCH_QUICK=1            # small counts, 2 repetitions: proves it runs
#   LANTALK_BENCH_OUT=FILE           # also append the table rows to FILE
#   LANTALK_BENCH_ONLY="5a 6b"       # run only these sections (default: all)
#   LANTALK_BENCH_KEEP=1             # keep the logs (temporary directory) for a look
#
# Rules this script keeps:
# - needs root; without it it prints "skipped: needs root" and exits 0;
# - every lantalk runs inside a namespace created here (prefix lb<pid>-),
#   mDNS never runs in the machine's own namespace, and all traffic stays
#   inside these namespaces (addresses 10.78.0.x/24 exist only there);
# - only processes started here are ever signalled (tracked by pid);
# - every wait is bounded; the namespaces and temporary files are deleted on
#   exit, also on failure and Ctrl+C.
#
# Results: table rows `| num | benchmark | lantalk | compared with | ratio |
# target | met |` on stdout (and appended to $LANTALK_BENCH_OUT), extra
# measurements as indented lines on stdout, progress on stderr.
#
# How the times are taken
# - Resolution times come from mdns-sd itself: discovering processes run with
#   LANTALK_LOG=warn,mdns_sd=debug, and the timestamp of the debug line
#   "resolved '<instance>._lantalk._tcp.local.' -> host ..." is the moment
#   the browser had a complete record (name, port, addresses, TXT). Those
#   timestamps (tracing, UTC, microseconds) and the script's $EPOCHREALTIME
#   read the same clock.
# - #6a "all see all": the K sampled browsers (`peers --json`, long timeout)
#   start first, then the N listens one after the other. For each browser,
#   the result is (first-resolved time of the LAST of the N-1 other hosts) -
#   (time the last `listen` was started). Starting N processes on 2 cores
#   takes a while, so measuring from the first start would mostly measure
#   process start-up; the spread of the starts is reported too. Each
#   browser's final `peers --json` list is checked to contain all N-1 others.

set -uo pipefail
shopt -s nullglob

note() { printf '%s\n' "lan.sh: $*" >&2; }
die() {
    note "error: $*"
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    echo "lan.sh: skipped: needs root (network namespaces); run it as root to measure"
    exit 0
fi
if [ -z "${EPOCHREALTIME:-}" ]; then
    die "needs bash >= 5 (EPOCHREALTIME)"
fi
for tool in ip unshare timeout python3 awk sort mktemp; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -ge 1 ]; then
    BIN=$1
else
    BIN=$ROOT/target/release/lantalk
fi
if [ ! -x "$BIN" ]; then
    note "no binary at $BIN: cargo build --release"
    (cd "$ROOT" && cargo build --release) >&2 || die "cargo build --release failed"
    [ -x "$BIN" ] || die "still no binary at $BIN"
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

QUICK=0
[ "${LANTALK_BENCH_QUICK:-}" = 1 ] && QUICK=1
pick() { if [ $QUICK = 1 ]; then echo "$2"; else echo "$1"; fi; }
REPS=$(pick 5 2)
SCALE_N=$(pick 50 10)   # hosts in #6a, senders in #6b
SAMPLES=$(pick 5 3)     # browsers in #6a
TEXTS=$(pick 2000 200)  # texts per sender in #6b
ONLY=" ${LANTALK_BENCH_ONLY:-5a 5b 6a 6b} "
want() { [[ $ONLY == *" $1 "* ]]; }

PREFIX="lb$$-"
NSES=()               # every namespace created, in creation order
declare -A LIVE=()    # pids started here and not yet reaped
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lantalk-lanbench.XXXXXX")

# --- processes --------------------------------------------------------------

# Whether pid $1 is running (a zombie counts as ended).
alive() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# Reaps pid $1 (which must have ended or be bounded by `timeout`); sets RC.
reap() {
    wait "$1" 2>/dev/null
    RC=$?
    unset "LIVE[$1]"
}

# Waits until every pid given has ended, at most $1 seconds; returns 1 on timeout.
wait_ended() {
    local secs=$1 p any
    shift
    local deadline=$(($(date +%s%N) + ${secs%.*} * 1000000000))
    while :; do
        any=0
        for p in "$@"; do
            if alive "$p"; then any=1; break; fi
        done
        [ $any = 0 ] && return 0
        [ "$(date +%s%N)" -ge $deadline ] && return 1
        sleep 0.02
    done
}

# Stops the given pids: SIGTERM (listen says bye and goodbye), then SIGKILL
# after 5 s; reaps them.
stop() {
    local p
    [ $# -eq 0 ] && return 0
    for p in "$@"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
    if ! wait_ended 5 "$@"; then
        for p in "$@"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
        wait_ended 2 "$@"
    fi
    for p in "$@"; do reap "$p"; done
}

# spawn NS HOSTNAME STDIN STDOUT STDERR TIMEOUT ARGS...: starts the binary in
# namespace NS under its own hostname, in the background; sets PID.
# TIMEOUT "-": none (PID is lantalk's own pid: exec all the way down);
# otherwise the process is run under `timeout` (PID is timeout's).
# $LOG, when set, becomes LANTALK_LOG.
spawn() {
    local ns=$1 name=$2 in=$3 out=$4 err=$5 tmo=$6
    shift 6
    local pre=(env NO_COLOR=1)
    [ -n "${LOG:-}" ] && pre+=("LANTALK_LOG=$LOG")
    if [ "$tmo" != - ]; then pre=(timeout -k 2 "$tmo" "${pre[@]}"); fi
    "${pre[@]}" ip netns exec "$ns" unshare --uts \
        sh -c 'hostname "$0" && exec "$@"' "$name" "$BIN" "$@" \
        <"$in" >"$out" 2>"$err" &
    PID=$!
    LIVE[$PID]=1
}

# --- the LAN ------------------------------------------------------------------

HOSTS=()
BRIDGE=

ipc() { ip "$@" || die "ip $* failed"; }

# lan_up N: a bridge namespace and N host namespaces, host i at 10.78.0.(i+1)/24.
lan_up() {
    local n=$1 i ns
    BRIDGE="${PREFIX}br"
    HOSTS=()
    NSES+=("$BRIDGE")
    ipc netns add "$BRIDGE"
    ipc -n "$BRIDGE" link set lo up
    ipc -n "$BRIDGE" link add br0 type bridge
    ipc -n "$BRIDGE" link set br0 type bridge stp_state 0 forward_delay 0
    ipc -n "$BRIDGE" link set br0 up
    for ((i = 0; i < n; i++)); do
        ns="${PREFIX}h$i"
        NSES+=("$ns")
        HOSTS+=("$ns")
        ipc netns add "$ns"
        ipc -n "$ns" link set lo up
        ipc link add "v$i" netns "$BRIDGE" type veth peer name eth0 netns "$ns"
        ipc -n "$BRIDGE" link set "v$i" master br0
        ipc -n "$BRIDGE" link set "v$i" up
        ipc -n "$ns" addr add "10.78.0.$((i + 1))/24" dev eth0
        # No duplicate address detection: fe80:: is usable at once.
        ip netns exec "$ns" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad' ||
            die "cannot turn off DAD in $ns"
        ipc -n "$ns" link set eth0 up
    done
    # mdns-sd only uses interfaces and addresses present when it starts.
    local deadline=$((SECONDS + 15))
    for ns in "${HOSTS[@]}"; do
        while :; do
            if ip -n "$ns" -br link show eth0 | grep -q ' UP ' &&
                ip -n "$ns" -6 addr show dev eth0 | grep -q 'fe80::' &&
                ! ip -n "$ns" -6 addr show dev eth0 | grep -q tentative; then
                break
            fi
            [ $SECONDS -ge $deadline ] && die "eth0 in $ns never came up"
            sleep 0.02
        done
    done
}

# Deletes the namespaces (hosts first, the bridge last). Processes still in
# them can only have been started by this script: they are killed first.
lan_down() {
    local ns p i
    for ((i = ${#NSES[@]} - 1; i >= 0; i--)); do
        ns=${NSES[i]}
        [ -e "/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || note "could not delete namespace $ns"
    done
    NSES=()
    HOSTS=()
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    local pids=("${!LIVE[@]}")
    if [ ${#pids[@]} -gt 0 ]; then stop "${pids[@]}"; fi
    lan_down
    if [ "${LANTALK_BENCH_KEEP:-}" = 1 ]; then
        note "logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'note interrupted; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- measurements -------------------------------------------------------------

cat >"$TMP/h.py" <<'PY'
import re, sys, datetime, statistics

def num(x):
    if abs(x) >= 1000: return f"{x:,.0f}"
    if abs(x) >= 100: return f"{x:.0f}"
    if abs(x) >= 10: return f"{x:.1f}"
    return f"{x:.2f}"

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+DEBUG\s+mdns_sd\S*: resolved '([^']*)\._lantalk\._tcp\.local\.'")

def first_resolved(path):
    """instance -> epoch seconds of its first resolution in a log."""
    seen = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(ANSI.sub("", line))
            if not m: continue
            ts = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
            name = m.group(2).replace("\\", "")
            seen.setdefault(name, ts)
    return seen

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "stats":            # stats UNIT V...: median (min–max) UNIT
    v = sorted(float(a) for a in args[1:])
    print(f"{num(statistics.median(v))} ({num(v[0])}–{num(v[-1])}) {args[0]}")
elif cmd == "median":
    print(statistics.median(float(a) for a in args))
elif cmd == "mean":
    print(statistics.fmean(float(a) for a in args))
elif cmd == "num":
    print(num(float(args[0])))
elif cmd == "le":             # le A B: exit 0 if A <= B
    sys.exit(0 if float(args[0]) <= float(args[1]) else 1)
elif cmd == "sub":
    print(f"{float(args[0]) - float(args[1]):.6f}")
elif cmd == "div":
    print(f"{float(args[0]) / float(args[1]):.6f}")
elif cmd == "first":          # first LOG INSTANCE: epoch of its first resolution, or nothing
    t = first_resolved(args[0]).get(args[1])
    if t is not None: print(f"{t:.6f}")
elif cmd == "firstlog":       # firstlog LOG: epoch of the first mdns-sd log line (the daemon is up)
    with open(args[0], errors="replace") as f:
        for line in f:
            m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+DEBUG\s+mdns_sd", ANSI.sub("", line))
            if m:
                t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
                print(f"{t:.6f}"); break
elif cmd == "allseen":        # allseen LOG NAME...: epoch when the last NAME was first resolved
    seen = first_resolved(args[0])
    missing = [n for n in args[1:] if n not in seen]
    if missing:
        print("missing " + " ".join(missing)); sys.exit(1)
    print(f"{max(seen[n] for n in args[1:]):.6f}")
elif cmd == "peersjson":      # peersjson FILE NAME...: exit 0 if every NAME is listed
    import json
    names = set()
    with open(args[0]) as f:
        for line in f:
            line = line.strip()
            if line: names.add(json.loads(line)["name"])
    missing = [n for n in args[1:] if n not in names]
    if missing:
        print("missing " + " ".join(missing)); sys.exit(1)
PY
py() { python3 "$TMP/h.py" "$@"; }

# row NUM NAME OURS BASELINE RATIO TARGET MET (MET: yes, no or -)
row() {
    local met=$7
    case $met in no) met='**no**' ;; -) met='—' ;; esac
    local line="| $1 | $2 | $3 | $4 | $5 | $6 | $met |"
    printf '%s\n' "$line"
    if [ -n "${LANTALK_BENCH_OUT:-}" ]; then
        printf '%s\n' "$line" >>"$LANTALK_BENCH_OUT" || note "cannot append to $LANTALK_BENCH_OUT"
    fi
}
extra() { printf '    %s\n' "$*"; }

ratio() { echo "$(py num "$(py div "$1" "$2")")×"; }

# Waits (at most 10 s) until the listen writing stderr to $1 says it listens;
# prints the port.
listening_port() {
    local i line
    for ((i = 0; i < 500; i++)); do
        line=$(grep -m1 -o 'listening on port [0-9]*' "$1" 2>/dev/null) && {
            echo "${line##* }"
            return 0
        }
        sleep 0.02
    done
    return 1
}

newdir() { mktemp -d "$TMP/d.XXXXXX"; }

# Timestamps every line of stdin ($EPOCHREALTIME, then the line).
stamp() {
    local l
    while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done
}

MDNS_LOG=warn,mdns_sd=debug

# --- #5: discovery on a 2-host LAN --------------------------------------------

bench_5() {
    note "building a 2-host LAN"
    lan_up 2
    local laptop=${HOSTS[0]} phone=${HOSTS[1]}
    local lapdir phdir r t0 t1 tres tcon pid_l pid_p
    lapdir=$(newdir)
    phdir=$(newdir)

    if want 5a; then
        note "#5a: discovery of a new host ($REPS repetitions)"
        local res=() walls=() cons=() ok=1
        for ((r = 0; r < REPS; r++)); do
            [ $r -gt 0 ] && sleep 1.6
            # The browser first, then the new host at once.
            LOG=$MDNS_LOG spawn "$phone" phone /dev/null "$TMP/5a.p$r.out" "$TMP/5a.p$r.err" 15 \
                --data-dir "$phdir" send laptop x --timeout 10
            pid_p=$PID
            t0=$EPOCHREALTIME
            ip netns exec "$laptop" unshare --uts sh -c 'hostname "$0" && exec "$@"' laptop \
                "$BIN" --data-dir "$lapdir" listen </dev/null >"$TMP/5a.l$r.out" \
                2> >(stamp >"$TMP/5a.l$r.err") &
            pid_l=$!
            LIVE[$pid_l]=1
            reap "$pid_p"
            t1=$EPOCHREALTIME
            local rc=$RC
            sleep 0.1 # let the listen's stderr reach the file
            stop "$pid_l"
            tres=$(py first "$TMP/5a.p$r.err" laptop)
            tcon=$(awk '/phone connected from/ {print $1; exit}' "$TMP/5a.l$r.err")
            if [ $rc -ne 0 ] || [ -z "$tres" ] || [ -z "$tcon" ]; then
                note "#5a repetition $r failed: send exit $rc; phone stderr: $(grep -v DEBUG "$TMP/5a.p$r.err" | tail -n 3)"
                ok=0
                continue
            fi
            res+=("$(py sub "$tres" "$t0")")
            cons+=("$(py sub "$tcon" "$t0")")
            walls+=("$(py sub "$t1" "$t0")")
        done
        if [ ${#res[@]} -gt 0 ]; then
            local med met=no
            med=$(py median "${res[@]}")
            [ $ok = 1 ] && py le "$med" 1.0 && met=yes
            row 5a "discovery of a new host: \`listen\` start → phone resolved it (${#res[@]}/$REPS runs)" \
                "$(py stats s "${res[@]}")" "mDNS probing floor ~0.75 s" "$(ratio "$med" 0.75)" "≤ 1.0 s" $met
            extra "#5a listen start → laptop prints \"phone connected\": $(py stats s "${cons[@]}")"
            extra "#5a listen start → \`send laptop x\` (started just before) exits 0: $(py stats s "${walls[@]}")"
        else
            row 5a "discovery of a new host: \`listen\` start → phone resolved it" "failed (0/$REPS runs)" \
                "mDNS probing floor ~0.75 s" "—" "≤ 1.0 s" no
        fi
    fi

    if want 5b; then
        note "#5b: browsing for a host that is already up"
        ip netns exec "$laptop" unshare --uts sh -c 'hostname "$0" && exec "$@"' laptop \
            "$BIN" --data-dir "$lapdir" listen </dev/null >"$TMP/5b.l.out" \
            2> >(stamp >"$TMP/5b.l.err") &
        pid_l=$!
        LIVE[$pid_l]=1
        listening_port "$TMP/5b.l.err" >/dev/null || die "laptop did not start listening: $(cat "$TMP/5b.l.err")"
        sleep 2.2

        # One `send laptop x` on phone: sets T_RES (start → resolved), T_WALL
        # (start → exit 0), T_UP (start → its mDNS daemon logs its first line).
        one_send() {
            local tag=$1 t0 t1 tr tu
            T_RES= T_WALL= T_UP=
            t0=$EPOCHREALTIME
            LOG=$MDNS_LOG spawn "$phone" phone /dev/null "$TMP/5b.$tag.out" "$TMP/5b.$tag.err" 10 \
                --data-dir "$phdir" send laptop x --timeout 5
            reap "$PID"
            t1=$EPOCHREALTIME
            tr=$(py first "$TMP/5b.$tag.err" laptop)
            if [ $RC -ne 0 ] || [ -z "$tr" ]; then
                note "#5b $tag failed: send exit $RC: $(grep -v DEBUG "$TMP/5b.$tag.err" | tail -n 3)"
                return 1
            fi
            T_RES=$(py sub "$tr" "$t0")
            T_WALL=$(py sub "$t1" "$t0")
            tu=$(py firstlog "$TMP/5b.$tag.err")
            [ -n "$tu" ] && T_UP=$(py sub "$tu" "$t0")
            return 0
        }

        local res=() walls=() ups=() ok=1
        for ((r = 0; r < REPS; r++)); do
            sleep 1.6 # mDNS responders answer a record at most once a second
            if one_send "s$r"; then
                res+=("$T_RES")
                walls+=("$T_WALL")
                [ -n "$T_UP" ] && ups+=("$T_UP")
            else
                ok=0
            fi
        done
        if [ ${#res[@]} -gt 0 ]; then
            local med met=no
            med=$(py median "${res[@]}")
            [ $ok = 1 ] && py le "$med" 0.1 && met=yes
            row 5b "host already up: \`send laptop x\` start → resolved (${#res[@]}/$REPS runs, ≥ 1.5 s apart)" \
                "$(py stats s "${res[@]}")" "mdns-sd browse alone: 35–60 ms" "$(ratio "$med" 0.06)" "≤ 0.1 s" $met
            extra "#5b \`send laptop x\` start → exit 0 (resolve + connect + ack + bye): $(py stats s "${walls[@]}")"
            if [ ${#ups[@]} -gt 0 ]; then
                extra "#5b of which start → phone's mDNS daemon up (process start-up; the rest is query → answer): $(py stats s "${ups[@]}")"
            fi
        else
            row 5b "host already up: \`send laptop x\` start → resolved" "failed (0/$REPS runs)" \
                "mdns-sd browse alone: 35–60 ms" "—" "≤ 0.1 s" no
        fi

        # Back to back: a second query within a second of the first answer.
        local b2b=() b2bw=()
        for ((r = 0; r < REPS; r++)); do
            sleep 1.6
            one_send "b$r.first" || continue
            one_send "b$r.second" && { b2b+=("$T_RES"); b2bw+=("$T_WALL"); }
        done
        if [ ${#b2b[@]} -gt 0 ]; then
            extra "#5b back to back (second \`send\` right after the first exits, within 1 s of its answer): start → resolved $(py stats s "${b2b[@]}"); start → exit $(py stats s "${b2bw[@]}")"
        else
            extra "#5b back to back: every run failed"
        fi

        # `peers --timeout T`: the smallest T that lists laptop every time.
        local T n listed walls_t best= bestline=
        for T in 0.1 0.2 0.3; do
            listed=0
            walls_t=()
            for ((r = 0; r < REPS; r++)); do
                sleep 1.6
                local t0 t1
                t0=$EPOCHREALTIME
                spawn "$phone" phone /dev/null "$TMP/5b.peers$T.$r.out" "$TMP/5b.peers$T.$r.err" 10 \
                    --data-dir "$phdir" peers --json --timeout "$T"
                reap "$PID"
                t1=$EPOCHREALTIME
                walls_t+=("$(py sub "$t1" "$t0")")
                [ $RC -eq 0 ] && py peersjson "$TMP/5b.peers$T.$r.out" laptop >/dev/null && listed=$((listed + 1))
            done
            extra "#5b \`peers --json --timeout $T\`: laptop listed in $listed/$REPS runs; wall time $(py stats s "${walls_t[@]}")"
            if [ -z "$best" ] && [ $listed -eq "$REPS" ]; then
                best=$T
                bestline="--timeout $T: $REPS/$REPS listed, wall $(py stats s "${walls_t[@]}")"
            fi
        done
        if [ -n "$best" ]; then
            row 5b "smallest \`peers --json --timeout T\` (of 0.1, 0.2, 0.3) that lists laptop every time" \
                "$bestline" "default --timeout 2 s" "$(ratio "$best" 2)" "—" -
        else
            row 5b "smallest \`peers --json --timeout T\` (of 0.1, 0.2, 0.3) that lists laptop every time" \
                "none of them lists it every time" "default --timeout 2 s" "—" "—" -
        fi
        stop "$pid_l"
    fi
    lan_down
}

# --- #6: scale ----------------------------------------------------------------

bench_6() {
    local n=$SCALE_N
    note "building a LAN of $((n + 1)) hosts"
    lan_up $((n + 1))
    local i r dirs=()
    for ((i = 0; i <= n; i++)); do dirs+=("$(newdir)"); done

    if want 6a; then
        note "#6a: $n hosts, all see all ($REPS repetitions, $SAMPLES sampled browsers)"
        local samples=() names=() vals=() rss=() spreads=() ok=1
        for ((i = 0; i < SAMPLES; i++)); do samples+=($((i * n / SAMPLES))); done
        for ((i = 0; i < n; i++)); do names+=("h$i"); done
        local browse_t
        browse_t=$(pick 8 6)
        for ((r = 0; r < REPS; r++)); do
            [ $r -gt 0 ] && sleep 1.6
            local bpids=() lpids=() t_first t_last s
            for s in "${samples[@]}"; do
                LOG=$MDNS_LOG spawn "${HOSTS[s]}" "h$s" /dev/null "$TMP/6a.b$r.$s.out" "$TMP/6a.b$r.$s.err" \
                    $((browse_t + 5)) --data-dir "$(newdir)" peers --json --timeout "$browse_t"
                bpids+=("$PID")
            done
            t_first=$EPOCHREALTIME
            for ((i = 0; i < n; i++)); do
                t_last=$EPOCHREALTIME
                spawn "${HOSTS[i]}" "h$i" /dev/null "$TMP/6a.l$r.$i.out" "$TMP/6a.l$r.$i.err" - \
                    --data-dir "${dirs[i]}" listen
                lpids+=("$PID")
            done
            spreads+=("$(py sub "$t_last" "$t_first")")
            for s in "${bpids[@]}"; do reap "$s"; done
            # Resident memory of every listen, after the rush.
            local p kb
            for p in "${lpids[@]}"; do
                kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
                [ -n "$kb" ] && rss+=("$kb")
            done
            stop "${lpids[@]}"
            for s in "${samples[@]}"; do
                local others=() t_all
                for ((i = 0; i < n; i++)); do [ $i -ne "$s" ] && others+=("h$i"); done
                if ! t_all=$(py allseen "$TMP/6a.b$r.$s.err" "${others[@]}"); then
                    note "#6a repetition $r, browser on h$s: $t_all"
                    ok=0
                    continue
                fi
                if ! py peersjson "$TMP/6a.b$r.$s.out" "${others[@]}" >/dev/null; then
                    note "#6a repetition $r, browser on h$s: its \`peers\` list misses hosts"
                    ok=0
                fi
                vals+=("$(py sub "$t_all" "$t_last")")
            done
        done
        local label="$n hosts, all see all: last \`listen\` start → a browser has resolved all $((n - 1)) others"
        label+=" (${#vals[@]}/$((REPS * SAMPLES)) browser runs)"
        if [ ${#vals[@]} -gt 0 ]; then
            local med met=no
            med=$(py median "${vals[@]}")
            [ $ok = 1 ] && py le "$med" 1.5 && met=yes
            row 6a "$label" "$(py stats s "${vals[@]}")" "mdns-sd alone, 50 hosts: 1.1 s" \
                "$(ratio "$med" 1.1)" "≤ 1.5 s" $met
        else
            row 6a "$label" "failed" "mdns-sd alone, 50 hosts: 1.1 s" "—" "≤ 1.5 s" no
        fi
        extra "#6a starting the $n listens took $(py stats s "${spreads[@]}") (first → last start)"
        if [ ${#rss[@]} -gt 0 ]; then
            local mib
            mib=$(py div "$(py mean "${rss[@]}")" 1024)
            row 6a "RSS per \`listen\` process ($n hosts, mean of ${#rss[@]})" "$(py num "$mib") MiB" \
                "mdns-sd daemon alone: ~3 MiB" "$(ratio "$mib" 3)" "—" -
        fi
    fi

    if want 6b; then
        note "#6b: 1 listen ← $n concurrent senders × $TEXTS texts ($REPS repetitions)"
        local j ins=()
        for ((j = 1; j <= n; j++)); do
            awk -v j="$j" -v m="$TEXTS" 'BEGIN { for (k = 1; k <= m; k++) printf "s%d %d\n", j, k }' \
                >"$TMP/6b.in$j"
        done
        local els=() rates=() allok=1 port
        for ((r = 0; r < REPS; r++)); do
            [ $r -gt 0 ] && sleep 1
            spawn "${HOSTS[0]}" laptop /dev/null "$TMP/6b.l$r.out" "$TMP/6b.l$r.err" - \
                --data-dir "${dirs[0]}" listen
            local pid_l=$PID spids=() t0 t1 bad=0
            port=$(listening_port "$TMP/6b.l$r.err") || die "laptop did not start listening: $(cat "$TMP/6b.l$r.err")"
            t0=$EPOCHREALTIME
            for ((j = 1; j <= n; j++)); do
                spawn "${HOSTS[j]}" "h$j" "$TMP/6b.in$j" "$TMP/6b.s$r.$j.out" "$TMP/6b.s$r.$j.err" \
                    "$(pick 120 60)" --data-dir "${dirs[j]}" send "10.78.0.1:$port"
                spids+=("$PID")
            done
            for ((j = 1; j <= n; j++)); do
                reap "${spids[j - 1]}"
                if [ $RC -ne 0 ]; then
                    bad=$((bad + 1))
                    note "#6b repetition $r: sender h$j exited $RC: $(tail -n 2 "$TMP/6b.s$r.$j.err")"
                fi
            done
            t1=$EPOCHREALTIME
            stop "$pid_l"
            # Every (sender, number) exactly once, from the right sender.
            local check
            check=$(awk -v n="$n" -v m="$TEXTS" '
                { total++
                  if (!match($0, /^h[0-9]+: s[0-9]+ [0-9]+$/)) { badline++; next }
                  split($0, f, /[: ]+/)
                  host = substr(f[1], 2) + 0; s = substr(f[2], 2) + 0; k = f[3] + 0
                  if (host != s || s < 1 || s > n || k < 1 || k > m) { badline++; next }
                  if (seen[s, k]++) dup++
                  else uniq++ }
                END { printf "%d %d %d %d\n", total, uniq, dup + 0, badline + 0 }' "$TMP/6b.l$r.out")
            read -r total uniq dup badl <<<"$check"
            local expect=$((n * TEXTS))
            if [ $bad -ne 0 ] || [ "$total" -ne $expect ] || [ "$uniq" -ne $expect ] ||
                [ "$dup" -ne 0 ] || [ "$badl" -ne 0 ]; then
                allok=0
                note "#6b repetition $r: $bad senders failed; laptop printed $total lines, $uniq distinct of $expect, $dup duplicates, $badl malformed"
            fi
            local el
            el=$(py sub "$t1" "$t0")
            els+=("$el")
            rates+=("$(py div "$expect" "$el")")
        done
        local what="1 \`listen\` ← $n concurrent \`send IP:PORT\` × $(py num "$TEXTS") texts (direct, no discovery)"
        row 6b "$what: all start → all acked" "$(py stats s "${els[@]}")" "—" "—" "—" -
        row 6b "$what: throughput" "$(py stats texts/s "${rates[@]}")" "—" "—" "—" -
        if [ $allok = 1 ]; then
            row 6b "$what: every text acked, none lost or duplicated ($REPS runs)" "yes" "—" "—" \
                "every text acked, none lost" yes
        else
            row 6b "$what: every text acked, none lost or duplicated ($REPS runs)" "no" "—" "—" \
                "every text acked, none lost" no
        fi
    fi
    lan_down
}

note "binary $BIN; $(pick "" "quick mode, ")$REPS repetitions; namespaces ${PREFIX}*"
if want 5a || want 5b; then bench_5; fi
if want 6a || want 6b; then bench_6; fi
note "done"
