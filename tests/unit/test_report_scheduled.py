"""The daemon's scheduled report: which period, which files, and that they are the report."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitord.config import load_inventory
from monitord.report.period import Period
from monitord.report.scheduled import (
    previous_period,
    report_is_missing,
    scheduled_files,
    write_scheduled_report,
)
from monitord.report.settings import ReportSchedule
from tests.unit.test_report_cli import T0, Lab, target_row

WITA = "Asia/Makassar"


def moment(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(WITA)).timestamp()


@pytest.mark.parametrize(("kind", "now", "first", "last"), [
    ("month", "2026-12-01 06:00", date(2026, 11, 1), date(2026, 11, 30)),
    ("month", "2026-01-01 00:30", date(2025, 12, 1), date(2025, 12, 31)),
    ("month", "2024-03-15 12:00", date(2024, 2, 1), date(2024, 2, 29)),
    ("week", "2026-11-23 06:00", date(2026, 11, 16), date(2026, 11, 22)),  # a Monday
    ("week", "2026-11-22 23:59", date(2026, 11, 9), date(2026, 11, 15)),  # a Sunday
    ("day", "2026-11-01 06:00", date(2026, 10, 31), date(2026, 10, 31)),
])
def test_previous_period_is_the_last_whole_one_in_the_report_zone(
        kind: str, now: str, first: date, last: date) -> None:
    assert previous_period(kind, moment(now), WITA) == Period(first, last, WITA)


def test_a_wita_month_starts_at_wita_midnight_not_utc() -> None:
    # 2026-12-01 00:30 WITA is still 30 November in UTC: the month that ended is November.
    period = previous_period("month", moment("2026-12-01 00:30"), WITA)
    assert (period.first_day, period.start) == (date(2026, 11, 1), moment("2026-11-01 00:00"))


def test_file_names_say_the_period_and_the_language(tmp_path: Path) -> None:
    schedule = ReportSchedule(cron="0 6 1 * *", period="month", directory=str(tmp_path),
                              formats=("html", "csv", "pdf"), languages=("id", "en"))
    period = Period(date(2026, 10, 1), date(2026, 10, 31), WITA)
    names = [(f.path.name, f.format, f.language)
             for f in scheduled_files(schedule, "sulbar", period)]
    assert names == [("sulbar-2026-10.id.html", "html", "id"),
                     ("sulbar-2026-10.en.html", "html", "en"),
                     ("sulbar-2026-10.csv", "csv", "id"),
                     ("sulbar-2026-10.id.pdf", "pdf", "id"),
                     ("sulbar-2026-10.en.pdf", "pdf", "en")]
    week = replace(schedule, period="week", formats=("json",))
    assert [f.path.name for f in scheduled_files(week, "sulbar", Period(
        date(2026, 11, 16), date(2026, 11, 22), WITA))] == ["sulbar-2026-W47.json"]


def test_scheduled_run_writes_the_previous_days_report(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    try:
        lab.the_usual_day()
    finally:
        lab.store.close()
    reports = tmp_path / "reports"
    lab.config.write_text(lab.config.read_text().replace(
        "report:\n", "report:\n  schedule: {cron: '0 6 * * *', period: day, "
        f"directory: {reports}, formats: [json, html], languages: [id, en]}}\n"))
    inventory = load_inventory(lab.config)
    after = T0 + 30 * 3600  # 06:00 WITA the next day
    assert report_is_missing(inventory, after)

    written = write_scheduled_report(inventory, after)

    assert sorted(p.name for p in written) == [
        "sulbar-2025-01-06.en.html", "sulbar-2025-01-06.id.html", "sulbar-2025-01-06.json"]
    document = json.loads((reports / "sulbar-2025-01-06.json").read_text())
    link = target_row(document, "mamasa-link")
    assert link["own_down_minutes"] == 120.0  # the usual day's link outage
    assert "Ketersediaan" in (reports / "sulbar-2025-01-06.id.html").read_text()
    assert not report_is_missing(inventory, after)
    (reports / "sulbar-2025-01-06.en.html").unlink()
    assert report_is_missing(inventory, after)
