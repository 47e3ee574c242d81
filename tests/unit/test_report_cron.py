"""Cron expressions mean what they mean to cron, not APScheduler 3's Monday-first weekdays."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from monitord.report.cron import cron_trigger

WITA = ZoneInfo("Asia/Makassar")
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=WITA)


def next_fire(expression: str, after: datetime = SUNDAY) -> datetime:
    fire = cron_trigger(expression, WITA).get_next_fire_time(None, after)
    assert isinstance(fire, datetime)
    return fire


@pytest.mark.parametrize(("weekday", "expected_day"), [
    ("1", 23), ("mon", 23), ("0", 29), ("7", 29), ("sun", 29), ("1-5", 23), ("6", 28),
    ("5-7", 27), ("*/3", 25),  # 0,3,6: Sunday, Wednesday, Saturday
])
def test_weekdays_count_from_sunday_as_in_cron(weekday: str, expected_day: int) -> None:
    assert next_fire(f"0 6 * * {weekday}").day == expected_day


def test_monthly_run_is_in_the_report_time_zone() -> None:
    fire = next_fire("0 6 1 * *")
    assert (fire.month, fire.day, fire.hour, fire.utcoffset()) == (
        12, 1, 6, WITA.utcoffset(fire))


@pytest.mark.parametrize(("expression", "message"), [
    ("0 6 * *", "needs 5 fields (minute hour day month weekday), not 4"),
    ("0 6 * * 8", "day-of-week '8': '8' is not a number from 0 to 7"),
    ("0 6 * * 5-1", "day-of-week range '5-1' runs backwards"),
    ("0 24 * * *", "is not a valid cron expression"),
])
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cron_trigger(expression, WITA)
