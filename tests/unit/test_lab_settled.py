"""ProvinceLab.wait_settled against /metrics samples of a lab where only some villages are
polled over SNMP (LabPlan.snmp_villages): no root needed, the lab is never built."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.lab.province import ProvinceLab
from monitord.lab.scrape import Sample
from monitord.lab.topology import LabPlan

PLAN = LabPlan(kabupaten=2, villages=3, vsat_villages=1, snmp_villages=1, dc_devices=2)


def metrics(lab: ProvinceLab, snmp_up: set[str]) -> list[Sample]:
    """Every device up; `snmp_up` with a successful SNMP poll (the others have no SNMP sample,
    as monitord exports none for a device it does not poll)."""
    samples: list[Sample] = [("monitord_target_state", {"target": d, "state": "up"}, 1.0)
                             for d in lab.devices]
    return samples + [("monitord_snmp_up", {"target": d}, 1.0) for d in snmp_up]


def test_settles_once_the_snmp_devices_are_polled_though_not_every_device_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = ProvinceLab(tmp_path, PLAN)
    polled = set(lab.topology.snmp_devices)
    assert polled < set(lab.devices)  # the plan leaves villages unpolled
    samples = metrics(lab, polled)
    monkeypatch.setattr(lab, "samples", lambda: samples)
    assert lab.wait_settled(timeout=2) == samples


def test_does_not_settle_while_an_snmp_device_is_unpolled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = ProvinceLab(tmp_path, PLAN)
    unpolled = lab.links["majene"].villages[0]  # the first village: polled under the plan
    assert unpolled in lab.topology.snmp_devices
    samples = metrics(lab, set(lab.topology.snmp_devices) - {unpolled})
    monkeypatch.setattr(lab, "samples", lambda: samples)
    with pytest.raises(AssertionError, match="polled over SNMP"):
        lab.wait_settled(timeout=1)
