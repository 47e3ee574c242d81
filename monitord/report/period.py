"""The report period: whole local days, and the time zone they are days of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class PeriodError(ValueError):
    """A date, time or time zone that cannot be used; the message says why."""


def zone(name: str | None) -> tzinfo | None:
    """The named zone; None means the system's local time (which datetime applies itself)."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"unknown time zone {name!r} (use an IANA name such as "
                          "Asia/Jakarta, Asia/Makassar or Asia/Jayapura)") from None


def to_epoch(moment: datetime, tz_name: str | None) -> float:
    """A datetime as seconds since the epoch; a naive one is a wall time in tz_name's zone."""
    if moment.tzinfo is None:
        tz = zone(tz_name)
        if tz is not None:
            moment = moment.replace(tzinfo=tz)
    return moment.timestamp()  # naive with no zone: local time, as the system knows it


def to_local(seconds: float, tz_name: str | None) -> datetime:
    """An epoch time as an aware datetime in the report's zone."""
    tz = zone(tz_name)
    return datetime.fromtimestamp(seconds, tz) if tz is not None \
        else datetime.fromtimestamp(seconds).astimezone()


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def parse_moment(text: str, tz_name: str | None) -> float:
    """`2025-03-01 22:00`, `2025-03-01T22:00:00+08:00` or a bare date (its midnight)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{text!r} is not a date and time (use YYYY-MM-DD HH:MM, "
                          "optionally with a UTC offset such as +08:00)") from None
    return to_epoch(moment, tz_name)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    start: float
    end: float


@dataclass(frozen=True)
class Period:
    """From the first day's midnight to the midnight after the last day, in the zone."""

    first_day: date
    last_day: date  # included
    timezone: str | None  # None: the system's local time

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise PeriodError(f"the period ends ({self.last_day}) before it starts "
                              f"({self.first_day})")
        zone(self.timezone)  # refuse an unknown zone here, not half way through the report

    @cached_property
    def start(self) -> float:
        return self._midnight(self.first_day)

    @cached_property
    def end(self) -> float:
        return self._midnight(self.last_day + timedelta(days=1))

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @cached_property
    def days(self) -> tuple[Day, ...]:
        days: list[Day] = []
        day = self.first_day
        while day <= self.last_day:  # bounded: one per day of the period
            following = day + timedelta(days=1)
            days.append(Day(day, self._midnight(day), self._midnight(following)))
            day = following
        return tuple(days)

    @property
    def zone_label(self) -> str:
        """The IANA name if configured, else the local zone's abbreviation (WIB, WITA...)."""
        return self.timezone or to_local(self.start, None).tzname() or "local"

    def _midnight(self, day: date) -> float:
        return to_epoch(datetime(day.year, day.month, day.day), self.timezone)
