"""`monitord lab`'s parts that need no namespace: the demo fault schedule, the Prometheus config
it writes, and its refusals."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml

from monitord.cli import main
from monitord.lab.demo import EXIT_SETUP, DemoFault, FaultCycle, write_prometheus_config

REPO = Path(__file__).resolve().parents[2]


class Journal:
    """What the demo faults did, in order."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[None]:
        self.entries.append(f"start {name}")
        try:
            yield
        finally:
            self.entries.append(f"end {name}")


def test_faults_take_turns_each_for_its_time_with_calm_between() -> None:
    journal = Journal()
    cycle = FaultCycle([DemoFault("cut", partial(journal.fault, "cut")),
                        DemoFault("vsat", partial(journal.fault, "vsat"))],
                       first_after=20, active=30, pause=20)
    notes = {t: cycle.tick(t) for t in (0, 10, 20, 35, 50, 60, 70, 100, 120, 130)}
    assert notes[0] == notes[10] == notes[60] == []
    assert notes[20] == ["FAULT STARTED (for 30 s): cut"]
    assert notes[35] == ["FAULT ACTIVE (15 s left): cut"]
    assert notes[50] == ["FAULT ENDED: cut"]
    assert notes[70] == ["FAULT STARTED (for 30 s): vsat"]
    assert notes[100] == ["FAULT ENDED: vsat"]
    assert notes[120] == ["FAULT STARTED (for 30 s): cut"]  # round again
    assert notes[130] == ["FAULT ACTIVE (20 s left): cut"]
    assert journal.entries == ["start cut", "end cut", "start vsat", "end vsat", "start cut"]
    cycle.close()  # the demo ends in the middle of a fault: it is undone
    assert journal.entries[-1] == "end cut"
    cycle.close()
    assert journal.entries.count("end cut") == 2


def test_a_late_tick_ends_one_fault_and_starts_the_next_in_the_same_frame() -> None:
    journal = Journal()
    with FaultCycle([DemoFault("a", partial(journal.fault, "a")),
                     DemoFault("b", partial(journal.fault, "b"))],
                    first_after=0, active=10, pause=0) as cycle:
        assert cycle.tick(0) == ["FAULT STARTED (for 10 s): a"]
        assert cycle.tick(12) == ["FAULT ENDED: a", "FAULT STARTED (for 10 s): b"]
    assert journal.entries == ["start a", "end a", "start b", "end b"]


def test_the_prometheus_config_scrapes_the_lab_with_the_shipped_rules(tmp_path: Path) -> None:
    path = write_prometheus_config(tmp_path / "prometheus.yml", 9599)
    doc = yaml.safe_load(path.read_text())
    job = doc["scrape_configs"][0]
    assert job["job_name"] == "monitord"  # the alert rules read up{job="monitord"}
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9599"]}]
    rules = [Path(p) for p in doc["rule_files"]]
    assert {p.name for p in rules} >= {"monitord-alerts.yml", "monitord-recording.yml"}
    assert all(p.is_absolute() and p.is_file() for p in rules)


@pytest.mark.parametrize("argv", [
    ["lab", "--listen", "10.1.2.3:9521"],  # the lab stays on loopback
    ["lab", "--listen", "0.0.0.0:9521"],
    ["lab", "--listen", "127.0.0.1:99999"],
    ["lab", "--kabupaten", "0"],
    ["lab", "--every", "0"],
])
def test_the_lab_refuses_what_it_cannot_do_before_building_anything(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_SETUP
    err = capsys.readouterr().err
    assert err.startswith("monitord lab: ")


def test_a_fault_that_fails_is_reported_and_the_cycle_goes_on() -> None:
    journal = Journal()

    @contextlib.contextmanager
    def broken() -> Iterator[None]:
        raise OSError("iptables: not found")
        yield

    with FaultCycle([DemoFault("loss", broken), DemoFault("cut", partial(journal.fault, "cut"))],
                    first_after=0, active=10, pause=5) as cycle:
        assert cycle.tick(0) == ["FAULT FAILED TO START: loss: iptables: not found"]
        assert cycle.tick(5) == []
        assert cycle.tick(15) == ["FAULT STARTED (for 10 s): cut"]
    assert journal.entries == ["start cut", "end cut"]
