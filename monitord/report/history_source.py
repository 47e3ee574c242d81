"""Reads what a report needs from the history database, through a read-only connection: the
daemon may be writing to it meanwhile (WAL readers never block it, nor it them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from monitord.report.availability import HistoryData, Progress
from monitord.report.period import Period
from monitord.report.timeline import IntervalSet, watched_intervals

# The row decoding and schema check are the store's own, so a schema change cannot leave the
# report reading rows differently from how they were written.
from monitord.state.history import (
    _EVENT_COLUMNS,
    _SELECT_EVENTS_BETWEEN,
    BUSY_TIMEOUT,
    HistoryError,
    Run,
    _event_from_row,
    _schema_version,
)
from monitord.state.model import StateEvent

__all__ = ["read_history"]

# Built from constant column lists; values go in as parameters.
_SELECT_LAST_STATE_BEFORE = (
    f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608
    "WHERE target = ? AND time < ? AND kind = 'state' ORDER BY time DESC, seq DESC LIMIT 1")


def read_history(path: str | Path, period: Period, now: float,
                 progress: Progress | None = None) -> HistoryData:
    """The period's events, each target's last state event before it, and when monitord was
    running (crashes resolved as timeline.watched_intervals says). Raises HistoryError."""
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path} does not exist: no history to report on "
                           "(has monitord run with this daemon.state_dir?)")
    with _read_only(path) as db:
        if _schema_version(db, path) == 0:
            return HistoryData(events=(), priors=(), watched=IntervalSet())
        try:
            events = [_event_from_row(row, path)
                      for row in db.execute(_SELECT_EVENTS_BETWEEN, (period.start, period.end))]
            # Every target that ever had an event has a status row (statuses are never deleted).
            targets = [row[0] for row in db.execute("SELECT target FROM target_state")]
            priors: list[StateEvent] = []
            for done, target in enumerate(targets, start=1):
                row = db.execute(_SELECT_LAST_STATE_BEFORE, (target, period.start)).fetchone()
                if row is not None:
                    priors.append(_event_from_row(row, path))
                if progress is not None:
                    progress("history", done, len(targets))
            runs = [Run(id=r[0], started=r[1], stopped=r[2]) for r in db.execute(
                "SELECT id, started, stopped FROM runs ORDER BY id")]

            def last_event_time(since: float, until: float) -> float | None:
                found: float | None = db.execute(
                    "SELECT max(time) FROM events WHERE time >= ? AND time < ?",
                    (since, until)).fetchone()[0]
                return found

            watched = watched_intervals(runs, now, last_event_time)
        except sqlite3.Error as error:
            raise HistoryError(f"cannot read the history in {path}: {error}") from error
    return HistoryData(events=events, priors=priors, watched=watched)


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                             timeout=BUSY_TIMEOUT)
    except sqlite3.Error as error:
        raise HistoryError(f"cannot open {path}: {error}") from error
    with closing(db):
        # One snapshot for every query: events and runs the daemon adds meanwhile can't make
        # the priors, the period and the runs disagree.
        db.execute("BEGIN")
        yield db
