#!/usr/bin/env bash
# The README's second command: install everything the suite needs, lint, type-check, then run
# every test inside a fresh network namespace that has only `lo`, so no test can send a packet
# off this machine even by mistake (tests that need test hosts build veth pairs from there).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

echo "== ruff"
.venv/bin/ruff check monitord tests bench dashboards
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest (inside an isolated network namespace)"
# unshare -n: new network namespace, only lo; --mount: mounts a test makes (a tmpfs state disk) stay private to the suite. The suite's own namespaces are created from here.
exec unshare --net --mount -- sh -c 'ip link set lo up && exec .venv/bin/pytest "$@"' pytest "$@"
