#!/usr/bin/env bash
# Installs what monitord needs on a fresh Debian 12 machine (root): Debian packages and a venv
# in .venv with monitord installed editable. Idempotent; safe to re-run.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   also the peers the test suite runs for real and the test tools
#   scripts/setup.sh --lab    also what the province lab (`make demo`, `monitord lab`) needs
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_lab=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--lab" ] && want_lab=1

[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (it installs Debian packages)" >&2; exit 1; }

apt_packages=(python3 python3-venv python3-dev iproute2 curl)
if [ "$want_test" = 1 ]; then
    # prometheus: promtool and a real server; fping: the peer the ICMP benchmark compares
    # with; iptables: faults; snmpd: the real SNMP agent (v2c, v3) and snmp: its CLI tools;
    # mosquitto: the real MQTT broker the state events go to; prometheus-alertmanager: the
    # real Alertmanager (and amtool) the alert rules route through; chromium: the report's
    # PDF printer, and the browser the tests look at the HTML report in; victoria-metrics: the
    # central store the national-deployment test remote-writes two shards to
    apt_packages+=(prometheus fping iptables iputils-ping util-linux snmpd snmp
                   mosquitto mosquitto-clients prometheus-alertmanager chromium
                   victoria-metrics)
fi
if [ "$want_lab" = 1 ]; then
    # mosquitto: the lab's broker for monitord's state events, mosquitto-clients: to watch
    # them (mosquitto_sub); iptables: the demo's packet-loss fault; snmp: snmpget/snmpwalk to
    # look at the lab's devices yourself. The SNMP agents are snmpsim, from the `lab` extra.
    apt_packages+=(iptables mosquitto mosquitto-clients snmp)
fi
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's policy-rc.d keeps installed daemons (prometheus...) from starting on their own.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=python3.11
command -v "$python" >/dev/null || python=python3
"$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || { echo "setup.sh: monitord needs Python 3.11 or newer" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""
[ "$want_test" = 1 ] && extra="[test]"
[ "$want_lab" = 1 ] && extra="[lab]"
stamp=".venv/.monitord-installed$extra"
# The test install includes the runtime and the lab ones.
[ "$want_test" = 0 ] && [ -f ".venv/.monitord-installed[test]" ] && stamp=".venv/.monitord-installed[test]"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".$extra"
    touch "$stamp"
fi
