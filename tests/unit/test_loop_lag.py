"""LoopLagMonitor on the real event loop: a blocked loop shows as lag (in the histogram and the
max gauge), a stall still going on shows to a scrape, and the max forgets old windows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitord.metrics.loop_lag import LoopLagMonitor

TICK = 0.01
BLOCK = 0.3  # how long a test holds the loop


@contextlib.asynccontextmanager
async def running(monitor: LoopLagMonitor) -> AsyncIterator[LoopLagMonitor]:
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(5 * TICK)  # a few ticks on an idle loop first
    try:
        yield monitor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def samples(monitor: LoopLagMonitor) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(monitor)
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + (f"{{le={s.labels['le']}}}" if "le" in s.labels else "")
            found[key] = s.value
    return found


async def test_idle_loop_has_little_lag() -> None:
    async with running(LoopLagMonitor(tick=TICK, window=10)) as monitor:
        await asyncio.sleep(20 * TICK)
        values = samples(monitor)
    assert values["monitord_event_loop_lag_seconds_count"] >= 15
    assert values["monitord_event_loop_lag_max_seconds"] < 0.1


async def test_blocked_loop_shows_in_histogram_and_max() -> None:
    async with running(LoopLagMonitor(tick=TICK, window=10)) as monitor:
        time.sleep(BLOCK)  # noqa: ASYNC251  (holding the loop is the point)
        await asyncio.sleep(3 * TICK)
        values = samples(monitor)
    assert BLOCK - TICK <= values["monitord_event_loop_lag_max_seconds"] < BLOCK + 0.2
    # Exactly one tick overslept by about BLOCK: one observation above 0.25 s.
    above = values["monitord_event_loop_lag_seconds_count"] - values[
        "monitord_event_loop_lag_seconds_bucket{le=0.25}"]
    assert above == 1
    assert values["monitord_event_loop_lag_seconds_sum"] >= BLOCK - TICK


async def test_a_stall_going_on_is_visible_to_a_scrape() -> None:
    """/metrics is served by another thread; here the scrape runs while the loop is held."""
    async with running(LoopLagMonitor(tick=TICK, window=10)) as monitor:
        time.sleep(BLOCK)  # noqa: ASYNC251
        during = samples(monitor)  # the monitor has not woken since the block began
        count_during = during["monitord_event_loop_lag_seconds_count"]
        await asyncio.sleep(3 * TICK)
        after = samples(monitor)
    assert during["monitord_event_loop_lag_max_seconds"] >= BLOCK - TICK
    assert after["monitord_event_loop_lag_seconds_count"] > count_during


async def test_max_forgets_lag_older_than_two_windows() -> None:
    window = 0.1
    async with running(LoopLagMonitor(tick=TICK, window=window)) as monitor:
        time.sleep(BLOCK)  # noqa: ASYNC251
        await asyncio.sleep(TICK * 2)
        assert monitor.max_lag() >= BLOCK - TICK
        await asyncio.sleep(2.5 * window)
        assert monitor.max_lag() < 0.1
        # The histogram keeps every observation.
        assert samples(monitor)["monitord_event_loop_lag_seconds_sum"] >= BLOCK - TICK


async def test_stopped_monitor_reports_no_ongoing_stall() -> None:
    monitor = LoopLagMonitor(tick=TICK, window=10)
    async with running(monitor):
        pass
    time.sleep(BLOCK)  # noqa: ASYNC251  the monitor is not waiting for anything now
    assert monitor.max_lag() < 0.1
