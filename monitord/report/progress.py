"""Progress of a long report on the terminal: one rewritten stderr line, and nothing at all
when stderr is not a terminal (cron, a pipe, the scheduled job)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["TerminalProgress"]


class TerminalProgress:
    """A report.availability.Progress that draws `report: timelines 1200/5000 (24%)`."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._enabled = self._stream.isatty()
        self._interval = interval  # redraw at most this often: drawing costs more than a step
        self._clock = clock
        self._last = -float("inf")
        self._drawn = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if done < total and now - self._last < self._interval:
            return
        self._last = now
        share = 100 * done // total if total else 100
        # \r back to the line's start, \x1b[K clears what a longer line left behind.
        self._stream.write(f"\rreport: {stage} {done}/{total} ({share}%)\x1b[K")
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """Clear the line, so the terminal is left as it was."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
