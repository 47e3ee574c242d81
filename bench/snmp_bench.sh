#!/usr/bin/env bash
# SNMP benchmark: monitord beside snmpbulkwalk and snmp_exporter, all walking ifTable + ifXTable
# of the same Debian snmpd (lo + IFACES-1 extra interfaces), in one run, inside a private
# network namespace. CPU per walk and per varbind of each client and of the agent. See
# bench/README.md, section "SNMP".
#
# usage:  sudo bench/snmp_bench.sh                          (IFACES=200, about 5 minutes)
#         TOOLS="bulkwalk monitord" MD_RUNS="all:10" PROFILE_RUNS="" bench/snmp_bench.sh
#
# Writes the result table to bench/results/snmp_<timestamp>.md (+ .tsv with the raw rows, py-spy
# profiles as snmp_<timestamp>.profile_<run>.txt, one snmp_exporter scrape as .exporter.prom).
# Safety: every packet goes to 127.0.0.0/8 inside a network namespace this script creates and
# deletes (lo and the interfaces it adds, nothing else); every wait is bounded by a count and by
# `timeout`; only PIDs this script started are signalled, by PID.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
SCRIPT="$BENCH_DIR/$(basename "${BASH_SOURCE[0]}")"

IFACES="${IFACES:-200}"                  # ifTable rows: lo + IFACES-1 interfaces made in the netns
MAXREP="${MAXREP:-25}"                   # GETBULK max-repetitions, every client
WALKS="${WALKS:-100}"                    # snmpbulkwalk walks (sequential) and snmp_exporter scrapes
CONC="${CONC:-10}"                       # snmp_exporter scrapes in parallel
TOOLS="${TOOLS:-bulkwalk exporter monitord}"
MD_RUNS="${MD_RUNS:-if_mib:10 if_mib:40 all:10 all:40}"   # monitord runs, module:max_oids_per_request
MD_DEVICES="${MD_DEVICES:-5}"            # monitord devices 127.0.0.1..N, all the one snmpd
MD_INTERVAL="${MD_INTERVAL:-1s}"
MD_TIMEOUT="${MD_TIMEOUT:-500ms}"
WINDOW_S="${WINDOW_S:-30}"               # monitord measurement window
READY_MAX_S="${READY_MAX_S:-60}"         # monitord start-up (until /-/ready answers 200)
WARMUP_MAX_S="${WARMUP_MAX_S:-60}"       # until every device has completed 3 polls
SCRAPES="${SCRAPES:-3}"                  # extra /metrics scrapes timed for their CPU cost
PROFILE_RUNS="${PROFILE_RUNS-if_mib:10 all:10}"   # monitord runs also profiled with py-spy
PROFILE_S="${PROFILE_S:-15}"
PROFILE_RATE="${PROFILE_RATE:-200}"
PROFILE_GIL="${PROFILE_GIL:-1}"          # 1: py-spy --gil (only samples holding the GIL; see README)
SNMPD_PORT="${SNMPD_PORT:-1161}"
SNMPD_EXTRA="${SNMPD_EXTRA:-}"           # extra snmpd.conf lines, e.g. "maxGetbulkResponses 1000"
TOTAL_LIMIT_S="${TOTAL_LIMIT_S:-900}"    # hard limit for the whole run
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
PY="${PY:-$ROOT/.venv/bin/python}"      # the venv with monitord's dependencies
PYSPY="${PYSPY:-$ROOT/.venv/bin/py-spy}"
REV="${REV:-worktree}"                   # monitord code to measure: worktree or a git revision
HELPER="$BENCH_DIR/snmp_summary.py"
IFTABLE=.1.3.6.1.2.1.2.2
IFXTABLE=.1.3.6.1.2.1.31.1.1
export MIBS=""   # Debian ships no IETF MIBs: numeric OIDs everywhere, no MIB warnings
WALK_OPTS=(-v2c -c public -On -Cr"$MAXREP" -t 2 -r 1)

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ------------------------------------------------------------------------------ the timed loop
# `snmp_bench.sh --bulkwalk-loop N TARGET TIMES OKFILE`: N sequential walks (ifTable, then
# ifXTable), run under /usr/bin/time by the inner part below. Each walk's start and end go to
# TIMES via $EPOCHREALTIME (a builtin: no process, so nothing extra in the CPU measured).
if [ "${1:-}" = --bulkwalk-loop ]; then
    n="$2" target="$3" times="$4" okfile="$5" ok=0 failed=0
    for ((i = 0; i < n; i++)); do
        t0=$EPOCHREALTIME
        if snmpbulkwalk "${WALK_OPTS[@]}" "$target" "$IFTABLE" > /dev/null \
            && snmpbulkwalk "${WALK_OPTS[@]}" "$target" "$IFXTABLE" > /dev/null; then
            ok=$((ok + 1))
        else
            failed=$((failed + 1))
        fi
        echo "$t0 $EPOCHREALTIME" >> "$times"
    done
    echo "$ok $failed" > "$okfile"
    exit 0
fi

# ------------------------------------------------------------------------------ outer: the netns
# Create snmpbench_<pid> (lo up), re-run this script inside it under `timeout`, delete it after
# (the interfaces made inside go with it).
if [ -z "${BENCH_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || die "run as root (network namespace, interfaces, py-spy)"
    if ! [[ "$IFACES" =~ ^[0-9]+$ ]] || [ "$IFACES" -lt 1 ] || [ "$IFACES" -gt 1000 ]; then die "IFACES must be 1..1000"; fi
    if ! [[ "$MD_DEVICES" =~ ^[0-9]+$ ]] || [ "$MD_DEVICES" -lt 1 ] || [ "$MD_DEVICES" -gt 250 ]; then die "MD_DEVICES must be 1..250"; fi
    for c in snmpd snmpbulkwalk snmpget curl promtool /usr/bin/time ip timeout; do
        command -v "$c" > /dev/null || die "$c missing: apt-get install -y --no-install-recommends snmpd snmp prometheus curl time iproute2"
    done
    if [[ " $TOOLS " == *" exporter "* ]]; then
        command -v prometheus-snmp-exporter > /dev/null \
            || die "prometheus-snmp-exporter missing: apt-get install -y --no-install-recommends prometheus-snmp-exporter (or TOOLS without exporter)"
    fi
    [ -x "$PY" ] || die "no venv at $ROOT/.venv (scripts/setup.sh)"
    [ -z "$PROFILE_RUNS" ] || [ -x "$PYSPY" ] || die "py-spy missing at $PYSPY (or PROFILE_RUNS=\"\")"
    enter_netns "snmpbench_$$" "$@"   # the interfaces made inside go with it
fi

# ------------------------------------------------------------------------------ inner
assert_in_netns

CLK_TCK="$(getconf CLK_TCK)"
TS="$(date +%Y%m%d_%H%M%S)"
TMP="$(mktemp -d /tmp/snmp_bench.XXXXXX)"
ROWS="$TMP/rows.tsv"
mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/snmp_$TS.md"

clean_up_on_exit

# out_echos (lib.sh): monitord also pings its devices; its profile makes that hourly
# add_row (lib.sh) columns: tool variant walks ok failed varbinds/walk requests/walk cpu_ms/walk scrape_ms/walk agent_ms/walk p50_ms notes
# SNMPv2-MIB::snmpInPkts.0 of the agent: requests it received (this GET counts itself)
agent_pkts() { snmpget -v2c -c public -On -Oqv -t 1 -r 0 "127.0.0.1:$SNMPD_PORT" .1.3.6.1.2.1.11.1.0 2> /dev/null | grep -E '^[0-9]+$' || echo 0; }


# ------------------------------------------------------------------------------ the monitord code
CODE="-"
if [[ " $TOOLS " == *" monitord "* ]]; then snapshot_monitord "$TMP" "snmp_$TS.monitord.diff"; fi

# ------------------------------------------------------------------------------ interfaces
# lo + IFACES-1 interfaces, inside this namespace only. `dummy` needs the dummy kernel module;
# ifb and bridge are fallbacks (snmpd lists them all the same).
IFTYPE=""
for t in dummy ifb bridge; do
    if ip link add bprobe type "$t" 2> /dev/null; then ip link del bprobe; IFTYPE=$t; break; fi
done
[ -n "$IFTYPE" ] || die "cannot create dummy, ifb or bridge interfaces"
for ((i = 1; i < IFACES; i++)); do
    ip link add "bdum$i" type "$IFTYPE"
    ip link set "bdum$i" up
done
[ "$(ip -o link show | wc -l)" = "$IFACES" ] || die "expected $IFACES interfaces in the namespace"
log "$((IFACES - 1)) interfaces of type $IFTYPE + lo"

# ------------------------------------------------------------------------------ snmpd
# One agent for every client. It listens on 127.0.0.1..MD_DEVICES: monitord wants one address
# per device and matches responses by source address, and snmpd answers from the address asked.
addresses=""
for ((i = 1; i <= MD_DEVICES; i++)); do addresses="$addresses${addresses:+,}udp:127.0.0.$i:$SNMPD_PORT"; done
{
    echo "agentAddress $addresses"
    echo "rocommunity public 127.0.0.0/8"
    echo "sysLocation bench"
    echo "sysContact bench"
    echo "dontLogTCPWrappersConnects yes"   # no log line per request
    [ -z "$SNMPD_EXTRA" ] || printf '%s\n' "$SNMPD_EXTRA"
} > "$TMP/snmpd.conf"
timeout -s TERM "$TOTAL_LIMIT_S" snmpd -f -C -c "$TMP/snmpd.conf" -Lf "$TMP/snmpd.log" > /dev/null 2>&1 &
AGENT_PIDS+=("$!")
AGENT_PID=$(child_of "$!")
[ -n "$AGENT_PID" ] || die "snmpd did not start"
AGENT_PIDS+=("$AGENT_PID")
for ((i = 1; i <= MD_DEVICES; i++)); do
    up=0
    for ((j = 0; j < 50; j++)); do
        if snmpget -v2c -c public -t 0.5 -r 0 "127.0.0.$i:$SNMPD_PORT" .1.3.6.1.2.1.1.3.0 > /dev/null 2>&1; then up=1; break; fi
        sleep 0.2
    done
    [ "$up" = 1 ] || { cat "$TMP/snmpd.log" >&2; die "snmpd does not answer on 127.0.0.$i:$SNMPD_PORT"; }
done
TARGET="127.0.0.1:$SNMPD_PORT"
ROWS_IF=$(snmpbulkwalk "${WALK_OPTS[@]}" "$TARGET" "$IFTABLE.1.1" | grep -c INTEGER || true)
# real varbinds only (net-snmp prints endOfMibView as "No more variables left ...")
VB_IF=$(snmpbulkwalk "${WALK_OPTS[@]}" "$TARGET" "$IFTABLE" | grep '^\.' | grep -vc 'No more variables\|No Such' || true)
VB_IFX=$(snmpbulkwalk "${WALK_OPTS[@]}" "$TARGET" "$IFXTABLE" | grep '^\.' | grep -vc 'No more variables\|No Such' || true)
VBW=$((VB_IF + VB_IFX))
[ "$ROWS_IF" = "$IFACES" ] || die "snmpd lists $ROWS_IF interfaces, expected $IFACES"
SNMPD_VERSION="$(snmpd -v 2> /dev/null | awk '/version/ {print $NF; exit}')"
log "snmpd $SNMPD_VERSION (PID $AGENT_PID) on $addresses: ifTable $ROWS_IF rows, $VB_IF + $VB_IFX = $VBW varbinds per walk"

printf 'tool\tvariant\twalks\tok\tfailed\tvarbinds_per_walk\trequests_per_walk\tcpu_ms_per_walk\tscrape_ms_per_walk\tagent_ms_per_walk\tp50_ms\tnotes\n' > "$ROWS"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------------------ snmpbulkwalk
run_bulkwalk() {
    local tv="$TMP/bw.tv" times="$TMP/bw.times" okf="$TMP/bw.ok" a0 a1 p0 p1 rc=0
    log "snmpbulkwalk: $WALKS walks (ifTable + ifXTable), sequential"
    : > "$times"
    p0=$(agent_pkts); a0=$(proc_ticks "$AGENT_PID")
    timeout -s TERM 300 /usr/bin/time -v -o "$tv" \
        bash "$SCRIPT" --bulkwalk-loop "$WALKS" "$TARGET" "$times" "$okf" || rc=$?
    a1=$(proc_ticks "$AGENT_PID"); p1=$(agent_pkts)
    local u s w ok failed cpu
    read -r u s w < <(awk -F': ' '
        /User time \(seconds\)/ {u = $2} /System time \(seconds\)/ {s = $2}
        /Elapsed \(wall clock\) time/ { n = split($2, a, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + a[i] }
        END { printf "%s %s %.2f\n", u, s, w }' "$tv")
    read -r ok failed < "$okf" 2> /dev/null || { ok=0; failed=$WALKS; }
    if [ -z "$u" ] || [ -z "$s" ]; then
        add_row snmpbulkwalk - - "$ok" "$failed" - - - - - - "FAILED: no /usr/bin/time report (exit $rc)"
        return 0
    fi
    cpu=$(calc "\"%.3f\", $u + $s")
    awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' "$times" > "$times.ms"
    add_row snmpbulkwalk "2 processes/walk, sequential" "$WALKS" "$ok" "$failed" "$VBW" \
        "$(calc "\"%.1f\", ($p1 - $p0 - 1) / $WALKS")" "$(calc "\"%.3f\", $cpu / $WALKS * 1000")" "-" \
        "$(calc "\"%.3f\", ($a1 - $a0) / $CLK_TCK / $WALKS * 1000")" "$("$PY" "$HELPER" median "$times.ms")" \
        "net-snmp $SNMPD_VERSION, -Cr$MAXREP, output to /dev/null; CPU = user ${u}s + sys ${s}s of the loop (/usr/bin/time -v: bash + 2 snmpbulkwalk processes per walk), wall ${w}s, exit $rc; requests/walk from snmpd's snmpInPkts; p50 = median wall time of one walk (both tables)"
    log "snmpbulkwalk: cpu ${cpu}s ok $ok/$WALKS"
}

# ------------------------------------------------------------------------------ snmp_exporter
run_exporter() {
    local bin=prometheus-snmp-exporter conf="$TMP/exporter.yml" elog="$TMP/exporter.log" port url
    "$PY" "$HELPER" exporter-config --out "$conf" --max-repetitions "$MAXREP"
    port=$(free_port)
    url="http://127.0.0.1:$port/snmp?target=$TARGET&module=if_mib"
    log "snmp_exporter: $WALKS scrapes of if_mib at concurrency $CONC"
    timeout -s TERM 600 "$bin" --config.file="$conf" --web.listen-address="127.0.0.1:$port" \
        --log.level=warn > "$elog" 2>&1 &
    local tpid=$! pid
    STARTED_PIDS+=("$tpid")
    pid=$(child_of "$tpid")
    [ -n "$pid" ] || { add_row snmp_exporter if_mib - - - - - - - - - "FAILED: did not start"; stop_started; return 0; }
    STARTED_PIDS+=("$pid")
    local i up=0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2> /dev/null || break
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/metrics" && { up=1; break; }
        sleep 0.2
    done
    if [ "$up" != 1 ]; then
        add_row snmp_exporter if_mib - - - - - - - - - "FAILED: no HTTP answer: $(tail -n 3 "$elog" | tr '\t\n' '  ')"
        stop_started; return 0
    fi
    # warm-up, and one scrape kept for reference and checked by promtool
    local sample="$RESULTS_DIR/snmp_$TS.exporter.prom" prom_rc=0 prom_lines
    for ((i = 0; i < 3; i++)); do curl -s -o /dev/null --max-time 60 "$url" || true; done
    curl -s --max-time 60 -o "$sample" "$url" || true
    timeout 120 promtool check metrics < "$sample" > "$TMP/promtool_exporter.out" 2>&1 || prom_rc=$?
    prom_lines="$(grep -c . "$TMP/promtool_exporter.out" || true), first: $(head -n 1 "$TMP/promtool_exporter.out" | tr "\t" " ")"
    local a0 a1 p0 p1
    p0=$(agent_pkts); a0=$(proc_ticks "$AGENT_PID")
    helper_kv load --url "$url" --n "$WALKS" --concurrency "$CONC" --server-pid "$pid" \
        --expect 'ifHCInOctets{' --req-timeout 60 --max-seconds 300
    a1=$(proc_ticks "$AGENT_PID"); p1=$(agent_pkts)
    local rss; rss=$(proc_rss_kb "$pid")
    stop_started
    if [ -z "${R[done]:-}" ]; then add_row snmp_exporter if_mib - - - - - - - - - "FAILED: the load client gave no result"; return 0; fi
    local walks=${R[done]}
    [ "$walks" -gt 0 ] || walks=1
    add_row snmp_exporter "if_mib, concurrency $CONC" "${R[done]}" "${R[ok]}" "${R[failed]}" "$VBW" \
        "$(calc "\"%.1f\", ($p1 - $p0 - 1) / $walks")" "$(calc "\"%.3f\", ${R[server_cpu_s]} / $walks * 1000")" "-" \
        "$(calc "\"%.3f\", ($a1 - $a0) / $CLK_TCK / $walks * 1000")" "${R[p50_ms]}" \
        "snmp_exporter $("$bin" --version 2>&1 | awk 'NR == 1 {print $3}'), max_repetitions $MAXREP; CPU = exporter process ${R[server_cpu_s]}s from /proc (includes the exposition: one scrape = one walk); walks ifNumber + ifTable + ifXTable and GETs sysUpTime (varbinds/walk shown = the two tables); wall ${R[wall_s]}s, scrape p50 ${R[p50_ms]} ms p99 ${R[p99_ms]} ms (with queueing: $CONC in parallel on one single-threaded agent); ok = HTTP 200 with ifHCInOctets; ${R[samples_per_req]} samples and ${R[bytes_per_req]} bytes per scrape; promtool check metrics rc=$prom_rc (problem lines: $prom_lines); RSS ${rss} kB; first error: ${R[first_error]}"
    log "snmp_exporter: cpu ${R[server_cpu_s]}s ok ${R[ok]}/$WALKS p50 ${R[p50_ms]} ms"
}

# ------------------------------------------------------------------------------ monitord
md_fail() {  # md_fail RUN REASON: record a FAILED row, with what the log showed
    local run="$1" reason="$2"
    log "monitord $run FAILED: $reason; last log lines:"
    tail -n 20 "$TMP/monitord_$run.log" >&2 || true
    add_row monitord "$run" - - - - - - - - - \
        "FAILED: $reason (log: $(tail -n 3 "$TMP/monitord_$run.log" 2> /dev/null | tr '\t\n' '  '))"
}

# devices_polled FILE -> devices whose poll counter is at least 3 and that are up
devices_polled() {
    awk '/^monitord_snmp_polls_total\{/ && $NF >= 3 { n++ } END { print n + 0 }' "$1"
}

run_monitord() {
    local spec="$1" module mor run
    module="${spec%%:*}"; mor="${spec##*:}"
    [[ "$module" =~ ^(if_mib|all)$ && "$mor" =~ ^[0-9]+$ ]] || die "bad MD_RUNS entry '$spec' (module:max_oids, module if_mib or all)"
    run="${module}_$mor"
    local port conf="$TMP/monitord_$run.yaml" mlog="$TMP/monitord_$run.log" url
    port=$(free_port)
    url="http://127.0.0.1:$port"
    mkdir -p "$TMP/state_$run"
    "$PY" "$HELPER" monitord-config --out "$conf" --port "$port" --state-dir "$TMP/state_$run" \
        --devices "$MD_DEVICES" --module "$module" --snmp-port "$SNMPD_PORT" --interval "$MD_INTERVAL" \
        --timeout "$MD_TIMEOUT" --max-repetitions "$MAXREP" --max-oids "$mor"
    log "monitord $run: $MD_DEVICES devices every $MD_INTERVAL, module $module, max_oids_per_request $mor; on $url"
    local limit=$((READY_MAX_S + WARMUP_MAX_S + WINDOW_S + PROFILE_S + 300)) t_start
    t_start=$(now)
    (cd "$TMP" && PYTHONPATH="$SRC" PYTHONUNBUFFERED=1 exec timeout -s TERM "$limit" "$PY" -m monitord run -c "$conf") > "$mlog" 2>&1 &
    local tpid=$! pid
    STARTED_PIDS+=("$tpid")
    pid=$(child_of "$tpid")
    [ -n "$pid" ] || { md_fail "$run" "monitord process did not appear"; stop_started; return 0; }
    STARTED_PIDS+=("$pid")

    local i ready=0
    wait_ready "$pid" "$url" && ready=1
    [ "$ready" = 1 ] || { md_fail "$run" "/-/ready not 200 after $(calc "\"%.1f\", $(now) - $t_start")s"; stop_started; return 0; }
    # warm-up: every device has finished 3 polls (the first also walks the labels)
    local polled=0 warm="$TMP/warm_$run.prom"
    for ((i = 0; i < WARMUP_MAX_S * 2; i++)); do
        kill -0 "$pid" 2> /dev/null || break
        if scrape "$url/metrics" "$warm" > /dev/null 2>&1; then
            polled=$(devices_polled "$warm")
            [ "$polled" -ge "$MD_DEVICES" ] && break
        fi
        sleep 0.5
    done
    local warm_s; warm_s=$(calc "\"%.1f\", $(now) - $t_start")
    [ "$polled" -ge "$MD_DEVICES" ] || { md_fail "$run" "only $polled/$MD_DEVICES devices polled 3 times after ${warm_s}s"; stop_started; return 0; }
    log "monitord $run: warm after ${warm_s}s; measuring ${WINDOW_S}s"

    # the window: scrape, then CPU start ... CPU end, then scrape (scrapes and snmpgets outside)
    local m1="$TMP/m1_$run.prom" m2="$TMP/m2_$run.prom" c0 c1 u0 u1 s0 s1 t0 t1 a0 a1 p0 p1 e0 e1
    scrape "$url/metrics" "$m1" > /dev/null || { md_fail "$run" "scrape 1 failed"; stop_started; return 0; }
    p0=$(agent_pkts); e0=$(out_echos)
    read -r c0 u0 s0 < <(proc_times "$pid"); a0=$(proc_ticks "$AGENT_PID"); t0=$(now)
    sleep "$WINDOW_S"
    kill -0 "$pid" 2> /dev/null || { md_fail "$run" "monitord exited during the window"; stop_started; return 0; }
    read -r c1 u1 s1 < <(proc_times "$pid"); a1=$(proc_ticks "$AGENT_PID"); t1=$(now)
    p1=$(agent_pkts); e1=$(out_echos)
    scrape "$url/metrics" "$m2" > /dev/null || { md_fail "$run" "scrape 2 failed"; stop_started; return 0; }

    # CPU cost of a /metrics scrape: CPU during the scrape minus the steady polling rate
    local rate j ca cb ta tb sw scost=0 swall=0 extra=()
    rate=$(calc "\"%.6f\", ($c1 - $c0) / $CLK_TCK / ($t1 - $t0)")
    for ((j = 0; j < SCRAPES; j++)); do
        ca=$(proc_ticks "$pid"); ta=$(now)
        read -r sw _ < <(scrape "$url/metrics" "$TMP/s${j}_$run.prom" || echo 0 0)
        cb=$(proc_ticks "$pid"); tb=$(now)
        scost=$(calc "\"%.4f\", $scost + ($cb - $ca) / $CLK_TCK - $rate * ($tb - $ta)")
        swall=$(calc "\"%.4f\", $swall + $sw")
        extra+=("$TMP/s${j}_$run.prom")
        sleep 0.3
    done
    scost=$(calc "\"%.4f\", $scost / $SCRAPES"); swall=$(calc "\"%.3f\", $swall / $SCRAPES")
    local prom_rc=0 prom_lines
    timeout 120 promtool check metrics < "$m2" > "$TMP/promtool_$run.out" 2>&1 || prom_rc=$?
    prom_lines="$(grep -c . "$TMP/promtool_$run.out" || true), first: $(head -n 1 "$TMP/promtool_$run.out" | tr "\t" " ")"
    local rss; rss=$(proc_rss_kb "$pid")

    # profile (after the window, so py-spy's pauses are not in the figures above)
    local prof="" prof_note="not profiled"
    if [[ " $PROFILE_RUNS " == *" $spec "* ]]; then
        prof="$RESULTS_DIR/snmp_$TS.profile_$run.txt"
        log "monitord $run: py-spy record ${PROFILE_S}s at ${PROFILE_RATE} Hz"
        local gil=()
        [ "$PROFILE_GIL" != 1 ] || gil=(--gil)
        if timeout -s TERM $((PROFILE_S + 60)) "$PYSPY" record --pid "$pid" --duration "$PROFILE_S" \
            --rate "$PROFILE_RATE" --format raw "${gil[@]}" --output "$prof" > "$TMP/pyspy_$run.log" 2>&1; then
            {
                echo "### Profile: monitord $run (py-spy ${gil[*]:-without --gil})"
                echo
                "$PY" "$HELPER" profile "$prof" --rate "$PROFILE_RATE" --seconds "$PROFILE_S" --top 15
                echo
            } >> "$TMP/profiles.md"
            prof_note="profile: $(basename "$prof")"
        else
            prof_note="py-spy failed: $(tail -n 2 "$TMP/pyspy_$run.log" | tr '\t\n' '  ')"
            log "monitord $run: $prof_note"
        fi
    fi

    stop_pid "$pid"
    local exit_rc=0
    wait "$tpid" 2> /dev/null || exit_rc=$?
    STARTED_PIDS=()
    local warnings tracebacks
    warnings=$(grep -cE 'WARNING|ERROR|CRITICAL' "$mlog" || true)
    tracebacks=$(grep -c 'Traceback' "$mlog" || true)
    [ "$warnings" = 0 ] || { log "monitord $run log warnings/errors:"; grep -E 'WARNING|ERROR|CRITICAL' "$mlog" | head -n 10 >&2; }

    helper_kv monitord "$m1" "$m2" "${extra[@]}"
    [ -n "${R[poll_rate]:-}" ] || { md_fail "$run" "could not read the scrapes"; return 0; }
    local wall walks cpu
    wall=$(calc "\"%.3f\", $t1 - $t0")
    walks=$(calc "\"%.2f\", ${R[poll_rate]} * $wall")
    cpu=$(calc "\"%.2f\", ($c1 - $c0) / $CLK_TCK")
    if [ "$(calc "\"%d\", ($walks > 0)")" != 1 ]; then md_fail "$run" "no polls in the window"; return 0; fi
    local variant="shipped if_mib"
    [ "$module" = all ] && variant="bench_if_all (= snmp_exporter's columns)"
    add_row monitord "$variant, max_oids $mor" "$(calc "\"%.0f\", $walks")" "${R[complete]}" "${R[failed]}" \
        "${R[varbinds_per_walk]}" "${R[requests_per_walk]}" \
        "$(calc "\"%.3f\", $cpu / $walks * 1000")" "$(calc "\"%.3f\", $scost * 1000 / $MD_DEVICES")" \
        "$(calc "\"%.3f\", ($a1 - $a0) / $CLK_TCK / $walks * 1000")" "${R[duration_p50_ms]}" \
        "$MD_DEVICES devices every $MD_INTERVAL (timeout $MD_TIMEOUT), max_repetitions $MAXREP, max_oids_per_request $mor; window ${wall}s: CPU ${cpu}s (user $(calc "\"%.2f\", ($u1 - $u0) / $CLK_TCK")s + sys $(calc "\"%.2f\", ($s1 - $s0) / $CLK_TCK")s) = $(calc "\"%.1f\", $rate * 100")% of a core; walks = poll rate ${R[poll_rate]}/s (from each device's polls and last-poll timestamps) x window; between the scrapes: polls ${R[polls]} (${R[probes]}), errors ${R[errors]}, retries ${R[retries]}, timeouts ${R[timeouts]}, requests ${R[requests]}; snmpd snmpInPkts $(calc "\"%.1f\", ($p1 - $p0 - 1) / $walks") per walk; ICMP echoes in the window $((e1 - e0)); poll duration p50 ${R[duration_p50_ms]} ms max ${R[duration_max_ms]} ms (${R[duration_samples]} last-poll gauges from $((SCRAPES + 2)) scrapes); /metrics ${R[bytes]} bytes ${R[series]} series, CPU $(calc "\"%.1f\", $scost * 1000") ms and ${swall}s wall per scrape (mean of $SCRAPES; per walk = / $MD_DEVICES devices, i.e. one scrape per poll interval), promtool check metrics rc=$prom_rc (problem lines: $prom_lines); RSS ${rss} kB; log warnings/errors $warnings, tracebacks $tracebacks; exit status after SIGTERM $exit_rc; $prof_note"
    log "monitord $run: cpu ${cpu}s for $walks walks, ${R[varbinds_per_walk]} varbinds/walk, ${R[requests_per_walk]} requests/walk, scrape $(calc "\"%.1f\", $scost * 1000") ms"
}

for tool in $TOOLS; do
    case "$tool" in
        bulkwalk) run_bulkwalk ;;
        exporter) run_exporter ;;
        monitord) for spec in $MD_RUNS; do run_monitord "$spec"; done ;;
        *) die "unknown tool '$tool' (bulkwalk exporter monitord)" ;;
    esac
done

cp "$ROWS" "$RESULTS_DIR/snmp_$TS.tsv"
[ ! -f "$TMP/monitord.diff" ] || cp "$TMP/monitord.diff" "$RESULTS_DIR/snmp_$TS.monitord.diff"
"$PY" "$HELPER" table "$ROWS" --out "$OUT" \
    --title "SNMP bench $TS: snmpd $SNMPD_VERSION with $IFACES interfaces ($VBW varbinds per ifTable + ifXTable walk), max-repetitions $MAXREP ($(nproc) CPUs, kernel $(uname -r), load average at start $LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg)); monitord $CODE"
if [ -f "$TMP/profiles.md" ]; then
    { echo; echo "## Profiles (py-spy record; see README for what --gil counts)"; echo; cat "$TMP/profiles.md"; } | tee -a "$OUT"
fi
log "results: $OUT"
