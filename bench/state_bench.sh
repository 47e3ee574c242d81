#!/usr/bin/env bash
# State-layer benchmark: the state engine at province scale, the SQLite history (fsync per
# commit) and MQTT delivery through a local mosquitto, inside a private network namespace.
# The work is done by bench/state_bench.py; see bench/README.md, "State, history and MQTT".
#
# usage:  sudo bench/state_bench.sh                    (about 15 s)
#         ROUNDS=20 MQTT_EVENTS=10000 bench/state_bench.sh
#         BROKER_OPTIONS="set_tcp_nodelay true" bench/state_bench.sh
#
# Writes bench/results/state_<timestamp>.md (the table) and .json (every figure).
# Safety: mosquitto listens on 127.0.0.1 inside a network namespace this script creates and
# deletes (only `lo` in it); the probe results are synthetic (no packet is sent); every wait is
# bounded and the whole run is under `timeout`; only PIDs this script started are signalled.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
SCRIPT="$BENCH_DIR/$(basename "${BASH_SOURCE[0]}")"

LINKS="${LINKS:-50}"                     # kabupaten links behind the core
VILLAGES="${VILLAGES:-100}"              # villages behind each link
ROUNDS="${ROUNDS:-10}"                   # steady-state rounds measured
HISTORY_RUNS="${HISTORY_RUNS:-20}"       # commits of the link-failure batch
SINGLE_APPENDS="${SINGLE_APPENDS:-500}"  # one-event commits in a row
MQTT_EVENTS="${MQTT_EVENTS:-5000}"       # stored events delivered to the broker (0: no MQTT part)
BROKER_OPTIONS="${BROKER_OPTIONS:-}"     # extra mosquitto.conf lines, ';'-separated: "set_tcp_nodelay true"
DB_DIR="${DB_DIR:-/var/tmp}"             # where the temporary databases go (a real disk, not tmpfs)
TOTAL_LIMIT_S="${TOTAL_LIMIT_S:-600}"    # hard limit for the whole run
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
PY="${PY:-$ROOT/.venv/bin/python}"      # the venv with monitord's dependencies
REV="${REV:-worktree}"                   # monitord code to measure: worktree or a git revision

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

# ------------------------------------------------------------------------------ outer: the netns
if [ -z "${BENCH_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || die "run as root (network namespace; mosquitto runs as root)"
    for c in /usr/sbin/mosquitto ip timeout; do
        command -v "$c" > /dev/null || die "$c missing: apt-get install -y --no-install-recommends mosquitto iproute2"
    done
    [ -x "$PY" ] || die "no venv at $ROOT/.venv (scripts/setup.sh)"
    [ -d "$DB_DIR" ] || die "DB_DIR $DB_DIR is not a directory"
    enter_netns "statebench_$$" "$@"
fi

# ------------------------------------------------------------------------------ inner
assert_in_netns

TS="$(date +%Y%m%d_%H%M%S)"
TMP="$(mktemp -d /tmp/state_bench.XXXXXX)"
mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/state_$TS.md"

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop_started
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

snapshot_monitord "$TMP" "state_$TS.monitord.diff"
[ ! -f "$TMP/monitord.diff" ] || cp "$TMP/monitord.diff" "$RESULTS_DIR/state_$TS.monitord.diff"

broker_args=()
IFS=';' read -ra broker_lines <<< "$BROKER_OPTIONS"
for line in "${broker_lines[@]}"; do broker_args+=(--broker-option "$line"); done

# The snapshot first, then the repository for tests/integration/mosquitto.py (the broker harness).
# In the background and waited for, so that a TERM reaches the trap (and the Python PID) at once.
(cd "$TMP" && exec env PYTHONPATH="$SRC:$ROOT" "$PY" "$BENCH_DIR/state_bench.py" \
    --links "$LINKS" --villages "$VILLAGES" --rounds "$ROUNDS" --history-runs "$HISTORY_RUNS" \
    --single-appends "$SINGLE_APPENDS" --mqtt-events "$MQTT_EVENTS" --dir "$DB_DIR" \
    --code "$CODE" --md "$OUT" --json "${OUT%.md}.json" "${broker_args[@]}") &
STARTED_PIDS+=("$!")
rc=0
wait "$!" || rc=$?
STARTED_PIDS=()
log "results: $OUT (exit status $rc)"
exit "$rc"
