"""The daemon's own reports: on `report.schedule.cron`, the whole previous calendar month (or
week, or day) in every configured format and language, written to the reports directory.

File names say the period, so a month's files are replaced only by a later run for the same
month: `sulbar-2026-10.id.html`, `sulbar-2026-W44.en.pdf`, `sulbar-2026-10-31.csv`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from monitord.model import Inventory
from monitord.report.build import build_report
from monitord.report.i18n import Language
from monitord.report.output import LANGUAGE_FORMATS, render, write_atomically
from monitord.report.period import Period, to_local
from monitord.report.settings import ReportSchedule

__all__ = ["ScheduledFile", "previous_period", "report_is_missing", "scheduled_files",
           "write_scheduled_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScheduledFile:
    path: Path
    format: str
    language: Language


def previous_period(kind: str, now: float, timezone: str | None) -> Period:
    """The last whole calendar month, week (Monday to Sunday) or day that ended before now."""
    today = to_local(now, timezone).date()
    if kind == "day":
        yesterday = today - timedelta(days=1)
        return Period(yesterday, yesterday, timezone)
    if kind == "week":
        this_monday = today - timedelta(days=today.weekday())
        return Period(this_monday - timedelta(days=7), this_monday - timedelta(days=1), timezone)
    last_day = today.replace(day=1) - timedelta(days=1)
    return Period(last_day.replace(day=1), last_day, timezone)


def _label(kind: str, period: Period) -> str:
    first: date = period.first_day
    if kind == "month":
        return f"{first:%Y-%m}"
    if kind == "week":
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}"
    return first.isoformat()


def scheduled_files(schedule: ReportSchedule, province: str, period: Period) -> list[ScheduledFile]:
    """Every file one run writes: HTML and PDF once per language, CSV and JSON once."""
    base = Path(schedule.directory) / f"{province}-{_label(schedule.period, period)}"
    files = []
    for output_format in schedule.formats:
        if output_format in LANGUAGE_FORMATS:
            files += [ScheduledFile(Path(f"{base}.{language}.{output_format}"), output_format,
                                    language) for language in schedule.languages]
        else:
            files.append(ScheduledFile(Path(f"{base}.{output_format}"), output_format, "id"))
    return files


def write_scheduled_report(inventory: Inventory, now: float | None = None) -> list[Path]:
    """Build the previous period's report once and write every configured file. Raises what
    build_report and render raise (HistoryError, MaintenanceError, PdfError) and OSError;
    files already written stay (each is complete)."""
    schedule = inventory.report.schedule
    if schedule is None:
        return []
    now = time.time() if now is None else now
    period = previous_period(schedule.period, now, inventory.report.timezone)
    Path(schedule.directory).mkdir(parents=True, exist_ok=True)
    report = build_report(inventory, inventory.report, period, now)
    written = []
    for wanted in scheduled_files(schedule, inventory.province, period):
        write_atomically(wanted.path, render(report, wanted.format, wanted.language))
        written.append(wanted.path)
    log.info("report %s to %s written: %s", period.first_day, period.last_day,
             ", ".join(path.name for path in written))
    return written


def report_is_missing(inventory: Inventory, now: float) -> bool:
    """Whether the last complete period lacks any of its files (the daemon was not running
    when the schedule fired, or the files were deleted): the daemon then writes them at start."""
    schedule = inventory.report.schedule
    if schedule is None:
        return False
    period = previous_period(schedule.period, now, inventory.report.timezone)
    return any(not wanted.path.exists()
               for wanted in scheduled_files(schedule, inventory.province, period))
