"""Prometheus samples to report events, on hand-made series: state and root cause changes,
gaps as no data, when monitord was watched, and how a long period is split into queries."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date

import pytest

from monitord.report.period import Period
from monitord.report.prometheus_source import (
    MAX_POINTS,
    Change,
    ChangeKind,
    PrometheusSourceError,
    Sample,
    chunk_ranges,
    events_of,
    read_prometheus,
    samples_of,
    watched_of,
)
from monitord.report.timeline import Coverage, IntervalSet, StateSpan, build_timeline, state_spans
from monitord.state.model import Placement, State

STEP = 15.0
LINK = "link-mamasa"
LABELLED = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                     role="village-ap", address="10.76.3.11")  # as the state series label it
INFO = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                 role="village-ap", address="10.76.3.11", name="Desa A", parent=LINK)

Row = tuple[float, State | None, str | None]  # (time, state or None: no sample, root cause)


def series(rows: Iterable[Row], info: bool = True) -> list[Change]:
    """Every step of one target as Prometheus showed it, as the changes queries would see."""
    changes: list[Change] = []
    previous: Row | None = None
    for time, state, root in rows:
        if state is None:
            if previous is not None and previous[1] is not None:
                changes.append(Change(time, "desa-a", ChangeKind.GONE))
        else:
            changes.append(Change(time, "desa-a", ChangeKind.STATE, state=state,
                                  placement=LABELLED))
            if info and (previous is None or previous[1] is None):
                changes.append(Change(time, "desa-a", ChangeKind.INFO, placement=INFO))
        if root is not None:
            changes.append(Change(time, "desa-a", ChangeKind.ROOT, root_cause=root))
        elif previous is not None and previous[2] is not None:
            changes.append(Change(time, "desa-a", ChangeKind.ROOT_GONE))
        previous = (time, state, root)
    return changes


def spans(rows: Iterable[Row]) -> list[StateSpan]:
    return state_spans(events_of(samples_of(series(rows))))


def steps(start: float, count: int, state: State | None, root: str | None = None) -> list[Row]:
    return [(start + i * STEP, state, root) for i in range(count)]


# -- series to events ---------------------------------------------------------------------------

def test_an_event_at_the_first_step_showing_each_new_state() -> None:
    rows = [*steps(0, 4, State.UP), *steps(60, 2, State.DOWN, "desa-a"),
            *steps(90, 3, State.DEGRADED, "desa-a"), *steps(135, 1, State.UP)]
    events = events_of(samples_of(series(rows)))
    assert [(e.time, e.from_state, e.to_state, e.root_cause) for e in events] == [
        (0, State.UNKNOWN, State.UP, None),
        (60, State.UP, State.DOWN, "desa-a"),
        (90, State.DOWN, State.DEGRADED, "desa-a"),
        (135, State.DEGRADED, State.UP, None),
    ]
    assert {e.placement for e in events} == {INFO}  # parent and name from the info series


def test_the_state_series_place_a_target_without_info() -> None:
    events = events_of(samples_of(series(steps(0, 2, State.UP), info=False)))
    assert [e.placement for e in events] == [LABELLED]


def test_a_root_cause_change_while_unreachable_is_an_event_and_while_degraded_is_not() -> None:
    rows = [*steps(0, 2, State.UNREACHABLE, LINK), *steps(30, 2, State.UNREACHABLE, "core"),
            *steps(60, 2, State.DEGRADED, LINK), *steps(90, 2, State.DEGRADED, "desa-a")]
    assert spans(rows) == [
        StateSpan(0, 30, State.UNREACHABLE, LINK),
        StateSpan(30, 60, State.UNREACHABLE, "core"),
        StateSpan(60, math.inf, State.DEGRADED, None),
    ]
    assert len(events_of(samples_of(series(rows)))) == 3


def test_an_up_target_has_no_root_cause_though_its_old_series_lingers() -> None:
    # Without staleness markers the root cause series outlives the state by max_sample_age.
    changes = [Change(0, "desa-a", ChangeKind.STATE, state=State.UNREACHABLE, placement=INFO),
               Change(0, "desa-a", ChangeKind.ROOT, root_cause=LINK),
               Change(15, "desa-a", ChangeKind.STATE, state=State.UP, placement=INFO)]
    assert [e.root_cause for e in events_of(samples_of(changes))] == [LINK, None]


def test_a_gap_in_the_samples_is_unknown_so_no_data() -> None:
    rows = [*steps(0, 4, State.UP), *steps(60, 3, None),
            *steps(105, 2, State.DOWN, "desa-a"), *steps(135, 2, None)]
    assert [(s.start, s.end, s.state) for s in spans(rows)] == [
        (0, 60, State.UP), (60, 105, State.UNKNOWN), (105, 135, State.DOWN),
        (135, math.inf, State.UNKNOWN)]
    # Counted as no data even while monitord was watched (its other targets had samples).
    segments = build_timeline("desa-a", spans(rows), 0, 300, IntervalSet([(0, 300)]),
                              IntervalSet(), {})
    assert [(s.start, s.end, s.coverage) for s in segments] == [
        (0, 60, Coverage.UP), (60, 105, Coverage.NO_DATA), (105, 135, Coverage.OWN_DOWN),
        (135, 300, Coverage.NO_DATA)]


def test_nothing_before_the_first_sample() -> None:
    rows = [*steps(0, 3, None), *steps(45, 2, State.UNKNOWN), *steps(75, 1, State.UP)]
    assert [(e.time, e.to_state) for e in events_of(samples_of(series(rows)))] \
        == [(75, State.UP)]


def test_changes_of_one_step_apply_together_in_any_order() -> None:
    # Back after a gap, in a new state, with a new root cause: one sample, one event.
    changes = [Change(15, "desa-a", ChangeKind.ROOT, root_cause=LINK),
               Change(15, "desa-a", ChangeKind.STATE, state=State.UNREACHABLE,
                      placement=LABELLED),
               Change(15, "desa-a", ChangeKind.INFO, placement=INFO),
               Change(0, "desa-a", ChangeKind.STATE, state=State.UP, placement=LABELLED),
               Change(30, "desa-a", ChangeKind.ROOT_GONE),
               Change(30, "desa-a", ChangeKind.GONE)]
    assert samples_of(reversed(changes)) == [
        Sample(0, State.UP, None, LABELLED),
        Sample(15, State.UNREACHABLE, LINK, INFO),
        Sample(30, None, None, INFO),
    ]


# -- when monitord was watched ------------------------------------------------------------------

def test_watched_is_when_any_target_had_samples() -> None:
    a = samples_of(series([*steps(0, 4, State.UP), *steps(60, 2, None), *steps(90, 1, State.UP)]))
    b = samples_of(series([*steps(30, 2, State.DOWN), *steps(60, 3, None)]))
    assert watched_of([a, b], end=200).intervals() == [(0, 60), (90, 200)]
    assert not watched_of([], end=200)


# -- range queries --------------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "points", "expected"), [
    (0, MAX_POINTS, []),
    (1, MAX_POINTS, [(0, 0)]),
    (MAX_POINTS, MAX_POINTS, [(0, MAX_POINTS - 1)]),
    (MAX_POINTS + 1, MAX_POINTS, [(0, MAX_POINTS - 1), (MAX_POINTS, MAX_POINTS)]),
    (10, 4, [(0, 3), (4, 7), (8, 9)]),
    (3, 0, [(0, 0), (1, 1), (2, 2)]),
])
def test_chunks_cover_every_step_once_within_the_point_limit(
        count: int, points: int, expected: list[tuple[int, int]]) -> None:
    assert chunk_ranges(count, points) == expected


def test_a_month_of_15_second_steps_needs_a_query_per_couple_of_days() -> None:
    steps_in_month = 31 * 86400 // 15
    chunks = chunk_ranges(steps_in_month, MAX_POINTS)
    assert len(chunks) == math.ceil(steps_in_month / MAX_POINTS) == 17
    assert all(last - first + 1 <= MAX_POINTS for first, last in chunks)


def test_only_http_urls_are_queried() -> None:
    period = Period(date(2025, 1, 1), date(2025, 1, 1), "UTC")
    with pytest.raises(PrometheusSourceError, match="'file:///etc/passwd' is not a Prometheus"):
        read_prometheus("file:///etc/passwd", period, period.end)
