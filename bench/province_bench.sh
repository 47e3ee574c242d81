#!/usr/bin/env bash
# Province-size lab: one monitord probing N_ICMP loopback targets (3 echoes every 60 s) and
# polling N_SNMP of them over SNMP (interfaces + health every 60 s; snmpsim serving the device
# recordings), for a bounded time, with Prometheus-like scrapes every SCRAPE_INTERVAL seconds.
# Beside it, on the same targets in the same run: fping (CPU per echo) and snmp_exporter (CPU
# per varbind). Inside a private network namespace. See bench/README.md, "Province".
#
# usage:  sudo bench/province_bench.sh                     (10,000 + 500, about 20 minutes)
#         N_ICMP=1000 N_SNMP=50 DURATION=120 bench/province_bench.sh
#
# Writes bench/results/province_<timestamp>.md (+ .kv: every figure, .scrapes.tsv).
# Safety: every packet goes to 127.0.0.0/8 inside a network namespace this script creates and
# deletes (only `lo` in it); every wait is bounded by a count and by `timeout`; only PIDs this
# script started are signalled, by PID.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
SCRIPT="$BENCH_DIR/$(basename "${BASH_SOURCE[0]}")"

N_ICMP="${N_ICMP:-10000}"                # devices pinged, 127.1.X.Y (all of them)
N_SNMP="${N_SNMP:-500}"                  # of those, also polled over SNMP
KABUPATEN="${KABUPATEN:-40}"             # kabupaten (a link device each; villages behind it)
DURATION="${DURATION:-300}"              # the full run's measurement window (5 rounds of 60 s)
SCRAPE_INTERVAL="${SCRAPE_INTERVAL:-15}" # /metrics scrapes during the window, like Prometheus
SCRAPE_GZIP="${SCRAPE_GZIP:-0}"          # 1: scrapes ask for gzip as Prometheus does (the scrape
                                         # size is then the compressed size on the wire)
QUIET_S="${QUIET_S:-120}"                # windows without scrapes, in an ICMP-only run and at the
                                         # start of the full run: they split the CPU (0: skip both)
INTERVAL_S="${INTERVAL_S:-60}"           # ICMP profile: every 60 s ...
COUNT="${COUNT:-3}"                      # ... 3 echoes ...
PACKET_INTERVAL="${PACKET_INTERVAL:-1s}" # ... 1 s apart ...
PROBE_TIMEOUT="${PROBE_TIMEOUT:-2s}"     # ... each waited for 2 s
SNMP_INTERVAL_S="${SNMP_INTERVAL_S:-60}"
SNMP_TIMEOUT="${SNMP_TIMEOUT:-2s}"
MAXREP="${MAXREP:-25}"
MAX_OIDS="${MAX_OIDS:-10}"
SCHEDULER_TICK="${SCHEDULER_TICK:-}"     # daemon.scheduler_tick; empty: monitord's default (50 ms)
SNMPSIM_PROCS="${SNMPSIM_PROCS:-2}"      # snmpsim processes sharing the SNMP endpoints
SNMP_PORT="${SNMP_PORT:-1161}"
PEERS="${PEERS-fping exporter}"           # peers measured in the same run
EXP_CONC="${EXP_CONC:-10}"               # snmp_exporter scrapes in parallel
READY_MAX_S="${READY_MAX_S:-120}"        # monitord start-up (until /-/ready answers 200)
WARMUP_MAX_S="${WARMUP_MAX_S:-240}"      # until every target is probed and every device polled
AGENTS_MAX_S="${AGENTS_MAX_S:-180}"      # until every SNMP endpoint answers
TOTAL_LIMIT_S="${TOTAL_LIMIT_S:-3000}"   # hard limit for the whole run
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
RECORDINGS="${RECORDINGS:-$ROOT/tests/data/snmprec}"
PY="${PY:-$ROOT/.venv/bin/python}"
REV="${REV:-worktree}"
HELPER="$BENCH_DIR/province_summary.py"
RESPONDER="$(dirname "$PY")/snmpsim-command-responder"

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ------------------------------------------------------------------------------ outer: the netns
if [ -z "${BENCH_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || die "run as root (network namespace, sysctl, fping's raw socket)"
    for v in N_ICMP N_SNMP KABUPATEN DURATION SCRAPE_INTERVAL QUIET_S SNMPSIM_PROCS; do
        [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"
    done
    if [ "$N_ICMP" -lt 1 ] || [ "$N_ICMP" -gt 62500 ]; then die "N_ICMP must be 1..62500"; fi
    [ "$N_SNMP" -le "$N_ICMP" ] || die "N_SNMP must be <= N_ICMP (SNMP devices are pinged too)"
    [ "$DURATION" -ge $((2 * SCRAPE_INTERVAL)) ] || die "DURATION must be >= 2 x SCRAPE_INTERVAL"
    [ "$SNMPSIM_PROCS" -ge 1 ] || die "SNMPSIM_PROCS must be >= 1"
    for c in curl /usr/bin/time ip timeout xargs; do
        command -v "$c" > /dev/null || die "$c missing: apt-get install -y --no-install-recommends curl time iproute2"
    done
    [[ " $PEERS " != *" fping "* ]] || command -v fping > /dev/null || die "fping missing (apt-get install fping, or PEERS without fping)"
    [[ " $PEERS " != *" exporter "* ]] || command -v prometheus-snmp-exporter > /dev/null \
        || die "prometheus-snmp-exporter missing (apt-get install prometheus-snmp-exporter, or PEERS without exporter)"
    [ -x "$PY" ] || die "no venv at $ROOT/.venv (scripts/setup.sh)"
    [ "$N_SNMP" = 0 ] || [ -x "$RESPONDER" ] || die "snmpsim missing at $RESPONDER (the venv's dev extras)"
    [ "$N_SNMP" = 0 ] || [ -d "$RECORDINGS" ] || die "no recordings at $RECORDINGS"
    enter_netns "provbench_$$" "$@"
fi

# ------------------------------------------------------------------------------ inner
assert_in_netns

CLK_TCK="$(getconf CLK_TCK)"
TS="$(date +%Y%m%d_%H%M%S)"
TMP="$(mktemp -d /tmp/province_bench.XXXXXX)"
KV="$TMP/figures.kv"         # every figure, key=value; the table is rendered from it
TARGETS="$TMP/targets.txt"
AGENTS="$TMP/agents.txt"     # "address community" of every SNMP device
OUT="$RESULTS_DIR/province_$TS.md"
mkdir -p "$RESULTS_DIR"
: > "$KV"

clean_up_on_exit

record() { printf '%s=%s\n' "$1" "$2" >> "$KV"; }
# record_helper PREFIX HELPER ARGS...: a helper's key=value lines, keys prefixed
record_helper() {
    local prefix="$1" out
    shift
    out=$("$PY" "$@") || { log "helper failed: $*"; return 1; }
    printf '%s\n' "$out" | sed "s/^/$prefix./" >> "$KV"
}
ticks_of() { local t=0 p; for p in "$@"; do t=$((t + $(proc_ticks "$p"))); done; echo "$t"; }
secs() { calc "\"%.3f\", $1 / $CLK_TCK"; }

snapshot_monitord "$TMP" "province_$TS.monitord.diff"
# the inventory once, for the address lists (the configs are written per run: ports differ)
"$PY" "$HELPER" config --out "$TMP/inventory.yaml" --devices "$N_ICMP" --snmp-devices "$N_SNMP" \
    --kabupaten "$KABUPATEN" --port 1 --state-dir "$TMP" --targets "$TARGETS" --agents "$AGENTS"
grep -qv '^127\.' "$TARGETS" && die "non-loopback target generated"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
log "N_ICMP=$N_ICMP N_SNMP=$N_SNMP DURATION=${DURATION}s QUIET_S=$QUIET_S PEERS='$PEERS';" \
    "kernel $(uname -r), $(nproc) CPUs, load $LOAD0"
record n_icmp "$N_ICMP"; record n_snmp "$N_SNMP"; record kabupaten "$KABUPATEN"
record interval_s "$INTERVAL_S"; record snmp_interval_s "$SNMP_INTERVAL_S"; record count "$COUNT"
record scrape_interval_s "$SCRAPE_INTERVAL"; record scrape_gzip "$SCRAPE_GZIP"; record load_start "$LOAD0"
record scheduler_tick "${SCHEDULER_TICK:-default (50ms)}"; record exporter_conc "$EXP_CONC"

# ------------------------------------------------------------------------------ SNMP agents
# SNMPSIM_PROCS snmpsim processes, the endpoints dealt out among them, serving copies of the
# recordings in use (snmpsim names a symlinked recording after its target).
start_agents() {
    local data="$TMP/recordings" p endpoints
    mkdir -p "$data"
    awk '{print $2}' "$AGENTS" | sort -u | while read -r c; do cp "$RECORDINGS/$c.snmprec" "$data/"; done
    for ((p = 0; p < SNMPSIM_PROCS; p++)); do
        mapfile -t endpoints < <(awk -v p="$p" -v n="$SNMPSIM_PROCS" -v port="$SNMP_PORT" \
            '(NR - 1) % n == p { print "--agent-udpv4-endpoint=" $1 ":" port }' "$AGENTS")
        [ "${#endpoints[@]}" -gt 0 ] || continue
        mkdir -p "$TMP/snmpsim$p"
        SNMPSIM_ALLOW_ROOT=true timeout -s TERM "$TOTAL_LIMIT_S" "$RESPONDER" --data-dir="$data" \
            --cache-dir="$TMP/snmpsim$p" --logging-method=stderr --log-level=error \
            "${endpoints[@]}" > "$TMP/snmpsim$p.log" 2>&1 &
        local tpid=$! pid
        AGENT_PIDS+=("$tpid")
        pid=$(child_of "$tpid")
        [ -n "$pid" ] || die "snmpsim $p did not start: $(tail -n 3 "$TMP/snmpsim$p.log")"
        AGENT_PIDS+=("$pid")
        SNMPSIM_PIDS+=("$pid")
    done
    record_helper agents "$HELPER" agents-ready --agents "$AGENTS" --port "$SNMP_PORT" \
        --max-seconds "$AGENTS_MAX_S" || die "not every SNMP endpoint answers: $(tail -n 3 "$TMP"/snmpsim*.log)"
    log "snmpsim: $SNMPSIM_PROCS processes serving $N_SNMP endpoints ($(wc -l < "$AGENTS") devices)"
}
SNMPSIM_PIDS=()
if [ "$N_SNMP" != 0 ]; then start_agents; fi

# ------------------------------------------------------------------------------ fping
fping_figures() {
    log "fping: $N_ICMP targets x $COUNT echoes"
    run_fping "$TARGETS" "$TMP/fping.out" "$COUNT" 1 10 500
    record_helper fping "$BENCH_DIR/icmp_summary.py" fping "$TMP/fping.out" --count "$COUNT"
    record fping.cpu_s "$(calc "\"%.2f\", $FPING_USER_S + $FPING_SYS_S")"
    record fping.user_s "$FPING_USER_S"; record fping.sys_s "$FPING_SYS_S"
    record fping.wall_s "$FPING_WALL_S"; record fping.rss_kb "$FPING_RSS_KB"; record fping.rc "$FPING_RC"
    record fping.out_echos "$FPING_ECHOES"
    record fping.version "$FPING_VERSION"
    log "fping: user ${FPING_USER_S}s sys ${FPING_SYS_S}s wall ${FPING_WALL_S}s"
}

# ------------------------------------------------------------------------------ monitord
MD_PID="" MD_TPID="" MD_URL="" MD_LOG=""
# md_start NAME CONFIG_ARGS...: write the config, start monitord from the snapshot, wait for
# /-/ready; records NAME.ready_s and NAME.rss_ready_kb
md_start() {
    local name="$1" port conf="$TMP/$1.yaml" t0
    shift
    port=$(free_port)
    MD_URL="http://127.0.0.1:$port"
    mkdir -p "$TMP/state_$name"
    "$PY" "$HELPER" config --out "$conf" --port "$port" --state-dir "$TMP/state_$name" \
        --kabupaten "$KABUPATEN" --interval "${INTERVAL_S}s" --count "$COUNT" \
        --packet-interval "$PACKET_INTERVAL" --timeout "$PROBE_TIMEOUT" --snmp-port "$SNMP_PORT" \
        --snmp-interval "${SNMP_INTERVAL_S}s" --snmp-timeout "$SNMP_TIMEOUT" \
        --max-repetitions "$MAXREP" --max-oids "$MAX_OIDS" --scheduler-tick "$SCHEDULER_TICK" "$@"
    set_pgr "0 2147483647"   # icmp_socket auto: monitord uses a ping socket, as when not root
    MD_LOG="$TMP/$name.log"
    log "monitord $name: starting on $MD_URL"
    t0=$(now)
    (cd "$TMP" && PYTHONPATH="$SRC" PYTHONUNBUFFERED=1 exec timeout -s TERM "$TOTAL_LIMIT_S" \
        "$PY" -m monitord run -c "$conf") > "$TMP/$name.log" 2>&1 &
    MD_TPID=$!
    STARTED_PIDS+=("$MD_TPID")
    MD_PID=$(child_of "$MD_TPID")
    [ -n "$MD_PID" ] || die "monitord $name did not start: $(tail -n 5 "$TMP/$name.log")"
    STARTED_PIDS+=("$MD_PID")
    wait_ready "$MD_PID" "$MD_URL" || die "monitord $name: /-/ready not 200: $(tail -n 5 "$TMP/$name.log")"
    record "$name.ready_s" "$(calc "\"%.1f\", $(now) - $t0")"
    record "$name.rss_ready_kb" "$(proc_rss_kb "$MD_PID")"
}

# md_warm NAME ICMP SNMP: until ICMP targets have a completed probe and SNMP devices a
# completed poll (bounded); the first round's state events come out meanwhile
md_warm() {
    local name="$1" want_i="$2" want_s="$3" i got_i=0 got_s=0 t0 warm="$TMP/warm.prom"
    t0=$(now)
    for ((i = 0; i < WARMUP_MAX_S / 3; i++)); do
        kill -0 "$MD_PID" 2> /dev/null || die "monitord $name exited: $(tail -n 5 "$TMP/$name.log")"
        if scrape "$MD_URL/metrics" "$warm" > /dev/null 2>&1; then
            read -r got_i got_s < <(awk '/^monitord_icmp_requests_total\{/ && $NF > 0 { i++ }
                /^monitord_snmp_polls_total\{/ && $NF > 0 { s++ } END { print i + 0, s + 0 }' "$warm")
            [ "$got_i" -ge "$want_i" ] && [ "$got_s" -ge "$want_s" ] && break
        fi
        sleep 3
    done
    if [ "$got_i" -lt "$want_i" ] || [ "$got_s" -lt "$want_s" ]; then
        die "monitord $name: after ${WARMUP_MAX_S}s only $got_i/$want_i targets probed, $got_s/$want_s devices polled"
    fi
    record "$name.warm_s" "$(calc "\"%.1f\", $(now) - $t0")"
    rm -f "$warm"
}

md_stop() {  # md_stop NAME: SIGTERM; exit status, log warnings and tracebacks
    local name="$1" rc=0
    stop_pid "$MD_PID"
    wait "$MD_TPID" 2> /dev/null || rc=$?
    STARTED_PIDS=()
    record "$name.exit_status" "$rc"
    record "$name.log_warnings" "$(grep -cE 'WARNING|ERROR|CRITICAL' "$TMP/$name.log" || true)"
    record "$name.log_tracebacks" "$(grep -c 'Traceback' "$TMP/$name.log" || true)"
    grep -E 'WARNING|ERROR|CRITICAL' "$TMP/$name.log" | head -n 5 >&2 || true
}

# cpu_fields C0 C1 PREFIX: record PREFIX.cpu_s, .user_s, .sys_s from two proc_times readings
cpu_fields() {
    local a b
    read -r -a a <<< "$1"; read -r -a b <<< "$2"
    record "$3.cpu_s" "$(secs "$((b[0] - a[0]))")"
    record "$3.user_s" "$(secs "$((b[1] - a[1]))")"
    record "$3.sys_s" "$(secs "$((b[2] - a[2]))")"
}

# quiet_window NAME SECONDS SNMP: CPU, echoes and agent CPU over SECONDS with no scrape inside
# (one just before, one just after: their deltas give the probes, lateness and lag)
quiet_window() {
    local name="$1" seconds="$2" snmp="$3" m1="$TMP/$1_m1.prom" m2="$TMP/$1_m2.prom"
    local c0 c1 t0 t1 e0 e1 a0 a1
    scrape "$MD_URL/metrics" "$m1" > /dev/null
    log "monitord $name: ${seconds}s without scrapes"
    c0=$(proc_times "$MD_PID"); t0=$(now); e0=$(out_echos); a0=$(ticks_of "${SNMPSIM_PIDS[@]}")
    sleep "$seconds"
    kill -0 "$MD_PID" 2> /dev/null || die "monitord exited: $(tail -n 5 "$MD_LOG")"
    c1=$(proc_times "$MD_PID"); t1=$(now); e1=$(out_echos); a1=$(ticks_of "${SNMPSIM_PIDS[@]}")
    scrape "$MD_URL/metrics" "$m2" > /dev/null
    record "$name.rss_kb" "$(proc_rss_kb "$MD_PID")"
    record "$name.wall_s" "$(calc "\"%.3f\", $t1 - $t0")"
    cpu_fields "$c0" "$c1" "$name"
    record "$name.echoes" "$((e1 - e0))"
    record "$name.agent_cpu_s" "$(secs "$((a1 - a0))")"
    record_helper "$name.icmp" "$BENCH_DIR/icmp_summary.py" monitord "$m1" "$m2"
    if [ "$snmp" = 1 ]; then record_helper "$name.snmp" "$BENCH_DIR/snmp_summary.py" monitord "$m1" "$m2"; fi
    record_helper "$name" "$HELPER" window "$m1" "$m2"
    rm -f "$m1" "$m2"
    log "monitord $name: $(grep "^$name.cpu_s=" "$KV") for $((e1 - e0)) echoes"
}

# The ICMP-only run: the same inventory without SNMP, to split the CPU between ICMP and SNMP.
run_icmp_only() {
    md_start icmp --devices "$N_ICMP" --icmp-only
    md_warm icmp "$N_ICMP" 0
    quiet_window icmp "$QUIET_S" 0
    md_stop icmp
}

# The full run: ICMP and SNMP; first QUIET_S s without scrapes, then DURATION s scraped every
# SCRAPE_INTERVAL s (each scrape timed, with the CPU it took and the RSS after it).
run_full() {
    md_start full --devices "$N_ICMP" --snmp-devices "$N_SNMP"
    md_warm full "$N_ICMP" "$N_SNMP"
    if [ "$QUIET_S" != 0 ]; then quiet_window quiet "$QUIET_S" 1; fi
    local rows="$TMP/scrapes.tsv" m1="$TMP/full_m1.prom" m2="$TMP/full_m2.prom" s="$TMP/s.prom"
    local k n=$((DURATION / SCRAPE_INTERVAL)) c0 c1 t0 t1 e0 e1 a0 a1 ca cb ta wall size file inside due_in
    printf 't\twall\tsize\tcpu\tlag_max\trss_kb\tinside\n' > "$rows"
    scrape "$MD_URL/metrics" "$m1" > /dev/null
    log "monitord full: ${DURATION}s with a scrape every ${SCRAPE_INTERVAL}s"
    c0=$(proc_times "$MD_PID"); t0=$(now); e0=$(out_echos); a0=$(ticks_of "${SNMPSIM_PIDS[@]}")
    printf '0\t0\t0\t0\t%s\t%s\t0\n' \
        "$(awk '/^monitord_event_loop_lag_max_seconds / {print $2}' "$m1")" "$(proc_rss_kb "$MD_PID")" >> "$rows"
    for ((k = 1; k <= n; k++)); do
        # sleep until the k-th scrape is due (bounded: at most SCRAPE_INTERVAL)
        due_in=$(calc "\"%.3f\", $t0 + $k * $SCRAPE_INTERVAL - $(now)")
        sleep "$(calc "\"%.3f\", ($due_in > 0 ? $due_in : 0)")"
        kill -0 "$MD_PID" 2> /dev/null || die "monitord full exited during the window: $(tail -n 5 "$TMP/full.log")"
        file="$s" inside=1
        if [ "$k" = "$n" ]; then   # the window ends here; its last scrape is outside it
            c1=$(proc_times "$MD_PID"); t1=$(now); e1=$(out_echos); a1=$(ticks_of "${SNMPSIM_PIDS[@]}")
            file="$m2" inside=0
        fi
        ca=$(proc_ticks "$MD_PID"); ta=$(now)
        read -r wall size < <(scrape "$MD_URL/metrics" "$file" || echo "nan 0")
        cb=$(proc_ticks "$MD_PID")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(calc "\"%.2f\", $ta - $t0")" "$wall" "$size" \
            "$(secs "$((cb - ca))")" "$(awk '/^monitord_event_loop_lag_max_seconds / {print $2}' "$file")" \
            "$(proc_rss_kb "$MD_PID")" "$inside" >> "$rows"
    done
    md_stop full
    local cpu wall_s
    cpu=$(secs "$(( ${c1%% *} - ${c0%% *} ))"); wall_s=$(calc "\"%.3f\", $t1 - $t0")
    record full.wall_s "$wall_s"
    cpu_fields "$c0" "$c1" full
    record full.echoes "$((e1 - e0))"
    record full.scrapes_inside "$((n - 1))"
    record full.agent_cpu_s "$(secs "$((a1 - a0))")"
    record_helper full.icmp "$BENCH_DIR/icmp_summary.py" monitord "$m1" "$m2"
    record_helper full.snmp "$BENCH_DIR/snmp_summary.py" monitord "$m1" "$m2"
    record_helper full "$HELPER" window "$m1" "$m2" --scrapes "$rows" --cpu-s "$cpu" --wall-s "$wall_s"
    cp "$rows" "$RESULTS_DIR/province_$TS.scrapes.tsv"
    log "monitord full: cpu ${cpu}s in ${wall_s}s"
}

# An empty daemon (one target), for the memory that targets add.
run_baseline() {
    md_start baseline --devices 1
    sleep 5
    record baseline.rss_kb "$(proc_rss_kb "$MD_PID")"
    md_stop baseline
}

# ------------------------------------------------------------------------------ snmp_exporter
# One scrape of every SNMP device (module `if_mib` under the device's community), EXP_CONC at
# a time; the exporter's CPU from /proc around them.
run_exporter() {
    local bin=prometheus-snmp-exporter conf="$TMP/exporter.yml" port dir="$TMP/exporter" i up=0
    local times="$TMP/exporter.times" c0 c1 a0 a1 t0 t1
    "$PY" "$HELPER" exporter-config --agents "$AGENTS" --out "$conf" --max-repetitions "$MAXREP"
    port=$(free_port)
    mkdir -p "$dir"
    timeout -s TERM 900 "$bin" --config.file="$conf" --web.listen-address="127.0.0.1:$port" \
        --log.level=warn > "$TMP/exporter.log" 2>&1 &
    local tpid=$! pid
    STARTED_PIDS+=("$tpid")
    pid=$(child_of "$tpid")
    [ -n "$pid" ] || die "snmp_exporter did not start: $(tail -n 3 "$TMP/exporter.log")"
    STARTED_PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/metrics" && { up=1; break; }
        sleep 0.2
    done
    [ "$up" = 1 ] || die "snmp_exporter: no HTTP answer: $(tail -n 3 "$TMP/exporter.log")"
    log "snmp_exporter: one if_mib scrape of each of $N_SNMP devices, $EXP_CONC at a time"
    awk -v port="$port" -v snmp="$SNMP_PORT" -v dir="$dir" '{ printf "http://127.0.0.1:%s/snmp?target=%s:%s&module=%s %s/%s.prom\n", port, $1, snmp, $2, dir, $1 }' \
        "$AGENTS" > "$TMP/exporter.urls"
    : > "$times"
    c0=$(proc_ticks "$pid"); a0=$(ticks_of "${SNMPSIM_PIDS[@]}"); t0=$(now)
    # shellcheck disable=SC2016  # $1 and $2 are the inner shell's
    timeout -s TERM 900 xargs -P "$EXP_CONC" -n 2 sh -c \
        'curl -s --max-time 60 -o "$2" -w "%{http_code} %{time_total}\n" "$1"' _ \
        < "$TMP/exporter.urls" >> "$times" || true
    c1=$(proc_ticks "$pid"); a1=$(ticks_of "${SNMPSIM_PIDS[@]}"); t1=$(now)
    record exporter.rss_kb "$(proc_rss_kb "$pid")"
    stop_started
    record exporter.cpu_s "$(secs "$((c1 - c0))")"
    record exporter.wall_s "$(calc "\"%.2f\", $t1 - $t0")"
    record exporter.agent_cpu_s "$(secs "$((a1 - a0))")"
    record exporter.version "$("$bin" --version 2>&1 | awk 'NR == 1 {print $3}')"
    record_helper exporter "$HELPER" exporter-scrapes --agents "$AGENTS" --dir "$dir" --times "$times"
    log "snmp_exporter: $(grep '^exporter.cpu_s=' "$KV")"
}

# (plain `if`s: a function called on the left of || or && would run without errexit)
run_baseline
if [[ " $PEERS " == *" fping "* ]]; then fping_figures; fi
if [ "$QUIET_S" != 0 ]; then run_icmp_only; fi
run_full
if [[ " $PEERS " == *" exporter "* ]] && [ "$N_SNMP" != 0 ]; then run_exporter; fi

record load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
cp "$KV" "$RESULTS_DIR/province_$TS.kv"
[ ! -f "$TMP/monitord.diff" ] || cp "$TMP/monitord.diff" "$RESULTS_DIR/province_$TS.monitord.diff"
"$PY" "$HELPER" table "$KV" --out "$OUT" \
    --title "Province bench $TS: $N_ICMP ICMP targets ($COUNT echoes every ${INTERVAL_S}s) + $N_SNMP SNMP devices (every ${SNMP_INTERVAL_S}s), ${DURATION}s window ($(nproc) CPUs $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load average at start $LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg)); monitord $CODE"
log "results: $OUT"
