"""The parts of monitord.lab.faults that need neither root nor namespaces: argument checks,
undo-on-failure, and the bad config being bad where it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config import ConfigError, load_inventory
from monitord.lab.faults import (
    BAD_CONFIG,
    BAD_CONFIG_LINE,
    Flapper,
    Link,
    LossRule,
    broken_config,
    broker_outage,
    packet_loss,
    packet_loss_every,
    reboot_device,
)


class Recorder:
    """A Restartable that writes down what was done to it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop(self) -> None:
        self.calls.append("stop")

    def start(self) -> Recorder:
        self.calls.append("start")
        return self


def test_reboot_is_a_stop_then_a_start() -> None:
    agent = Recorder()
    reboot_device(agent)
    assert agent.calls == ["stop", "start"]


def test_the_broker_comes_back_even_when_the_body_fails() -> None:
    broker = Recorder()
    seen: list[list[str]] = []

    def failing_body() -> None:
        with broker_outage(broker):
            seen.append(list(broker.calls))
            raise RuntimeError("body")

    with pytest.raises(RuntimeError, match="body"):
        failing_body()
    assert seen == [["stop"]]
    assert broker.calls == ["stop", "start"]


def test_a_broken_config_is_restored_even_when_the_body_fails(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text("good: 1\n")
    seen: list[tuple[str, str]] = []

    def failing_body() -> None:
        with broken_config(config) as original:
            seen.append((original, config.read_text()))
            raise RuntimeError("body")

    with pytest.raises(RuntimeError, match="body"):
        failing_body()
    assert seen == [("good: 1\n", BAD_CONFIG)]
    assert config.read_text() == "good: 1\n"


def test_the_bad_config_is_refused_naming_its_line(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text(BAD_CONFIG)
    with pytest.raises(ConfigError, match=f"{config}: line {BAD_CONFIG_LINE}, column"):
        load_inventory(str(config))


def test_loss_arguments_are_checked_before_anything_is_touched() -> None:
    # A netns that does not exist: reaching iptables would fail differently.
    with pytest.raises(ValueError, match="probability"), packet_loss("no-such-ns", 0.0):
        pass
    with pytest.raises(ValueError, match="probability"), packet_loss("no-such-ns", 1.5):
        pass
    with pytest.raises(ValueError, match="every"), packet_loss_every("no-such-ns", 1):
        pass


def test_loss_rule_spec() -> None:
    rule = LossRule("ns", "FORWARD", ("-p", "icmp"), ("--mode", "nth", "--every", "4",
                                                      "--packet", "0"), "monitord-lab-loss-1")
    assert rule.spec() == ["-p", "icmp", "-m", "statistic", "--mode", "nth", "--every", "4",
                           "--packet", "0", "-m", "comment", "--comment", "monitord-lab-loss-1",
                           "-j", "DROP"]


def test_flapper_bounds() -> None:
    with pytest.raises(ValueError, match="period"):
        Flapper(Link("eth9"), period=0, times=1)
    with pytest.raises(ValueError, match="times"):
        Flapper(Link("eth9"), period=1, times=0)
    assert Flapper(Link("eth9"), period=2.5, times=3).duration == 15.0
