"""What a report is configured with: SLOs per role, the time zone, maintenance windows.

Resolved values, independent of how they were written (config file or `maintenance add`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitord.report.i18n import Language

if TYPE_CHECKING:  # only annotations: monitord.model can import this module without a cycle
    from monitord.state.model import Placement

# The example targets: data center 99.5%, kabupaten links 98%, villages 95%.
DEFAULT_SLO = 95.0
DEFAULT_LONGEST_INCIDENTS = 10


@dataclass(frozen=True, slots=True)
class TargetSelector:
    """Which targets a maintenance window covers. Within one field any value matches; across
    fields all given fields must match (`--kabupaten mamasa --role village-ap`: the village
    access points of Mamasa). At least one field is set."""

    targets: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    kabupaten: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not (self.targets or self.sites or self.kabupaten or self.roles):
            raise ValueError("a maintenance window needs at least one target, site, kabupaten "
                             "or role")

    def matches(self, target: str, placement: Placement | None) -> bool:
        """placement None: a target known only by id (a root cause outside the report)."""
        if self.targets and target not in self.targets:
            return False
        if placement is None:
            return not (self.sites or self.kabupaten or self.roles)
        return ((not self.sites or placement.site in self.sites)
                and (not self.kabupaten or placement.kabupaten in self.kabupaten)
                and (not self.roles or placement.role in self.roles))

    def describe(self) -> str:
        """`kabupaten=mamasa role=village-ap`: how the CLI and the report show it."""
        parts = []
        for name, values in (("target", self.targets), ("site", self.sites),
                             ("kabupaten", self.kabupaten), ("role", self.roles)):
            if values:
                parts.append(f"{name}={','.join(sorted(values))}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned maintenance: excluded from SLA figures, and listed in the report."""

    start: float  # seconds since the epoch
    end: float
    selector: TargetSelector
    reason: str
    source: str  # "config" or "state #ID" (added with `monitord maintenance add`)

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError("a maintenance window must end after it starts")


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    """The daemon's own reports: when, over which period, where and in which forms."""

    cron: str  # five fields (minute hour day month weekday), in the report's time zone
    period: str  # the whole calendar "month", "week" (Monday to Sunday) or "day" before a run
    directory: str  # resolved: report.schedule.directory or STATE_DIR/reports
    formats: tuple[str, ...]
    languages: tuple[Language, ...]  # of the HTML and PDF; JSON and CSV have one language


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """The resolved `report` config section."""

    slo: Mapping[str, float] = field(default_factory=dict)  # role -> availability target, %
    default_slo: float = DEFAULT_SLO  # for roles without their own
    timezone: str | None = None  # IANA name for days and times; None: the system's local time
    maintenance: tuple[MaintenanceWindow, ...] = ()
    longest_incidents: int = DEFAULT_LONGEST_INCIDENTS  # how many the report lists
    schedule: ReportSchedule | None = None  # None: reports only on demand (`monitord report`)

    def slo_for(self, role: str) -> float:
        return self.slo.get(role, self.default_slo)
