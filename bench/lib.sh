# shellcheck shell=bash
# Shared by bench/icmp_bench.sh and bench/snmp_bench.sh (sourced, not run): the private network
# namespace, PIDs we start and stop, /proc CPU readings, and the snapshot of the monitord code
# measured. Callers set ROOT, SCRIPT, PY, HELPER, TOTAL_LIMIT_S, REV before using these.

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
# scrape URL FILE -> "seconds bytes" (curl), bounded
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
scrape() { curl -sS --max-time 60 -o "$2" -w '%{time_total} %{size_download}\n' "$1"; }
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
