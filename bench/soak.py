"""The soak (issue 9): the province lab at ~2,000 targets for --minutes with faults cycling;
monitord's RSS, open fds and CPU sampled every 30 s; at the end, what must hold is checked:
every probe and poll done (none skipped), every stored state event delivered over MQTT, the
kabupaten no fault touches quiet, every target up again once the faults are undone.

    sudo bench/soak.sh --minutes 10
    # = unshare --net --mount .venv/bin/python bench/soak.py --minutes 10

Default layout: 10 kabupaten x (190 radio + 10 VSAT villages), the core router and 5
data-center devices: 2,016 targets, ICMP every 10 s (3 echoes); SNMP every 30 s on the core,
the data center, the 10 kabupaten routers and the first 3 villages of each kabupaten (46
devices: snmpsim spends ~0.24 ms of CPU per varbind and could not serve 2,000).

Faults (monitord.lab.faults) hit every kabupaten but the last, the control:
  * two link tracks, one fault at a time each, on kabupaten of their own, round and round:
    a cut link (40 s), 30 % loss of the echo requests to and through the link router (40 s),
    a flapping link (15 s down, 15 s up, twice), the VSAT echoes delayed past the 1.5 s
    timeout (40 s), a reboot of the link router's SNMP agent (stopped for 40 s, then
    started: the lab's snmpsim recordings have a fixed sysUpTime, so SNMP sees the downtime,
    not a sysUpTime reset);
  * the whole province: the broker stopped for 40 s (at 15 % and 70 % of the run), a bad
    config reload by SIGHUP and HTTP then a good one (30 %), monitord SIGKILLed and restarted
    on its state (50 %).
No fault starts if it would end later than 60 s before the end: everything comes back up.

The lab's broker runs with persistence (ProvinceLab broker_persistence), so the soak's
subscriber misses nothing across a broker outage.

Figures per monitord process, from its first full probe round to its end (the SIGKILLed one
ends at the kill): RSS, fds, threads, CPU, probes and polls done against the schedule,
scheduler lateness p50/p99, event-loop lag. Printed, and written as JSON (--json, default
bench/results/soak_<timestamp>.json). Exit status 0: every check passed; 1: one failed;
2: the soak could not run (not root, not in a private network namespace, lab setup failed).

Network safety: it refuses to run unless its network namespace has no interface but `lo`
(a fresh `unshare --net`); the lab's namespaces hang off that one. Every wait is bounded,
the whole run is under an alarm (--minutes + 20 min), and only processes the lab started are
signalled, by their PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
from exposition import samples as read_samples
from icmp_summary import histogram_quantile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the lab's `tests` helpers: "nothing lost" as the fault tests check it

from monitord.lab.errors import LabSetupError  # noqa: E402
from monitord.lab.faults import (  # noqa: E402
    BAD_CONFIG_LINE,
    FaultError,
    Flapper,
    Link,
    broken_config,
    broker_outage,
    link_cut,
    packet_loss,
    reload_by_http,
    reload_by_signal,
)
from monitord.lab.mqtt_recorder import MqttRecorder  # noqa: E402
from monitord.lab.process import wait_for  # noqa: E402
from monitord.lab.province import ProvinceLab, require_root  # noqa: E402
from monitord.lab.scrape import Sample, http_request, states_of  # noqa: E402
from monitord.lab.topology import Kind, LabPlan  # noqa: E402
from monitord.state.model import State, StateEvent  # noqa: E402
from tests.integration.fault_checks import (  # noqa: E402
    assert_delivered_in_order,
    assert_history_consistent,
    history,
)

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2
MAX_MINUTES = 30
ALARM_MARGIN_S = 20 * 60  # lab build, settling, the final checks and teardown
SAMPLE_EVERY_S = 30.0
CALM_S = 40.0  # between two faults of a track
FINAL_CALM_S = 60.0  # no fault ends later than this before the end
FLAP_PERIOD_S, FLAP_TIMES = 15.0, 2
VSAT_TOO_SLOW_MS = 1800  # above the VSAT profile's 1.5 s timeout
LOSS = 0.3
ECHO_REQUEST = ("-p", "icmp", "--icmp-type", "echo-request")
HOLD_S = {"cut": 40.0, "loss": 40.0, "flap": 2 * FLAP_TIMES * FLAP_PERIOD_S, "vsat": 40.0,
          "reboot": 40.0, "broker": 40.0, "reload": 0.0, "sigkill": 0.0}
LINK_FAULTS = ("cut", "loss", "flap", "vsat", "reboot")
# Province-wide faults: (kind, when as a fraction of the run).
PROVINCE_FAULTS = (("broker", 0.15), ("reload", 0.30), ("sigkill", 0.50), ("broker", 0.70))
# Only these families are parsed from a scrape (2,000 targets: ~15 MB of text).
WANTED = ("monitord_probes_total", "monitord_probes_skipped_total",
          "monitord_probes_per_target_total", "monitord_snmp_polls_total", "monitord_snmp_up",
          "monitord_scheduler_lateness_seconds_bucket", "monitord_event_loop_lag",
          "monitord_target_state{", "monitord_mqtt_", "monitord_history_", "monitord_config_",
          "monitord_snmp_errors_total")


class SoakOverTimeError(Exception):
    """The whole run went past its alarm."""


# -- reading monitord --------------------------------------------------------------------

def scrape(lab: ProvinceLab, keep: Path) -> list[Sample]:
    """The families of WANTED from monitord's /metrics (the text is kept in `keep`)."""
    status, body = http_request(f"{lab.url}/metrics", timeout=30)
    if status != 200:
        raise OSError(f"/metrics answered {status}")
    keep.write_text(body)
    return list(read_samples(keep, WANTED))


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(v for n, sample_labels, v in samples
               if n == name and all(sample_labels.get(k) == want for k, want in labels.items()))


def per_target(samples: list[Sample], name: str) -> dict[str, float]:
    return {labels["target"]: v for n, labels, v in samples if n == name}


def buckets(samples: list[Sample], name: str, **labels: str) -> dict[float, float]:
    """A histogram's cumulative buckets {le: count}."""
    return {float(sample_labels["le"]): v for n, sample_labels, v in samples
            if n == f"{name}_bucket"
            and all(sample_labels.get(k) == want for k, want in labels.items())}


@dataclass(frozen=True)
class ProcessFigures:
    at: float  # wall clock
    pid: int
    rss_bytes: int
    fds: int
    threads: int
    cpu_s: float  # user + system since the process started


def process_figures(pid: int) -> ProcessFigures:
    proc = psutil.Process(pid)
    with proc.oneshot():
        cpu = proc.cpu_times()
        return ProcessFigures(time.time(), pid, int(proc.memory_info().rss), int(proc.num_fds()),
                              int(proc.num_threads()), float(cpu.user + cpu.system))


@dataclass(frozen=True)
class Counters:
    """The counters a window is measured by, at one scrape."""

    at: float
    probes: dict[str, float]  # kind -> probes completed (every outcome)
    skipped: dict[str, float]  # kind -> runs skipped (every reason)
    icmp_per_target: dict[str, float]
    polls_per_device: dict[str, float]
    lateness: dict[str, dict[float, float]]  # kind -> cumulative buckets
    lag: dict[float, float]


def counters(samples: list[Sample], at: float) -> Counters:
    kinds = ("icmp", "snmp")
    return Counters(
        at,
        {k: total(samples, "monitord_probes_total", kind=k) for k in kinds},
        {k: total(samples, "monitord_probes_skipped_total", kind=k) for k in kinds},
        per_target(samples, "monitord_probes_per_target_total"),
        per_target(samples, "monitord_snmp_polls_total"),
        {k: buckets(samples, "monitord_scheduler_lateness_seconds", kind=k) for k in kinds},
        buckets(samples, "monitord_event_loop_lag_seconds"))


def _delta(new: dict[float, float], old: dict[float, float]) -> dict[float, float]:
    return {le: v - old.get(le, 0.0) for le, v in new.items()}


# -- the MQTT side -------------------------------------------------------------------------

# -- the fault schedule ----------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the soak's start
    kind: str
    kabupaten: str | None  # None: the whole province

    @property
    def hold(self) -> float:
        return HOLD_S[self.kind]


def plan_faults(kabupaten: list[str], duration: float, vsat: bool) -> list[Planned]:
    """Every kabupaten but the last takes link faults on one of two staggered tracks; the
    province-wide faults come at fixed points. Nothing ends after duration - FINAL_CALM_S."""
    last_end = duration - FINAL_CALM_S
    kinds = [k for k in LINK_FAULTS if vsat or k != "vsat"]
    faulted = kabupaten[:-1]
    tracks = [faulted[i::2] for i in range(2) if faulted[i::2]]
    plans: list[Planned] = []
    for number, kabs in enumerate(tracks):
        at = number * (CALM_S + 5)  # the second track starts in the first one's calm
        for n in range(1000):  # bounded: the time runs out long before
            kind = kinds[(n + 2 * number) % len(kinds)]
            if at + HOLD_S[kind] > last_end:
                break
            plans.append(Planned(at, kind, kabs[n % len(kabs)]))
            at += HOLD_S[kind] + CALM_S
    plans += [Planned(round(share * duration), kind, None) for kind, share in PROVINCE_FAULTS
              if share * duration + HOLD_S[kind] <= last_end]
    return sorted(plans, key=lambda p: p.at)


@dataclass
class FaultRecord:
    kind: str
    kabupaten: str | None
    planned_at: float
    started: float = 0.0  # wall clock
    ended: float = 0.0
    ok: bool | None = None  # its own effect seen (None: not checked)
    notes: list[str] = field(default_factory=list)


@dataclass
class ActiveFault:
    record: FaultRecord
    ends_at: float  # seconds after the soak's start
    undo: ExitStack
    verify: Callable[[], None] | None  # before the undo: did it show?


@contextlib.contextmanager
def flapping(link: Link) -> Iterator[Flapper]:
    flapper = Flapper(link, FLAP_PERIOD_S, FLAP_TIMES).start()
    try:
        yield flapper
    finally:
        flapper.stop()
        flapper.join(timeout=30)


# -- one monitord process --------------------------------------------------------------------

@dataclass
class Row:
    """One sample, every SAMPLE_EVERY_S."""

    t: float  # seconds after the soak's start
    pid: int
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float
    lag_max_s: float
    load1: float
    not_up: int
    outbox: float
    events_written: float
    received: int


@dataclass
class Run:
    """One monitord process, measured from its first full probe round to its end."""

    pid: int
    first: ProcessFigures | None = None
    last: ProcessFigures | None = None
    first_counters: Counters | None = None
    last_counters: Counters | None = None
    exit_status: int | None = None

    def figures(self, plan: LabPlan, icmp_targets: int, snmp_devices: int) -> dict[str, Any]:
        if not (self.first and self.last and self.first_counters and self.last_counters):
            return {"pid": self.pid, "measured": False}
        a, b, ca, cb = self.first, self.last, self.first_counters, self.last_counters
        span = cb.at - ca.at
        done = {k: cb.probes[k] - ca.probes[k] for k in cb.probes}
        expected = {"icmp": icmp_targets * span / plan.icmp_interval,
                    "snmp": snmp_devices * span / plan.snmp_interval}
        lateness = {}
        for kind in ("icmp", "snmp"):
            delta = _delta(cb.lateness[kind], ca.lateness[kind])
            lateness[kind] = {"p50_ms": 1000 * histogram_quantile(0.5, delta),
                              "p99_ms": 1000 * histogram_quantile(0.99, delta),
                              "over_100ms": _over(delta, 0.1)}
        lag = _delta(cb.lag, ca.lag)
        return {
            "pid": self.pid, "measured": True, "window_s": span, "exit_status": self.exit_status,
            "rss_mb": [a.rss_bytes / 2**20, b.rss_bytes / 2**20], "fds": [a.fds, b.fds],
            "threads": [a.threads, b.threads],
            "cpu_s": b.cpu_s - a.cpu_s, "cpu_share_of_a_core": (b.cpu_s - a.cpu_s) / span,
            "cpu_s_whole_life": b.cpu_s,
            "probes_done": done, "probes_expected": expected,
            "skipped": {k: cb.skipped[k] - ca.skipped[k] for k in cb.skipped},
            "icmp_min_per_target": _min_delta(cb.icmp_per_target, ca.icmp_per_target),
            "snmp_min_per_device": _min_delta(cb.polls_per_device, ca.polls_per_device),
            "rounds_in_window": {"icmp": span / plan.icmp_interval,
                                 "snmp": span / plan.snmp_interval},
            "lateness": lateness,
            "loop_lag_p99_ms": 1000 * histogram_quantile(0.99, lag),
        }


def _over(delta: dict[float, float], limit: float) -> float:
    """The share of a histogram's observations above `limit` (a bucket bound)."""
    count = delta.get(math.inf, 0.0)
    return (count - delta.get(limit, 0.0)) / count if count else math.nan


def _min_delta(new: dict[str, float], old: dict[str, float]) -> float:
    return min((v - old.get(t, 0.0) for t, v in new.items()), default=math.nan)


# -- the soak ---------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool
    detail: str


class Soak:
    """The lab under faults, monitord's processes measured, and the checks at the end."""

    def __init__(self, lab: ProvinceLab, recorder: MqttRecorder, duration: float,
                 workdir: Path) -> None:
        self.lab = lab
        self.recorder = recorder
        self.duration = duration
        self.keep = workdir / "last-scrape.prom"
        kabupaten = list(lab.links)
        self.control = kabupaten[-1]
        self.schedule = plan_faults(kabupaten, duration, lab.plan.vsat_villages > 0)
        self.snmp_devices = lab.topology.snmp_devices
        self.runs: list[Run] = []
        self.rows: list[Row] = []
        self.faults: list[FaultRecord] = []
        self.checks: list[Check] = []
        self.settled_at = 0.0  # wall clock: every target up and polled
        self._t0 = 0.0  # monotonic, when the soak (and its schedule) began
        self._active: list[ActiveFault] = []
        self._next_round_check = 0.0

    @property
    def run(self) -> Run:
        return self.runs[-1]

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))
        print(f"[{self._elapsed():6.0f} s] {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def note(self, text: str) -> None:
        print(f"[{self._elapsed():6.0f} s] {text}", flush=True)

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0 if self._t0 else 0.0

    def samples(self) -> list[Sample]:
        return scrape(self.lab, self.keep)

    # -- start and end of a monitord process's window --------------------------------------

    def settle(self, timeout: float = 240) -> None:
        """Until every device is up and every polled device's last poll completed."""
        devices, polled = set(self.lab.devices), set(self.snmp_devices)

        def settled() -> list[Sample] | None:
            samples = self.samples()
            up = {t for t, s in states_of(samples).items() if s == "up"}
            snmp_up = {t for t, v in per_target(samples, "monitord_snmp_up").items() if v == 1}
            return samples if devices <= up and polled <= snmp_up else None
        samples = wait_for("every lab device up and every SNMP device polled", settled,
                           timeout=timeout, every=2)
        self.settled_at = time.time()
        self._open_window(samples)

    def _first_round_done(self, samples: list[Sample]) -> bool:
        probes = per_target(samples, "monitord_probes_per_target_total")
        polls = per_target(samples, "monitord_snmp_polls_total")
        return (all(probes.get(t, 0) >= 1 for t in self.lab.devices)
                and all(polls.get(t, 0) >= 1 for t in self.snmp_devices))

    def _open_window(self, samples: list[Sample]) -> None:
        self.run.first = process_figures(self.run.pid)
        self.run.first_counters = counters(samples, time.time())
        self.note(f"monitord pid {self.run.pid}: first full round done; RSS "
                  f"{self.run.first.rss_bytes / 2**20:.1f} MB, {self.run.first.fds} fds")

    def _close_window(self) -> None:
        samples = self.samples()
        self.run.last = process_figures(self.run.pid)
        self.run.last_counters = counters(samples, time.time())

    # -- the main loop -----------------------------------------------------------------------

    def soak(self) -> None:
        self._t0 = time.monotonic()
        pending = list(self.schedule)
        self.note(f"{len(pending)} faults planned over {self.duration:g} s; control kabupaten: "
                  f"{self.control}")
        next_sample = 0.0
        try:
            while True:
                now = self._elapsed()
                if now > self.duration + 300:  # never: faults end before the end
                    raise SoakOverTimeError("the fault loop ran 300 s past the end")
                for active in [a for a in self._active if now >= a.ends_at]:
                    self._end(active)
                if now >= self.duration and not self._active:
                    break
                while pending and pending[0].at <= now:
                    self._start(pending.pop(0))
                if self.run.first is None and now >= self._next_round_check:
                    self._next_round_check = now + 5
                    samples = self.samples()
                    if self._first_round_done(samples):
                        self._open_window(samples)
                if now >= next_sample:
                    self.sample()
                    next_sample += SAMPLE_EVERY_S
                time.sleep(0.5)
        finally:
            for active in self._active:
                active.undo.close()  # whatever is still on, even after a failure
            self._active.clear()

    def sample(self) -> None:
        samples = self.samples()
        figures = process_figures(self.run.pid)
        states = states_of(samples)
        self.rows.append(Row(
            round(self._elapsed(), 1), figures.pid, round(figures.rss_bytes / 2**20, 1),
            figures.fds, figures.threads, round(figures.cpu_s, 2),
            total(samples, "monitord_event_loop_lag_max_seconds"), os.getloadavg()[0],
            sum(1 for s in states.values() if s != "up"),
            total(samples, "monitord_mqtt_outbox_events"),
            total(samples, "monitord_history_events_written_total"), len(self.recorder.messages)))
        r = self.rows[-1]
        self.note(f"pid {r.pid} RSS {r.rss_mb} MB, {r.fds} fds, {r.threads} threads, CPU "
                  f"{r.cpu_s} s, lag max {1000 * r.lag_max_s:.0f} ms, load {r.load1:.2f}, "
                  f"{r.not_up} not up, outbox {r.outbox:g}, received {r.received}")

    # -- faults -------------------------------------------------------------------------------

    def _start(self, planned: Planned) -> None:
        record = FaultRecord(planned.kind, planned.kabupaten, planned.at, started=time.time())
        self.faults.append(record)
        stack = ExitStack()
        verify: Callable[[], None] | None = None
        where = f" on {planned.kabupaten}" if planned.kabupaten else ""
        self.note(f"fault starts: {planned.kind}{where} (for {planned.hold:g} s)")
        try:
            verify = self._inject(planned, record, stack)
        except (FaultError, OSError, AssertionError) as exc:
            record.ok = False
            record.notes.append(f"could not inject: {exc}")
            self.note(f"fault {planned.kind} could not be injected: {exc}")
            stack.close()
            record.ended = time.time()
            return
        self._active.append(ActiveFault(record, self._elapsed() + planned.hold, stack, verify))

    def _end(self, active: ActiveFault) -> None:
        record = active.record
        self._active.remove(active)
        try:
            if active.verify is not None:
                active.verify()
        except (OSError, AssertionError) as exc:
            record.ok = False
            record.notes.append(f"verification failed: {exc}")
        finally:
            active.undo.close()
        record.ended = time.time()
        self.note(f"fault ends: {record.kind}{' on ' + record.kabupaten if record.kabupaten else ''}"
                  f"{'; ' + '; '.join(record.notes) if record.notes else ''}")

    def _inject(self, planned: Planned, record: FaultRecord,
                stack: ExitStack) -> Callable[[], None] | None:
        """Starts the fault (its undo goes on `stack`); what to verify before it is undone."""
        lab, kab = self.lab, planned.kabupaten
        layout = lab.links[kab] if kab is not None else None
        if planned.kind == "cut":
            assert kab is not None
            stack.enter_context(link_cut(lab.link(kab)))
        elif planned.kind == "loss":
            assert layout is not None
            stack.enter_context(packet_loss(layout.namespace, LOSS, chains=("INPUT", "FORWARD"),
                                            match=ECHO_REQUEST))
        elif planned.kind == "flap":
            assert kab is not None
            stack.enter_context(flapping(lab.link(kab)))
        elif planned.kind == "vsat":
            assert layout is not None
            assert layout.vsat_ns is not None
            echoes = lab.echoes[layout.vsat_ns]
            echoes.set_delay(VSAT_TOO_SLOW_MS)
            stack.callback(echoes.set_delay, lab.plan.vsat_delay_ms, lab.plan.vsat_jitter_ms)
        elif planned.kind == "reboot":
            assert layout is not None
            return self._reboot(layout.device, record, stack)
        elif planned.kind == "broker":
            assert lab.broker is not None
            stack.enter_context(broker_outage(lab.broker))
            return lambda: self._broker_away(record)
        elif planned.kind == "reload":
            self._bad_reload(record)
        elif planned.kind == "sigkill":
            self._sigkill(record)
        return None

    def _reboot(self, device: str, record: FaultRecord, stack: ExitStack) -> Callable[[], None]:
        """faults.reboot_device in two halves, so the loop goes on meanwhile: the agent stops
        now and starts again when the fault ends."""
        pid = self.run.pid
        before = total(self.samples(), "monitord_snmp_errors_total", target=device)
        agent = self.lab.agent_of(device)
        agent.stop()
        stack.callback(agent.start)

        def verify() -> None:
            samples = self.samples()
            up = total(samples, "monitord_snmp_up", target=device)
            errors = total(samples, "monitord_snmp_errors_total", target=device)
            grown = errors > before if self.run.pid == pid else errors > 0
            record.ok = up == 0 and grown
            record.notes.append(f"while its agent was away: monitord_snmp_up {up:g}, "
                                f"failed polls {before:g} -> {errors:g}"
                                + ("" if self.run.pid == pid else " (monitord restarted)"))
        return verify

    def _broker_away(self, record: FaultRecord) -> None:
        samples = self.samples()
        connected = total(samples, "monitord_mqtt_connected")
        outbox = total(samples, "monitord_mqtt_outbox_events")
        record.ok = connected == 0
        record.notes.append(f"while away: connected {connected:g}, {outbox:g} events in the outbox")

    def _bad_reload(self, record: FaultRecord) -> None:
        def reloads(result: str) -> float:
            return total(self.samples(), "monitord_config_reloads_total", result=result)
        failures, successes = reloads("failure"), reloads("success")
        rss_before = process_figures(self.run.pid).rss_bytes
        with broken_config(self.lab.inventory_path):
            reload_by_signal(self.run.pid)
            wait_for("the SIGHUP reload to fail", lambda: reloads("failure") >= failures + 1,
                     timeout=60, every=1)
            status, body = reload_by_http(self.lab.url, timeout=60)
        bad_ok = status == 500 and f"line {BAD_CONFIG_LINE}" in body
        good_status, _ = reload_by_http(self.lab.url, timeout=60)
        time.sleep(1)  # the lag gauge is updated by the loop's next 0.25 s sleep
        samples = self.samples()
        rss_after = process_figures(self.run.pid).rss_bytes
        record.ok = (bad_ok and good_status == 200
                     and total(samples, "monitord_config_reloads_total", result="failure")
                     == failures + 2
                     and total(samples, "monitord_config_reloads_total", result="success")
                     == successes + 1
                     and total(samples, "monitord_config_last_reload_successful") == 1)
        record.notes.append(
            f"bad file: SIGHUP refused, HTTP {status}; good file: HTTP {good_status}; event-loop "
            f"lag max then {1000 * total(samples, 'monitord_event_loop_lag_max_seconds'):.0f} ms, "
            f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MB")

    def _sigkill(self, record: FaultRecord) -> None:
        self._close_window()
        self.run.exit_status = self.lab.kill_monitord()
        killed = self.run.exit_status
        self.lab.start_monitord(ready_timeout=120)
        self.runs.append(Run(self.lab.monitord.proc.pid))
        self._next_round_check = self._elapsed() + 5
        record.ok = killed == -signal.SIGKILL
        record.notes.append(f"pid {self.runs[-2].pid} exited {killed}; restarted as pid "
                            f"{self.run.pid}")

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> tuple[list[StateEvent], list[dict[str, Any]]]:
        """Waits for every target up and every event delivered; the history and what MQTT
        delivered."""
        devices, polled = set(self.lab.devices), set(self.snmp_devices)

        def all_up() -> bool:
            samples = self.samples()
            up = {t for t, s in states_of(samples).items() if s == "up"}
            snmp_up = {t for t, v in per_target(samples, "monitord_snmp_up").items() if v == 1}
            return devices <= up and polled <= snmp_up
        try:
            wait_for("every target up and every SNMP poll complete after the faults", all_up,
                     timeout=180, every=5)
        except AssertionError as exc:
            self.check("final states all up, SNMP polls complete", False, str(exc)[:500])
        else:
            self.check("final states all up, SNMP polls complete", True,
                       f"{len(devices)} targets up, {len(polled)} devices' last poll complete")
        wait_for("the outbox to drain", lambda: total(
            self.samples(), "monitord_mqtt_outbox_events") == 0, timeout=180, every=2)
        stored = history(self.lab.state_dir)
        ids = {e.id for e in stored}
        with contextlib.suppress(AssertionError):  # a shortfall is reported by the check below
            wait_for("every stored event over MQTT", lambda: ids <= {
                m.json()["id"] for m in self.recorder.messages}, timeout=60, every=1)
        self.sample()
        self._close_window()
        return stored, [m.json() for m in self.recorder.messages]

    def judge(self, stored: list[StateEvent], received: list[dict[str, Any]]) -> None:
        plan = self.lab.plan
        icmp_targets = len(self.lab.devices)
        for number, run in enumerate(self.runs, start=1):
            f = run.figures(plan, icmp_targets, len(self.snmp_devices))
            name = f"monitord run {number} (pid {run.pid})"
            if not f["measured"]:
                self.check(f"{name}: measured", False, "its first full round never completed")
                continue
            skipped = sum(f["skipped"].values())
            self.check(f"{name}: no probe skipped", skipped == 0, f"skipped {f['skipped']}")
            for kind, per, key in (("icmp", plan.icmp_interval, "icmp_min_per_target"),
                                   ("snmp", plan.snmp_interval, "snmp_min_per_device")):
                rounds = math.floor(f["window_s"] / per)
                self.check(f"{name}: every {kind} check ran on schedule",
                           f[key] >= rounds - 1,
                           f"{f['probes_done'][kind]:.0f} done, {f['probes_expected'][kind]:.0f} "
                           f"expected over {f['window_s']:.0f} s; fewest for one target {f[key]:g} "
                           f"(at least {rounds - 1} wanted)")
        self.check("monitord still running at the end", self.lab.monitord.proc.poll() is None,
                   f"pid {self.run.pid}")
        log = self.lab.monitord.log()  # both processes' (appended)
        tracebacks = log.count("Traceback (most recent call last)")
        errors = sum(1 for line in log.splitlines() if " ERROR " in line)
        self.check("no traceback in monitord's log", tracebacks == 0,
                   f"{tracebacks} tracebacks; {errors} ERROR lines (broker outages and bad "
                   "reloads log some by design)")
        self._judge_events(stored, received)
        for fault in self.faults:
            if fault.ok is not None:
                where = f" on {fault.kabupaten}" if fault.kabupaten else ""
                self.check(f"fault {fault.kind}{where} at {fault.planned_at:g} s", fault.ok,
                           "; ".join(fault.notes))
        self._judge_effects(stored)

    def _judge_events(self, stored: list[StateEvent], received: list[dict[str, Any]]) -> None:
        missing = {e.id for e in stored} - {m["id"] for m in received}
        try:
            delivery = assert_delivered_in_order(stored, received)
            assert_history_consistent(stored)
        except AssertionError as exc:
            dropped = "dropped" in (self.lab.broker.log() if self.lab.broker else "")
            self.check("every stored event delivered over MQTT, in order, none lost", False,
                       f"{len(stored)} stored, {len(received)} received, {len(missing)} missing"
                       f"{' (mosquitto logged dropped messages)' if dropped else ''}: "
                       f"{str(exc)[:300]}")
        else:
            self.check("every stored event delivered over MQTT, in order, none lost", True,
                       f"{delivery.stored} stored, {delivery.received} received "
                       f"({delivery.duplicates} duplicates, at least once), 0 missing")
        quiet = {"control kabupaten": [self.control], "province core and data center": []}
        for what, kabs in quiet.items():
            targets = ({d.id for d in self.lab.devices.values() if d.kabupaten in kabs} if kabs
                       else {d.id for d in self.lab.devices.values()
                             if d.kind in (Kind.CORE, Kind.DATA_CENTER)})
            noisy = [e for e in stored if e.target in targets and (
                e.from_state is not State.UNKNOWN or e.time > self.settled_at)]
            firsts = {e.target for e in stored if e.target in targets
                      and e.from_state is State.UNKNOWN}
            self.check(f"{what} quiet after settling", not noisy and firsts == targets,
                       f"{len(targets)} targets, {len(noisy)} events after their first" + (
                           f": {[(e.target, e.from_state.value, e.to_state.value) for e in noisy[:5]]}"
                           if noisy else ""))

    def _judge_effects(self, stored: list[StateEvent]) -> None:
        """Each link fault showed in the history: the cut link down and its villages
        unreachable, the VSAT villages down past their timeout (loss and flaps are counted)."""
        for fault in self.faults:
            if fault.kabupaten is None or fault.kind not in ("cut", "flap", "vsat", "loss"):
                continue
            layout = self.lab.links[fault.kabupaten]
            during = [e for e in stored
                      if fault.started <= e.time <= fault.ended + 30
                      and e.target in (layout.device, *layout.villages, *layout.vsat_villages)]
            to = {(e.target, e.to_state) for e in during}
            summary = f"{len(during)} events of its targets"
            if fault.kind == "cut":
                ok = (layout.device, State.DOWN) in to and all(
                    (v, State.UNREACHABLE) in to for v in layout.villages)
                self.check(f"cut of {fault.kabupaten} at {fault.planned_at:g} s: link down, "
                           "villages unreachable", ok, summary)
            elif fault.kind == "vsat":
                ok = all((v, State.DOWN) in to for v in layout.vsat_villages)
                self.check(f"VSAT delay on {fault.kabupaten} at {fault.planned_at:g} s: VSAT "
                           "villages down", ok, summary)
            else:
                fault.notes.append(summary)
                self.note(f"{fault.kind} on {fault.kabupaten} at {fault.planned_at:g} s: {summary}")


# -- the report ---------------------------------------------------------------------------

def report(soak: Soak, stored: int, received: int, meta: dict[str, Any]) -> dict[str, Any]:
    plan = soak.lab.plan
    runs = [run.figures(plan, len(soak.lab.devices), len(soak.snmp_devices)) for run in soak.runs]
    for run in runs:  # the largest stall each process's loop reported, from the 30 s samples
        run["loop_lag_max_ms"] = 1000 * max(
            (r.lag_max_s for r in soak.rows if r.pid == run["pid"]), default=math.nan)
    loads = [r.load1 for r in soak.rows]
    result = {
        **meta,
        "plan": asdict(plan),
        "targets": {"icmp": len(soak.lab.devices), "snmp": len(soak.snmp_devices)},
        "control_kabupaten": soak.control,
        "runs": runs,
        "rows": [asdict(r) for r in soak.rows],
        "faults": [asdict(f) for f in soak.faults],
        "events": {"stored": stored, "received": received},
        "loop_lag_max_s": max((r.lag_max_s for r in soak.rows), default=math.nan),
        "load1": {"min": min(loads, default=math.nan), "max": max(loads, default=math.nan)},
        "checks": [asdict(c) for c in soak.checks],
        "passed": all(c.ok for c in soak.checks),
    }
    print("\n== soak figures ==")
    for number, run in enumerate(runs, start=1):
        if not run["measured"]:
            print(f"run {number} pid {run['pid']}: not measured")
            continue
        late = run["lateness"]
        print(f"run {number} pid {run['pid']} ({run['window_s']:.0f} s measured"
              f"{', then SIGKILL' if run['exit_status'] is not None else ''}): "
              f"RSS {run['rss_mb'][0]:.1f} -> {run['rss_mb'][1]:.1f} MB, "
              f"fds {run['fds'][0]} -> {run['fds'][1]}, threads {run['threads'][0]} -> "
              f"{run['threads'][1]}, CPU {run['cpu_s']:.1f} s ({100 * run['cpu_share_of_a_core']:.1f} "
              f"% of a core)")
        for kind in ("icmp", "snmp"):
            print(f"    {kind}: {run['probes_done'][kind]:.0f} done / "
                  f"{run['probes_expected'][kind]:.0f} expected, skipped {run['skipped'][kind]:g}, "
                  f"lateness p50 {late[kind]['p50_ms']:.1f} ms p99 {late[kind]['p99_ms']:.1f} ms "
                  f"({100 * late[kind]['over_100ms']:.2f} % > 100 ms)")
        print(f"    event-loop lag p99 {run['loop_lag_p99_ms']:.1f} ms, largest stall "
              f"{run['loop_lag_max_ms']:.0f} ms")
    print(f"event-loop lag max (largest monitord_event_loop_lag_max_seconds): "
          f"{1000 * result['loop_lag_max_s']:.0f} ms; load average {result['load1']['min']:.2f}"
          f" - {result['load1']['max']:.2f}")
    print(f"events: {stored} stored, {received} received over MQTT")
    failed = [c for c in soak.checks if not c.ok]
    print(f"checks: {len(soak.checks) - len(failed)} of {len(soak.checks)} passed")
    for c in failed:
        print(f"  FAIL {c.name}: {c.detail}")
    return result


# -- setup ----------------------------------------------------------------------------------

def require_private_netns() -> None:
    """Only `lo` here: a fresh `unshare --net`, so the lab's routes and veths stay inside it."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True, timeout=30).stdout.splitlines()
    names = [line.split(":")[1].strip() for line in links if line.strip()]
    if names != ["lo"]:
        raise LabSetupError(f"this network namespace has interfaces {names}: run the soak in a "
                            "fresh one (bench/soak.sh, or unshare --net --mount)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)


def _raise_timeout(signum: int, frame: FrameType | None) -> None:
    raise SoakOverTimeError(f"the soak went past its time limit (signal {signum})")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0,
                   help=f"faults cycling, from the first full round (default 10, at most {MAX_MINUTES})")
    p.add_argument("--kabupaten", type=int, default=10)
    p.add_argument("--villages", type=int, default=190, help="radio villages per kabupaten")
    p.add_argument("--vsat", type=int, default=10, help="VSAT villages per kabupaten")
    p.add_argument("--snmp-villages", type=int, default=3, help="villages polled per kabupaten")
    p.add_argument("--icmp-interval", type=float, default=10.0)
    p.add_argument("--snmp-interval", type=float, default=30.0)
    p.add_argument("--workdir", type=Path, help="lab files (default: a new temp directory)")
    p.add_argument("--json", type=Path, help="default bench/results/soak_<timestamp>.json")
    args = p.parse_args(argv)
    if not 1 <= args.minutes <= MAX_MINUTES:
        p.error(f"--minutes must be 1-{MAX_MINUTES}")
    if args.kabupaten < 2:
        p.error("--kabupaten must be at least 2: one is the untouched control")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_root()
        require_private_netns()
        plan = LabPlan(kabupaten=args.kabupaten, villages=args.villages,
                       vsat_villages=args.vsat, snmp_villages=args.snmp_villages,
                       icmp_interval=args.icmp_interval, snmp_interval=args.snmp_interval)
    except (LabSetupError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return EXIT_SETUP
    duration = args.minutes * 60
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.alarm(int(duration + ALARM_MARGIN_S))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="monitord-soak-"))
    stamp = time.strftime("%Y%m%d_%H%M%S")
    out = args.json or ROOT / "bench" / "results" / f"soak_{stamp}.json"
    meta: dict[str, Any] = {"started": stamp, "minutes": args.minutes, "workdir": str(workdir),
                            "cpus": os.cpu_count(), "load_at_start": os.getloadavg()}
    print(f"soak: building the lab in {workdir} ({plan.kabupaten} kabupaten x "
          f"{plan.villages} + {plan.vsat_villages} villages) ...", flush=True)
    built = time.monotonic()
    try:
        with ProvinceLab(workdir, plan, broker_persistence=True) as lab:
            meta["build_s"] = round(time.monotonic() - built, 1)
            return _soak(lab, duration, workdir, out, meta)
    except (LabSetupError, subprocess.CalledProcessError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return EXIT_SETUP
    finally:
        signal.alarm(0)


def _soak(lab: ProvinceLab, duration: float, workdir: Path, out: Path,
          meta: dict[str, Any]) -> int:
    assert lab.broker is not None
    meta["pinned_neighbours"] = lab.pinned_neighbours  # by the lab's build
    recorder = MqttRecorder(lab.broker.port, f"{lab.topic_prefix}/events",
                            client_id="monitord-soak").start()
    soak = Soak(lab, recorder, duration, workdir)
    stored: list[StateEvent] = []
    received: list[dict[str, Any]] = []
    try:
        lab.start_monitord(ready_timeout=120)
        soak.runs.append(Run(lab.monitord.proc.pid))
        settling = time.monotonic()
        soak.settle()
        meta["settle_s"] = round(time.monotonic() - settling, 1)
        soak.soak()
        stored, received = soak.finish()
        soak.judge(stored, received)
    except (SoakOverTimeError, AssertionError, FaultError, OSError) as exc:
        soak.check("the soak ran to its end", False, f"{type(exc).__name__}: {exc}"[:800])
    finally:
        recorder.stop()
    meta["load_at_end"] = os.getloadavg()
    result = report(soak, len(stored), len(received), meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"written: {out}; lab files in {workdir}")
    return EXIT_OK if result["passed"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
