#!/usr/bin/env bash
# bench/soak.sh [soak.py options]: the soak (bench/soak.py) in a throwaway network and mount
# namespace, so the lab's namespaces, veths, routes and mounts never show outside it.
# Needs root. e.g. sudo bench/soak.sh --minutes 10
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root (network namespaces)" >&2; exit 2; }
# soak.py keeps itself to --minutes (at most 30) plus 20 minutes; this is a backstop.
exec timeout -s TERM -k 60 3600 unshare --net --mount .venv/bin/python bench/soak.py "$@"
