"""A report as plain records (str/int/float/bool/None): the machine formats' shared shape.
JSON nests them; CSV writes the figure rows as one table. Keys are documented in README.md
and only ever added to within a format version (FORMAT)."""

from __future__ import annotations

from typing import Any

from monitord.report.availability import (
    GroupFigures,
    Incident,
    Level,
    Report,
    TargetFigures,
    Totals,
)
from monitord.report.period import to_local

FORMAT = "monitord.report/1"

# The columns of a figure row, every level alike (fields a level does not have are None).
FIGURE_COLUMNS: tuple[str, ...] = (
    "level", "province", "kabupaten", "site", "role", "target", "name", "parent", "configured",
    "targets", "targets_below_slo", "slo_percent", "availability_percent",
    "own_availability_percent", "below_slo", "up_minutes", "own_down_minutes",
    "parent_down_minutes", "maintenance_minutes", "no_data_minutes", "incidents",
    "mttr_minutes", "mtbf_minutes", "caused_down_minutes", "caused_targets",
)
# Coarse to fine: how the levels follow each other in the CSV and the JSON.
LEVEL_ORDER = (Level.PROVINCE, Level.KABUPATEN, Level.SITE, Level.ROLE, Level.TARGET)

Record = dict[str, Any]


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 3)


def percent(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def iso(report: Report, seconds: float) -> str:
    """An ISO 8601 time with the report zone's offset."""
    return to_local(seconds, report.period.timezone).isoformat(timespec="seconds")


def _totals(totals: Totals) -> Record:
    return {
        "availability_percent": percent(totals.availability),
        "own_availability_percent": percent(totals.own_availability),
        "up_minutes": minutes(totals.up),
        "own_down_minutes": minutes(totals.own_down),
        "parent_down_minutes": minutes(totals.parent_down),
        "maintenance_minutes": minutes(totals.maintenance),
        "no_data_minutes": minutes(totals.no_data),
        "incidents": totals.incidents,
        "mttr_minutes": minutes(totals.mttr),
        "mtbf_minutes": minutes(totals.mtbf),
    }


def group_record(group: GroupFigures) -> Record:
    record: Record = dict.fromkeys(FIGURE_COLUMNS)
    record.update(level=group.level.value, targets=group.targets,
                  targets_below_slo=group.targets_below_slo, slo_percent=percent(group.slo),
                  below_slo=group.below_slo, **_totals(group.totals))
    for name in ("province", "kabupaten", "site", "role"):
        value = getattr(group, name)
        record[name] = value if value else None
    return record


def target_record(figures: TargetFigures) -> Record:
    p = figures.placement
    record: Record = dict.fromkeys(FIGURE_COLUMNS)
    record.update(level=Level.TARGET.value, province=p.province, kabupaten=p.kabupaten,
                  site=p.site, role=p.role, target=p.target, name=p.name, parent=p.parent,
                  configured=figures.configured, targets=1,
                  targets_below_slo=int(figures.below_slo), slo_percent=percent(figures.slo),
                  below_slo=figures.below_slo, caused_down_minutes=minutes(figures.caused),
                  caused_targets=figures.caused_targets, **_totals(figures.totals))
    return record


def figure_records(report: Report, level: Level) -> list[Record]:
    if level is Level.TARGET:
        return [target_record(f) for f in report.targets]
    return [group_record(g) for g in report.level(level)]


def incident_record(report: Report, incident: Incident) -> Record:
    p = incident.placement
    return {
        "target": p.target, "name": p.name, "kabupaten": p.kabupaten, "site": p.site,
        "role": p.role,
        "start": iso(report, incident.start),
        "end": None if incident.end is None else iso(report, incident.end),
        "started_before_period": incident.start < report.period.start,
        "minutes": minutes(incident.seconds),
        "affected_targets": incident.affected_targets,
        "caused_down_minutes": minutes(incident.caused),
    }
