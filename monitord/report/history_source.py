"""Reads what a report needs from the history database, through a read-only connection: the
daemon may be writing to it meanwhile (WAL readers never block it, nor it them)."""

from __future__ import annotations

from pathlib import Path

from monitord.report.availability import HistoryData, Progress
from monitord.report.period import Period
from monitord.report.timeline import IntervalSet, watched_intervals
from monitord.state.history import HistoryError, read_snapshot
from monitord.state.model import StateEvent

__all__ = ["read_history"]


def read_history(path: str | Path, period: Period, now: float,
                 progress: Progress | None = None) -> HistoryData:
    """The period's events, each target's last state event before it, and when monitord was
    running (crashes resolved as timeline.watched_intervals says). Raises HistoryError."""
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path} does not exist: no history to report on "
                           "(has monitord run with this daemon.state_dir?)")
    with read_snapshot(path) as history:
        if history.empty:
            return HistoryData(events=(), priors=(), watched=IntervalSet())
        events = history.events_between(period.start, period.end)
        targets = history.targets()
        priors: list[StateEvent] = []
        for done, target in enumerate(targets, start=1):
            prior = history.last_state_event_before(target, period.start)
            if prior is not None:
                priors.append(prior)
            if progress is not None:
                progress("history", done, len(targets))
        watched = watched_intervals(history.runs(), now, history.last_event_time)
    return HistoryData(events=events, priors=priors, watched=watched)
