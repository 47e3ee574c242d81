"""The availability report from a real Prometheus agrees with the report from the same
scenario's events.

A hand-made scenario over two hours in the recent past (one kabupaten link and two villages
behind it): the link down 20 min (the villages unreachable with root cause the link), a village
down 10 min on its own, monitord not running for 15 min. What monitord would have exposed every
15 s (rendered by monitord's own StateSeries) is backfilled with promtool into a real
Prometheus; compute_report(read_prometheus(...)) is compared with compute_report of the
scenario's own events and runs, within the tolerance prometheus_source states.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from monitord.metrics.state_series import StateSeries
from monitord.metrics.targets import format_value, label_pairs
from monitord.model import HIERARCHY_LABELS
from monitord.report.availability import HistoryData, Report, TargetFigures, compute_report
from monitord.report.period import Period
from monitord.report.prometheus_source import PrometheusSourceError, read_prometheus
from monitord.report.settings import ReportSettings
from monitord.report.timeline import IntervalSet
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)
from tests.integration.harness import free_port
from tests.integration.prometheus_stack import Prometheus, prometheus

pytestmark = pytest.mark.slow

SCRAPE = 15.0  # how often the scenario's Prometheus scraped monitord
SCRAPE_OFFSET = 5.0  # its scrapes fall 5 s after the scenario's start, not on a transition
STEP = 15.0
MAX_SAMPLE_AGE = 30.0  # backfilled blocks have no staleness markers: a gap shows after this
# How late read_prometheus may see a transition: a state change up to a step after the scrape
# showing it, which is up to a scrape interval after the change; the end of monitord's data
# (no staleness markers here) up to max_sample_age after its last scrape, plus a step.
LAG = max(STEP + SCRAPE, MAX_SAMPLE_AGE + STEP)
RETENTION = "--storage.tsdb.retention.time=30d"  # the helper's 1h would drop the scenario

LINK = Placement(target="link-mamasa", province="sulbar", kabupaten="mamasa", site="pop-mamasa",
                 role="kabupaten-link", address="10.20.0.1", name="Link Mamasa")
VILLAGE_A = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                      role="village-ap", address="10.20.1.1", name="Desa A", parent=LINK.target)
VILLAGE_B = Placement(target="desa-b", province="sulbar", kabupaten="mamasa", site="desa-b",
                      role="village-ap", address="10.20.2.1", name="Desa B", parent=LINK.target)
PLACEMENTS = {p.target: p for p in (LINK, VILLAGE_A, VILLAGE_B)}
MINUTE = 60.0

# (seconds after the start, target, new state, root cause)
TRANSITIONS: tuple[tuple[float, str, State, str | None], ...] = (
    (3, LINK.target, State.UP, None),
    (4, VILLAGE_A.target, State.UP, None),
    (4, VILLAGE_B.target, State.UP, None),
    (20 * MINUTE + 7, LINK.target, State.DOWN, LINK.target),
    (20 * MINUTE + 9, VILLAGE_A.target, State.UNREACHABLE, LINK.target),
    (20 * MINUTE + 9, VILLAGE_B.target, State.UNREACHABLE, LINK.target),
    (40 * MINUTE + 7, LINK.target, State.UP, None),
    (40 * MINUTE + 31, VILLAGE_A.target, State.UP, None),
    (40 * MINUTE + 44, VILLAGE_B.target, State.UP, None),
    (60 * MINUTE + 3, VILLAGE_A.target, State.DOWN, VILLAGE_A.target),
    (70 * MINUTE + 3, VILLAGE_A.target, State.UP, None),
)
# When monitord ran: stopped for 15 min in between, and for good at two hours.
RUNS = ((0.0, 85 * MINUTE + 2), (100 * MINUTE + 2, 120 * MINUTE))


@dataclass(frozen=True)
class Scenario:
    start: float
    now: float

    def period(self, first: int, last: int) -> Period:
        """Whole UTC days, numbered from the one the scenario starts on."""
        day = datetime.fromtimestamp(self.start, UTC).date()
        return Period(day + timedelta(days=first), day + timedelta(days=last), "UTC")

    def events(self) -> list[StateEvent]:
        states = dict.fromkeys(PLACEMENTS, State.UNKNOWN)
        events = []
        for offset, target, state, root in TRANSITIONS:
            moment = self.start + offset
            events.append(StateEvent(
                id=new_event_id(moment), time=moment, kind=EventKind.STATE,
                placement=PLACEMENTS[target], from_state=states[target], to_state=state,
                reason="scenario", reason_code=ReasonCode.PROBES_GOOD, root_cause=root,
                flapping=False))
            states[target] = state
        return events

    def history(self) -> HistoryData:
        """What the history database would hold: the events and monitord's runs."""
        return HistoryData(events=self.events(), priors=(), watched=IntervalSet(
            (self.start + begin, self.start + end) for begin, end in RUNS))

    def statuses_at(self, moment: float) -> dict[str, TargetStatus]:
        statuses = {target: TargetStatus(placement=p, state=State.UNKNOWN, since=self.start,
                                         reason="", reason_code=ReasonCode.AWAITING_PROBE,
                                         root_cause=None, own_state=State.UNKNOWN)
                    for target, p in PLACEMENTS.items()}
        for event in self.events():
            if event.time <= moment:
                statuses[event.target] = TargetStatus(
                    placement=event.placement, state=event.to_state, since=event.time,
                    reason="", reason_code=event.reason_code, root_cause=event.root_cause,
                    own_state=event.to_state)
        return statuses

    def openmetrics(self) -> str:
        """What Prometheus scraped from monitord, with each scrape's timestamp, one metric
        family after the other as OpenMetrics wants."""
        families: dict[str, list[str]] = {}
        samples: dict[str, list[str]] = {}
        for begin, end in RUNS:
            scrape = self.start + begin + SCRAPE_OFFSET
            while scrape < self.start + end:  # bounded: a run is two hours at most
                statuses = self.statuses_at(scrape)
                text = StateSeries(partial(dict, statuses)).render() + _info_series(PLACEMENTS)
                for line in text.splitlines():
                    if line.startswith("#"):
                        families.setdefault(line.split()[2], []).append(line)
                    else:
                        name = line.split("{", 1)[0]
                        samples.setdefault(name, []).append(f"{line} {format_value(scrape)}")
                scrape += SCRAPE
        out = []
        for name, header in families.items():
            out += sorted(set(header), key=header.index)
            out += samples.get(name, [])
        return "\n".join([*out, "# EOF", ""])


def _info_series(placements: dict[str, Placement]) -> str:
    lines = ["# HELP monitord_target_info Inventory facts per target.",
             "# TYPE monitord_target_info gauge"]
    for p in placements.values():
        labels = label_pairs([*zip(HIERARCHY_LABELS, (p.province, p.kabupaten, p.site, p.role,
                                                      p.target, p.address), strict=True),
                              ("kind", "icmp"), ("parent", p.parent or ""), ("profile", "lan"),
                              ("name", p.name)])
        lines.append(f"monitord_target_info{{{labels}}} 1")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """Starts yesterday 25 minutes before midnight (UTC): midnight falls in the link's outage,
    and it all lies in blocks."""
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Scenario(start=(today - timedelta(days=1, minutes=25)).timestamp(), now=now)


@pytest.fixture(scope="module")
def blocks(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TSDB data directory holding the scenario, to copy into each Prometheus."""
    workdir = tmp_path_factory.mktemp("backfill")
    source = workdir / "monitord.om.txt"
    source.write_text(scenario.openmetrics())
    data = workdir / "data"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                    str(source), str(data)], check=True, timeout=120, capture_output=True)
    return data


@contextmanager
def _prometheus_with(blocks: Path | None, workdir: Path, *extra: str) -> Iterator[Prometheus]:
    if blocks is not None:
        shutil.copytree(blocks, workdir / "data")
    # It scrapes a closed port: only the backfilled blocks hold monitord's series.
    with prometheus(workdir, f"127.0.0.1:{free_port()}", extra_args=[RETENTION, *extra]) as server:
        yield server


@pytest.fixture(scope="module")
def server(blocks: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with _prometheus_with(blocks, tmp_path_factory.mktemp("prometheus")) as started:
        yield started


def _report(history: HistoryData, period: Period, scenario: Scenario) -> Report:
    return compute_report(history, period, ReportSettings(timezone="UTC"), scenario.now,
                          configured=PLACEMENTS)


def _transitions(target: str) -> int:
    """The target's state changes and monitord's starts and stops: what read_prometheus times
    up to LAG late."""
    return sum(t == target for _, t, _, _ in TRANSITIONS) + 2 * len(RUNS)


def _figures(report: Report) -> dict[str, TargetFigures]:
    return {f.target: f for f in report.targets}


def _read(url: str, period: Period, scenario: Scenario,
          progress: Callable[[str, int, int], None] | None = None) -> HistoryData:
    return read_prometheus(url, period, scenario.now, progress, step=STEP,
                           max_sample_age=MAX_SAMPLE_AGE)


# Both days, the day it starts (the outage runs past its end), the day after (the outage is
# under way at its start: known from the lookback step and monitord's `since`).
@pytest.mark.parametrize("days", [(0, 1), (0, 0), (1, 1)], ids=["both-days", "first", "second"])
def test_report_from_prometheus_agrees_with_the_events(server: Prometheus, scenario: Scenario,
                                                       days: tuple[int, int]) -> None:
    period = scenario.period(*days)
    expected = _report(scenario.history(), period, scenario)
    calls: list[tuple[str, int, int]] = []
    history = _read(server.url, period, scenario, lambda *call: calls.append(call))
    got = _report(history, period, scenario)

    assert calls, "no progress reported"
    assert calls[-1][1] == calls[-1][2], calls  # progress reached its total
    # A state under way at the period start comes from the lookback step.
    assert bool(history.priors) == (period.start > scenario.start)
    placed = {e.target: e.placement for e in (*history.priors, *history.events)}
    assert placed[VILLAGE_A.target] == VILLAGE_A  # parent and name from monitord_target_info
    for target, want in _figures(expected).items():
        have = _figures(got)[target]
        tolerance = LAG * _transitions(target)
        for kind in ("up", "own_down", "parent_down", "no_data"):
            assert abs(getattr(have.totals, kind) - getattr(want.totals, kind)) <= tolerance, (
                target, kind, getattr(have.totals, kind), getattr(want.totals, kind))
        assert have.totals.incidents == want.totals.incidents, target
        assert set(have.parent_down_by_root) == set(want.parent_down_by_root), target
        for root, seconds in want.parent_down_by_root.items():
            assert abs(have.parent_down_by_root[root] - seconds) <= tolerance, (target, root)
        assert have.totals.availability is not None
        assert want.totals.availability is not None
        assert abs(have.totals.availability - want.totals.availability) \
            <= 100 * tolerance / want.totals.measured, target

    assert [i.target for i in got.incidents] == [i.target for i in expected.incidents]
    for have_incident, want_incident in zip(got.incidents, expected.incidents, strict=True):
        assert abs(have_incident.seconds - want_incident.seconds) <= LAG
        if want_incident.start < period.start:  # the lookback's state, timed by its `since`
            assert have_incident.start == want_incident.start
        assert abs(have_incident.start - want_incident.start) <= LAG
        assert (have_incident.end is None) == (want_incident.end is None)
        assert have_incident.affected_targets == want_incident.affected_targets
        assert abs(have_incident.caused - want_incident.caused) \
            <= 2 * LAG * have_incident.affected_targets
    assert [(c.target, c.affected_targets) for c in got.root_causes] \
        == [(c.target, c.affected_targets) for c in expected.root_causes]

    assert len(got.monitord_gaps) == len(expected.monitord_gaps)
    for (have_start, have_end), (want_start, want_end) in zip(
            got.monitord_gaps, expected.monitord_gaps, strict=True):
        assert abs(have_start - want_start) <= LAG
        assert abs(have_end - want_end) <= LAG


def test_the_scenario_figures_from_prometheus(server: Prometheus, scenario: Scenario) -> None:
    """The figures themselves, so a reading wrong on both sides cannot agree by accident."""
    period = scenario.period(0, 1)
    figures = _figures(_report(_read(server.url, period, scenario), period, scenario))
    assert abs(figures[LINK.target].totals.own_down - 20 * MINUTE) <= LAG
    assert abs(figures[VILLAGE_A.target].totals.own_down - 10 * MINUTE) <= LAG
    assert abs(figures[VILLAGE_B.target].parent_down_by_root[LINK.target] - 20 * MINUTE) \
        <= 2 * LAG
    assert figures[LINK.target].caused_targets == 2
    assert {t: f.totals.incidents for t, f in figures.items()} \
        == {LINK.target: 1, VILLAGE_A.target: 1, VILLAGE_B.target: 0}
    watched = sum(end - begin for begin, end in RUNS)
    for found in figures.values():
        assert abs(found.totals.no_data - (period.seconds - watched)) <= 4 * LAG


def test_chunks_halve_when_prometheus_refuses_the_samples(
        blocks: Path, scenario: Scenario, tmp_path: Path, server: Prometheus) -> None:
    """A Prometheus allowing few samples per query: smaller range queries, the same events."""
    period = scenario.period(0, 1)
    whole = _read(server.url, period, scenario)
    with _prometheus_with(blocks, tmp_path, "--query.max-samples=20000") as small:
        calls: list[tuple[str, int, int]] = []
        chunked = _read(small.url, period, scenario, lambda *call: calls.append(call))
    assert len(calls) > 4, calls
    assert calls[-1][1] == calls[-1][2], calls
    assert [(e.time, e.target, e.to_state, e.root_cause) for e in chunked.events] \
        == [(e.time, e.target, e.to_state, e.root_cause) for e in whole.events]
    assert chunked.watched.intervals() == whole.watched.intervals()


def _error(url: str, period: Period, scenario: Scenario, **options: Any) -> str:
    with pytest.raises(PrometheusSourceError) as raised:
        read_prometheus(url, period, scenario.now, **options)
    return str(raised.value)


def test_errors_name_the_url_and_the_cause(server: Prometheus, scenario: Scenario,
                                           tmp_path: Path) -> None:
    period = scenario.period(0, 1)
    closed = f"http://127.0.0.1:{free_port()}"
    assert _error(closed, period, scenario, timeout=5).startswith(
        f"cannot reach Prometheus at {closed}: [Errno 111]")
    assert re.match(rf"Prometheus at {server.url} answered HTTP 400 \(bad_data: .*parse error",
                    _error(server.url, period, scenario, selector="province=sulbar"))
    assert 'no monitord_target_state series matching {province="sulbar-x"} from ' \
        in _error(server.url, period, scenario, selector='province="sulbar-x"')
    assert "no monitord_target_state series from " \
        in _error(server.url, scenario.period(-3, -2), scenario)  # before the scenario
    with _prometheus_with(None, tmp_path) as empty:
        message = _error(empty.url, period, scenario)
    assert message.startswith(f"Prometheus at {empty.url} has no monitord_target_state series "
                              f"from {period.first_day.isoformat()}T00:00:00+00:00 to ")
