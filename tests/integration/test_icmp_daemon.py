"""monitord probing real ICMP targets: loopback at scale, a downed link, an absent host."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.conftest import DaemonFactory
from tests.integration.harness import Sample, by_target, value, wait_for, write_config
from tests.integration.netns import TestHost

LOOPBACK_TARGETS = 500


def loopback_devices(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"id": f"lo-{i}", "address": f"127.2.{i // 250}.{i % 250 + 1}"} for i in range(start, start + n)]


def test_500_loopback_targets_all_answer(tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    config = write_config(tmp_path / "m.yaml", loopback_devices(LOOPBACK_TARGETS), port)
    d = daemons.start(config, port)

    def all_probed() -> list[Sample] | None:
        samples = d.samples()
        sent = by_target(samples, "monitord_icmp_requests_total")
        return samples if len(sent) == LOOPBACK_TARGETS and all(sent.values()) else None

    samples = wait_for("every target probed once", all_probed, timeout=30)
    sent = by_target(samples, "monitord_icmp_requests_total")
    received = by_target(samples, "monitord_icmp_responses_total")
    success = by_target(samples, "monitord_probe_success")
    loss = by_target(samples, "monitord_icmp_loss_ratio")
    assert len(sent) == LOOPBACK_TARGETS
    assert {t: received[t] for t in sent if received[t] != sent[t]} == {}
    assert set(success.values()) == {1.0}
    assert set(loss.values()) == {0.0}
    # The RTT histogram holds one observation per reply, and every RTT is a real positive time
    # within the 500 ms timeout (no timing assertion: a loaded machine may be slow).
    count = by_target(samples, "monitord_icmp_rtt_seconds_count")
    assert count == received
    within_timeout = {labels["target"]: v for n, labels, v in samples
                      if n == "monitord_icmp_rtt_seconds_bucket" and labels["le"] == "0.5"}
    assert within_timeout == received
    rtt_sum = by_target(samples, "monitord_icmp_rtt_seconds_sum")
    assert all(0 < rtt_sum[t] < 0.5 * received[t] for t in received)


def test_exposition_passes_promtool(tmp_path: Path, port: int, daemons: DaemonFactory) -> None:
    tricky = {"id": "v6", "address": "::1", "labels": {"note": 'quote " and \\'}}
    devices: list[dict[str, Any]] = [*loopback_devices(3), tricky]
    d = daemons.start(write_config(tmp_path / "m.yaml", devices, port), port)
    wait_for("v6 probed", lambda: value(d.samples(), "monitord_probe_success", target="v6"))
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/test.sh (Debian package prometheus)"
    check = subprocess.run([promtool, "check", "metrics"], input=d.metrics_text(),
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""


def test_downed_link_and_absent_host_show_total_loss(tmp_path: Path, port: int,
                                                     daemons: DaemonFactory) -> None:
    with TestHost() as host:
        devices = [
            {"id": "behind-link", "address": host.address},
            {"id": "absent", "address": host.absent_address},
            {"id": "control", "address": "127.0.0.1"},
        ]
        d = daemons.start(write_config(tmp_path / "m.yaml", devices, port), port)

        def probed(target: str, success: float) -> bool:
            return value(d.samples(), "monitord_probe_success", target=target) == success

        wait_for("host behind the link answers", lambda: probed("behind-link", 1.0))
        wait_for("absent host reported down", lambda: probed("absent", 0.0))
        samples = d.samples()
        assert value(samples, "monitord_icmp_loss_ratio", target="absent") == 1.0
        assert value(samples, "monitord_icmp_responses_total", target="absent") == 0.0
        assert value(samples, "monitord_icmp_requests_total", target="absent") > 0  # type: ignore[operator]

        host.link_down()
        wait_for("host behind the downed link reported down", lambda: probed("behind-link", 0.0))
        samples = d.samples()
        assert value(samples, "monitord_icmp_loss_ratio", target="behind-link") == 1.0
        assert value(samples, "monitord_probe_success", target="control") == 1.0

        host.link_up()
        wait_for("host back after the link comes up", lambda: probed("behind-link", 1.0))
