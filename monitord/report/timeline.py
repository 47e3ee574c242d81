"""Per-target timelines: what every moment of the report period counts as.

Pure: state events, runs and maintenance windows in; classified segments out. The rules (see
README.md in this package for the whole set of definitions):

- A target's state at a moment is the to_state of its last STATE event at or before it (the
  daemon restores its states on start, so a state lasts across restarts until an event ends it).
- NO_DATA: before the target's first event, in state UNKNOWN, while monitord was not running,
  and (for targets no longer configured) after their last event. No data beats everything:
  what was not watched is never counted as up, down or maintenance.
- MAINTENANCE: a window covers the target, or it is unreachable because of a root cause that a
  window covers (planned work on a kabupaten link also plans its villages' outage).
- UP: up or degraded (reachable). OWN_DOWN: down. PARENT_DOWN: unreachable, attributed to
  the root cause the event names.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from monitord.state.history import Run
from monitord.state.model import EventKind, State, StateEvent

__all__ = ["RUN_START_SLACK", "Coverage", "IntervalSet", "Segment", "StateSpan",
           "build_timeline", "state_spans", "watched_intervals"]

# The daemon applies its config (which may emit events) just before it records its run start:
# events this close before a run's start belong to that start, not to the run before.
RUN_START_SLACK = 10.0

_REACHABLE = frozenset({State.UP, State.DEGRADED})


class Coverage(StrEnum):
    UP = "up"
    OWN_DOWN = "own_down"
    PARENT_DOWN = "parent_down"
    MAINTENANCE = "maintenance"
    NO_DATA = "no_data"


class IntervalSet:
    """Disjoint half-open [start, end) intervals, sorted; overlapping or touching input merges."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, intervals: Iterable[tuple[float, float]] = ()) -> None:
        merged: list[list[float]] = []
        for start, end in sorted((s, e) for s, e in intervals if e > s):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __repr__(self) -> str:
        return f"IntervalSet({list(self.intervals())})"

    def intervals(self) -> list[tuple[float, float]]:
        return list(zip(self._starts, self._ends, strict=True))

    def contains(self, moment: float) -> bool:
        index = bisect.bisect_right(self._starts, moment) - 1
        return index >= 0 and moment < self._ends[index]

    def boundaries(self) -> list[float]:
        return [*self._starts, *self._ends]

    def clip(self, start: float, end: float) -> IntervalSet:
        return IntervalSet((max(s, start), min(e, end)) for s, e in self.intervals())

    def gaps(self, start: float, end: float) -> IntervalSet:
        """What of [start, end) this set does not cover."""
        gaps: list[tuple[float, float]] = []
        cursor = start
        for s, e in self.clip(start, end).intervals():
            gaps.append((cursor, s))
            cursor = e
        gaps.append((cursor, end))
        return IntervalSet(gaps)

    def total(self) -> float:
        return sum(e - s for s, e in self.intervals())


def watched_intervals(runs: Sequence[Run], now: float,
                      last_event_time: Callable[[float, float], float | None]) -> IntervalSet:
    """When monitord was running, from its recorded runs.

    A run without a stop time is running if it is the latest (it is watched until `now`), and
    crashed otherwise. Nothing records when a crash happened, only that it did before the next
    start, so a crashed run is taken to end at its last stored event (`last_event_time(lo, hi)`
    gives the latest event time in [lo, hi), or None), or at its start if it stored none: time
    after its last sign of life is no data. That undercounts watched time after a quiet spell
    before a crash, never overcounts it.
    """
    intervals: list[tuple[float, float]] = []
    ordered = sorted(runs, key=lambda run: (run.started, run.id))
    for index, run in enumerate(ordered):
        if run.stopped is not None:
            end = run.stopped
        elif index == len(ordered) - 1:
            end = now
        else:
            following = ordered[index + 1].started
            last = last_event_time(run.started, max(run.started, following - RUN_START_SLACK))
            end = min(following, last if last is not None else run.started)
        intervals.append((run.started, end))
    return IntervalSet(intervals)


@dataclass(frozen=True, slots=True)
class StateSpan:
    """A target's published state from one state event to the next."""

    start: float
    end: float  # math.inf: still in this state after the last event given
    state: State
    root_cause: str | None


def state_spans(events: Iterable[StateEvent]) -> list[StateSpan]:
    """The spans of one target's state events (the last one before the period first): in time
    order, flapping events ignored, repeats of the same state and root cause merged."""
    marks: list[tuple[float, State, str | None]] = []  # (start, state, root cause)
    ordered = sorted((e for e in events if e.kind is EventKind.STATE), key=lambda e: e.time)
    for event in ordered:  # sorted() is stable: same-time events keep their stored order
        root = event.root_cause if event.to_state is State.UNREACHABLE else None
        if event.to_state is State.DOWN:
            root = event.target  # down is always its own root cause
        if marks and marks[-1][0] == event.time:
            marks.pop()  # superseded at the same moment: it never lasted
        if marks and marks[-1][1:] == (event.to_state, root):
            continue  # no change, so the span goes on
        marks.append((event.time, event.to_state, root))
    if not marks:
        return []
    ends = [mark[0] for mark in marks[1:]] + [math.inf]
    return [StateSpan(start, end, state, root)
            for (start, state, root), end in zip(marks, ends, strict=True)]


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one target's period that counts as one thing."""

    start: float
    end: float
    coverage: Coverage
    root_cause: str | None = None  # PARENT_DOWN: the failed target it is attributed to
    span: StateSpan | None = None  # OWN_DOWN: the down state it belongs to (its incident)

    @property
    def seconds(self) -> float:
        return self.end - self.start


def build_timeline(target: str, spans: Sequence[StateSpan], start: float, end: float,
                   watched: IntervalSet, maintenance: IntervalSet,
                   root_maintenance: Mapping[str, IntervalSet],
                   data_end: float | None = None) -> list[Segment]:
    """Classify [start, end) for one target. `maintenance`: its own windows;
    `root_maintenance`: windows of the root causes it may be unreachable through;
    `data_end`: nothing after this is known (a target no longer configured)."""
    roots = {span.root_cause for span in spans if span.state is State.UNREACHABLE}
    cuts = {start, end, *watched.boundaries(), *maintenance.boundaries()}
    for span in spans:
        cuts.update((span.start, span.end))
    for root in roots:
        if root is not None and root in root_maintenance:
            cuts.update(root_maintenance[root].boundaries())
    if data_end is not None:
        cuts.add(data_end)
    points = sorted(c for c in cuts if start <= c <= end)
    span_starts = [span.start for span in spans]

    segments: list[Segment] = []
    for piece_start, piece_end in itertools.pairwise(points):
        # Every boundary is a cut, so the whole piece is classified as its start is.
        index = bisect.bisect_right(span_starts, piece_start) - 1
        current = spans[index] if index >= 0 and piece_start < spans[index].end else None
        segment = _classify(target, piece_start, piece_end, current, watched, maintenance,
                            root_maintenance, data_end)
        if segments and _continues(segments[-1], segment):
            last = segments[-1]
            segments[-1] = Segment(last.start, segment.end, last.coverage, last.root_cause,
                                   last.span)
        else:
            segments.append(segment)
    return segments


def _classify(target: str, start: float, end: float, span: StateSpan | None,
              watched: IntervalSet, maintenance: IntervalSet,
              root_maintenance: Mapping[str, IntervalSet], data_end: float | None) -> Segment:
    if (span is None or span.state is State.UNKNOWN or not watched.contains(start)
            or (data_end is not None and start >= data_end)):
        return Segment(start, end, Coverage.NO_DATA)
    if maintenance.contains(start):
        return Segment(start, end, Coverage.MAINTENANCE)
    if span.state in _REACHABLE:
        return Segment(start, end, Coverage.UP)
    if span.state is State.DOWN:
        return Segment(start, end, Coverage.OWN_DOWN, target, span)
    root = span.root_cause
    if root is not None and root != target and root in root_maintenance \
            and root_maintenance[root].contains(start):
        return Segment(start, end, Coverage.MAINTENANCE)
    return Segment(start, end, Coverage.PARENT_DOWN, root)


def _continues(previous: Segment, segment: Segment) -> bool:
    return (previous.end == segment.start and previous.coverage is segment.coverage
            and previous.root_cause == segment.root_cause and previous.span == segment.span)
