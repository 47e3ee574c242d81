"""`monitord probe` against real loopback and unreachable targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = str(ROOT / "config" / "local.yaml")


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitord", "probe", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_probe_a_configured_target() -> None:
    done = probe("localhost-v6", "-c", LOCAL, "--count", "3")
    assert done.returncode == 0, done.stderr
    header = "PROBE localhost-v6 (::1) icmp [here/loopback, role dc-network, parent localhost-v4]"
    assert header in done.stdout
    assert "3 sent, 3 received, 0% loss" in done.stdout
    assert "rtt min/avg/max/jitter = " in done.stdout
    assert "ICMP IPv6: " in done.stderr  # the socket choice is logged


def test_probe_an_address_not_in_the_config() -> None:
    done = probe("127.0.0.9", "-c", LOCAL, "--count", "2", "--socket", "raw")
    assert done.returncode == 0, done.stderr
    assert "2 sent, 2 received" in done.stdout


def test_probe_an_unreachable_address_fails_with_the_reason() -> None:
    done = probe("198.19.0.1", "-c", LOCAL, "--count", "2")
    assert done.returncode == 1
    assert "0 sent, 0 received, 100% loss" in done.stdout
    assert "error: send failed: Network is unreachable" in done.stdout


def test_probe_an_unknown_name_is_a_config_error() -> None:
    done = probe("no-such-device", "-c", LOCAL)
    assert done.returncode == 2
    assert "no target 'no-such-device' in the config and not an IP address" in done.stderr
