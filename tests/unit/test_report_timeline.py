"""The report's timeline rules on hand-made inputs: state spans, intervals, when monitord was
watching (crashes included), and how each moment of a target's period is classified."""

from __future__ import annotations

import math
from datetime import date

import pytest

from monitord.report.period import Period, PeriodError, parse_moment
from monitord.report.timeline import (
    RUN_START_SLACK,
    Coverage,
    IntervalSet,
    Segment,
    StateSpan,
    build_timeline,
    state_spans,
    watched_intervals,
)
from monitord.state.history import Run
from monitord.state.model import EventKind, Placement, ReasonCode, State, StateEvent, new_event_id

H = 3600.0
DESA = Placement(target="desa-a", province="sulbar", kabupaten="mamasa", site="desa-a",
                 role="village-ap", address="10.76.3.11", parent="mamasa-link")


def event(time_: float, to_state: State, root: str | None = None,
          kind: EventKind = EventKind.STATE) -> StateEvent:
    return StateEvent(id=new_event_id(time_), time=time_, kind=kind, placement=DESA,
                      from_state=State.UNKNOWN, to_state=to_state, reason="test",
                      reason_code=ReasonCode.PROBES_GOOD, root_cause=root, flapping=False)


# -- state spans --------------------------------------------------------------------------------

def test_spans_follow_events_in_time_order_and_merge_repeats() -> None:
    spans = state_spans([
        event(5 * H, State.DOWN),
        event(1 * H, State.UP),
        event(3 * H, State.DEGRADED),  # reachable, but a different state: its own span
        event(4 * H, State.DEGRADED),  # no change
        event(6 * H, State.UNREACHABLE, root="mamasa-link"),
        event(7 * H, State.UNREACHABLE, root="prov-core"),  # the root cause moved
    ])
    assert spans == [
        StateSpan(1 * H, 3 * H, State.UP, None),
        StateSpan(3 * H, 5 * H, State.DEGRADED, None),
        StateSpan(5 * H, 6 * H, State.DOWN, "desa-a"),  # down is its own root cause
        StateSpan(6 * H, 7 * H, State.UNREACHABLE, "mamasa-link"),
        StateSpan(7 * H, math.inf, State.UNREACHABLE, "prov-core"),
    ]


def test_spans_ignore_flapping_events_and_same_moment_changes() -> None:
    spans = state_spans([
        event(1 * H, State.DOWN),
        event(2 * H, State.DOWN, kind=EventKind.FLAPPING),
        event(3 * H, State.UP),  # superseded at once by the next: it never lasted
        event(3 * H, State.DOWN),
        event(4 * H, State.UP),
    ])
    # One down span: the zero-length UP between does not split the outage in two.
    assert spans == [StateSpan(1 * H, 4 * H, State.DOWN, "desa-a"),
                     StateSpan(4 * H, math.inf, State.UP, None)]


# -- intervals ----------------------------------------------------------------------------------

def test_interval_set_merges_and_answers_membership_half_open() -> None:
    intervals = IntervalSet([(5, 7), (1, 2), (2, 3), (6, 9), (10, 10)])
    assert intervals.intervals() == [(1, 3), (5, 9)]
    assert intervals.contains(1)
    assert intervals.contains(2.5)
    assert not intervals.contains(3)
    assert not intervals.contains(0.5)
    assert intervals.gaps(0, 12).intervals() == [(0, 1), (3, 5), (9, 12)]
    assert intervals.clip(2, 6).intervals() == [(2, 3), (5, 6)]
    assert intervals.total() == 6


# -- when monitord was watching -----------------------------------------------------------------

def test_watched_clean_stops_and_a_running_latest_run() -> None:
    runs = [Run(1, 0.0, 6 * H), Run(2, 8 * H, None)]
    watched = watched_intervals(runs, now=20 * H, last_event_time=lambda lo, hi: None)
    assert watched.intervals() == [(0.0, 6 * H), (8 * H, 20 * H)]


def test_a_crashed_run_ends_at_its_last_stored_event() -> None:
    event_times = [1 * H, 3 * H, 9 * H - 2.0]  # the last: the next start's own config events
    asked: list[tuple[float, float]] = []

    def last_event_time(lo: float, hi: float) -> float | None:
        asked.append((lo, hi))
        return max((t for t in event_times if lo <= t < hi), default=None)

    runs = [Run(1, 0.0, None), Run(2, 9 * H, 12 * H)]  # run 1 crashed: it has no stop
    watched = watched_intervals(runs, now=24 * H, last_event_time=last_event_time)
    assert asked == [(0.0, 9 * H - RUN_START_SLACK)]
    assert watched.intervals() == [(0.0, 3 * H), (9 * H, 12 * H)]


def test_a_crashed_run_without_events_watched_nothing() -> None:
    runs = [Run(1, 2 * H, None), Run(2, 9 * H, None)]
    watched = watched_intervals(runs, now=10 * H, last_event_time=lambda lo, hi: None)
    assert watched.intervals() == [(9 * H, 10 * H)]


# -- classification -----------------------------------------------------------------------------

ALWAYS = IntervalSet([(-100 * H, 100 * H)])


def coverage(segments: list[Segment]) -> list[tuple[float, float, str, str | None]]:
    """(start h, end h, coverage, root cause) per segment."""
    return [(s.start / H, s.end / H, s.coverage.value, s.root_cause) for s in segments]


def test_before_the_first_event_and_while_unknown_is_no_data() -> None:
    spans = state_spans([event(2 * H, State.UNKNOWN), event(3 * H, State.UP)])
    segments = build_timeline("desa-a", spans, 0.0, 24 * H, ALWAYS, IntervalSet(), {})
    assert coverage(segments) == [(0, 3, "no_data", None), (3, 24, "up", None)]


def test_not_watched_beats_every_state_and_maintenance() -> None:
    spans = state_spans([event(-5 * H, State.DOWN)])
    watched = IntervalSet([(0, 4 * H), (6 * H, 24 * H)])
    maintenance = IntervalSet([(3 * H, 8 * H)])
    segments = build_timeline("desa-a", spans, 0.0, 24 * H, watched, maintenance, {})
    assert coverage(segments) == [
        (0, 3, "own_down", "desa-a"), (3, 4, "maintenance", None), (4, 6, "no_data", None),
        (6, 8, "maintenance", None), (8, 24, "own_down", "desa-a")]
    # Both down stretches belong to the one down span: one incident, as availability counts it.
    down = [s for s in segments if s.coverage is Coverage.OWN_DOWN]
    assert len({s.span for s in down}) == 1


def test_unreachable_behind_a_root_in_maintenance_is_maintenance() -> None:
    spans = state_spans([event(0.0, State.UP),
                         event(2 * H, State.UNREACHABLE, root="mamasa-link"),
                         event(6 * H, State.UP)])
    link_work = {"mamasa-link": IntervalSet([(1 * H, 4 * H)])}
    segments = build_timeline("desa-a", spans, 0.0, 8 * H, ALWAYS, IntervalSet(), link_work)
    assert coverage(segments) == [
        (0, 2, "up", None), (2, 4, "maintenance", None), (4, 6, "parent_down", "mamasa-link"),
        (6, 8, "up", None)]


def test_nothing_is_known_after_data_end() -> None:
    spans = state_spans([event(-1 * H, State.DOWN)])
    segments = build_timeline("desa-a", spans, 0.0, 8 * H, ALWAYS, IntervalSet(), {},
                              data_end=-1 * H)
    assert coverage(segments) == [(0, 8, "no_data", None)]


# -- the period -----------------------------------------------------------------------------------

def test_period_is_whole_local_days_in_its_zone() -> None:
    period = Period(date(2025, 1, 1), date(2025, 1, 31), "Asia/Makassar")  # WITA, UTC+8
    assert period.start == parse_moment("2024-12-31T16:00:00+00:00", None)
    assert period.seconds == 31 * 24 * H
    assert len(period.days) == 31
    assert period.days[1].start == period.start + 24 * H
    assert period.zone_label == "Asia/Makassar"


def test_period_refuses_reversed_days_and_unknown_zones() -> None:
    with pytest.raises(PeriodError, match="ends"):
        Period(date(2025, 2, 1), date(2025, 1, 31), "UTC")
    with pytest.raises(PeriodError, match="unknown time zone"):
        Period(date(2025, 1, 1), date(2025, 1, 31), "Asia/Mamuju")
