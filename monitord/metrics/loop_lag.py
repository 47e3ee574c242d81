"""How late the event loop runs: a task sleeps a fixed tick and measures how much longer it
took to wake up. Anything that holds the loop (a slow callback, a long GC pause, a blocking
call) shows here first, before it shows as probe lateness or false timeouts.

monitord_scheduler_lateness_seconds is different: it measures when probes started, which also
waits for free probe slots; this measures the loop alone, with or without probes due.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord.metrics.loopmetrics import LoopHistogram
from monitord.metrics.selfmetrics import LATENESS_BUCKETS

__all__ = ["LoopLagMonitor"]


class LoopLagMonitor(Collector):
    """run() measures (on the loop); collect() exports (from any thread, e.g. /metrics).

    The max gauge covers the last `window` to 2 x `window` seconds, and also a stall still
    going on: a scrape, served by another thread, sees the loop being late now, not only once
    it has recovered."""

    def __init__(self, tick: float = 0.25, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tick = tick
        self.window = window
        self._clock = clock
        self._histogram = LoopHistogram(
            "monitord_event_loop_lag_seconds",
            f"How much later than asked the event loop woke a {tick:g}s sleep.",
            [], LATENESS_BUCKETS)
        self._lag = self._histogram.labels()
        # Written only by run(); read by scrapes. Single float stores: no lock needed.
        self._window_start = clock()
        self._window_max = 0.0
        self._previous_max = 0.0
        self._wake_due: float | None = None  # when the sleep in progress should end

    async def run(self) -> None:
        """Measure until cancelled."""
        try:
            while True:
                due = self._clock() + self.tick
                self._wake_due = due
                await asyncio.sleep(self.tick)
                self._record(self._clock() - due)
        finally:
            self._wake_due = None

    def _record(self, lag: float) -> None:
        lag = max(0.0, lag)  # asyncio may wake a sleep up to a clock tick early
        self._lag.observe(lag)
        now = self._clock()
        if now - self._window_start >= self.window:
            self._previous_max, self._window_max = self._window_max, 0.0
            self._window_start = now
        self._window_max = max(self._window_max, lag)

    def max_lag(self) -> float:
        """The largest lag in the last window or two, or of a stall going on now."""
        due = self._wake_due
        ongoing = 0.0 if due is None else self._clock() - due
        return max(self._previous_max, self._window_max, ongoing)

    def collect(self) -> Iterable[Metric]:
        yield from self._histogram.collect()
        yield GaugeMetricFamily(
            "monitord_event_loop_lag_max_seconds",
            f"The largest event loop lag in the last {self.window:g} to {2 * self.window:g} "
            "seconds, including a stall still going on.",
            value=self.max_lag())
