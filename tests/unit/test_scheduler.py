"""The scheduler's timing: spread phases, no drift, deadlines, bounded concurrency, reloads.

Probes here are run by SleepProber, a test-only prober kind registered as PROBERS["sleep"]. It
stands in for a network prober so that the scheduler's timing logic can be tested without
sockets: it records when each probe starts and sleeps for a duration set per target, the way a
real prober waits on replies. The scheduler itself is the real one, on the real event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from monitord.icmp.pinger import Pinger
from monitord.metrics.selfmetrics import SelfMetrics
from monitord.model import Check, IcmpProfile, Outcome, ProbeResult
from monitord.probers import PROBERS, ProbeContext
from monitord.scheduler import (
    DEADLINE_GRACE,
    DEADLINE_MARGIN,
    Scheduler,
    probe_deadline,
    spread_offset,
)

KIND = "sleep"
# The tests use intervals of a tenth of a second, so a 10 ms grid (the daemon's default is
# 50 ms; the tick only trades wake-ups for start granularity).
TEST_TICK = 0.01
TOLERANCE = 0.030  # how late a start may be against its scheduled time, in seconds


def profile(interval: float, name: str = "fast", timeout: float = 0.05) -> IcmpProfile:
    return IcmpProfile(name=name, interval=interval, count=1, packet_interval=0.0, timeout=timeout,
                       size=56)


def make_check(target: str, interval: float, name: str = "fast") -> Check:
    return Check(target=target, kind=KIND, address=ipaddress.ip_address("192.0.2.1"),
                 province="p", kabupaten="k", site="s", role="r", profile=profile(interval, name))


def early_targets(n: int, interval: float, prefix: str = "t", within: float = 0.01) -> list[str]:
    """`n` target names whose phase falls in the first `within` fraction of the interval, so they
    come due together and soon after set_checks (the offsets are a fixed hash of the name)."""
    names = (f"{prefix}-{i}" for i in itertools.count())
    return list(itertools.islice((t for t in names if spread_offset(t, interval) < within * interval), n))


@dataclass
class SleepProber:
    """The stand-in prober: sleeps `durations[target]` (else `default`) seconds per probe."""

    durations: dict[str, float] = field(default_factory=dict)
    default: float = 0.0
    raises: set[str] = field(default_factory=set)  # targets whose probe raises (a prober bug)
    ignores_cancel: set[str] = field(default_factory=set)  # targets whose probe returns anyway
    starts: list[tuple[str, float]] = field(default_factory=list)  # (target, loop time)
    cancelled: list[str] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever anything is recorded

    async def __call__(self, check: Check, ctx: ProbeContext) -> ProbeResult:
        loop = asyncio.get_running_loop()
        self.starts.append((check.target, loop.time()))
        started = time.time()
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.changed.set()
        try:
            if check.target in self.raises:
                raise RuntimeError(f"prober bug on {check.target}")
            duration = self.durations.get(check.target, self.default)
            await asyncio.sleep(duration)
        except asyncio.CancelledError:
            self.cancelled.append(check.target)
            if check.target not in self.ignores_cancel:
                raise
            duration = 0.0  # a misbehaving prober: swallows the cancellation, returns a result
        finally:
            self.running -= 1
            self.changed.set()
        return ProbeResult(check=check, started=started, duration=duration, sent=1, received=1,
                           rtts=(duration,))

    def start_times(self, target: str) -> list[float]:
        return [t for name, t in self.starts if name == target]


@pytest.fixture
def prober(monkeypatch: pytest.MonkeyPatch) -> Iterator[SleepProber]:
    fake = SleepProber()
    monkeypatch.setitem(PROBERS, KIND, fake)  # removed again when the test ends
    yield fake
    assert fake.running == 0, "a probe was left running"


class Harness:
    """A real Scheduler with a fresh registry, recording what reaches its sink and when."""

    def __init__(self, prober: SleepProber, max_concurrent: int = 100, tick: float = TEST_TICK) -> None:
        self.prober = prober
        self.registry = CollectorRegistry()
        self.metrics = SelfMetrics(self.registry)
        self.results: list[tuple[ProbeResult, float]] = []  # (result, loop time it arrived)
        self.scheduler = Scheduler(ProbeContext(pinger=Pinger()), self._sink, self.metrics,
                                   max_concurrent, tick)

    def _sink(self, result: Outcome) -> None:
        assert isinstance(result, ProbeResult)
        self.results.append((result, asyncio.get_running_loop().time()))
        self.prober.changed.set()

    def results_for(self, target: str) -> list[ProbeResult]:
        return [r for r, _ in self.results if r.check.target == target]

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def wait_until(self, what: str, condition: Callable[[], bool], within: float = 3.0) -> None:
        """Wait for `condition` (about what the prober or the sink recorded) to hold."""
        changed = self.prober.changed
        try:
            async with asyncio.timeout(within):
                while not condition():
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            pytest.fail(f"timed out after {within}s waiting for {what}")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(self.scheduler.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- spread_offset and probe_deadline -------------------------------------------------------


def test_spread_offset_is_stable_and_within_the_interval() -> None:
    for target in ("core-01", "village-ap-0042", "", "ünïcode", "x" * 300):
        for interval in (0.1, 1.0, 10.0, 300.0):
            offset = spread_offset(target, interval)
            assert 0.0 <= offset < interval
            assert spread_offset(target, interval) == offset
        # The phase is a fixed fraction of the interval.
        assert spread_offset(target, 30.0) == pytest.approx(3 * spread_offset(target, 10.0))
    assert spread_offset("core-01", 10.0) != spread_offset("core-02", 10.0)


def test_spread_offset_is_the_same_in_another_process() -> None:
    """A restart keeps the spread: the offset does not depend on Python's per-process hash seed."""
    targets = [f"dev-{i}" for i in range(20)]
    code = ("import sys; from monitord.scheduler import spread_offset\n"
            "print(repr([spread_offset(t, 10.0) for t in sys.argv[1:]]))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, *targets], capture_output=True, text=True,
                             check=True, timeout=30, env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == repr([spread_offset(t, 10.0) for t in targets])


def test_spread_offsets_cover_the_interval() -> None:
    interval = 10.0
    offsets = [spread_offset(f"target-{i}", interval) for i in range(1000)]
    deciles = [int(o / interval * 10) for o in offsets]
    assert set(deciles) == set(range(10))
    # Roughly uniform: ~100 per decile (a binomial sd of ~9.5); 60 is four sd below.
    assert min(deciles.count(d) for d in range(10)) >= 60
    assert len(set(offsets)) == 1000


def test_probe_deadline_is_the_profile_deadline_plus_grace_capped_at_the_interval() -> None:
    slow = IcmpProfile(name="vsat", interval=30.0, count=3, packet_interval=1.0, timeout=2.0, size=56)
    check = Check(target="v", kind="icmp", address=ipaddress.ip_address("192.0.2.1"), province="p",
                  kabupaten="k", site="s", role="r", profile=slow)
    assert probe_deadline(check) == 2 * 1.0 + 2.0 + DEADLINE_GRACE
    assert probe_deadline(make_check("f", 0.2)) == 0.2


# --- timing ---------------------------------------------------------------------------------


def one_check(prober: SleepProber, interval: float, duration: float) -> tuple[Harness, str, float]:
    """A harness with one check due soon whose probes take `duration`; and its first due time."""
    target = early_targets(1, interval, within=0.5)[0]
    prober.durations[target] = duration
    h = Harness(prober)
    t0 = asyncio.get_running_loop().time()
    h.scheduler.set_checks([make_check(target, interval)])
    return h, target, t0 + spread_offset(target, interval)


async def test_runs_keep_a_fixed_phase_without_drift(prober: SleepProber) -> None:
    # Each probe takes half the interval: scheduling from the end of the previous run would
    # start run k at least k * 50 ms late.
    interval, runs = 0.1, 11
    h, target, phase = one_check(prober, interval, duration=0.05)
    async with h.running():
        await h.wait_until(f"{runs} runs", lambda: len(prober.starts) >= runs)
    starts = prober.start_times(target)[:runs]
    first = starts[0]
    for k, start in enumerate(starts):
        assert abs(start - (first + k * interval)) < TOLERANCE, (k, start - first)
        scheduled = phase + k * interval
        assert start >= scheduled - 0.001, f"run {k} started {scheduled - start:.4f}s early"
        assert start - scheduled < TOLERANCE, f"run {k} started {start - scheduled:.4f}s late"
    assert len(h.results_for(target)) >= runs - 1
    assert h.sample("monitord_probes_skipped_total", kind=KIND, reason="overlap") == 0
    assert h.sample("monitord_probes_skipped_total", kind=KIND, reason="behind") == 0


def block_the_loop(seconds: float) -> None:
    """Stall the event loop on purpose, as a long synchronous job in the daemon would."""
    time.sleep(seconds)


async def test_a_stalled_loop_skips_missed_runs_and_keeps_the_phase(prober: SleepProber) -> None:
    interval = 0.05
    h, target, phase = one_check(prober, interval, duration=0.005)
    loop = asyncio.get_running_loop()
    async with h.running():
        await h.wait_until("a first run", lambda: len(prober.starts) >= 1)
        await asyncio.sleep(0.01)
        block_the_loop(0.22)  # 4-5 due times pass unserved
        resumed = loop.time()
        await h.wait_until("4 more runs", lambda: len(prober.starts) >= 5)
    starts = prober.start_times(target)
    # One late run when the loop resumes; the missed ones are counted, not caught up on...
    assert len([t for t in starts if resumed <= t < resumed + 0.005]) == 1
    assert h.sample("monitord_probes_skipped_total", kind=KIND, reason="behind") >= 3
    assert h.sample("monitord_probes_skipped_total", kind=KIND, reason="overlap") == 0
    # ...then back on the original grid.
    for start in starts[2:]:
        k = round((start - phase) / interval)
        assert -0.001 <= start - (phase + k * interval) < TOLERANCE, start - phase


async def test_lag_says_how_late_the_earliest_due_check_is(prober: SleepProber) -> None:
    """What the daemon's systemd watchdog looks at: small while the schedule advances."""
    h, _, _ = one_check(prober, interval=0.1, duration=0.0)
    assert h.scheduler.lag() == math.inf  # not running
    async with h.running():
        await h.wait_until("a first run", lambda: len(prober.starts) >= 1)
        assert h.scheduler.lag() < TOLERANCE
        block_the_loop(0.3)
        assert h.scheduler.lag() >= 0.15  # due times passed while the loop was held
        await asyncio.sleep(0.05)
        assert h.scheduler.lag() < TOLERANCE  # caught up (the missed runs are skipped)
    assert h.scheduler.lag() == math.inf


async def test_probe_past_its_deadline_is_cut_off_and_reported(prober: SleepProber) -> None:
    interval = 0.2
    target = early_targets(1, interval)[0]
    check = make_check(target, interval)
    deadline = probe_deadline(check)
    prober.durations[target] = 10.0
    h = Harness(prober)
    h.scheduler.set_checks([check])
    async with h.running():
        await h.wait_until("a result", lambda: len(h.results) >= 1)
    result, arrived = h.results[0]
    start = prober.start_times(target)[0]
    # The deadline counts from the scheduled time; a start is at most one tick after it. The
    # upper bound only shows the probe was cut off (it would sleep 10 s): a loaded machine can
    # deliver the result late, and this is not a timing test.
    assert deadline - DEADLINE_MARGIN - TEST_TICK - 0.001 <= arrived - start < 5.0
    assert result.check == check
    assert result.deadline_exceeded
    assert result.error is not None
    assert "deadline" in result.error
    assert f"{deadline:g}s" in result.error
    assert deadline - DEADLINE_MARGIN - TEST_TICK - 0.001 <= result.duration < deadline + TOLERANCE
    assert (result.sent, result.received, result.success) == (0, 0, False)
    assert prober.cancelled[0] == target
    assert h.sample("monitord_probes_total", kind=KIND, outcome="deadline_exceeded") == len(h.results)
    assert h.sample("monitord_probes_total", kind=KIND, outcome="success") == 0
    assert h.sample("monitord_probes_total", kind=KIND, outcome="failure") == 0
    assert h.sample("monitord_probes_in_flight", kind=KIND) == 0


# Regression: the deadline used to start when the probe did, so a hung check was probed
# only every other interval (the cut-off run still held the slot when the next came due).
async def test_probe_cut_off_at_its_deadline_does_not_cost_the_next_run(prober: SleepProber) -> None:
    interval, runs = 0.1, 10
    target = early_targets(1, interval)[0]
    prober.durations[target] = 10.0  # hangs: every run ends at the deadline
    h = Harness(prober)
    h.scheduler.set_checks([make_check(target, interval)])
    async with h.running():
        await h.wait_until("a first run", lambda: len(prober.starts) >= 1)
        await asyncio.sleep(runs * interval - interval / 2)
    # Every scheduled time in the window should have had a run (the buggy scheduler has ~5).
    assert len(prober.start_times(target)) >= runs
    assert h.sample("monitord_probes_skipped_total", kind=KIND, reason="overlap") == 0


async def test_concurrency_is_bounded_and_waiting_shows_as_lateness(prober: SleepProber) -> None:
    interval, limit, n, duration = 0.3, 3, 10, 0.05
    targets = early_targets(n, interval, prefix="burst")  # all due within 3 ms of each other
    prober.default = duration
    h = Harness(prober, max_concurrent=limit)
    h.scheduler.set_checks([make_check(t, interval) for t in targets])
    async with h.running():
        await h.wait_until(f"{limit} probes running", lambda: prober.running == limit)
        assert h.sample("monitord_probes_in_flight", kind=KIND) == limit
        await h.wait_until(f"{n} results", lambda: len(h.results) >= n)
        assert h.sample("monitord_probes_in_flight", kind=KIND) == 0
    assert prober.max_running == limit
    assert {r.check.target for r, _ in h.results[:n]} == set(targets)
    # Four waves of 3, 3, 3 and 1 probes: start i waits for i // 3 probes before it to end.
    offsets = sorted(t - prober.starts[0][1] for _, t in prober.starts[:n])
    for i, offset in enumerate(offsets):
        assert offset >= (i // limit) * duration - 0.001, (i, offsets)
    assert offsets[limit - 1] < duration  # three free slots: no waiting
    assert offsets[-1] < 3 * duration + 0.1

    lateness = "monitord_scheduler_lateness_seconds"
    assert h.sample(f"{lateness}_count", kind=KIND) == n
    # Only the first wave started on time; the others waited 50, 100 and 150 ms for a slot
    # (less the up to 3 ms their due times differ by), or longer on a loaded machine.
    assert h.sample(f"{lateness}_bucket", kind=KIND, le="0.025") == limit
    assert h.sample(f"{lateness}_bucket", kind=KIND, le="0.5") == n
    waited = 3 * duration + 3 * 2 * duration + 1 * 3 * duration
    assert waited - 0.03 <= h.sample(f"{lateness}_sum", kind=KIND) < waited + 0.3
    assert h.sample("monitord_probes_total", kind=KIND, outcome="success") == len(h.results)
    assert h.sample("monitord_probe_duration_seconds_count", kind=KIND) == len(h.results)
    assert h.sample("monitord_probes_in_flight", kind=KIND) == 0


async def test_stopping_the_scheduler_cancels_probes_in_flight(prober: SleepProber) -> None:
    interval = 0.3
    targets = early_targets(4, interval, prefix="stop")
    prober.default = 0.25
    h = Harness(prober)
    h.scheduler.set_checks([make_check(t, interval) for t in targets])
    async with h.running():
        await h.wait_until("4 probes running", lambda: prober.running == 4)
        assert h.sample("monitord_probes_in_flight", kind=KIND) == 4
    assert sorted(prober.cancelled) == sorted(targets)
    assert h.results == []
    assert h.sample("monitord_probes_in_flight", kind=KIND) == 0


async def test_a_prober_exception_is_an_error_result_and_the_schedule_goes_on(
        prober: SleepProber, caplog: pytest.LogCaptureFixture) -> None:
    interval = 0.1
    bad, good = early_targets(2, interval, prefix="exc", within=0.2)
    prober.raises.add(bad)
    prober.durations[good] = 0.01
    h = Harness(prober)
    h.scheduler.set_checks([make_check(bad, interval), make_check(good, interval)])
    with caplog.at_level(logging.ERROR, logger="monitord.scheduler"):
        async with h.running():
            await h.wait_until("3 results each",
                             lambda: len(h.results_for(bad)) >= 3 and len(h.results_for(good)) >= 3)
    for r in h.results_for(bad):
        assert r.error is not None
        assert r.error.startswith("internal error")
        assert f"prober bug on {bad}" in r.error
        assert (r.sent, r.received, r.success, r.deadline_exceeded) == (0, 0, False, False)
    assert all(r.success for r in h.results_for(good))
    assert h.sample("monitord_probes_total", kind=KIND, outcome="failure") == len(h.results_for(bad))
    assert h.sample("monitord_probes_total", kind=KIND, outcome="success") == len(h.results_for(good))
    failures = [rec for rec in caplog.records if bad in rec.getMessage()]
    assert failures
    assert failures[0].exc_info is not None
    assert h.sample("monitord_probes_in_flight", kind=KIND) == 0


# --- set_checks -----------------------------------------------------------------------------


async def test_removed_check_is_cancelled_and_its_result_dropped(prober: SleepProber) -> None:
    interval = 0.3
    gone, stay = early_targets(2, interval, prefix="rm")
    prober.durations[gone] = 0.2
    prober.durations[stay] = 0.01
    h = Harness(prober)
    h.scheduler.set_checks([make_check(gone, interval), make_check(stay, interval)])
    assert h.sample("monitord_targets", kind=KIND) == 2
    assert h.sample("monitord_targets", kind="icmp") == 0
    async with h.running():
        await h.wait_until(f"{gone} running", lambda: prober.start_times(gone) != [])
        await asyncio.sleep(0.02)
        h.scheduler.set_checks([make_check(stay, interval)])
        assert h.sample("monitord_targets", kind=KIND) == 1
        await h.wait_until(f"{gone} cancelled", lambda: gone in prober.cancelled, within=0.1)
        # Long enough for the cancelled probe to have ended and the next round to have run.
        await h.wait_until(f"{stay} run twice", lambda: len(h.results_for(stay)) >= 2)
    assert h.results_for(gone) == []
    assert len(prober.start_times(gone)) == 1
    assert [c.target for c in h.scheduler.checks] == [stay]
    assert h.sample("monitord_probes_in_flight", kind=KIND) == 0
    assert h.sample("monitord_probes_total", kind=KIND, outcome="success") == len(h.results)


async def test_removed_check_result_is_dropped_even_if_its_prober_ignores_cancel(
        prober: SleepProber) -> None:
    interval = 0.3
    gone, stay = early_targets(2, interval, prefix="deaf")
    prober.durations[gone] = 0.2
    prober.ignores_cancel.add(gone)
    h = Harness(prober)
    h.scheduler.set_checks([make_check(gone, interval), make_check(stay, interval)])
    async with h.running():
        await h.wait_until(f"{gone} running", lambda: prober.start_times(gone) != [])
        h.scheduler.set_checks([make_check(stay, interval)])
        await h.wait_until(f"{gone} cancelled", lambda: gone in prober.cancelled, within=0.1)
        await h.wait_until(f"{gone} no longer in flight", lambda: prober.running == 0, within=0.1)
        await asyncio.sleep(0.01)
    assert h.results_for(gone) == []
    assert h.sample("monitord_probes_in_flight", kind=KIND) == 0


async def test_a_kind_registered_after_the_scheduler_was_built(
        prober: SleepProber, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(prober)
    late = "late-sleep"
    monkeypatch.setitem(PROBERS, late, prober)
    interval = 0.1
    target = early_targets(1, interval, prefix="late")[0]
    check = Check(target=target, kind=late, address=ipaddress.ip_address("192.0.2.1"), province="p",
                  kabupaten="k", site="s", role="r", profile=profile(interval))
    h.scheduler.set_checks([check])
    assert h.sample("monitord_targets", kind=late) == 1
    async with h.running():
        await h.wait_until("2 results", lambda: len(h.results) >= 2)
    assert h.sample("monitord_probes_total", kind=late, outcome="success") == len(h.results)
    assert h.sample("monitord_scheduler_lateness_seconds_count", kind=late) >= 2
    assert h.sample("monitord_probes_in_flight", kind=late) == 0


async def test_unchanged_check_keeps_its_phase_and_running_probe(prober: SleepProber) -> None:
    interval = 0.1
    target, added = early_targets(2, interval, prefix="keep")
    prober.durations[target] = 0.06
    h = Harness(prober)
    loop = asyncio.get_running_loop()
    h.scheduler.set_checks([make_check(target, interval)])
    async with h.running():
        await h.wait_until("2 runs", lambda: len(prober.start_times(target)) >= 2)
        await asyncio.sleep(0.03)  # mid-probe and half-way between two due times
        due = h.scheduler._entries[(KIND, target)].due
        reload_at = loop.time()
        # A reload builds new but equal Check objects; it also adds a check.
        h.scheduler.set_checks([make_check(target, interval), make_check(added, interval)])
        assert h.scheduler._entries[(KIND, target)].due == due
        assert h.sample("monitord_targets", kind=KIND) == 2
        await h.wait_until("5 runs", lambda: len(prober.start_times(target)) >= 5)
        # The run in flight during the reload went on and was reported, like runs 0, 2 and 3.
        assert target not in prober.cancelled
        assert len(h.results_for(target)) >= 4
        assert any(t > reload_at for r, t in h.results if r.check.target == target)
    starts = prober.start_times(target)
    for k, start in enumerate(starts[:5]):
        assert abs(start - (starts[0] + k * interval)) < TOLERANCE, (k, start - starts[0])
    assert prober.start_times(added) != []


async def test_changed_check_is_rescheduled_and_its_old_probe_dropped(prober: SleepProber) -> None:
    old_interval, new_interval = 0.1, 0.25
    # A phase of 20-60% of the interval: a new check's first run is 50-150 ms after the reload.
    target = next(t for t in (f"chg-{i}" for i in itertools.count()) if 0.2 < spread_offset(t, 1.0) < 0.6)
    prober.durations[target] = 0.06
    old, new = make_check(target, old_interval), make_check(target, new_interval, name="slow")
    h = Harness(prober)
    loop = asyncio.get_running_loop()
    h.scheduler.set_checks([old])
    async with h.running():
        await h.wait_until("2 runs", lambda: len(prober.start_times(target)) >= 2)
        await asyncio.sleep(0.03)  # the second run is in flight
        reload_at = loop.time()
        h.scheduler.set_checks([new])
        assert h.sample("monitord_targets", kind=KIND) == 1
        await h.wait_until("2 runs of the new check", lambda: len(prober.start_times(target)) >= 4)
        # Stop between runs, so that the only probe ever cancelled is the old check's.
        await h.wait_until("2 results of the new check", lambda: sum(
            r.check == new for r, _ in h.results) >= 2)
    assert prober.cancelled == [target]
    assert h.scheduler.checks == [new]
    # Results of the old check stop at the reload: the cancelled run never arrives.
    assert all(t <= reload_at for r, t in h.results if r.check == old)
    assert len([r for r, _ in h.results if r.check == old]) == 1
    # The new check runs on its own phase and interval, counted from the reload.
    new_starts = [t for t in prober.start_times(target) if t > reload_at]
    phase = reload_at + spread_offset(target, new_interval)
    for k, start in enumerate(new_starts[:2]):
        assert phase + k * new_interval - 0.001 <= start < phase + k * new_interval + TOLERANCE, k


async def test_probes_start_on_the_tick_grid(prober: SleepProber) -> None:
    tick, interval = 0.04, 0.2  # not the default (0.05): the setting must be honoured
    targets = early_targets(6, interval, prefix="grid")
    h = Harness(prober, tick=tick)
    h.scheduler.set_checks([make_check(t, interval) for t in targets])
    async with h.running():
        await h.wait_until("two rounds", lambda: len(prober.starts) >= 12)
    for _, start in prober.starts:
        offset = start % tick
        # Each start is a little after a grid point (the loop wakes after its timer), never
        # between grid points: spread phases are rounded up to the tick.
        assert min(offset, tick - offset) < 0.01, (start, offset)
