# shellcheck shell=bash
# Shared by bench/icmp_bench.sh, snmp_bench.sh and province_bench.sh (sourced, not run): the
# private network namespace, PIDs we start and stop, /proc CPU and ICMP readings, fping timed,
# and the snapshot of the monitord code measured. Callers set ROOT, SCRIPT, PY, HELPER,
# TOTAL_LIMIT_S, REV before using these.

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# enter_netns NAME ARGS...: create the network namespace NAME (lo up), re-run $SCRIPT ARGS
# inside it under `timeout`, delete it afterwards, and exit with the inner run's status.
enter_netns() {
    local ns="$1"
    shift
    ip netns add "$ns"
    inner=""  # global: the INT/TERM trap reads it
    # shellcheck disable=SC2064
    trap "ip netns del '$ns' 2> /dev/null || true" EXIT
    trap '[ -n "$inner" ] && kill -TERM "$inner" 2> /dev/null; wait "$inner" 2> /dev/null; exit 130' INT TERM
    ip -n "$ns" link set lo up
    log "running inside fresh network namespace $ns (only lo)"
    local rc=0
    BENCH_NETNS="$ns" timeout -s TERM -k 30 "$TOTAL_LIMIT_S" \
        ip netns exec "$ns" bash "$SCRIPT" "$@" &
    inner=$!
    wait "$inner" || rc=$?
    exit "$rc"
}

# Refuse to run anywhere but in the namespace enter_netns made, with nothing but lo in it.
assert_in_netns() {
    [ "$(ip netns identify $$ 2> /dev/null)" = "$BENCH_NETNS" ] || die "not inside netns $BENCH_NETNS"
    [ "$(ip -o link show | wc -l)" = 1 ] || die "the namespace has interfaces other than lo"
}

STARTED_PIDS=()   # PIDs of the tool being measured (timeout wrappers and their children)

stop_pid() {  # TERM one PID we started, wait (bounded), then KILL
    local pid="$1" i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2> /dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2> /dev/null || return 0
        sleep 0.2
    done
    log "PID $pid did not stop on TERM within 10 s: KILL"
    kill -KILL "$pid" 2> /dev/null || true
}
# stop_started: stop every PID of the current tool, newest first (the tool, then its timeout
# wrapper), and forget them, so a PID is never signalled after it has been reaped
stop_started() {
    local i
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${STARTED_PIDS[$i]}"; done
    STARTED_PIDS=()
}

AGENT_PIDS=()     # PIDs kept for the whole run (agents and their timeout wrappers)

# clean_up_on_exit: at exit (or INT/TERM), stop the current tool, then the run's agents newest
# first, and delete the run's temporary directory $TMP
clean_up_on_exit() {
    trap _clean_up EXIT
    trap 'exit 143' INT TERM
}
_clean_up() {
    local i
    stop_started
    for ((i = ${#AGENT_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${AGENT_PIDS[$i]}"; done
    rm -rf "$TMP"
}

# Icmp: counters of this network namespace by name, e.g. `icmp_counters OutEchos InEchoReps`
icmp_counters() {
    awk -v want="$*" '$1 == "Icmp:" {
        if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
        n = split(want, w, " "); for (i = 1; i <= n; i++) printf "%s%s", $c[w[i]], (i < n ? " " : "\n") }' /proc/net/snmp
}
out_echos() { icmp_counters OutEchos; }
set_pgr() { echo "$1" > /proc/sys/net/ipv4/ping_group_range; }

# run_fping TARGETS OUT COUNT INTERVAL_MS PERIOD_MS TIMEOUT_MS: `fping -C COUNT` over the address
# file TARGETS as root (its raw socket), its report in OUT, bounded by 900 s. Sets FPING_RC,
# FPING_USER_S, FPING_SYS_S, FPING_WALL_S, FPING_RSS_KB (peak, /usr/bin/time -v), FPING_ECHOES
# (this namespace's OutEchos during the run) and FPING_VERSION.
# shellcheck disable=SC2034
run_fping() {
    local targets="$1" out="$2" count="$3" interval="$4" period="$5" timeout_ms="$6" tv="$2.time" e0 e1
    set_pgr "1 0"
    FPING_RC=0
    e0=$(out_echos)
    timeout -s TERM 900 /usr/bin/time -v -o "$tv" fping -C "$count" -q -i "$interval" -p "$period" \
        -t "$timeout_ms" -f "$targets" 2> "$out" || FPING_RC=$?
    e1=$(out_echos)
    FPING_ECHOES=$((e1 - e0))
    read -r FPING_USER_S FPING_SYS_S FPING_WALL_S FPING_RSS_KB < <(awk -F': ' '
        /User time \(seconds\)/ {u = $2} /System time \(seconds\)/ {s = $2}
        /Maximum resident set size/ {m = $2}
        /Elapsed \(wall clock\) time/ { n = split($2, a, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + a[i] }
        END { printf "%s %s %.2f %s\n", u, s, w, m }' "$tv")
    FPING_VERSION=$(fping -v 2>&1 | awk '{print $3}')
}

now() { date +%s.%N; }
# CPU ticks (utime+stime, all threads) of a running PID
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# "total utime stime" CPU ticks of a running PID
proc_times() { awk '{ sub(/^.*\) /, ""); print $12 + $13, $12, $13 }' "/proc/$1/stat"; }
proc_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
calc() { awk "BEGIN { printf $1 }"; }
# child_of PID -> the (only) child of a `timeout` wrapper we started
child_of() {
    local tpid="$1" i c=""
    for ((i = 0; i < 50; i++)); do
        c=$(awk '{print $1}' "/proc/$tpid/task/$tpid/children" 2> /dev/null || true)
        [ -n "$c" ] && break
        sleep 0.1
    done
    echo "$c"
}
# Until PID's /-/ready at URL answers 200 (true) or PID dies or READY_MAX_S pass (false).
wait_ready() {
    local i code
    for ((i = 0; i < READY_MAX_S * 5; i++)); do
        kill -0 "$1" 2> /dev/null || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$2/-/ready" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}
# scrape URL FILE -> "seconds bytes" (curl), bounded; with SCRAPE_GZIP=1 it asks for gzip as
# Prometheus does (bytes: on the wire, compressed; FILE: decoded)
scrape() {
    local gzip=()
    [ "${SCRAPE_GZIP:-0}" = 1 ] && gzip=(--compressed -H 'Accept-Encoding: gzip')
    curl -sS --max-time 60 "${gzip[@]}" -o "$2" -w '%{time_total} %{size_download}\n' "$1"
}
add_row() { local IFS=$'\t'; echo "$*" >> "$ROWS"; }

declare -A R   # key=value output of the helper, read by the scripts that source this file
# shellcheck disable=SC2034
helper_kv() {
    R=()
    local k v
    while IFS='=' read -r k v; do R[$k]=$v; done < <("$PY" "$HELPER" "$@")
}

# snapshot_monitord TMP DIFF_NAME: copy the monitord code measured into TMP/src (sets SRC and
# CODE), so every run of the bench measures the same code even if the working tree changes
# meanwhile. Run it from TMP with PYTHONPATH=$SRC: neither the editable install nor the
# current directory can then put another copy first. Working-tree changes are saved in
# TMP/monitord.diff (the caller keeps it as DIFF_NAME).
snapshot_monitord() {
    local tmp="$1" diff_name="$2" got
    SRC="$tmp/src"
    mkdir -p "$SRC"
    if [ "$REV" = worktree ]; then
        tar -C "$ROOT" --exclude=__pycache__ -cf - monitord | tar -C "$SRC" -xf -
        CODE="$(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo '?')"
        if [ -n "$(git -C "$ROOT" status --porcelain -- monitord 2> /dev/null)" ]; then
            git -C "$ROOT" diff HEAD -- monitord > "$tmp/monitord.diff" || true
            git -C "$ROOT" ls-files --others --exclude-standard -- monitord | sed 's/^/untracked: /' >> "$tmp/monitord.diff"
            CODE="$CODE+worktree changes (diff sha1 $(sha1sum < "$tmp/monitord.diff" | cut -c1-8), saved as $diff_name)"
        fi
    else
        git -C "$ROOT" archive "$REV" monitord | tar -C "$SRC" -xf - || die "cannot export monitord at $REV"
        CODE="$(git -C "$ROOT" rev-parse --short "$REV")"
    fi
    got=$(cd "$tmp" && PYTHONPATH="$SRC" "$PY" -c 'import monitord; print(monitord.__file__)')
    [ "$got" = "$SRC/monitord/__init__.py" ] || die "snapshot not imported first (got $got)"
    log "monitord code: $CODE"
}
