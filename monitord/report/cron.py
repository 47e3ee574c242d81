"""Cron expressions as an operator writes them, for APScheduler 3.

APScheduler 3 counts day-of-week numbers from Monday (0 = Monday), while cron counts from
Sunday (0 or 7 = Sunday): `0 6 * * 1` would run on Tuesdays. Numeric day-of-week fields are
therefore rewritten as day names, which mean the same to both.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

__all__ = ["cron_trigger"]

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, timezone: tzinfo | None) -> CronTrigger:
    """A trigger for five cron fields. Raises ValueError naming what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} is not a cron expression: it needs 5 fields "
                         f"(minute hour day month weekday), not {len(fields)}")
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=_weekday_names(weekday), timezone=timezone)
    except ValueError as error:
        raise ValueError(f"{expression!r} is not a valid cron expression: {error}") from None


def _weekday_names(field: str) -> str:
    """`1-5` -> `mon,tue,wed,thu,fri`; `*` and fields with names are left alone."""
    if field == "*" or any(c.isalpha() for c in field):
        return field
    days: set[int] = set()
    for token in field.split(","):
        base, _, step_text = token.partition("/")
        step = _number(step_text, token, 1, 7) if step_text else 1
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, _, high = base.partition("-")
            first, last = _number(low, token, 0, 7), _number(high, token, 0, 7)
        else:
            first = _number(base, token, 0, 7)
            last = 6 if step_text else first
        if last < first:
            raise ValueError(f"day-of-week range {token!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _number(text: str, token: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"day-of-week {token!r}: {text!r} is not a number from {low} to {high}")
    return int(text)
