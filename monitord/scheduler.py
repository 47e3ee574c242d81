"""monitord's own probe schedule: every check on its interval, spread, deadlined, bounded.

One asyncio loop pops due checks from a heap (APScheduler with one job per check costs ~5x
the CPU and stalls the loop when jobs line up; see PEERS.md). Each check keeps a fixed phase:
its next run is its previous *scheduled* time plus the interval, so slow probes never make
the schedule drift. Phases are spread over the interval by a stable hash of the target, so
5,000 targets on a 10 s interval start ~2 ms apart rather than all at once, and a restart
keeps the same spread.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from monitord.metrics.selfmetrics import SelfMetrics
from monitord.model import Check, ProbeResult
from monitord.probers import PROBERS, ProbeContext

log = logging.getLogger(__name__)

# Extra time a probe gets beyond its profile's own deadline before it is cancelled.
DEADLINE_GRACE = 1.0

ResultSink = Callable[[ProbeResult], None]


def spread_offset(target: str, interval: float) -> float:
    """A stable offset in [0, interval) for `target`: the same across restarts and hosts."""
    digest = hashlib.blake2b(target.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def probe_deadline(check: Check) -> float:
    return min(check.profile.interval, check.profile.deadline + DEADLINE_GRACE)


@dataclass(frozen=True, slots=True)
class _KindMetrics:
    """One kind's labelled metric children, looked up once: labels() costs a lock and a dict
    lookup, and the hot path would otherwise pay it five times per probe."""

    lateness: Histogram
    duration: Histogram
    in_flight: Gauge
    success: Counter
    failure: Counter
    deadline_exceeded: Counter

    @classmethod
    def of(cls, metrics: SelfMetrics, kind: str) -> _KindMetrics:
        return cls(metrics.lateness.labels(kind), metrics.duration.labels(kind),
                   metrics.in_flight.labels(kind), metrics.probes.labels(kind, "success"),
                   metrics.probes.labels(kind, "failure"),
                   metrics.probes.labels(kind, "deadline_exceeded"))


@dataclass(eq=False, slots=True)
class _Entry:
    check: Check
    due: float  # loop time of the next scheduled run
    active: bool = True
    running: asyncio.Task[None] | None = field(default=None)


class Scheduler:
    def __init__(self, ctx: ProbeContext, sink: ResultSink, metrics: SelfMetrics,
                 max_concurrent: int) -> None:
        self._ctx = ctx
        self._sink = sink
        self._metrics = metrics
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._tiebreak = itertools.count()
        self._wake: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_kind = {kind: _KindMetrics.of(metrics, kind) for kind in PROBERS}

    @property
    def checks(self) -> list[Check]:
        return [e.check for e in self._entries.values()]

    def set_checks(self, checks: Iterable[Check]) -> None:
        """Swap in a new set of checks. Unchanged checks keep their phase and running probe;
        removed or changed ones are cancelled."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        wanted = {c.key: c for c in checks}
        for key, entry in list(self._entries.items()):
            if wanted.get(key) != entry.check:
                entry.active = False
                if entry.running is not None:
                    entry.running.cancel()
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

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Run the schedule until cancelled; then cancel every probe in flight."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                while self._heap and self._heap[0][0] <= now:
                    _, _, entry = heapq.heappop(self._heap)
                    if entry.active:
                        self._launch(entry, now)
                        heapq.heappush(self._heap, (entry.due, next(self._tiebreak), entry))
                self._wake = loop.create_future()
                timer = loop.call_at(self._heap[0][0], self._poke) if self._heap else None
                try:
                    await self._wake
                finally:
                    if timer is not None:
                        timer.cancel()
        finally:
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
        if entry.running is not None:
            self._metrics.skipped.labels(entry.check.kind, "overlap").inc()
            return
        task = asyncio.get_running_loop().create_task(self._run_one(entry, due))
        entry.running = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_one(self, entry: _Entry, due: float) -> None:
        check = entry.check
        metrics = self._by_kind.get(check.kind) or self._kind_metrics(check.kind)
        loop = asyncio.get_running_loop()
        try:
            async with self._semaphore:
                start = loop.time()
                metrics.lateness.observe(max(0.0, start - due))
                metrics.in_flight.inc()
                try:
                    result = await self._probe_with_deadline(check)
                finally:
                    metrics.in_flight.dec()
                metrics.duration.observe(loop.time() - start)
        finally:
            entry.running = None
        if result.deadline_exceeded:
            metrics.deadline_exceeded.inc()
        elif result.success:
            metrics.success.inc()
        else:
            metrics.failure.inc()
        if entry.active:
            self._sink(result)

    def _kind_metrics(self, kind: str) -> _KindMetrics:
        """For kinds registered after start (tests add their own probers)."""
        self._by_kind[kind] = _KindMetrics.of(self._metrics, kind)
        return self._by_kind[kind]

    async def _probe_with_deadline(self, check: Check) -> ProbeResult:
        started = time.time()
        deadline = probe_deadline(check)
        try:
            async with asyncio.timeout(deadline):
                return await PROBERS[check.kind](check, self._ctx)
        except TimeoutError:
            return ProbeResult(check=check, started=started, duration=deadline, sent=0, received=0,
                               error=f"deadline of {deadline:g}s exceeded", deadline_exceeded=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a prober bug must not kill the schedule
            log.exception("prober %s failed on %s", check.kind, check.target)
            return ProbeResult(check=check, started=started, duration=time.time() - started,
                               sent=0, received=0, error=f"internal error: {exc!r}")
