"""Reload adds and removes targets and their series; a bad file keeps the old config running."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.integration.conftest import DaemonFactory
from tests.integration.harness import by_target, value, wait_for, write_config

A = {"id": "a", "address": "127.3.0.1"}
B = {"id": "b", "address": "127.3.0.2"}
C = {"id": "c", "address": "127.3.0.3"}


def probed_targets(samples: list[tuple[str, dict[str, str], float]]) -> set[str]:
    return {t for t, v in by_target(samples, "monitord_icmp_requests_total").items() if v > 0}


def test_reload_adds_and_removes_targets_and_series(tmp_path: Path, port: int,
                                                    daemons: DaemonFactory) -> None:
    config = write_config(tmp_path / "m.yaml", [A, B], port)
    d = daemons.start(config, port)
    wait_for("a and b probed", lambda: probed_targets(d.samples()) == {"a", "b"})

    write_config(config, [B, C], port)
    status, body = d.post("/-/reload")
    assert status == 200, body
    assert "2 checks" in body
    samples = d.samples()
    # Removed target: every series of it is gone at once, not just stale.
    assert not [s for s in samples if s[1].get("target") == "a"]
    assert value(samples, "monitord_targets", kind="icmp") == 2
    wait_for("c probed after reload", lambda: probed_targets(d.samples()) == {"b", "c"})
    assert value(d.samples(), "monitord_config_last_reload_successful") == 1

    # SIGHUP reloads too.
    write_config(config, [C], port)
    d.proc.send_signal(signal.SIGHUP)
    wait_for("b gone after SIGHUP",
             lambda: set(by_target(d.samples(), "monitord_icmp_requests_total")) == {"c"})


def test_bad_reload_keeps_running_config(tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    config = write_config(tmp_path / "m.yaml", [A, B], port)
    d = daemons.start(config, port)
    wait_for("a and b probed", lambda: probed_targets(d.samples()) == {"a", "b"})
    good_reload_time = value(d.samples(), "monitord_config_last_reload_success_timestamp_seconds")

    config.write_text(config.read_text().replace("127.3.0.2", "127.3.0.300"))
    status, body = d.post("/-/reload")
    assert status == 500
    assert "still running the previous config" in body
    assert "'127.3.0.300' is not an IPv4 or IPv6 address" in body
    assert "devices[b].address" in body

    samples = d.samples()
    assert value(samples, "monitord_config_last_reload_successful") == 0
    assert value(samples, "monitord_config_reloads_total", result="failure") == 1
    assert value(samples, "monitord_config_last_reload_success_timestamp_seconds") == good_reload_time
    assert set(by_target(samples, "monitord_icmp_requests_total")) == {"a", "b"}
    before = by_target(samples, "monitord_icmp_requests_total")["b"]
    wait_for("b still probed", lambda: by_target(d.samples(), "monitord_icmp_requests_total")["b"] > before)
    assert "reload failed" in d.log()
    assert d.get("/-/ready")[0] == 200


def test_sigterm_exits_cleanly(tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    d = daemons.start(write_config(tmp_path / "m.yaml", [A], port), port)
    wait_for("a probed", lambda: probed_targets(d.samples()) == {"a"})
    assert d.stop() == 0
    assert "stopped" in d.log()
    assert "Traceback" not in d.log()
