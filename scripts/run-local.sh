#!/usr/bin/env bash
# The README's first command: set up, then run monitord on config/local.yaml, which probes
# only this machine's loopback addresses and serves http://127.0.0.1:9521/metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/monitord run -c config/local.yaml "$@"
