"""Availability figures from per-target timelines: per target, per site, kabupaten, role and
province; incidents, root causes, maintenance use and monitord's own gaps.

Pure: no I/O and no clock reads. The definitions are in README.md in this package.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from monitord.report.period import Period
from monitord.report.settings import MaintenanceWindow, ReportSettings
from monitord.report.timeline import (
    Coverage,
    IntervalSet,
    Segment,
    StateSpan,
    build_timeline,
    state_spans,
)
from monitord.state.model import Placement, State, StateEvent

__all__ = ["GroupFigures", "HistoryData", "Incident", "Level", "MaintenanceUse", "Progress",
           "Report", "RootCause", "TargetFigures", "Totals", "compute_report"]

# (stage, done, total): called as the report advances, for a progress display.
Progress = Callable[[str, int, int], None]

# Availability is compared with its target to this many percentage points: float sums of
# seconds must not put a target that exactly meets its SLO below it.
_SLO_TOLERANCE = 1e-9


class Level(StrEnum):
    TARGET = "target"
    SITE = "site"
    KABUPATEN = "kabupaten"
    ROLE = "role"
    PROVINCE = "province"


@dataclass(frozen=True, slots=True)
class Totals:
    """Seconds of each kind, and own-down incidents, of a target or a group of targets."""

    up: float = 0.0
    own_down: float = 0.0
    parent_down: float = 0.0
    maintenance: float = 0.0
    no_data: float = 0.0
    incidents: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.up + other.up, self.own_down + other.own_down,
                      self.parent_down + other.parent_down,
                      self.maintenance + other.maintenance, self.no_data + other.no_data,
                      self.incidents + other.incidents)

    @property
    def measured(self) -> float:
        """Watched and not in maintenance: what availability is a share of."""
        return self.up + self.own_down + self.parent_down

    @property
    def availability(self) -> float | None:
        """% of measured time reachable: end to end, an outage of its parent counts against it."""
        return _percent(self.up, self.measured)

    @property
    def own_availability(self) -> float | None:
        """% of the time its own state was known (its parent reachable) that it was up: the
        figure judged against its SLO, since a parent's outage is the parent's."""
        return _percent(self.up, self.up + self.own_down)

    @property
    def mttr(self) -> float | None:
        """Mean seconds an own incident lasted (within the period)."""
        return self.own_down / self.incidents if self.incidents else None

    @property
    def mtbf(self) -> float | None:
        """Seconds up per own incident."""
        return self.up / self.incidents if self.incidents else None


def _percent(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole > 0 else None


def _below(availability: float | None, slo: float | None) -> bool:
    return availability is not None and slo is not None \
        and availability < slo - _SLO_TOLERANCE


@dataclass(frozen=True, slots=True)
class TargetFigures:
    placement: Placement
    configured: bool  # in the config the report was made with (False: known from history only)
    totals: Totals
    slo: float  # its role's availability target, %
    caused: float  # seconds other targets were unreachable because of it, summed over them
    caused_targets: int  # how many targets that was
    parent_down_by_root: Mapping[str, float]  # its PARENT_DOWN seconds by root cause

    @property
    def target(self) -> str:
        return self.placement.target

    @property
    def below_slo(self) -> bool:
        return _below(self.totals.own_availability, self.slo)


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """A site, kabupaten, role or province: time-weighted over its targets."""

    level: Level
    province: str
    kabupaten: str  # "" for roles and provinces
    site: str  # "" but for sites
    role: str  # "" but for roles
    totals: Totals
    targets: int
    targets_below_slo: int
    # The SLOs of its targets, weighted like its own availability (by up + own-down time):
    # what it would reach if every target exactly met its own. None with nothing measured.
    slo: float | None

    @property
    def key(self) -> str:
        return {Level.SITE: self.site, Level.KABUPATEN: self.kabupaten, Level.ROLE: self.role,
                Level.PROVINCE: self.province, Level.TARGET: ""}[self.level]

    @property
    def below_slo(self) -> bool:
        return _below(self.totals.own_availability, self.slo)


@dataclass(frozen=True, slots=True)
class Incident:
    """One own outage: from a target's down event to the event that ended it."""

    placement: Placement
    start: float  # when it went down; before the period start if it began earlier
    end: float | None  # when it came back; None if still down when the period (or data) ends
    seconds: float  # counted: within the period, watched, and not in maintenance
    first_counted: float  # its first counted moment: the day it is charted on
    affected_targets: int  # targets that were unreachable because of it
    caused: float  # their unreachable seconds, summed

    @property
    def target(self) -> str:
        return self.placement.target


@dataclass(frozen=True, slots=True)
class RootCause:
    """A target whose outages made others unreachable: the link's outage, as they saw it."""

    target: str
    placement: Placement | None  # None if it is not among the report's targets
    incidents: int
    own_down: float
    caused: float
    affected_targets: int


@dataclass(frozen=True, slots=True)
class MaintenanceUse:
    window: MaintenanceWindow
    start: float  # clipped to the period
    end: float
    targets: int  # report targets it covers directly (their children through root causes)


@dataclass(frozen=True, slots=True)
class HistoryData:
    """What the history gives a report: the period's events, each target's last state event
    before the period, and when monitord was running."""

    events: Sequence[StateEvent]
    priors: Sequence[StateEvent]
    watched: IntervalSet


@dataclass(frozen=True)
class Report:
    period: Period
    settings: ReportSettings
    generated: float
    source: str  # where the figures came from: "history"
    targets: tuple[TargetFigures, ...]
    groups: Mapping[Level, tuple[GroupFigures, ...]]
    incidents: tuple[Incident, ...]  # by start
    longest_incidents: tuple[Incident, ...]
    root_causes: tuple[RootCause, ...]  # most caused first
    maintenance: tuple[MaintenanceUse, ...]
    monitord_gaps: tuple[tuple[float, float], ...]  # not running, within the period (up to now)
    incidents_per_day: tuple[tuple[float, int], ...]  # (day start, incidents first counted then)

    def level(self, level: Level) -> tuple[GroupFigures, ...]:
        return self.groups.get(level, ())

    @property
    def below_slo_sites(self) -> tuple[GroupFigures, ...]:
        return tuple(group for group in self.level(Level.SITE) if group.below_slo)


@dataclass(slots=True)
class _IncidentDraft:
    placement: Placement
    span: StateSpan
    seconds: float = 0.0
    first_counted: float = 0.0
    caused: float = 0.0
    affected: set[str] = field(default_factory=set)


def compute_report(history: HistoryData, period: Period, settings: ReportSettings, now: float,
                   configured: Mapping[str, Placement] | None = None,
                   progress: Progress | None = None) -> Report:
    """The figures of the period. `configured`: the config's targets by id, if known: they
    are reported even without events, are placed as configured, and any other target (removed
    from the config) has no data after its last event."""
    events_of: dict[str, list[StateEvent]] = defaultdict(list)
    for event in (*history.priors, *history.events):
        events_of[event.target].append(event)
    placements = {target: max(events, key=lambda e: e.time).placement
                  for target, events in events_of.items()}
    placements.update(configured or {})
    spans = {target: state_spans(events_of.get(target, ())) for target in placements}
    windows = settings.maintenance
    roots = {span.root_cause for target_spans in spans.values() for span in target_spans
             if span.state is State.UNREACHABLE and span.root_cause is not None}
    root_maintenance = {root: found for root in roots
                        if (found := _maintenance_of(root, placements.get(root), windows))}

    segments_of: dict[str, list[Segment]] = {}
    order = sorted(placements, key=lambda t: _place_order(placements[t]))
    for done, target in enumerate(order, start=1):
        data_end = None
        if configured is not None and target not in configured:
            data_end = max((e.time for e in events_of[target]), default=period.start)
        segments_of[target] = build_timeline(
            target, spans[target], period.start, period.end, history.watched,
            _maintenance_of(target, placements[target], windows), root_maintenance, data_end)
        if progress is not None:
            progress("timelines", done, len(order))

    drafts = _incident_drafts(segments_of, placements)
    caused_by = _attribute_caused(segments_of, drafts)
    targets = tuple(_target_figures(target, placements[target], segments_of[target],
                                    len(drafts.get(target, ())), caused_by.get(target, {}),
                                    configured, settings)
                    for target in order)
    incidents = sorted((_incident(draft, period) for found in drafts.values()
                        for draft in found), key=lambda i: (i.start, i.target))
    longest = sorted(incidents, key=lambda i: (-i.seconds, i.start, i.target))
    watched_until = min(period.end, max(now, period.start))
    return Report(
        period=period, settings=settings, generated=now, source="history", targets=targets,
        groups={level: _groups(level, targets) for level in
                (Level.SITE, Level.KABUPATEN, Level.ROLE, Level.PROVINCE)},
        incidents=tuple(incidents), longest_incidents=tuple(longest[:settings.longest_incidents]),
        root_causes=_root_causes(caused_by, drafts, placements, segments_of),
        maintenance=_maintenance_uses(windows, period, placements),
        monitord_gaps=tuple(history.watched.gaps(period.start, watched_until).intervals()),
        incidents_per_day=_per_day(period, [i.first_counted for i in incidents]),
    )


def _per_day(period: Period, moments: Iterable[float]) -> tuple[tuple[float, int], ...]:
    ordered = sorted(moments)
    return tuple((day.start, bisect.bisect_left(ordered, day.end)
                  - bisect.bisect_left(ordered, day.start)) for day in period.days)


def _place_order(placement: Placement) -> tuple[str, ...]:
    return (placement.province, placement.kabupaten, placement.site, placement.target)


def _maintenance_of(target: str, placement: Placement | None,
                    windows: Iterable[MaintenanceWindow]) -> IntervalSet:
    return IntervalSet((w.start, w.end) for w in windows if w.selector.matches(target, placement))


def _incident_drafts(segments_of: Mapping[str, Sequence[Segment]],
                     placements: Mapping[str, Placement]) -> dict[str, list[_IncidentDraft]]:
    """One incident per down span with counted time: a down state split by maintenance or by
    a monitord restart is still one outage."""
    drafts: dict[str, list[_IncidentDraft]] = {}
    for target, segments in segments_of.items():
        by_span: dict[StateSpan, _IncidentDraft] = {}
        for segment in segments:
            if segment.coverage is not Coverage.OWN_DOWN or segment.span is None:
                continue
            draft = by_span.get(segment.span)
            if draft is None:
                draft = by_span[segment.span] = _IncidentDraft(
                    placements[target], segment.span, first_counted=segment.start)
            draft.seconds += segment.seconds
        if by_span:
            drafts[target] = sorted(by_span.values(), key=lambda d: d.span.start)
    return drafts


def _attribute_caused(segments_of: Mapping[str, Sequence[Segment]],
                      drafts: Mapping[str, Sequence[_IncidentDraft]],
                      ) -> dict[str, dict[str, float]]:
    """Unreachable time by root cause and affected target; each stretch is also charged to
    the root's incident it began in (a child waiting for its own probe after the root came
    back is still that incident's)."""
    caused_by: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    starts = {root: [d.span.start for d in found] for root, found in drafts.items()}
    for target, segments in segments_of.items():
        for segment in segments:
            if segment.coverage is not Coverage.PARENT_DOWN or segment.root_cause is None:
                continue
            root = segment.root_cause
            caused_by[root][target] += segment.seconds
            index = bisect.bisect_right(starts.get(root, []), segment.start) - 1
            if index >= 0:
                draft = drafts[root][index]
                draft.caused += segment.seconds
                draft.affected.add(target)
    return caused_by


def _incident(draft: _IncidentDraft, period: Period) -> Incident:
    end = draft.span.end
    return Incident(placement=draft.placement, start=draft.span.start,
                    end=end if end <= period.end else None, seconds=draft.seconds,
                    first_counted=draft.first_counted, affected_targets=len(draft.affected),
                    caused=draft.caused)


def _target_figures(target: str, placement: Placement, segments: Sequence[Segment],
                    incidents: int, caused: Mapping[str, float],
                    configured: Mapping[str, Placement] | None,
                    settings: ReportSettings) -> TargetFigures:
    seconds: dict[Coverage, float] = defaultdict(float)
    by_root: dict[str, float] = defaultdict(float)
    for segment in segments:
        seconds[segment.coverage] += segment.seconds
        if segment.coverage is Coverage.PARENT_DOWN:
            by_root[segment.root_cause or ""] += segment.seconds
    totals = Totals(up=seconds[Coverage.UP], own_down=seconds[Coverage.OWN_DOWN],
                    parent_down=seconds[Coverage.PARENT_DOWN],
                    maintenance=seconds[Coverage.MAINTENANCE], no_data=seconds[Coverage.NO_DATA],
                    incidents=incidents)
    return TargetFigures(placement=placement,
                         configured=configured is None or target in configured, totals=totals,
                         slo=settings.slo_for(placement.role), caused=sum(caused.values()),
                         caused_targets=len(caused), parent_down_by_root=dict(by_root))


_GROUP_KEYS: dict[Level, Callable[[Placement], tuple[str, str, str, str]]] = {
    Level.SITE: lambda p: (p.province, p.kabupaten, p.site, ""),
    Level.KABUPATEN: lambda p: (p.province, p.kabupaten, "", ""),
    Level.ROLE: lambda p: ("", "", "", p.role),
    Level.PROVINCE: lambda p: (p.province, "", "", ""),
}


def _groups(level: Level, targets: Iterable[TargetFigures]) -> tuple[GroupFigures, ...]:
    members: dict[tuple[str, str, str, str], list[TargetFigures]] = defaultdict(list)
    for figures in targets:
        members[_GROUP_KEYS[level](figures.placement)].append(figures)
    groups = []
    for (province, kabupaten, site, role), found in sorted(members.items()):
        totals = sum((f.totals for f in found), Totals())
        weights = [(f.totals.up + f.totals.own_down, f.slo) for f in found]
        weight = sum(w for w, _ in weights)
        slo = sum(w * s for w, s in weights) / weight if weight > 0 else None
        groups.append(GroupFigures(level=level, province=province, kabupaten=kabupaten,
                                   site=site, role=role, totals=totals, targets=len(found),
                                   targets_below_slo=sum(f.below_slo for f in found), slo=slo))
    return tuple(groups)


def _root_causes(caused_by: Mapping[str, Mapping[str, float]],
                 drafts: Mapping[str, Sequence[_IncidentDraft]],
                 placements: Mapping[str, Placement],
                 segments_of: Mapping[str, Sequence[Segment]]) -> tuple[RootCause, ...]:
    causes = []
    for root, affected in caused_by.items():
        own_down = sum(s.seconds for s in segments_of.get(root, ())
                       if s.coverage is Coverage.OWN_DOWN)
        causes.append(RootCause(target=root, placement=placements.get(root),
                                incidents=len(drafts.get(root, ())), own_down=own_down,
                                caused=sum(affected.values()), affected_targets=len(affected)))
    return tuple(sorted(causes, key=lambda c: (-c.caused, c.target)))


def _maintenance_uses(windows: Iterable[MaintenanceWindow], period: Period,
                      placements: Mapping[str, Placement]) -> tuple[MaintenanceUse, ...]:
    uses = []
    for window in windows:
        start, end = max(window.start, period.start), min(window.end, period.end)
        if end > start:
            covered = sum(window.selector.matches(t, p) for t, p in placements.items())
            uses.append(MaintenanceUse(window, start, end, covered))
    return tuple(sorted(uses, key=lambda u: (u.start, u.window.source)))
