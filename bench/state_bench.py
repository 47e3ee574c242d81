"""Benchmark of monitord's state layer: the state engine, the SQLite history, MQTT delivery.

One province, built in memory: a core router, LINKS kabupaten links behind it and VILLAGES
village access points behind each link, all on one ICMP profile (60 s interval, 5 echoes).
Results are synthetic (no packet is sent; the addresses 127.1.X.Y are labels only) and arrive
in the order the daemon's scheduler would produce them: each target at its spread_offset
phase, each result when its probe ends.

1. engine   StateEngine.observe(): CPU per result in steady state (all good), and the rounds
            in which one link and its villages stop answering (expected: 1 DOWN + VILLAGES
            UNREACHABLE), with the largest single observe() wall time.
2. history  HistoryStore.append() (WAL, synchronous=FULL) of the link-failure batch (median of
            RUNS commits) and of one-event batches (one fsync per event).
3. mqtt     a local mosquitto (tests/integration/mosquitto.py, 127.0.0.1, free port): 5,000
            stored events delivered from a History outbox by MqttPublisher (QoS 1) and counted
            by a paho subscriber in another process; then the link-failure burst timed from the
            probe result to the last event at the subscriber.

usage (from the repository root; bench/state_bench.sh runs it in a private netns):
    PYTHONPATH=. .venv/bin/python bench/state_bench.py [--broker-option LINE] [--json FILE]
(`state_bench.py subscribe ...` is the subscriber process it starts itself.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import ipaddress
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitord.model import Check, IcmpProfile, MqttSettings, ProbeResult
from monitord.mqtt.publisher import MqttPublisher
from monitord.scheduler import spread_offset
from monitord.state.engine import StateEngine
from monitord.state.history import History, HistoryStore
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)
from tests.integration.mosquitto import MOSQUITTO, Mosquitto  # needs PYTHONPATH=. (or the repo)

PROVINCE = "bench"
TOPIC_PREFIX = "bench/state"
RTTS = (0.021, 0.019, 0.024, 0.020, 0.022)  # a good probe's 5 replies, seconds
WARMUP_WINDOWS = 2  # window 0 and the stragglers of round 0 in window 1: first-probe events
FAILURE_WINDOWS = 4  # 3 failures for the hysteresis, and room for the parent's verdict after
WAIT_LIMIT = 120.0  # seconds any single wait in the MQTT part may take
START = 1.8e9  # wall-clock time the simulated rounds begin (2027-01-15)


# -- the province -------------------------------------------------------------------------------

def province_checks(links: int, villages: int, profile: IcmpProfile) -> list[Check]:
    """core <- LINKS kabupaten links <- VILLAGES villages each; parents first."""
    def check(index: int, target: str, kabupaten: str, role: str, parent: str | None) -> Check:
        address = ipaddress.IPv4Address(f"127.1.{index // 250}.{index % 250 + 1}")
        return Check(target=target, kind="icmp", address=address, province=PROVINCE,
                     kabupaten=kabupaten, site=target, role=role, profile=profile,
                     parent=parent, name=target)

    checks = [check(0, "core", "provinsi", "core-router", None)]
    for k in range(1, links + 1):
        checks.append(check(len(checks), f"kab{k:02d}-link", f"kab{k:02d}", "kabupaten-link",
                            "core"))
    for k in range(1, links + 1):
        for v in range(1, villages + 1):
            checks.append(check(len(checks), f"kab{k:02d}-desa{v:03d}", f"kab{k:02d}", "desa-ap",
                                f"kab{k:02d}-link"))
    return checks


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # when the result reaches the engine: its probe's start + duration
    window: int  # interval-long window of `at` since the first round began
    result: ProbeResult


def timeline(checks: Sequence[Check], rounds: int, fail_from: int, failing: frozenset[str],
             start: float) -> list[Arrival]:
    """Every result of `rounds` rounds in arrival order; `failing` targets answer nothing from
    round `fail_from` on (their probes then run until the profile's deadline)."""
    arrivals: list[Arrival] = []
    for check in checks:
        profile = check.profile
        assert isinstance(profile, IcmpProfile)
        phase = spread_offset(check.target, profile.interval)
        for n in range(rounds):
            started = start + n * profile.interval + phase
            if n >= fail_from and check.target in failing:
                result = ProbeResult(check, started, profile.deadline, profile.count, 0)
            else:
                duration = (profile.count - 1) * profile.packet_interval + RTTS[-1]
                result = ProbeResult(check, started, duration, profile.count, profile.count,
                                     RTTS[:profile.count])
            at = started + result.duration
            arrivals.append(Arrival(at, int((at - start) // profile.interval), result))
    arrivals.sort(key=lambda a: a.at)
    return arrivals


# -- 1. the engine ------------------------------------------------------------------------------

@dataclass
class WindowFigures:
    window: int
    results: int
    cpu_ms: float
    events: dict[str, int]  # "kind:to_state" -> count


@dataclass(frozen=True)
class Call:
    """One timed observe() of the failure windows."""

    target: str
    index: int  # position of its result in the timeline
    wall_ms: float
    events: int
    gc: str  # the garbage collections that ran during it, "" if none


@dataclass
class EngineFigures:
    targets: int
    interval: float
    steady_windows: int
    steady_results: int
    steady_cpu_us_per_result: float
    steady_events: int  # expected 0
    first_round_cpu_us_per_result: float
    first_round_events: int
    failed_link: str
    failure_windows: list[WindowFigures]
    failure_events: dict[str, int]
    failure_as_expected: bool
    burst: Call  # the call that produced the most events at once
    slowest: list[Call]  # the slowest calls, slowest first
    slowest_without_gc: Call  # of the calls that changed nothing
    gc_pauses: int  # collections during the failure windows
    gc_pause_ms: float
    note: str = "failure windows: each observe() is also timed with perf_counter_ns"


class GcWatch:
    """Counts the garbage collector's runs while installed, to tell its pauses from the
    engine's own work in the wall time of one call."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int]] = []  # (generation, pause ns)
        self._started = 0

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.runs.append((info["generation"], time.perf_counter_ns() - self._started))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)

    def since(self, count: int) -> str:
        return ", ".join(f"gen {g} {ns / 1e6:.1f} ms" for g, ns in self.runs[count:])


def describe(events: Sequence[StateEvent]) -> dict[str, int]:
    return dict(Counter(f"{e.kind.value}:{e.to_state.value}" for e in events))


def bench_engine(checks: Sequence[Check], arrivals: Sequence[Arrival], fail_from: int,
                 failed_link: str, villages: int) -> tuple[EngineFigures, list[StateEvent]]:
    """Returns the figures and the events of the link failure."""
    engine = StateEngine()
    interval = arrivals[0].result.check.profile.interval
    engine.set_checks(checks, START)
    by_window: dict[int, list[Arrival]] = {}
    for arrival in arrivals:
        by_window.setdefault(arrival.window, []).append(arrival)

    warm = [a for w in range(WARMUP_WINDOWS) for a in by_window.get(w, [])]
    cpu = time.process_time()
    first_events = sum(len(engine.observe(a.result, a.at)) for a in warm)
    first_cpu = time.process_time() - cpu

    steady = [a for w in range(WARMUP_WINDOWS, fail_from) for a in by_window[w]]
    cpu = time.process_time()
    steady_events = 0
    for a in steady:  # the measured loop: nothing in it but the call
        steady_events += len(engine.observe(a.result, a.at))
    steady_cpu = time.process_time() - cpu

    windows: list[WindowFigures] = []
    failure_events: list[StateEvent] = []
    calls: list[Call] = []
    index = len(warm) + len(steady)
    with GcWatch() as watch:
        for w in range(fail_from, fail_from + FAILURE_WINDOWS):
            window_events: list[StateEvent] = []
            cpu = time.process_time()
            for a in by_window[w]:
                collections = len(watch.runs)
                t0 = time.perf_counter_ns()
                events = engine.observe(a.result, a.at)
                wall = time.perf_counter_ns() - t0
                calls.append(Call(a.result.check.target, index, wall / 1e6, len(events),
                                  watch.since(collections)))
                window_events += events
                index += 1
            cpu_ms = (time.process_time() - cpu) * 1e3
            windows.append(WindowFigures(w - fail_from + 1, len(by_window[w]), cpu_ms,
                                         describe(window_events)))
            failure_events += window_events

    expected = {f"{EventKind.STATE.value}:{State.DOWN.value}": 1,
                f"{EventKind.STATE.value}:{State.UNREACHABLE.value}": villages}
    down = [e for e in failure_events if e.to_state is State.DOWN]
    as_expected = (describe(failure_events) == expected and down[0].target == failed_link
                   and all(e.root_cause == failed_link for e in failure_events))
    slowest = sorted(calls, key=lambda c: c.wall_ms, reverse=True)
    figures = EngineFigures(
        targets=len(checks), interval=interval, steady_windows=fail_from - WARMUP_WINDOWS,
        steady_results=len(steady), steady_cpu_us_per_result=steady_cpu / len(steady) * 1e6,
        steady_events=steady_events,
        first_round_cpu_us_per_result=first_cpu / len(warm) * 1e6,
        first_round_events=first_events, failed_link=failed_link, failure_windows=windows,
        failure_events=describe(failure_events), failure_as_expected=as_expected,
        burst=max(calls, key=lambda c: (c.events, c.wall_ms)), slowest=slowest[:5],
        slowest_without_gc=next(c for c in slowest if not c.gc and c.events == 0),
        gc_pauses=len(watch.runs),
        gc_pause_ms=sum(ns for _, ns in watch.runs) / 1e6)
    return figures, failure_events


# -- 2. the history -----------------------------------------------------------------------------

@dataclass
class HistoryFigures:
    filesystem: str
    batch_events: int
    batch_runs: int
    batch_median_ms: float
    batch_min_ms: float
    batch_max_ms: float
    single_appends: int
    single_events_per_s: float
    single_median_ms: float
    single_cpu_us_per_append: float


def with_new_ids(events: Sequence[StateEvent]) -> list[StateEvent]:
    """The same events under fresh ids: the store refuses an id twice."""
    return [dataclasses.replace(e, id=new_event_id(e.time), seq=None) for e in events]


def bench_history(directory: Path, burst: Sequence[StateEvent],
                  statuses: Sequence[TargetStatus], runs: int,
                  singles: int) -> HistoryFigures:
    store = HistoryStore(directory / "history.sqlite3")
    try:
        batch_ms: list[float] = []
        for _ in range(runs):
            events = with_new_ids(burst)
            t0 = time.perf_counter()
            store.append(events, statuses, outbox=True)
            batch_ms.append((time.perf_counter() - t0) * 1e3)
        single_ms: list[float] = []
        one = [burst[0]]
        status = [s for s in statuses if s.target == burst[0].target]
        cpu = time.process_time()
        t_all = time.perf_counter()
        for _ in range(singles):
            events = with_new_ids(one)
            t0 = time.perf_counter()
            store.append(events, status, outbox=True)
            single_ms.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - t_all
        single_cpu = time.process_time() - cpu
    finally:
        store.close()
    return HistoryFigures(
        filesystem=filesystem_of(directory), batch_events=len(burst), batch_runs=runs,
        batch_median_ms=statistics.median(batch_ms), batch_min_ms=min(batch_ms),
        batch_max_ms=max(batch_ms), single_appends=singles,
        single_events_per_s=singles / elapsed, single_median_ms=statistics.median(single_ms),
        single_cpu_us_per_append=single_cpu / singles * 1e6)


def filesystem_of(path: Path) -> str:
    """'ext4 on /dev/vda (mounted at /)': the mount that holds `path`."""
    resolved = str(path.resolve())
    best = ("", "?", "?")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, mount, fstype = line.split()[:3]
        mount = mount.replace("\\040", " ")
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[0]):
            best = (mount, fstype, device)
    return f"{best[1]} on {best[2]} (mounted at {best[0]})"


# -- 3. MQTT ------------------------------------------------------------------------------------

@dataclass
class MqttFigures:
    broker: str
    events: int
    connect_s: float  # publisher start -> connected (polled every POLL s)
    acked_s: float  # publisher start -> every event acknowledged and marked delivered
    last_arrival_s: float  # publisher start -> last event at the subscriber
    events_per_s: float  # end to end, from the publisher's start
    events_per_s_after_first: float  # first to last arrival at the subscriber
    publisher_cpu_us_per_event: float  # this process: publisher, History thread, the poll loop
    broker_cpu_us_per_event: float  # mosquitto, from /proc (10 ms ticks)
    subscriber_cpu_us_per_event: float  # the paho subscriber process
    statuses_at_connect: int
    statuses_at_connect_s: float  # second publisher: retained statuses of every target
    burst_events: int = 0
    burst_engine_ms: float = 0.0  # observe() of the result that decided the failure
    burst_engine_cpu_ms: float = 0.0
    burst_committed_ms: float = 0.0  # ... + History.append (one transaction, fsync)
    burst_first_event_ms: float = 0.0  # ... + the first of its events at the subscriber
    burst_last_event_ms: float = 0.0  # ... + the last of its events at the subscriber


POLL = 0.005  # seconds between looks at the publisher's counters


class Subscriber:
    """`state_bench.py subscribe` in a child process, so its CPU is not the publisher's. It
    prints "ready" once subscribed, then "COUNT TIME CPU" (wall clock, its own CPU seconds)
    when it has received COUNT messages, for each of the milestones."""

    def __init__(self, port: int, topic: str, milestones: Sequence[int], timeout: float) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "subscribe", "--port", str(port),
                   "--topic", topic, "--milestones", ",".join(map(str, milestones)),
                   "--timeout", str(timeout)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read, args=(loop,), daemon=True)
        self._reader.start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            loop.call_soon_threadsafe(self._lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(self._lines.put_nowait, "eof")

    async def line(self, what: str, limit: float = WAIT_LIMIT) -> str:
        try:
            line = await asyncio.wait_for(self._lines.get(), limit)
        except TimeoutError:
            raise RuntimeError(f"subscriber: no {what} within {limit:g} s") from None
        if line == "eof" or line.startswith("timeout"):
            raise RuntimeError(f"subscriber ended before {what}: {line}")
        return line

    async def milestone(self, count: int) -> tuple[float, float]:
        """(wall-clock time, the subscriber's CPU seconds so far) of the COUNT-th arrival."""
        number, at, cpu = (await self.line(f"message {count}")).split()
        if int(number) != count:
            raise RuntimeError(f"subscriber reported message {number}, expected {count}")
        return float(at), float(cpu)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:  # ours, by its PID
            self.proc.terminate()
            self.proc.wait(timeout=10)


def subscribe(port: int, topic: str, milestones: Sequence[int], timeout: float) -> int:
    """The child process: a paho subscriber (QoS 1) counting arrivals on `topic`."""
    import paho.mqtt.client as paho  # noqa: PLC0415 - only the child needs it
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    wanted = set(milestones)
    done = threading.Event()
    count = 0

    def on_connect(client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                   _properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topic, qos=1)

    def on_subscribe(*_args: Any) -> None:
        print("ready", flush=True)

    def on_message(*_args: Any) -> None:
        nonlocal count
        count += 1
        if count in wanted:
            print(f"{count} {time.time():.6f} {time.process_time():.6f}", flush=True)
            if count == max(wanted):
                done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"state-bench-{os.getpid()}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    finished = done.wait(timeout)
    if not finished:
        print(f"timeout after {timeout:g} s with {count} messages", flush=True)
    client.disconnect()
    client.loop_stop()
    return 0 if finished else 1


def process_cpu_s(pid: int) -> float:
    """utime + stime of another process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_events(checks: Sequence[Check], count: int, start: float) -> list[StateEvent]:
    """`count` village DOWN/UP events, as a long outage of many villages would leave them."""
    villages = [c for c in checks if c.role == "desa-ap"]
    events: list[StateEvent] = []
    for n in range(count):
        check = villages[n % len(villages)]
        down = (n // len(villages)) % 2 == 0
        events.append(StateEvent(
            id=new_event_id(start + n), time=start + n, kind=EventKind.STATE,
            placement=Placement.of(check),
            from_state=State.UP if down else State.DOWN,
            to_state=State.DOWN if down else State.UP,
            reason="3 of the last 5 probes failed" if down else "2 good probes in a row",
            reason_code=ReasonCode.PROBES_FAILED if down else ReasonCode.PROBES_GOOD,
            root_cause=check.target if down else None, flapping=False))
    return events


async def wait_until(what: str, condition: Callable[[], bool],
                     on_poll: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {WAIT_LIMIT:g} s waiting for {what}")
        if on_poll is not None:
            on_poll()
        await asyncio.sleep(POLL)


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)


@dataclass(frozen=True)
class Backlog:
    connect_s: float
    acked_s: float
    first_arrival_s: float
    last_arrival_s: float
    publisher_cpu_s: float
    broker_cpu_s: float
    subscriber_cpu_s: float  # from its first arrival to its last


async def deliver_backlog(settings: MqttSettings, history: History, subscriber: Subscriber,
                          broker_pid: int, count: int) -> Backlog:
    """The `count` stored events, with no target status to publish besides."""
    publisher = MqttPublisher(settings, history, dict)
    connected: list[float] = []

    def note_connect() -> None:
        if publisher.connected and not connected:
            connected.append(time.time())

    broker_cpu = process_cpu_s(broker_pid)
    cpu, t0 = time.process_time(), time.time()
    task = asyncio.create_task(publisher.run())
    await wait_until(f"{count} events acknowledged",
                     lambda: publisher.stats.published["event"] >= count
                     and publisher.stats.outbox_pending == 0, note_connect)
    t_acked = time.time()
    publisher_cpu = time.process_time() - cpu
    broker_cpu = process_cpu_s(broker_pid) - broker_cpu
    first, first_cpu = await subscriber.milestone(1)
    last, last_cpu = await subscriber.milestone(count)
    await stop_task(task)
    if await history.pending_count() != 0:
        raise RuntimeError("events left in the outbox")
    return Backlog(connect_s=(connected[0] - t0) if connected else -1.0, acked_s=t_acked - t0,
                   first_arrival_s=first - t0, last_arrival_s=last - t0,
                   publisher_cpu_s=publisher_cpu, broker_cpu_s=broker_cpu,
                   subscriber_cpu_s=last_cpu - first_cpu)


@dataclass(frozen=True)
class Burst:
    statuses: int
    statuses_s: float
    events: int
    engine_ms: float
    engine_cpu_ms: float
    committed_ms: float
    first_event_ms: float
    last_event_ms: float


async def deliver_burst(settings: MqttSettings, history: History, subscriber: Subscriber,
                        checks: Sequence[Check], arrivals: Sequence[Arrival], burst_index: int,
                        delivered_before: int) -> Burst:
    """What the state tracker does with the result that decides the link failure: engine,
    one History transaction, the publisher woken; timed until its last event is delivered."""
    engine = StateEngine()
    engine.set_checks(checks, START)
    for a in arrivals[:burst_index]:
        engine.observe(a.result, a.at)
    engine.take_changed()
    publisher = MqttPublisher(settings, history, engine.statuses)
    t_statuses = time.time()
    task = asyncio.create_task(publisher.run())
    try:
        # On connecting, the publisher sends every target's retained status.
        await wait_until("the retained statuses",
                         lambda: publisher.stats.published["status"] >= len(checks))
        statuses_s = time.time() - t_statuses
        await asyncio.sleep(0.5)  # let the publisher go idle
        burst = arrivals[burst_index]
        t_result, cpu = time.time(), time.process_time()
        events = engine.observe(burst.result, burst.at)
        t_engine, engine_cpu = time.time(), time.process_time() - cpu
        publisher.notify_status(engine.take_changed())
        latest = {e.target: engine.status(e.target) for e in events}
        await history.append(events, [s for s in latest.values() if s is not None], outbox=True)
        t_committed = time.time()
        publisher.notify_events()
        first, _ = await subscriber.milestone(delivered_before + 1)
        last, _ = await subscriber.milestone(delivered_before + len(events))
    finally:
        await stop_task(task)
    return Burst(statuses=len(checks), statuses_s=statuses_s, events=len(events),
                 engine_ms=(t_engine - t_result) * 1e3, engine_cpu_ms=engine_cpu * 1e3,
                 committed_ms=(t_committed - t_result) * 1e3,
                 first_event_ms=(first - t_result) * 1e3, last_event_ms=(last - t_result) * 1e3)


class BenchBroker(Mosquitto):
    """The test harness's mosquitto, with extra lines in its config (e.g. set_tcp_nodelay)."""

    def __init__(self, workdir: Path, options: Sequence[str]) -> None:
        super().__init__(workdir)
        self.options = tuple(options)

    def _config_text(self) -> str:
        return super()._config_text() + "".join(f"{line}\n" for line in self.options)


async def bench_mqtt(directory: Path, checks: Sequence[Check], arrivals: Sequence[Arrival],
                     burst_index: int, burst_events: int, count: int,
                     broker_options: Sequence[str]) -> MqttFigures:
    main = asyncio.current_task()
    assert main is not None
    # SIGTERM (the shell wrapper's time limit) cancels this task, so the finally below stops
    # the broker and the subscriber.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    broker = await asyncio.to_thread(BenchBroker(directory / "mosquitto", broker_options).start)
    assert broker.proc is not None
    subscriber: Subscriber | None = None
    history = await History.open(directory / "mqtt" / "history.sqlite3")
    try:
        backlog = stored_events(checks, count, START)
        for start in range(0, count, 100):  # stored before the clock starts
            await history.append(backlog[start:start + 100], [], outbox=True)
        subscriber = Subscriber(broker.port, f"{TOPIC_PREFIX}/events",
                                [1, count, count + 1, count + burst_events], WAIT_LIMIT * 2)
        await subscriber.line("ready", limit=30)

        def settings(client_id: str) -> MqttSettings:
            return MqttSettings(host="127.0.0.1", port=broker.port, client_id=client_id,
                                topic_prefix=TOPIC_PREFIX)

        bulk = await deliver_backlog(settings("bench-backlog"), history, subscriber,
                                     broker.proc.pid, count)
        burst = await deliver_burst(settings("bench-burst"), history, subscriber, checks,
                                    arrivals, burst_index, count)
    finally:
        if subscriber is not None:
            subscriber.stop()
        await history.close()
        await asyncio.to_thread(broker.stop)
    return MqttFigures(
        broker="", events=count, connect_s=bulk.connect_s, acked_s=bulk.acked_s,
        last_arrival_s=bulk.last_arrival_s, events_per_s=count / bulk.last_arrival_s,
        events_per_s_after_first=(count - 1) / (bulk.last_arrival_s - bulk.first_arrival_s),
        publisher_cpu_us_per_event=bulk.publisher_cpu_s / count * 1e6,
        broker_cpu_us_per_event=bulk.broker_cpu_s / count * 1e6,
        subscriber_cpu_us_per_event=bulk.subscriber_cpu_s / (count - 1) * 1e6,
        statuses_at_connect=burst.statuses, statuses_at_connect_s=burst.statuses_s,
        burst_events=burst.events, burst_engine_ms=burst.engine_ms,
        burst_engine_cpu_ms=burst.engine_cpu_ms,
        burst_committed_ms=burst.committed_ms, burst_first_event_ms=burst.first_event_ms,
        burst_last_event_ms=burst.last_event_ms)


def broker_version() -> str:
    """mosquitto's first line of -h: 'mosquitto version 2.0.11'."""
    out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, check=False,
                         timeout=10).stdout
    return out.splitlines()[0] if out else "mosquitto (version unknown)"


# -- report -------------------------------------------------------------------------------------

def gc_note(call: Call) -> str:
    return f", during GC: {call.gc}" if call.gc else ""


def render(engine: EngineFigures, history: HistoryFigures, mqtt: MqttFigures | None,
           context: Mapping[str, str]) -> str:
    rate = engine.targets / engine.interval
    share = engine.steady_cpu_us_per_result * rate / 1e6
    events = ", ".join(f"{v} {k}" for k, v in sorted(engine.failure_events.items()))
    rows = [
        ("engine: CPU per observe(), steady state",
         f"{engine.steady_cpu_us_per_result:.1f} µs ({engine.steady_results:,} results, "
         f"{engine.steady_events} events)"),
        (f"engine: share of one core at {rate:.1f} results/s",
         f"{share:.2%}"),
        ("engine: CPU per observe(), first round (UNKNOWN -> UP)",
         f"{engine.first_round_cpu_us_per_result:.1f} µs ({engine.first_round_events:,} events)"),
        (f"engine: link {engine.failed_link} fails, {FAILURE_WINDOWS} windows",
         f"{events} ({'as expected' if engine.failure_as_expected else 'NOT AS EXPECTED'})"),
        (f"engine: the call that decided it ({engine.burst.target}'s result, "
         f"{engine.burst.events} events), wall",
         f"{engine.burst.wall_ms:.2f} ms{gc_note(engine.burst)}"),
        ("engine: slowest observe() calls in those windows, wall",
         "; ".join(f"{c.wall_ms:.2f} ms ({c.target}, {c.events} events{gc_note(c)})"
                   for c in engine.slowest[:3])
         + f"; slowest call without events or GC run: "
           f"{engine.slowest_without_gc.wall_ms:.2f} ms ({engine.slowest_without_gc.target}); "
           f"{engine.gc_pauses} GC runs took "
           f"{engine.gc_pause_ms:.1f} ms in all"),
        (f"history: commit {history.batch_events} events + statuses (median of "
         f"{history.batch_runs})",
         f"{history.batch_median_ms:.2f} ms (min {history.batch_min_ms:.2f}, "
         f"max {history.batch_max_ms:.2f})"),
        (f"history: 1-event batches, {history.single_appends} in a row",
         f"{history.single_events_per_s:,.0f} events/s (median {history.single_median_ms:.2f} ms,"
         f" CPU {history.single_cpu_us_per_append:.0f} µs per commit)"),
    ]
    if mqtt is not None:
        rows += [
            (f"mqtt: {mqtt.events:,} stored events to the subscriber (QoS 1)",
             f"{mqtt.last_arrival_s:.2f} s = {mqtt.events_per_s:,.0f} events/s from publisher "
             f"start (connect {mqtt.connect_s * 1e3:.0f} ms; {mqtt.events_per_s_after_first:,.0f}"
             f"/s first to last arrival; all PUBACKed + marked delivered at "
             f"{mqtt.acked_s:.2f} s)"),
            ("mqtt: CPU per event",
             f"publisher process {mqtt.publisher_cpu_us_per_event:.0f} µs, mosquitto "
             f"{mqtt.broker_cpu_us_per_event:.0f} µs, paho subscriber "
             f"{mqtt.subscriber_cpu_us_per_event:.0f} µs"),
            (f"mqtt: {mqtt.statuses_at_connect:,} retained statuses at connect",
             f"{mqtt.statuses_at_connect_s:.2f} s"),
            (f"burst: {engine.burst.target}'s result -> {mqtt.burst_events} events at the "
             f"subscriber",
             f"engine {mqtt.burst_engine_ms:.1f} ms (CPU {mqtt.burst_engine_cpu_ms:.1f} ms), "
             f"committed {mqtt.burst_committed_ms:.1f} ms, "
             f"first event {mqtt.burst_first_event_ms:.1f} ms, last "
             f"{mqtt.burst_last_event_ms:.1f} ms"),
        ]
    lines = [f"## monitord state layer: {context['title']}", "",
             *(f"* {k}: {v}" for k, v in context.items() if k != "title"), "",
             "| measurement | result |", "|---|---|",
             *(f"| {name} | {value} |" for name, value in rows), "",
             "| failure window | results | CPU ms | events |", "|---:|---:|---:|---|",
             *(f"| {w.window} | {w.results:,} | {w.cpu_ms:.1f} | "
               f"{', '.join(f'{v} {k}' for k, v in sorted(w.events.items())) or '-'} |"
               for w in engine.failure_windows)]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    load_at_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    profile = IcmpProfile(name="desa", interval=args.interval, count=5, packet_interval=1.0,
                          timeout=2.0, size=56)
    checks = province_checks(args.links, args.villages, profile)
    failed_link = "kab01-link"
    failing = frozenset(c.target for c in checks
                        if failed_link in (c.target, c.parent))
    fail_from = WARMUP_WINDOWS + args.rounds
    # One more round than the windows measured, so the last window is complete.
    arrivals = timeline(checks, fail_from + FAILURE_WINDOWS + 1, fail_from, failing, START)
    log(f"engine: {len(checks):,} targets, {len(arrivals):,} results")
    engine_figures, failure_events = bench_engine(checks, arrivals, fail_from, failed_link,
                                                  args.villages)

    # The failure's statuses as the tracker stores them: each target's, after its event.
    engine = StateEngine()
    engine.set_checks(checks, START)
    for a in arrivals[:engine_figures.burst.index + 1]:
        engine.observe(a.result, a.at)
    statuses = [s for e in failure_events if (s := engine.status(e.target)) is not None]

    work = Path(tempfile.mkdtemp(prefix="state_bench.", dir=args.dir))
    try:
        log(f"history: in {work} ({filesystem_of(work)})")
        history_figures = bench_history(work, failure_events, statuses, args.history_runs,
                                        args.single_appends)
        mqtt_figures = None
        if args.mqtt_events > 0:
            log(f"mqtt: {args.mqtt_events:,} events")
            try:
                mqtt_figures = asyncio.run(bench_mqtt(
                    work, checks, arrivals, engine_figures.burst.index,
                    engine_figures.burst.events, args.mqtt_events, args.broker_option))
            except asyncio.CancelledError:  # by SIGTERM; the broker is stopped
                log("terminated")
                return 143
            mqtt_figures.broker = broker_version()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    context = {
        "title": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} CPUs, kernel {platform.release()}, "
                   f"Python {platform.python_version()}",
        "load average": f"{load_at_start} at start, "
                        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} at end",
        "monitord code": args.code,
        "province": f"1 core, {args.links} links, {args.links * args.villages:,} villages; "
                    f"interval {args.interval:g} s, 5 echoes, StateParams defaults",
        "history directory": history_figures.filesystem,
    }
    if mqtt_figures is not None:
        options = "; ".join(args.broker_option) or "none"
        context["broker"] = (f"{mqtt_figures.broker} on 127.0.0.1, the test harness's config; "
                             f"extra options: {options}")
    text = render(engine_figures, history_figures, mqtt_figures, context)
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "context": context, "engine": dataclasses.asdict(engine_figures),
            "history": dataclasses.asdict(history_figures),
            "mqtt": dataclasses.asdict(mqtt_figures) if mqtt_figures else None}, indent=2) + "\n")
    return 0 if engine_figures.failure_as_expected else 1


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["subscribe"]:  # the child process the MQTT part starts
        child = argparse.ArgumentParser(prog="state_bench.py subscribe")
        child.add_argument("--port", type=int, required=True)
        child.add_argument("--topic", required=True)
        child.add_argument("--milestones", required=True)
        child.add_argument("--timeout", type=float, required=True)
        sub = child.parse_args(argv[1:])
        return subscribe(sub.port, sub.topic, [int(m) for m in sub.milestones.split(",")],
                         sub.timeout)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=50)
    parser.add_argument("--villages", type=int, default=100, help="villages per link")
    parser.add_argument("--interval", type=float, default=60.0, help="probe interval, seconds")
    parser.add_argument("--rounds", type=int, default=10, help="steady-state rounds measured")
    parser.add_argument("--history-runs", type=int, default=20)
    parser.add_argument("--single-appends", type=int, default=500)
    parser.add_argument("--mqtt-events", type=int, default=5000, help="0: skip the MQTT part")
    parser.add_argument("--broker-option", action="append", default=[], metavar="LINE",
                        help="a mosquitto.conf line to add, e.g. 'set_tcp_nodelay true'")
    parser.add_argument("--dir", default="/var/tmp", help="where the temporary databases go")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--md", help="also write the table here")
    parser.add_argument("--code", default="the working tree", help="which code, for the report")
    args = parser.parse_args(argv)
    if any("\n" in line for line in args.broker_option):
        parser.error("a --broker-option is one line")
    if not (1 <= args.links <= 200 and 1 <= args.villages <= 500 and 1 <= args.rounds <= 100
            and 10 <= args.interval <= 3600 and 1 <= args.history_runs <= 1000
            and 1 <= args.single_appends <= 10_000
            and (args.mqtt_events == 0 or 100 <= args.mqtt_events <= 100_000)):
        parser.error("out of bounds (links 1-200, villages 1-500, rounds 1-100, interval "
                     "10-3600, history runs 1-1000, single appends 1-10000, mqtt events 0 or "
                     "100-100000)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, terminate)  # so that `finally` blocks run (temp files)
    return run(args)


def terminate(_signal: int, _frame: object) -> None:
    raise SystemExit(143)


if __name__ == "__main__":
    sys.exit(main())
