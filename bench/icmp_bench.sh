#!/usr/bin/env bash
# ICMP benchmark: monitord beside fping (and smokeping_prober) on the same N loopback targets
# 127.1.X.Y, in one run, inside a private network namespace. See bench/README.md.
#
# usage:  sudo bench/icmp_bench.sh                 (N=5000, 3 echoes per target)
#         N=1000 WINDOW_S=30 TOOLS="fping monitord" bench/icmp_bench.sh
#
# Writes the result table to bench/results/icmp_<timestamp>.md (+ .tsv with the raw rows).
# Safety: every packet goes to 127.0.0.0/8 inside a network namespace this script creates and
# deletes (only `lo` in it); every wait is bounded by a count and by `timeout`; only PIDs this
# script started are signalled, by PID.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
SCRIPT="$BENCH_DIR/$(basename "${BASH_SOURCE[0]}")"

N="${N:-5000}"
COUNT="${COUNT:-3}"
TOOLS="${TOOLS:-fping monitord smokeping}"
MODES="${MODES:-dgram raw}"                  # monitord runs, one per ping_group_range setting
WINDOW_S="${WINDOW_S:-30}"                   # monitord measurement window (3 x 10 s intervals)
INTERVAL="${INTERVAL:-10s}"
PACKET_INTERVAL="${PACKET_INTERVAL:-50ms}"   # on the scheduler tick grid (daemon.scheduler_tick 50 ms)
PROBE_TIMEOUT="${PROBE_TIMEOUT:-500ms}"
MAX_CONCURRENT="${MAX_CONCURRENT:-5000}"
READY_MAX_S="${READY_MAX_S:-60}"             # monitord start-up (until /-/ready answers 200)
WARMUP_MAX_S="${WARMUP_MAX_S:-60}"           # until every target has been probed once
SCRAPES="${SCRAPES:-3}"                      # extra /metrics scrapes timed for their CPU cost
FPING_INTERVAL_MS="${FPING_INTERVAL_MS:-1}"
FPING_PERIOD_MS="${FPING_PERIOD_MS:-10}"
FPING_TIMEOUT_MS="${FPING_TIMEOUT_MS:-500}"
SP_INTERVAL="${SP_INTERVAL:-1s}"
SP_WARMUP_S="${SP_WARMUP_S:-5}"
SP_WINDOW_S="${SP_WINDOW_S:-20}"
SP_START_S="${SP_START_S:-60}"
TOTAL_LIMIT_S="${TOTAL_LIMIT_S:-1800}"       # hard limit for the whole run
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
PY="${PY:-$ROOT/.venv/bin/python}"          # the venv with monitord's dependencies
REV="${REV:-worktree}"                       # monitord code to measure: worktree or a git revision
HELPER="$BENCH_DIR/icmp_summary.py"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ------------------------------------------------------------------------------ outer: the netns
# Create bench_<pid> (lo up), re-run this script inside it under `timeout`, delete it after.
if [ -z "${BENCH_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || die "run as root (network namespace, raw sockets, sysctl)"
    if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 62500 ]; then die "N must be 1..62500"; fi
    for c in fping promtool curl /usr/bin/time ip timeout; do
        command -v "$c" > /dev/null || die "$c missing: apt-get install -y --no-install-recommends fping prometheus curl time iproute2"
    done
    [ -x "$PY" ] || die "no venv at $ROOT/.venv (scripts/setup.sh)"
    enter_netns "bench_$$" "$@"
fi

# ------------------------------------------------------------------------------ inner
assert_in_netns

CLK_TCK="$(getconf CLK_TCK)"
TS="$(date +%Y%m%d_%H%M%S)"
TMP="$(mktemp -d /tmp/icmp_bench.XXXXXX)"
ROWS="$TMP/rows.tsv"
TF="$TMP/targets.txt"
mkdir -p "$RESULTS_DIR"

clean_up_on_exit

proc_threads() { awk '/^Threads/ {print $2}' "/proc/$1/status"; }
icmp_mib() { icmp_counters OutEchos InEchoReps; }
# packets dropped on full receive queues of this netns's raw and ping sockets (last column)
sock_drops() { awk 'FNR > 1 { d += $NF } END { printf "%d\n", d }' /proc/net/raw /proc/net/icmp; }
# add_row (lib.sh) columns: tool mode n echoes lost cpu_s rtt_ms rss_kb notes

snapshot_monitord "$TMP" "icmp_$TS.monitord.diff"

awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "127.1.%d.%d\n", int(i / 250), (i % 250) + 1 }' > "$TF"
grep -qv '^127\.' "$TF" && die "non-loopback target generated"
printf 'tool\tmode\tN\techoes\tlost\tcpu_s\tmedian_rtt_ms\trss_kb\tnotes\n' > "$ROWS"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
log "N=$N COUNT=$COUNT TOOLS='$TOOLS' MODES='$MODES' WINDOW_S=$WINDOW_S; kernel $(uname -r), $(nproc) CPUs," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------------------ fping
fping_row() {
    log "fping: $N targets x $COUNT echoes"
    run_fping "$TF" "$TMP/fping.out" "$COUNT" "$FPING_INTERVAL_MS" "$FPING_PERIOD_MS" "$FPING_TIMEOUT_MS"
    helper_kv fping "$TMP/fping.out" --count "$COUNT"
    local cpu; cpu=$(calc "\"%.2f\", $FPING_USER_S + $FPING_SYS_S")
    add_row fping raw "$N" "${R[echoes]}" "${R[lost]}" "$cpu" "${R[median_ms]}" "$FPING_RSS_KB" \
        "fping $FPING_VERSION -C$COUNT -q -i$FPING_INTERVAL_MS -p$FPING_PERIOD_MS -t$FPING_TIMEOUT_MS, rc=$FPING_RC; user ${FPING_USER_S}s + sys ${FPING_SYS_S}s (/usr/bin/time -v); wall ${FPING_WALL_S}s; replies ${R[replies]}/${R[echoes]}, targets with all replies ${R[full]}/${R[targets]}; RTT median of all replies ${R[median_ms]} ms, p99 ${R[p99_ms]} ms; RSS = peak (maxrss)"
    log "fping: cpu ${cpu}s wall ${FPING_WALL_S}s replies ${R[replies]}/${R[echoes]} median ${R[median_ms]} ms"
}

# ------------------------------------------------------------------------------ monitord
# md_fail MODE REASON: record a FAILED row, with what the process and its log showed
md_fail() {
    local mode="$1" reason="$2" cpu="-" rss="-"
    if [ -n "${MD_PID:-}" ] && [ -e "/proc/$MD_PID/stat" ]; then
        cpu=$(calc "\"%.2f\", $(proc_ticks "$MD_PID") / $CLK_TCK"); rss=$(proc_rss_kb "$MD_PID")
    fi
    log "monitord $mode FAILED: $reason; last log lines:"
    tail -n 20 "$TMP/monitord_$mode.log" >&2 || true
    add_row monitord "$mode" "$N" "-" "-" "-" "-" "$rss" \
        "FAILED: $reason (process CPU so far ${cpu}s; log: $(tail -n 3 "$TMP/monitord_$mode.log" 2> /dev/null | tr '\t\n' '  '))"
}

run_monitord() {
    local mode="$1" pgr
    case "$mode" in
        dgram) pgr="0 2147483647" ;;   # unprivileged ping sockets allowed for every gid
        raw) pgr="1 0" ;;              # ping sockets off: monitord (root) falls back to raw
        *) die "unknown mode $mode" ;;
    esac
    set_pgr "$pgr"
    local port conf="$TMP/monitord_$mode.yaml" mlog="$TMP/monitord_$mode.log" url
    port=$(free_port)
    url="http://127.0.0.1:$port"
    mkdir -p "$TMP/state_$mode"
    "$PY" "$HELPER" config --targets "$TF" --out "$conf" --port "$port" --state-dir "$TMP/state_$mode" \
        --interval "$INTERVAL" --count "$COUNT" --packet-interval "$PACKET_INTERVAL" \
        --timeout "$PROBE_TIMEOUT" --max-concurrent "$MAX_CONCURRENT"
    log "monitord $mode (ping_group_range '$pgr'): starting on $url"
    local limit=$((READY_MAX_S + WARMUP_MAX_S + WINDOW_S + 300)) t_start
    t_start=$(now)
    (cd "$TMP" && PYTHONPATH="$SRC" PYTHONUNBUFFERED=1 exec timeout -s TERM "$limit" "$PY" -m monitord run -c "$conf") > "$mlog" 2>&1 &
    local tpid=$!
    STARTED_PIDS+=("$tpid")
    MD_PID=$(child_of "$tpid")
    [ -n "$MD_PID" ] || { md_fail "$mode" "monitord process did not appear"; stop_started; return 0; }
    STARTED_PIDS+=("$MD_PID")

    # start-up: /-/ready answers 200 (bounded)
    local i ready=0
    wait_ready "$MD_PID" "$url" && ready=1
    local ready_s; ready_s=$(calc "\"%.1f\", $(now) - $t_start")
    [ "$ready" = 1 ] || { md_fail "$mode" "/-/ready not 200 after ${ready_s}s"; stop_started; return 0; }

    # warm-up: every target has a non-zero monitord_icmp_requests_total (the series exists,
    # at 0, from the start; it counts once a probe completes)
    local probed=0 warm="$TMP/warm_$mode.prom"
    for ((i = 0; i < WARMUP_MAX_S; i++)); do
        kill -0 "$MD_PID" 2> /dev/null || break
        if scrape "$url/metrics" "$warm" > /dev/null 2>&1; then
            probed=$(awk '/^monitord_icmp_requests_total\{/ && $NF > 0 { n++ } END { print n + 0 }' "$warm")
            [ "$probed" -ge "$N" ] && break
        fi
        sleep 1
    done
    local warm_s; warm_s=$(calc "\"%.1f\", $(now) - $t_start")
    [ "$probed" -ge "$N" ] || { md_fail "$mode" "only $probed/$N targets probed after ${warm_s}s"; stop_started; return 0; }
    log "monitord $mode: ready after ${ready_s}s, all $N targets probed after ${warm_s}s; measuring ${WINDOW_S}s"

    # the window: scrape, then CPU/MIB start ... CPU/MIB end, then scrape (scrapes outside)
    local m1="$TMP/m1_$mode.prom" m2="$TMP/m2_$mode.prom" c0 c1 u0 u1 s0 s1 t0 t1 k0 k1 d0 d1
    scrape "$url/metrics" "$m1" > /dev/null || { md_fail "$mode" "scrape 1 failed"; stop_started; return 0; }
    read -r c0 u0 s0 < <(proc_times "$MD_PID"); t0=$(now); k0=$(icmp_mib); d0=$(sock_drops)
    sleep "$WINDOW_S"
    kill -0 "$MD_PID" 2> /dev/null || { md_fail "$mode" "monitord exited during the window"; stop_started; return 0; }
    read -r c1 u1 s1 < <(proc_times "$MD_PID"); t1=$(now); k1=$(icmp_mib); d1=$(sock_drops)
    scrape "$url/metrics" "$m2" > /dev/null || { md_fail "$mode" "scrape 2 failed"; stop_started; return 0; }

    # CPU cost of a /metrics scrape: CPU during the scrape minus the steady probing rate
    local rate j ca cb ta tb sw scost=0 swall=0
    rate=$(calc "\"%.6f\", ($c1 - $c0) / $CLK_TCK / ($t1 - $t0)")
    for ((j = 0; j < SCRAPES; j++)); do
        ca=$(proc_ticks "$MD_PID"); ta=$(now)
        read -r sw _ < <(scrape "$url/metrics" "$TMP/s_$mode.prom" || echo 0 0)
        cb=$(proc_ticks "$MD_PID"); tb=$(now)
        scost=$(calc "\"%.4f\", $scost + ($cb - $ca) / $CLK_TCK - $rate * ($tb - $ta)")
        swall=$(calc "\"%.4f\", $swall + $sw")
        sleep 0.5
    done
    scost=$(calc "\"%.3f\", $scost / $SCRAPES"); swall=$(calc "\"%.3f\", $swall / $SCRAPES")
    local prom_out prom_rc=0 prom_problems
    prom_out=$(timeout 120 promtool check metrics < "$m2" 2>&1) || prom_rc=$?
    prom_problems=$(printf '%s' "$prom_out" | grep -c . || true)
    [ "$prom_rc" = 0 ] || printf '%s\n' "$prom_out" | head -n 10 | sed 's/^/  promtool: /' >&2
    local rss thr fds
    rss=$(proc_rss_kb "$MD_PID"); thr=$(proc_threads "$MD_PID")
    fds=$(find "/proc/$MD_PID/fd" -mindepth 1 -maxdepth 1 2> /dev/null | wc -l)

    stop_pid "$MD_PID"
    local exit_rc=0
    wait "$tpid" 2> /dev/null || exit_rc=$?
    STARTED_PIDS=()
    local warnings tracebacks
    warnings=$(grep -cE 'WARNING|ERROR|CRITICAL' "$mlog" || true)
    tracebacks=$(grep -c 'Traceback' "$mlog" || true)
    [ "$warnings" = 0 ] || { log "monitord $mode log warnings/errors:"; grep -E 'WARNING|ERROR|CRITICAL' "$mlog" | head -n 10 >&2; }
    [ "$exit_rc" = 0 ] || log "monitord $mode exited with status $exit_rc after SIGTERM"

    helper_kv monitord "$m1" "$m2"
    local echoes replies cpu wall drops
    read -r echoes replies < <(echo "$k0 $k1" | awk '{ print $3 - $1, $4 - $2 }')
    cpu=$(calc "\"%.2f\", ($c1 - $c0) / $CLK_TCK"); wall=$(calc "\"%.2f\", $t1 - $t0")
    drops=$((d1 - d0))
    [ "${R[socket_mode]}" = "$mode" ] || log "monitord $mode: WARNING: monitord_icmp_socket_info says ipv4 mode=${R[socket_mode]}"
    add_row monitord "$mode" "$N" "$echoes" "${R[lost]}" "$cpu" "${R[rtt_avg_median_ms]}" "$rss" \
        "ping_group_range '$pgr', socket_info ipv4 mode=${R[socket_mode]}; window ${wall}s: echoes = netns OutEchos $echoes (InEchoReps $replies, socket queue drops $drops), metrics requests ${R[requests]} responses ${R[responses]} lost ${R[lost]} (targets probed ${R[targets_probed]}/${R[targets]}, with a reply missing ${R[targets_short]}: ${R[short_examples]}), probes ${R[probes]}, skipped ${R[skipped]}, probe errors ${R[probe_errors]}, unmatched replies ${R[unmatched]}, receive errors ${R[receive_errors]}; CPU ${cpu}s (user $(calc "\"%.2f\", ($u1 - $u0) / $CLK_TCK")s + sys $(calc "\"%.2f\", ($s1 - $s0) / $CLK_TCK")s) = $(calc "\"%.1f\", $rate * 100")% of a core; RTT median of per-target last avg ${R[rtt_avg_median_ms]} ms (${R[rtt_avg_targets]} targets), histogram p50 ${R[rtt_hist_p50_ms]} ms p99 ${R[rtt_hist_p99_ms]} ms (first bucket le=0.1ms: interpolated); scheduler lateness p50 ${R[lateness_p50_ms]} ms p99 ${R[lateness_p99_ms]} ms mean ${R[lateness_mean_ms]} ms over ${R[lateness_count]} probes; /metrics: ${R[bytes]} bytes, ${R[series]} series, CPU ${scost}s and ${swall}s wall per scrape (mean of $SCRAPES), promtool check metrics rc=$prom_rc ($prom_problems lines); ready after ${ready_s}s, all probed after ${warm_s}s; RSS ${rss} kB (VmRSS at the end), threads $thr, fds $fds; log warnings/errors $warnings, tracebacks $tracebacks; exit status after SIGTERM $exit_rc"
    log "monitord $mode: cpu ${cpu}s echoes $echoes lost ${R[lost]} median ${R[rtt_avg_median_ms]} ms lateness p99 ${R[lateness_p99_ms]} ms scrape ${scost}s/${R[bytes]}B"
}

# ------------------------------------------------------------------------------ smokeping_prober
run_smokeping() {
    local bin=prometheus-smokeping-prober
    command -v "$bin" > /dev/null || { log "skip smokeping: $bin not installed"; return 0; }
    set_pgr "0 2147483647"   # --no-privileged: one ping socket per target
    local port url conf="$TMP/smokeping.yml" slog="$TMP/smokeping.log" hosts
    port=$(free_port); url="http://127.0.0.1:$port"
    echo 'targets: []' > "$conf"   # not Debian's default file (it adds localhost)
    mapfile -t hosts < "$TF"
    log "smokeping_prober --no-privileged: $N targets every $SP_INTERVAL"
    timeout -s TERM $((SP_START_S + SP_WARMUP_S + SP_WINDOW_S + 120)) "$bin" --config.file="$conf" \
        --web.listen-address="127.0.0.1:$port" --ping.interval="$SP_INTERVAL" --no-privileged \
        --log.level=warn "${hosts[@]}" > "$slog" 2>&1 &
    local tpid=$! pid
    STARTED_PIDS+=("$tpid")
    pid=$(child_of "$tpid")
    [ -n "$pid" ] || { add_row smokeping dgram "$N" - - - - - "FAILED: did not start"; stop_started; return 0; }
    STARTED_PIDS+=("$pid")
    local i up=0 t_start; t_start=$(now)
    for ((i = 0; i < SP_START_S * 2; i++)); do
        kill -0 "$pid" 2> /dev/null || break
        curl -s -o /dev/null --max-time 2 "$url/" && { up=1; break; }
        sleep 0.5
    done
    if [ "$up" != 1 ]; then
        add_row smokeping dgram "$N" - - - - - "FAILED: no HTTP answer after $(calc "\"%.0f\", $(now) - $t_start")s: $(tail -n 3 "$slog" | tr '\t\n' '  ')"
        stop_started; return 0
    fi
    sleep "$SP_WARMUP_S"
    local m1="$TMP/sp1.prom" m2="$TMP/sp2.prom" c0 c1 u0 u1 s0 s1 t0 t1 k0 k1 d0 d1
    scrape "$url/metrics" "$m1" > /dev/null || { add_row smokeping dgram "$N" - - - - - "FAILED: scrape 1"; stop_started; return 0; }
    read -r c0 u0 s0 < <(proc_times "$pid"); t0=$(now); k0=$(icmp_mib); d0=$(sock_drops)
    sleep "$SP_WINDOW_S"
    read -r c1 u1 s1 < <(proc_times "$pid"); t1=$(now); k1=$(icmp_mib); d1=$(sock_drops)
    scrape "$url/metrics" "$m2" > /dev/null || { add_row smokeping dgram "$N" - - - - - "FAILED: scrape 2"; stop_started; return 0; }
    local rss thr; rss=$(proc_rss_kb "$pid"); thr=$(proc_threads "$pid")
    stop_started
    helper_kv smokeping "$m1" "$m2"
    local echoes replies cpu wall
    read -r echoes replies < <(echo "$k0 $k1" | awk '{ print $3 - $1, $4 - $2 }')
    cpu=$(calc "\"%.2f\", ($c1 - $c0) / $CLK_TCK"); wall=$(calc "\"%.2f\", $t1 - $t0")
    add_row smokeping dgram "$N" "$echoes" "~${R[lost]}" "$cpu" "${R[p50_ms]}" "$rss" \
        "smokeping_prober $("$bin" --version 2>&1 | awk 'NR == 1 {print $3}') --no-privileged --ping.interval=$SP_INTERVAL, ping_group_range '0 2147483647'; window ${wall}s after ${SP_WARMUP_S}s warm-up, CPU ${cpu}s (user $(calc "\"%.2f\", ($u1 - $u0) / $CLK_TCK")s + sys $(calc "\"%.2f\", ($s1 - $s0) / $CLK_TCK")s); echoes = netns OutEchos $echoes (InEchoReps $replies, socket queue drops $((d1 - d0))); scrape deltas sent ${R[sent]} received ${R[received]} lost ${R[lost]} (the two counters are not read at one instant: +-0.3% noise); median RTT = histogram p50 ${R[p50_ms]} ms (p99 ${R[p99_ms]} ms); /metrics ${R[bytes]} bytes ${R[series]} series; RSS ${rss} kB, threads $thr"
    log "smokeping: cpu ${cpu}s echoes $echoes lost ${R[lost]} p50 ${R[p50_ms]} ms"
}

for tool in $TOOLS; do
    case "$tool" in
        fping) fping_row ;;
        monitord) for m in $MODES; do run_monitord "$m"; done ;;
        smokeping) run_smokeping ;;
        blackbox) log "blackbox_exporter: not measured by this script (see ../shared/peers-bench)" ;;
        *) die "unknown tool '$tool' (fping monitord smokeping)" ;;
    esac
done

OUT="$RESULTS_DIR/icmp_$TS.md"
cp "$ROWS" "$RESULTS_DIR/icmp_$TS.tsv"
[ ! -f "$TMP/monitord.diff" ] || cp "$TMP/monitord.diff" "$RESULTS_DIR/icmp_$TS.monitord.diff"
"$PY" "$HELPER" table "$ROWS" --out "$OUT" \
    --title "ICMP bench $TS: N=$N targets x $COUNT echoes, monitord interval $INTERVAL window ${WINDOW_S}s ($(nproc) CPUs, kernel $(uname -r), load average at start $LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg)); monitord $CODE"
log "results: $OUT"
