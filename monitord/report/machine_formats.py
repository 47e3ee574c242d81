"""The machine-readable formats: JSON (everything) and CSV (the figures, one table)."""

from __future__ import annotations

import csv
import io
import json

from monitord.report.availability import Level, Report
from monitord.report.records import (
    FIGURE_COLUMNS,
    FORMAT,
    LEVEL_ORDER,
    Record,
    figure_records,
    group_record,
    incident_record,
    iso,
    minutes,
    target_record,
)

__all__ = ["render_csv", "render_json"]


def render_json(report: Report) -> str:
    period = report.period
    settings = report.settings
    document: Record = {
        "format": FORMAT,
        "generated": iso(report, report.generated),
        "source": report.source,
        "period": {"first_day": period.first_day.isoformat(),
                   "last_day": period.last_day.isoformat(),
                   "start": iso(report, period.start), "end": iso(report, period.end),
                   "timezone": period.zone_label, "minutes": minutes(period.seconds)},
        "slo": {"default_percent": settings.default_slo,
                "roles": dict(sorted(settings.slo.items()))},
        "figures": {level.value: _figures(report, level) for level in LEVEL_ORDER},
        "sites_below_slo": [
            {**group_record(site), "targets_below_slo_ids": [
                f.target for f in report.targets if f.below_slo
                and (f.placement.kabupaten, f.placement.site) == (site.kabupaten, site.site)]}
            for site in report.below_slo_sites],
        "incidents": [incident_record(report, i) for i in report.incidents],
        "longest_incidents": [incident_record(report, i) for i in report.longest_incidents],
        "root_causes": [
            {"target": cause.target,
             "name": cause.placement.name if cause.placement else None,
             "kabupaten": cause.placement.kabupaten if cause.placement else None,
             "site": cause.placement.site if cause.placement else None,
             "role": cause.placement.role if cause.placement else None,
             "incidents": cause.incidents, "own_down_minutes": minutes(cause.own_down),
             "caused_down_minutes": minutes(cause.caused),
             "affected_targets": cause.affected_targets}
            for cause in report.root_causes],
        "maintenance": [
            {"start": iso(report, use.window.start), "end": iso(report, use.window.end),
             "minutes_in_period": minutes(use.end - use.start),
             "targets": sorted(use.window.selector.targets),
             "sites": sorted(use.window.selector.sites),
             "kabupaten": sorted(use.window.selector.kabupaten),
             "roles": sorted(use.window.selector.roles),
             "reason": use.window.reason, "source": use.window.source,
             "targets_covered": use.targets}
            for use in report.maintenance],
        "monitord_not_running": [
            {"start": iso(report, start), "end": iso(report, end),
             "minutes": minutes(end - start)}
            for start, end in report.monitord_gaps],
        "incidents_per_day": [
            {"day": day.day.isoformat(), "incidents": count}
            for day, (_, count) in zip(period.days, report.incidents_per_day, strict=True)],
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def _figures(report: Report, level: Level) -> list[Record]:
    if level is not Level.TARGET:
        return figure_records(report, level)
    records = []
    for figures in report.targets:
        record = target_record(figures)
        record["parent_down_by_root_minutes"] = {
            root: minutes(seconds)
            for root, seconds in sorted(figures.parent_down_by_root.items())}
        records.append(record)
    return records


def render_csv(report: Report) -> str:
    """One table: a row per province, kabupaten, site, role and device, told apart by `level`.
    Empty cells for what a level does not have; true/false for booleans."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIGURE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for level in LEVEL_ORDER:
        for record in figure_records(report, level):
            writer.writerow({key: _cell(value) for key, value in record.items()})
    return out.getvalue()


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value

