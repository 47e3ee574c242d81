"""The `report:` section of a config file: availability targets (SLOs) per role, the time zone
reports count days in, and planned maintenance windows. Validated strictly, like the rest.

    report:
      timezone: Asia/Makassar        # WITA; default: the system's local time
      default_slo: 95                # % for roles without their own
      slo: {dc-server: 99.5, dc-network: 99.5, kabupaten-link: 98, village-ap: 95}
      maintenance:
        - {kabupaten: [mamasa], roles: [kabupaten-link], start: 2025-03-01 22:00,
           end: 2025-03-02 02:00, reason: penggantian radio}
      schedule:                      # the daemon writes the report itself
        cron: "0 6 1 * *"            # 06:00 on the 1st, in `timezone`
        period: month                # the whole calendar month before
        formats: [html, pdf, csv]
        languages: [id, en]
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from monitord.config.values import FilePath
from monitord.report.cron import cron_trigger
from monitord.report.i18n import Language
from monitord.report.period import PeriodError, to_epoch, zone
from monitord.report.settings import (
    DEFAULT_LONGEST_INCIDENTS,
    DEFAULT_SLO,
    MaintenanceWindow,
    ReportSchedule,
    ReportSettings,
    TargetSelector,
)

# Like schema.Identifier and schema.Role, which import this module (so they cannot be used).
_Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]
_Role = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
Percent = Annotated[float, Field(gt=0, le=100)]


def _timezone(value: object) -> object:
    if value is not None:
        try:
            zone(str(value))
        except PeriodError as error:
            raise ValueError(str(error)) from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaintenanceSpec(_Strict):
    """A planned window; a time without a UTC offset is in `report.timezone`."""

    start: datetime
    end: datetime
    reason: str = Field(min_length=1, max_length=500)
    targets: list[_Identifier] = Field(default_factory=list)
    sites: list[_Identifier] = Field(default_factory=list)
    kabupaten: list[_Identifier] = Field(default_factory=list)
    roles: list[_Role] = Field(default_factory=list)

    @model_validator(mode="after")
    def _selects_and_ends_after_start(self) -> MaintenanceSpec:
        if not (self.targets or self.sites or self.kabupaten or self.roles):
            raise ValueError("say which targets it covers: targets, sites, kabupaten or roles")
        # Both with or both without an offset can be compared here; mixed ones at resolve time.
        if (self.start.tzinfo is None) == (self.end.tzinfo is None) and self.end <= self.start:
            raise ValueError(f"ends ({self.end}) before it starts ({self.start})")
        return self


def _cron(value: object) -> object:
    if isinstance(value, str):
        cron_trigger(value, None)  # its ValueError names the field that is wrong
    return value


ReportFormat = Literal["html", "pdf", "csv", "json"]


class ScheduleSpec(_Strict):
    """Reports the daemon writes on its own, to `directory` (default STATE_DIR/reports)."""

    cron: Annotated[str, BeforeValidator(_cron)]
    period: Literal["month", "week", "day"] = "month"
    directory: FilePath | None = None
    formats: list[ReportFormat] = Field(default=["html", "csv"], min_length=1)
    languages: list[Language] = Field(default=["id"], min_length=1)


class ReportSpec(_Strict):
    timezone: Annotated[str | None, BeforeValidator(_timezone)] = None
    default_slo: Percent = DEFAULT_SLO
    slo: dict[_Role, Percent] = Field(default_factory=dict)
    longest_incidents: int = Field(default=DEFAULT_LONGEST_INCIDENTS, ge=1, le=1000)
    maintenance: list[MaintenanceSpec] = Field(default_factory=list)
    schedule: ScheduleSpec | None = None


def resolve_report(spec: ReportSpec, state_dir: str) -> ReportSettings:
    """The resolved settings. Raises ValueError (naming the window) for a window that ends
    before it starts once both times are placed in the zone."""
    windows = []
    for index, window in enumerate(spec.maintenance):
        start, end = to_epoch(window.start, spec.timezone), to_epoch(window.end, spec.timezone)
        if end <= start:
            raise ValueError(f"report.maintenance[{index}] ends before it starts")
        windows.append(MaintenanceWindow(
            start=start, end=end, reason=window.reason, source="config",
            selector=TargetSelector(frozenset(window.targets), frozenset(window.sites),
                                    frozenset(window.kabupaten), frozenset(window.roles))))
    return ReportSettings(slo=dict(spec.slo), default_slo=spec.default_slo,
                          timezone=spec.timezone, maintenance=tuple(windows),
                          longest_incidents=spec.longest_incidents,
                          schedule=_schedule(spec.schedule, state_dir))


def _schedule(spec: ScheduleSpec | None, state_dir: str) -> ReportSchedule | None:
    if spec is None:
        return None
    directory = spec.directory or str(Path(state_dir) / "reports")
    return ReportSchedule(cron=spec.cron, period=spec.period, directory=directory,
                          formats=tuple(dict.fromkeys(spec.formats)),
                          languages=tuple(dict.fromkeys(spec.languages)))
