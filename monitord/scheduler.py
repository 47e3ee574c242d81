"""monitord's own probe schedule: every check on its interval, spread, deadlined, bounded.

One timer callback pops due checks from a heap (APScheduler with one job per check costs ~5x
the CPU and stalls the loop when jobs line up; see PEERS.md). Each check keeps a fixed phase:
its next run is its previous *scheduled* time plus the interval, so slow probes never make
the schedule drift. Phases are spread over the interval by a stable hash of the target (a
restart keeps the same spread) and rounded up to the tick grid, so 5,000 targets on a 10 s
interval start 25 at a time every 50 ms rather than all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from monitord.metrics.loopmetrics import CounterChild, HistogramChild
from monitord.metrics.selfmetrics import SelfMetrics
from monitord.model import Check, Outcome
from monitord.probers import PROBERS, STARTERS, ProbeContext, failed_outcome

log = logging.getLogger(__name__)

# Extra time a probe gets beyond its profile's own deadline before it is cancelled.
DEADLINE_GRACE = 1.0
# Probes start on a grid (daemon.scheduler_tick, 50 ms by default). Waking for every due time
# separately costs an event-loop wake-up per probe (epoll_wait, a timer interrupt, on a VM an
# exit), more than the probe itself; on a grid, the probes of one tick start, send their
# echoes and read their replies together. Measured at 5,000 targets: 38 us of CPU per echo
# with a 10 ms tick, 26 us with 50 ms (bench/README.md).
TICK = 0.05
# A probe cut off at its deadline ends this long before its next run is due, so that run is
# never mistaken for an overlap.
DEADLINE_MARGIN = 0.001

ResultSink = Callable[[Outcome], None]


def spread_offset(target: str, interval: float) -> float:
    """A stable offset in [0, interval) for `target`: the same across restarts and hosts."""
    digest = hashlib.blake2b(target.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def probe_deadline(check: Check) -> float:
    return min(check.profile.interval, check.profile.deadline + DEADLINE_GRACE)


@dataclass(frozen=True, slots=True)
class _KindMetrics:
    """One kind's labelled metric children, looked up once rather than on every probe."""

    lateness: HistogramChild
    duration: HistogramChild
    success: CounterChild
    failure: CounterChild
    deadline_exceeded: CounterChild

    @classmethod
    def of(cls, metrics: SelfMetrics, kind: str) -> _KindMetrics:
        return cls(metrics.lateness.labels(kind), metrics.duration.labels(kind),
                   metrics.probes.labels(kind, "success"),
                   metrics.probes.labels(kind, "failure"),
                   metrics.probes.labels(kind, "deadline_exceeded"))


@dataclass(eq=False, slots=True)
class _Entry:
    check: Check
    due: float  # loop time of the next scheduled run
    active: bool = True
    busy: bool = False  # a run is waiting for a slot or running
    run: int = 0  # which run `busy` belongs to: a cut-off run must not clear a newer one's flag
    task: asyncio.Task[None] | None = field(default=None)  # the running task, coroutine probers


class Scheduler:
    def __init__(self, ctx: ProbeContext, sink: ResultSink, metrics: SelfMetrics,
                 max_concurrent: int, tick: float = TICK) -> None:
        self._ctx = ctx
        self._tick_seconds = tick
        self._sink = sink
        self._metrics = metrics
        self._max_running = max_concurrent
        # Probes in flight per kind: the admission bound and, at scrape time, the in-flight gauge.
        self._running_by_kind: dict[str, int] = {}
        self._waiting: deque[tuple[_Entry, float]] = deque()  # (entry, due) for a free slot
        self._stopped = False
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._tiebreak = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None  # set while run() runs
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_kind: dict[str, _KindMetrics] = {}
        for kind in PROBERS:
            self._kind_metrics(kind)

    @property
    def checks(self) -> list[Check]:
        return [e.check for e in self._entries.values()]

    def set_checks(self, checks: Iterable[Check]) -> None:
        """Swap in a new set of checks. Unchanged checks keep their phase and running probe;
        removed or changed ones are cancelled (a callback probe finishes, unreported)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        wanted = {c.key: c for c in checks}
        for key, entry in list(self._entries.items()):
            if wanted.get(key) != entry.check:
                entry.active = False
                if entry.task is not None:
                    entry.task.cancel()
                del self._entries[key]
        for key, check in wanted.items():
            if key not in self._entries:
                entry = _Entry(check, now + spread_offset(check.target, check.profile.interval))
                self._entries[key] = entry
                heapq.heappush(self._heap, (entry.due, next(self._tiebreak), entry))
        # Drop cancelled entries from the heap now rather than as they come due.
        self._heap = [item for item in self._heap if item[2].active]
        heapq.heapify(self._heap)
        counts: dict[str, int] = {}
        for check in wanted.values():
            counts[check.kind] = counts.get(check.kind, 0) + 1
        for kind in PROBERS:
            self._metrics.targets.labels(kind).set(counts.get(kind, 0))
        self._poke()

    def lag(self) -> float:
        """How late the earliest due check is, in seconds: within a tick or two while the
        schedule advances (0 with nothing due), infinite when it is not running. The daemon's
        systemd watchdog withholds its ping when this grows."""
        if self._loop is None:
            return math.inf
        if not self._heap:
            return 0.0
        return max(0.0, self._loop.time() - self._heap[0][0])

    def _poke(self) -> None:
        """Re-arm the tick timer for the earliest due check (after the heap changed)."""
        if self._loop is None or not self._heap:
            return
        when = math.ceil(self._heap[0][0] / self._tick_seconds) * self._tick_seconds
        if when < self._timer_when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(when, self._tick)
            self._timer_when = when

    def _tick(self) -> None:
        """Launch every check that is due. A plain timer callback, not a coroutine step: at
        hundreds of ticks a second, a future and a task wake-up per tick are measurable."""
        assert self._loop is not None
        self._timer = None
        self._timer_when = math.inf
        now = self._loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            if entry.active:
                self._launch(entry, now)
                heapq.heappush(heap, (entry.due, next(self._tiebreak), entry))
        self._poke()

    async def run(self) -> None:
        """Run the schedule until cancelled; then cancel every probe in flight."""
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._poke()
        try:
            await self._loop.create_future()  # the schedule runs on timers until cancelled
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._timer_when = math.inf
            self._loop = None
            self._stopped = True
            self._waiting.clear()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _launch(self, entry: _Entry, now: float) -> None:
        due = entry.due
        interval = entry.check.profile.interval
        entry.due = due + interval
        if entry.due <= now:  # more than an interval behind: skip the missed runs, keep phase
            missed = int((now - entry.due) // interval) + 1
            entry.due += missed * interval
            self._metrics.skipped.labels(entry.check.kind, "behind").inc(missed)
        # A run whose deadline already cancelled it is only unwinding: it does not block this one.
        if entry.busy and not (entry.task is not None and entry.task.cancelling()):
            self._metrics.skipped.labels(entry.check.kind, "overlap").inc()
            return
        entry.busy = True
        entry.run += 1
        if self._has_free_slot():
            self._start(entry, due)
        else:
            self._waiting.append((entry, due))

    def _start(self, entry: _Entry, due: float) -> None:
        check = entry.check
        metrics = self._by_kind.get(check.kind) or self._kind_metrics(check.kind)
        start = asyncio.get_running_loop().time()
        # Lateness counts from the grid slot the probe was meant to start in (its phase rounded
        # up to the tick), not from the exact phase: the 0-50 ms of rounding is the design, not
        # delay, and counting it put p99 at ~49 ms on an idle machine.
        slot = math.ceil(due / self._tick_seconds) * self._tick_seconds
        metrics.lateness.observe(max(0.0, start - slot))
        self._running_by_kind[check.kind] += 1
        run = entry.run
        starter = STARTERS.get(check.kind)
        if starter is not None:
            tick = math.floor(start / self._tick_seconds) * self._tick_seconds
            starter(check, self._ctx, tick,
                    lambda result: self._finish(entry, run, start, metrics, result))
            return
        task = asyncio.get_running_loop().create_task(self._run_task(entry, run, due, start, metrics))
        entry.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_task(self, entry: _Entry, run: int, due: float, start: float,
                        metrics: _KindMetrics) -> None:
        try:
            result = await self._probe_with_deadline(entry.check, due)
        except asyncio.CancelledError:  # removed by a reload, or the scheduler stopped
            self._finish(entry, run, start, metrics, None)
            raise
        self._finish(entry, run, start, metrics, result)

    def _finish(self, entry: _Entry, run: int, start: float, metrics: _KindMetrics,
                result: Outcome | None) -> None:
        """Account for a finished run, hand its result on, and give its slot to a waiter."""
        metrics.duration.observe(asyncio.get_running_loop().time() - start)
        self._running_by_kind[entry.check.kind] -= 1
        if entry.run == run:
            entry.busy = False
            entry.task = None
        while self._waiting and self._has_free_slot() and not self._stopped:
            waiter, waiter_due = self._waiting.popleft()
            if waiter.active:
                self._start(waiter, waiter_due)
            else:
                waiter.busy = False
        if result is None:
            return
        if result.deadline_exceeded:
            metrics.deadline_exceeded.inc()
        elif result.success:
            metrics.success.inc()
        else:
            metrics.failure.inc()
        if entry.active:
            self._sink(result)

    def _has_free_slot(self) -> bool:
        return sum(self._running_by_kind.values()) < self._max_running

    def _kind_metrics(self, kind: str) -> _KindMetrics:
        """A kind's metric children, made on first use (tests register their own probers)."""
        self._running_by_kind.setdefault(kind, 0)
        self._metrics.in_flight.labels(kind).set_function(lambda: self._running_by_kind[kind])
        self._by_kind[kind] = _KindMetrics.of(self._metrics, kind)
        return self._by_kind[kind]

    async def _probe_with_deadline(self, check: Check, due: float) -> Outcome:
        """Run the probe, cancelled at its deadline counted from when it was *due*: time spent
        waiting for a concurrency slot is part of it, so a probe never runs into its next run."""
        started = time.time()
        deadline = probe_deadline(check)
        deadline_at = due + min(deadline, check.profile.interval - DEADLINE_MARGIN)
        try:
            async with asyncio.timeout_at(deadline_at):
                return await PROBERS[check.kind](check, self._ctx)
        except TimeoutError:
            return failed_outcome(self._ctx, check, started, time.time() - started,
                                  f"deadline of {deadline:g}s exceeded", deadline_exceeded=True)
        except Exception as exc:  # a prober bug must not kill the schedule
            log.exception("prober %s failed on %s", check.kind, check.target)
            return failed_outcome(self._ctx, check, started, time.time() - started,
                                  f"internal error: {exc!r}")
