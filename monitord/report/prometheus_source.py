"""Reads what a report needs from Prometheus instead of the history database: for sharded
deployments, where no single monitord holds every target's events.

monitord exports each target's state as a state set (`monitord_target_state{state=...}`), its
root cause (`monitord_target_root_cause{root_cause=...}`) and its inventory facts
(`monitord_target_info{parent=..., name=...}`). Range queries sample them every `step`
seconds; a StateEvent is synthesized wherever a target's state (or, while unreachable, its
root cause) differs from the step before, timed at the first step showing the new state. The
queries return only those changes, not every step, so the answers stay small even for a
month of thousands of targets. A target without a sample at a step (monitord not scraped, the
target not exported) gets an UNKNOWN event there, which the timeline counts as no data;
`watched` is when any target had a sample, so the report's list of monitord gaps means what
it says.

Tolerance: a transition shows at the first step at or after the first scrape that saw it, so
it is timed late by less than `step` + the scrape interval (two steps when scraped every step).
Both ends of a stretch are late alike, so an incident's duration is within that of the truth,
and a target's total of any kind within that times its number of transitions (at most
2 x step x transitions). One exception: where a target's data stops, Prometheus's staleness
markers (written when monitord stops answering scrapes or stops exporting the target) keep
that bound; without them (Prometheus itself down, backfilled blocks) the data is taken to end
up to `max_sample_age` + `step` after its last sample.

Prometheus still evaluates every step of every series: a range query is at most 11,000 steps,
and fewer when Prometheus finds it would load more than its --query.max-samples.
"""

from __future__ import annotations

import itertools
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from monitord.model import HIERARCHY_LABELS
from monitord.report.availability import HistoryData, Progress
from monitord.report.period import Period
from monitord.report.timeline import IntervalSet
from monitord.state.model import EventKind, Placement, ReasonCode, State, StateEvent, new_event_id

__all__ = ["MAX_POINTS", "Change", "ChangeKind", "PrometheusSourceError", "Sample",
           "chunk_ranges", "events_of", "read_prometheus", "samples_of", "watched_of"]

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000

_STATE = "monitord_target_state"
_ROOT = "monitord_target_root_cause"
_INFO = "monitord_target_info"
_SINCE = "monitord_target_state_since_timestamp_seconds"
_PLACE = ", ".join(HIERARCHY_LABELS)
# States with a root cause. A vanished root cause series lingers up to max_sample_age where
# Prometheus has no staleness markers: an up target does not keep its old one.
_ROOTED = frozenset({State.DEGRADED, State.DOWN, State.UNREACHABLE})
_REASON_CODES = {State.UNKNOWN: ReasonCode.AWAITING_PROBE, State.UP: ReasonCode.PROBES_GOOD,
                 State.DEGRADED: ReasonCode.PROBES_DEGRADED,
                 State.DOWN: ReasonCode.PROBES_FAILED, State.UNREACHABLE: ReasonCode.PARENT_DOWN}


class PrometheusSourceError(Exception):
    """Prometheus could not give the report's data; the message names the URL and why."""


class _TooManySamplesError(PrometheusSourceError):
    """The query would load more samples than Prometheus's --query.max-samples allows."""


class ChangeKind(IntEnum):
    """What changed for a target at a step; applied at one step in this order."""

    GONE = 0  # no state sample any more
    ROOT_GONE = 1  # no root cause any more
    STATE = 2  # a state sample (state and the hierarchy labels)
    ROOT = 3  # a root cause
    INFO = 4  # inventory facts (the hierarchy labels, parent and name)


@dataclass(frozen=True, slots=True)
class Change:
    """One target's series as a step shows it, where it differs from the step before."""

    time: float
    target: str
    kind: ChangeKind
    state: State | None = None  # STATE
    root_cause: str | None = None  # ROOT
    placement: Placement | None = None  # STATE (without parent and name), INFO


@dataclass(frozen=True, slots=True)
class Sample:
    """A target as Prometheus showed it at a step."""

    time: float
    state: State | None  # None: no sample
    root_cause: str | None
    placement: Placement


def samples_of(changes: Iterable[Change]) -> list[Sample]:
    """One target's changes folded into its samples at the steps where anything changed."""
    state: State | None = None
    root: str | None = None
    info: Placement | None = None
    labelled: Placement | None = None  # from the state series: no parent or name
    samples: list[Sample] = []
    ordered = sorted(changes, key=lambda c: (c.time, c.kind, c.state or "", c.root_cause or ""))
    for time, at_once in itertools.groupby(ordered, key=lambda c: c.time):
        for change in at_once:
            if change.kind is ChangeKind.GONE:
                state, root = None, None
            elif change.kind is ChangeKind.ROOT_GONE:
                root = None
            elif change.kind is ChangeKind.STATE:
                state, labelled = change.state, change.placement
            elif change.kind is ChangeKind.ROOT:
                root = change.root_cause
            else:
                info = change.placement
        placement = info or labelled
        if placement is not None:
            samples.append(Sample(time, state, root if state is not None else None, placement))
    return samples


def events_of(samples: Iterable[Sample]) -> list[StateEvent]:
    """STATE events where a target's state, or its root cause while unreachable, changes; UNKNOWN
    where its samples stop. Nothing before its first sample: that is no data anyway."""
    events: list[StateEvent] = []
    previous: tuple[State, str | None] | None = None
    for sample in sorted(samples, key=lambda s: s.time):
        state = sample.state or State.UNKNOWN
        key = (state, sample.root_cause if state is State.UNREACHABLE else None)
        if key == previous or (previous is None and state is State.UNKNOWN):
            continue
        reason = "sampled from Prometheus" if sample.state is not None \
            else "no sample in Prometheus: monitord not scraped, or not exporting the target"
        events.append(StateEvent(
            id=new_event_id(sample.time), time=sample.time, kind=EventKind.STATE,
            placement=sample.placement,
            from_state=previous[0] if previous is not None else State.UNKNOWN, to_state=state,
            reason=reason, reason_code=_REASON_CODES[state],
            root_cause=sample.root_cause if state in _ROOTED else None, flapping=False))
        previous = key
    return events


def watched_of(samples_by_target: Iterable[Sequence[Sample]], end: float) -> IntervalSet:
    """When any target had a sample: from a sample to the next step without one (or `end`)."""
    intervals: list[tuple[float, float]] = []
    for samples in samples_by_target:
        since: float | None = None
        for sample in samples:
            if sample.state is not None and since is None:
                since = sample.time
            elif sample.state is None and since is not None:
                intervals.append((since, sample.time))
                since = None
        if since is not None:
            intervals.append((since, end))
    return IntervalSet(intervals)


def chunk_ranges(steps: int, max_points: int) -> list[tuple[int, int]]:
    """[first, last] step indices of the range queries covering `steps` steps, each with at
    most max_points points (Prometheus counts both ends)."""
    size = max(1, max_points)
    return [(first, min(first + size, steps) - 1) for first in range(0, steps, size)]


# --- Prometheus's HTTP API -----------------------------------------------------------------

class _Client:
    def __init__(self, url: str, timeout: float) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in {"http", "https"}:
            raise PrometheusSourceError(f"{url!r} is not a Prometheus URL (http:// or https://)")
        self.url = url.rstrip("/")
        self._timeout = timeout

    def data(self, endpoint: str, query: str, **params: str) -> list[dict[str, Any]]:
        """The `result` of a query endpoint; PrometheusSourceError saying what failed."""
        body = urllib.parse.urlencode({"query": query, "timeout": f"{self._timeout:g}",
                                       **params}).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            f"{self.url}/api/v1/{endpoint}", data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        where = f"Prometheus at {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raise _refusal(where, exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timed out
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, TimeoutError):
                raise PrometheusSourceError(
                    f"{where} did not answer a {endpoint} within {self._timeout:g} s") from None
            raise PrometheusSourceError(f"cannot reach {where}: {reason}") from None
        except ValueError:
            raise PrometheusSourceError(f"{where} did not answer with JSON: is it "
                                        "Prometheus's base URL?") from None
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise _refusal(where, 200, json.dumps(payload).encode())
        data = payload.get("data")
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list):
            raise PrometheusSourceError(f"{where} answered {endpoint} without a result list")
        return result


def _refusal(where: str, status: int, body: bytes) -> PrometheusSourceError:
    """Prometheus's own words: its parse error points into the selector given."""
    try:
        payload = json.loads(body)
        detail = f"{payload.get('errorType')}: {payload.get('error')}"
    except (ValueError, AttributeError):
        detail = body.decode(errors="replace").strip()[:300]
    kind = _TooManySamplesError if "too many samples" in detail else PrometheusSourceError
    return kind(f"{where} answered HTTP {status} ({detail})")


# --- the queries -------------------------------------------------------------------------

class _Queries:
    """PromQL for each kind of change. A series is present at a step if Prometheus has it
    there (not stale, within its lookback) and has a sample within max_sample_age."""

    def __init__(self, selector: str, step: float, max_sample_age: float) -> None:
        self.selector = selector.strip().removeprefix("{").removesuffix("}").strip()
        self._step = f"{round(step * 1000)}ms"
        self._age = f"{round(max_sample_age * 1000)}ms"

    def present(self, metric: str, before: bool = False) -> str:
        series = f"{metric}{{{self.selector}}}" if self.selector else metric
        offset = f" offset {self._step}" if before else ""
        return f"({series}{offset} and last_over_time({series}[{self._age}]{offset}))"

    def current(self, metric: str, by: str, condition: str = "") -> str:
        return f"group by ({by}) ({self.present(metric)}{condition})"

    def entering(self, metric: str, by: str, condition: str = "") -> str:
        """Series present now and not a step before."""
        return (f"{self.current(metric, by, condition)} unless "
                f"group by ({by}) ({self.present(metric, before=True)}{condition})")

    def leaving(self, metric: str) -> str:
        """Targets with the metric a step before and not now."""
        return (f"group by (target) ({self.present(metric, before=True)}) unless "
                f"group by (target) ({self.present(metric)})")

    def snapshot(self) -> dict[ChangeKind, str]:
        return {ChangeKind.STATE: self.current(_STATE, f"{_PLACE}, state", " == 1"),
                ChangeKind.ROOT: self.current(_ROOT, "target, root_cause"),
                ChangeKind.INFO: self.current(_INFO, f"{_PLACE}, parent, name")}

    def since(self) -> str:
        return f"max by (target) ({self.present(_SINCE)})"

    def changes(self) -> dict[ChangeKind, str]:
        return {ChangeKind.GONE: self.leaving(_STATE),
                ChangeKind.ROOT_GONE: self.leaving(_ROOT),
                ChangeKind.STATE: self.entering(_STATE, f"{_PLACE}, state", " == 1"),
                ChangeKind.ROOT: self.entering(_ROOT, "target, root_cause"),
                ChangeKind.INFO: self.entering(_INFO, f"{_PLACE}, parent, name")}


def _change(kind: ChangeKind, time: float, labels: Mapping[str, str]) -> Change | None:
    target = labels.get("target")
    if not target:
        return None
    if kind is ChangeKind.STATE:
        try:
            state = State(labels.get("state", ""))
        except ValueError:
            return None  # a state this monitord version does not know
        return Change(time, target, kind, state=state, placement=_placement(labels))
    if kind is ChangeKind.ROOT:
        return Change(time, target, kind, root_cause=labels.get("root_cause") or None)
    if kind is ChangeKind.INFO:
        return Change(time, target, kind, placement=_placement(labels))
    return Change(time, target, kind)


def _placement(labels: Mapping[str, str]) -> Placement:
    return Placement(target=labels["target"], province=labels.get("province", ""),
                     kabupaten=labels.get("kabupaten", ""), site=labels.get("site", ""),
                     role=labels.get("role", ""), address=labels.get("address", ""),
                     name=labels.get("name", ""), parent=labels.get("parent") or None)


def _read_changes(client: _Client, queries: Mapping[ChangeKind, str], first: float,
                  steps: int, step: float, progress: Progress | None) -> list[Change]:
    """Every change at the `steps` steps from `first`, in range queries of at most MAX_POINTS
    points; halved while Prometheus finds one would load too many samples."""
    changes: list[Change] = []
    points, index, done = MAX_POINTS, 0, 0
    for _ in range(steps + MAX_POINTS.bit_length() + 1):  # a chunk per step, or a halving
        if index >= steps:
            break
        last = min(index + points, steps) - 1
        params = {"start": f"{first + index * step:.3f}", "end": f"{first + last * step:.3f}",
                  "step": f"{step:g}"}
        try:
            found = [_change(kind, float(t), series["metric"])
                     for kind, query in queries.items()
                     for series in client.data("query_range", query, **params)
                     for t, _ in series["values"]]
        except _TooManySamplesError as exc:
            if points == 1:
                raise PrometheusSourceError(f"{exc}: even one step at a time; raise its "
                                            "--query.max-samples or narrow the selector") from None
            points //= 2
            continue
        changes.extend(c for c in found if c is not None)
        index, done = last + 1, done + 1
        if progress is not None:
            progress("prometheus", done, done + len(chunk_ranges(steps - index, points)))
    return changes


def _read_snapshot(client: _Client, queries: _Queries, time: float) -> tuple[list[Change],
                                                                             dict[str, float]]:
    """Every target's series at `time`, and when each entered the state it had then."""
    at = {"time": f"{time:.3f}"}
    changes = [_change(kind, time, series["metric"])
               for kind, query in queries.snapshot().items()
               for series in client.data("query", query, **at)]
    since = {series["metric"].get("target", ""): float(series["value"][1])
             for series in client.data("query", queries.since(), **at)}
    return [c for c in changes if c is not None], since


def read_prometheus(url: str, period: Period, now: float, progress: Progress | None = None,
                    *, step: float = 15.0, timeout: float = 30.0, selector: str = "",
                    max_sample_age: float = 120.0) -> HistoryData:
    """The period's state events, each target's state a step before it (its prior), and when
    any monitord series existed, from the Prometheus at `url`. `selector`: extra label
    matchers for every series (`province="sulbar"`). `step` should be at least the scrape
    interval. `max_sample_age`: a series without a sample this long has ended, where no
    staleness marker says so; keep it over the scrape interval (a missed scrape is no gap).
    Raises PrometheusSourceError."""
    if not (step > 0 and max_sample_age > 0 and timeout > 0):
        raise PrometheusSourceError("step, max_sample_age and timeout must be positive")
    client = _Client(url, timeout)
    queries = _Queries(selector, step, max_sample_age)
    end = min(period.end, now)
    lookback = period.start - step  # a state holding at the period start shows here
    steps = max(0, math.ceil((end - period.start) / step))  # the steps before `end`
    changes, since = _read_snapshot(client, queries, lookback)
    changes += _read_changes(client, queries.changes(), period.start, steps, step, progress)

    by_target: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_target[change.target].append(change)
    samples = {target: samples_of(found) for target, found in by_target.items()}
    if not any(s.state is not None for found in samples.values() for s in found):
        matching = f" matching {{{queries.selector}}}" if queries.selector else ""
        raise PrometheusSourceError(
            f"Prometheus at {client.url} has no {_STATE} series{matching} from "
            f"{_iso(period.start)} to {_iso(end)}: does it scrape monitord, and keep data "
            "that old (its retention)?")

    events: list[StateEvent] = []
    priors: list[StateEvent] = []
    for target, found in samples.items():
        for event in events_of(found):
            if event.time >= period.start:
                events.append(event)
            else:  # the state at the lookback step: it began when monitord says it did
                began = min(since.get(target, event.time), event.time)
                priors.append(replace(event, time=began))
    events.sort(key=lambda e: (e.time, e.target))
    return HistoryData(events=events, priors=priors, watched=watched_of(samples.values(), end))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
