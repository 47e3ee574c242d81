"""`monitord report` and `monitord maintenance` end to end: a real history database written by
HistoryStore (as the daemon writes it), a real config file, the real argument parser."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitord.report.availability import HistoryData
from monitord.report.cli import add_maintenance_parser, add_report_parser
from monitord.report.history_source import read_history
from monitord.report.maintenance import MAINTENANCE_FILE
from monitord.report.period import Period, parse_day
from monitord.state.history import (
    _SELECT_LAST_STATE_BEFORE,
    HISTORY_FILE,
    HistoryError,
    HistoryStore,
)
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)

H = 3600.0
FIRST_DAY = "2025-01-06"
PERIOD = Period(parse_day(FIRST_DAY), parse_day(FIRST_DAY), "Asia/Makassar")
T0 = PERIOD.start  # 2025-01-06 00:00 WITA

CONFIG = """
daemon:
  state_dir: {state_dir}
report:
  timezone: Asia/Makassar
  slo: {{kabupaten-link: 98, village-ap: 95, dc-network: 99.5}}
province:
  id: sulbar
  uplink: prov-core
  kabupaten:
    - id: provinsi
      sites:
        - id: pusat-data
          devices:
            - {{id: prov-core, role: dc-network, address: 127.0.0.1}}
    - id: mamasa
      uplink: mamasa-link
      sites:
        - id: diskominfo-mamasa
          devices:
            - {{id: mamasa-link, role: kabupaten-link, address: 127.0.0.2}}
        - id: desa-a
          devices:
            - {{id: desa-a, name: Desa A <Balai>, role: village-ap, address: 127.0.0.3}}
"""

CORE = Placement(target="prov-core", province="sulbar", kabupaten="provinsi", site="pusat-data",
                 role="dc-network", address="127.0.0.1")
LINK = Placement(target="mamasa-link", province="sulbar", kabupaten="mamasa",
                 site="diskominfo-mamasa", role="kabupaten-link", address="127.0.0.2",
                 parent="prov-core")
DESA = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                 role="village-ap", address="127.0.0.3", name="Desa A <Balai>",
                 parent="mamasa-link")


class Lab:
    """A state directory with a history written the daemon's way, and its config file."""

    def __init__(self, root: Path) -> None:
        self.state_dir = root / "state"
        self.config = root / "monitord.yaml"
        self.config.write_text(CONFIG.format(state_dir=self.state_dir))
        self.store = HistoryStore(self.state_dir / HISTORY_FILE)
        self._states: dict[str, State] = {}

    def event(self, hours: float, placement: Placement, state: State,
              root: str | None = None) -> None:
        time_ = T0 + hours * H
        root = placement.target if state is State.DOWN else root
        event = StateEvent(
            id=new_event_id(time_), time=time_, kind=EventKind.STATE, placement=placement,
            from_state=self._states.get(placement.target, State.UNKNOWN), to_state=state,
            reason="test", reason_code=ReasonCode.PROBES_GOOD, root_cause=root, flapping=False)
        status = TargetStatus(placement=placement, state=state, since=time_, reason="test",
                              reason_code=ReasonCode.PROBES_GOOD, root_cause=root,
                              own_state=state)
        self.store.append([event], [status], outbox=False)
        self._states[placement.target] = state

    def the_usual_day(self) -> None:
        """Watched from the day before; the link fails 10:00-12:00 (WITA) with the village
        behind it; monitord is stopped 15:00-16:00."""
        run = self.store.record_run_start(T0 - 24 * H)
        for placement in (CORE, LINK, DESA):
            self.event(-23, placement, State.UP)
        self.event(10, LINK, State.DOWN)
        self.event(10, DESA, State.UNREACHABLE, root="mamasa-link")
        self.event(12, LINK, State.UP)
        self.event(12, DESA, State.UP)
        self.store.record_run_stop(run, T0 + 15 * H)
        self.store.record_run_start(T0 + 16 * H)  # still running


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = Lab(tmp_path)
    yield made
    made.store.close()


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="monitord")
    sub = parser.add_subparsers(required=True)
    add_report_parser(sub, "/nonexistent/monitord.yaml")
    add_maintenance_parser(sub, "/nonexistent/monitord.yaml")
    args = parser.parse_args(list(argv))
    result: int = args.func(args)
    return result


def report_json(lab: Lab, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "report.json"
    assert run_cli("report", "-c", str(lab.config), "--from", FIRST_DAY, "--to", FIRST_DAY,
                   "-o", str(out)) == 0
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def target_row(document: dict[str, Any], target: str) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in document["figures"]["target"]
                               if r["target"] == target)
    return row


def test_json_report_from_a_history_the_daemon_is_still_writing(lab: Lab,
                                                                tmp_path: Path) -> None:
    lab.the_usual_day()
    history = lab.state_dir / HISTORY_FILE
    before = hashlib.sha256(history.read_bytes()).hexdigest()
    document = report_json(lab, tmp_path)  # lab.store stays open, like a running daemon's
    assert hashlib.sha256(history.read_bytes()).hexdigest() == before  # read only

    assert document["format"] == "monitord.report/1"
    assert document["period"] == {
        "first_day": FIRST_DAY, "last_day": FIRST_DAY, "start": "2025-01-06T00:00:00+08:00",
        "end": "2025-01-07T00:00:00+08:00", "timezone": "Asia/Makassar", "minutes": 1440.0}
    link, desa = target_row(document, "mamasa-link"), target_row(document, "desa-a")
    assert link["own_down_minutes"] == 120.0
    assert link["no_data_minutes"] == 60.0  # monitord stopped 15:00-16:00
    assert link["availability_percent"] == round(100 * 21 / 23, 4)
    assert link["caused_down_minutes"] == 120.0
    assert link["below_slo"] is True
    # The SLOs are the config file's `report.slo`.
    assert document["slo"]["roles"] == {"dc-network": 99.5, "kabupaten-link": 98.0,
                                        "village-ap": 95.0}
    assert desa["parent_down_minutes"] == 120.0
    assert desa["own_down_minutes"] == 0.0
    assert desa["own_availability_percent"] == 100.0
    assert desa["parent_down_by_root_minutes"] == {"mamasa-link": 120.0}
    assert document["monitord_not_running"] == [
        {"start": "2025-01-06T15:00:00+08:00", "end": "2025-01-06T16:00:00+08:00",
         "minutes": 60.0}]
    [incident] = document["incidents"]
    assert incident["target"] == "mamasa-link"
    assert incident["start"] == "2025-01-06T10:00:00+08:00"
    assert incident["affected_targets"] == 1
    [site] = document["sites_below_slo"]
    assert site["site"] == "diskominfo-mamasa"
    assert site["targets_below_slo_ids"] == ["mamasa-link"]
    figures = document["figures"]
    assert [r["kabupaten"] for r in figures["kabupaten"]] == ["mamasa", "provinsi"]
    assert [r["role"] for r in figures["role"]] == ["dc-network", "kabupaten-link",
                                                    "village-ap"]
    assert figures["province"][0]["targets"] == 3


def test_csv_goes_to_stdout_with_one_row_per_level_and_item(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.the_usual_day()
    assert run_cli("report", "-c", str(lab.config), "--from", FIRST_DAY, "--to", FIRST_DAY,
                   "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["level"], r["kabupaten"] or r["role"]) for r in rows[:3]] == [
        ("province", ""), ("kabupaten", "mamasa"), ("kabupaten", "provinsi")]
    assert sum(r["level"] == "site" for r in rows) == 3
    assert sum(r["level"] == "target" for r in rows) == 3
    link = next(r for r in rows if r["target"] == "mamasa-link")
    assert (link["own_down_minutes"], link["below_slo"], link["mttr_minutes"]) == (
        "120.0", "true", "120.0")
    core = next(r for r in rows if r["target"] == "prov-core")
    assert core["mttr_minutes"] == ""  # no incidents: no MTTR, not 0


@pytest.mark.parametrize(("language", "words"), [
    ("id", ("Laporan Ketersediaan Jaringan SPBE", "Insiden per hari", "6 Januari 2025 10.00",
            'lang="id"')),
    ("en", ("SPBE Network Availability Report", "Incidents per day", "6 January 2025 10:00",
            'lang="en"')),
])
def test_html_page_has_both_charts_in_the_chosen_language(
        lab: Lab, tmp_path: Path, language: str, words: tuple[str, ...]) -> None:
    lab.the_usual_day()
    out = tmp_path / "laporan.html"
    assert run_cli("report", "-c", str(lab.config), "--from", FIRST_DAY, "--to", FIRST_DAY,
                   "--lang", language, "-o", str(out)) == 0  # html from the suffix
    page = out.read_text()
    assert page.count("<svg") == 2
    assert '<rect class="bar"' in page
    assert '<line class="target"' in page  # the SLO mark on the kabupaten chart
    for word in words:
        assert word in page
    assert "Desa A &lt;Balai&gt;" in page  # config text is escaped
    assert "<Balai>" not in page
    assert "<script" not in page


def test_a_month_with_a_crash_and_an_outage_across_the_period_start(
        lab: Lab, tmp_path: Path) -> None:
    run = lab.store.record_run_start(T0 - 48 * H)
    lab.event(-47, CORE, State.UP)
    lab.event(-47, LINK, State.UP)
    lab.event(-2, LINK, State.DOWN)  # still down when the period starts
    lab.event(3, LINK, State.UP)
    lab.event(20, CORE, State.DEGRADED)  # the last sign of life of this run
    del run  # it crashes: no stop is recorded
    lab.store.record_run_start(T0 + 22 * H)
    document = report_json(lab, tmp_path)
    link, core = target_row(document, "mamasa-link"), target_row(document, "prov-core")
    assert link["own_down_minutes"] == 180.0
    assert link["no_data_minutes"] == 120.0  # 20:00-22:00: after the crashed run's last event
    assert core["up_minutes"] == 22 * 60.0
    [incident] = document["incidents"]
    assert incident["started_before_period"] is True
    assert incident["start"] == "2025-01-05T22:00:00+08:00"
    desa = target_row(document, "desa-a")  # configured, never had an event
    assert desa["no_data_minutes"] == 1440.0
    assert desa["availability_percent"] is None


def test_maintenance_added_from_the_cli_is_excluded_listed_and_removable(
        lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab.the_usual_day()
    assert run_cli("maintenance", "add", "-c", str(lab.config), "--kabupaten", "mamasa",
                   "--role", "kabupaten-link", "--from", "2025-01-06 09:30",
                   "--to", "2025-01-06 12:30", "--reason", "penggantian radio") == 0
    assert "added maintenance window #1: 2025-01-06 09:30" in capsys.readouterr().out
    assert (lab.state_dir / MAINTENANCE_FILE).stat().st_mode & 0o777 == 0o640

    document = report_json(lab, tmp_path)
    link, desa = target_row(document, "mamasa-link"), target_row(document, "desa-a")
    assert link["own_down_minutes"] == 0.0
    assert link["maintenance_minutes"] == 180.0
    assert desa["maintenance_minutes"] == 120.0  # cut off by the planned work on its link
    assert desa["availability_percent"] == 100.0
    [window] = document["maintenance"]
    assert (window["reason"], window["source"], window["start"]) == (
        "penggantian radio", "state #1", "2025-01-06T09:30:00+08:00")

    assert run_cli("maintenance", "list", "-c", str(lab.config), "--json") == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listed["id"], listed["kabupaten"], listed["roles"]) == (
        1, ["mamasa"], ["kabupaten-link"])

    assert run_cli("maintenance", "remove", "-c", str(lab.config), "1") == 0
    assert run_cli("maintenance", "remove", "-c", str(lab.config), "1") == 1
    assert target_row(report_json(lab, tmp_path), "mamasa-link")["own_down_minutes"] == 120.0


def test_maintenance_add_refuses_ids_not_in_the_config_and_bad_times(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("maintenance", "add", "-c", str(lab.config), "--reason", "x")
    assert run_cli(*base, "--site", "desa-z", "--from", "2025-01-06 09:00",
                   "--to", "2025-01-06 10:00") == 2
    assert "not in the config: site desa-z" in capsys.readouterr().err
    assert run_cli(*base, "--site", "desa-a", "--from", "2025-01-06 11:00",
                   "--to", "2025-01-06 10:00") == 2
    assert "must end after it starts" in capsys.readouterr().err
    assert run_cli(*base, "--from", "2025-01-06 09:00", "--to", "2025-01-06 10:00") == 2
    assert "at least one target, site, kabupaten or role" in capsys.readouterr().err
    assert run_cli(*base, "--site", "desa-a", "--from", "kemarin",
                   "--to", "2025-01-06 10:00") == 2
    assert "is not a date and time" in capsys.readouterr().err
    assert not (lab.state_dir / MAINTENANCE_FILE).exists()


def test_report_errors_name_the_problem(lab: Lab, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = ("report", "-c", str(lab.config))
    assert run_cli(*args, "--from", "2025-01-31", "--to", "2025-01-01") == 2
    assert "ends (2025-01-01) before it starts" in capsys.readouterr().err
    assert run_cli(*args, "--from", "2025-13-01", "--to", "2025-01-01") == 2
    assert "is not a date (use YYYY-MM-DD)" in capsys.readouterr().err
    assert run_cli(*args, "--from", FIRST_DAY, "--to", FIRST_DAY,
                   "-o", str(tmp_path / "report.docx")) == 2
    assert "give --format" in capsys.readouterr().err
    lab.store.close()
    (lab.state_dir / HISTORY_FILE).unlink()
    assert run_cli(*args, "--from", FIRST_DAY, "--to", FIRST_DAY) == 2
    assert "no history to report on" in capsys.readouterr().err
    lab.store = HistoryStore(tmp_path / "other" / HISTORY_FILE)  # for the fixture to close


def test_read_history_gives_the_last_state_event_before_the_period(lab: Lab) -> None:
    lab.the_usual_day()
    lab.store.append([StateEvent(
        id=new_event_id(T0 - H), time=T0 - H, kind=EventKind.FLAPPING, placement=DESA,
        from_state=State.UP, to_state=State.UP, reason="x",
        reason_code=ReasonCode.FLAPPING_STARTED, root_cause=None, flapping=True)], [],
        outbox=False)
    data: HistoryData = read_history(lab.state_dir / HISTORY_FILE, PERIOD, now=T0 + 30 * H)
    assert sorted((e.target, e.kind, e.time) for e in data.priors) == [
        ("desa-a", EventKind.STATE, T0 - 23 * H), ("mamasa-link", EventKind.STATE, T0 - 23 * H),
        ("prov-core", EventKind.STATE, T0 - 23 * H)]  # not the later flapping event
    assert len(data.events) == 4
    assert data.watched.intervals() == [(T0 - 24 * H, T0 + 15 * H), (T0 + 16 * H, T0 + 30 * H)]


def test_read_history_refuses_a_file_that_is_not_a_history(tmp_path: Path) -> None:
    other = tmp_path / HISTORY_FILE
    other.write_bytes(b"not a database at all, just some bytes" * 200)
    with pytest.raises(HistoryError, match="is not a monitord history database"):
        read_history(other, PERIOD, now=T0)


def test_the_last_event_before_the_period_is_found_through_the_index(lab: Lab) -> None:
    # One indexed probe per target, however long the history: no scan, no sort.
    plan = str(lab.store._db.execute(f"EXPLAIN QUERY PLAN {_SELECT_LAST_STATE_BEFORE}",
                                     ("desa-a", T0)).fetchall())
    assert "USING INDEX events_by_target_time" in plan
    assert "TEMP B-TREE" not in plan
