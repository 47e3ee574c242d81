"""In-process /metrics benchmark: a province's series, rendered and served, without a network
of targets (issue 8).

It loads the province lab's inventory (bench/province_summary.py config: N_ICMP devices, the
first N_SNMP of them also polled over SNMP with the lab's modules), feeds every check synthetic
results (ICMP: 3 echoes; SNMP: ~150 rendered samples per device, label lengths as the device
recordings have them; states from the real StateEngine), then measures:

  observe   CPU per ICMP and per SNMP result taken by the series (what probing pays);
  render    CPU and wall time of one /metrics body, its bytes and series;
  gzip      size and CPU of the body compressed as the server does (level 1);
  http      scrapes of a real HttpServer on 127.0.0.1 by curl, plain and with
            `Accept-Encoding: gzip`, while the event loop takes results at the province's rate
            (N_ICMP/60 ICMP results/s, each with 3 echoes' worth of socket calls) and a task
            ticking every 5 ms records the largest gap:
            the loop stall a scrape causes; also the GC pauses meanwhile.

It measures whichever monitord it imports, so "before" is the committed code in a copy:
    mkdir -p /tmp/before/src && git archive HEAD monitord | tar -C /tmp/before/src -xf -
    (cd /tmp && PYTHONPATH=/tmp/before/src $ROOT/.venv/bin/python $ROOT/bench/scrape_bench.py)
    .venv/bin/python bench/scrape_bench.py                      # the working tree
Every loop is bounded; the only traffic is on 127.0.0.1: curl to the server, and the stand-in
echo datagrams between two UDP sockets of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import random
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import province_summary
from prometheus_client import CollectorRegistry, generate_latest

import monitord
from monitord.config import load_inventory
from monitord.http import Endpoints, HttpServer
from monitord.metrics.selfmetrics import SelfMetrics
from monitord.metrics.snmp_series import SnmpSeries
from monitord.metrics.state_series import StateSeries
from monitord.metrics.targets import TargetSeries, label_pairs
from monitord.model import HIERARCHY_LABELS, Check, ProbeResult, SnmpPollResult, SnmpProfile
from monitord.snmp.modules import SnmpModule
from monitord.state.engine import StateEngine

START = 1_700_000_000.0  # synthetic wall clock: the same inputs on every run
TICK = 0.005  # the stall probe's sleep
FEED_TICK = 0.05  # results are fed to the loop on the scheduler's grid
CURL_MAX_S = 30
ECHO = bytes(64)  # an echo request's size


# ------------------------------------------------------------------------------ synthetic input

def icmp_result(check: Check, rng: random.Random, started: float) -> ProbeResult:
    """3 echoes; villages behind radio/VSAT are slower and lose some."""
    village = check.role.startswith("village")
    base = rng.uniform(0.02, 0.6) if village else rng.uniform(0.0002, 0.002)
    received = 3 if not village or rng.random() > 0.05 else rng.choice((0, 1, 2))
    rtts = tuple(base * rng.uniform(0.8, 1.3) for _ in range(received))
    return ProbeResult(check=check, started=started, duration=2.0 + base, sent=3,
                       received=received, rtts=rtts)


def _row_labels(table_labels: Sequence[str], row: int, device: str) -> str:
    values = {"if_name": f"ether{row}", "if_descr": f"Ethernet interface {row} (10/100/1000)",
              "if_alias": f"uplink ke {device}"[:40]}
    return "".join(f',{name}="{values.get(name, f"{name}-{row}")}"' for name in table_labels)


def snmp_families(check: Check, modules: Sequence[SnmpModule], rng: random.Random) -> dict[str, str]:
    """Rendered samples as the poller makes them: 8 interfaces, 3 rows of other tables."""
    base = label_pairs(zip(HIERARCHY_LABELS, check.hierarchy(), strict=True))
    families: dict[str, list[str]] = {}
    for module in modules:
        for metric in module.scalars:
            extra = "".join(f',{c.name}="{check.target} {c.name}"' for c in metric.labels)
            value = "1" if metric.type == "info" else str(rng.randrange(10**6))
            families.setdefault(metric.name, []).append(f"{metric.name}{{{base}{extra}}} {value}\n")
        for table in module.tables:
            index = [part.name for part in table.index]
            labels = [c.name for c in table.labels]
            for metric in table.metrics:
                lines = families.setdefault(metric.name, [])
                for row in range(1, (9 if table.name == "interfaces" else 4)):
                    idx = "".join(f',{name}="{row}"' for name in index)
                    extra = idx + _row_labels(labels, row, check.target)
                    lines.append(f"{metric.name}{{{base}{extra}}} {rng.randrange(10**12)}\n")
    return {name: "".join(lines) for name, lines in families.items()}


def snmp_result(check: Check, families: dict[str, str], started: float) -> SnmpPollResult:
    varbinds = sum(text.count("\n") for text in families.values())
    return SnmpPollResult(check=check, started=started, duration=0.4, requests=6,
                          varbinds=varbinds, families=families, uptime_ticks=int(started * 100) % 2**32)


# ------------------------------------------------------------------------------ the body, old or new

@dataclass
class Province:
    checks: list[Check]
    icmp: list[Check]
    snmp: list[Check]
    modules: dict[str, SnmpModule]
    series: TargetSeries
    snmp_series: SnmpSeries
    state_series: StateSeries
    engine: StateEngine
    registry: CollectorRegistry
    icmp_results: list[ProbeResult] = field(default_factory=list)
    snmp_results: list[SnmpPollResult] = field(default_factory=list)

    @property
    def chunked(self) -> bool:
        """The new code: series render lists of bytes."""
        return hasattr(self.series, "render_chunks")

    def series_chunks(self) -> list[bytes]:
        """The three per-target parts of the body (the registry's output aside)."""
        if self.chunked:
            parts: list[bytes] = []
            for part in (self.series, self.state_series, self.snmp_series):
                parts += part.render_chunks()
            return parts
        return [(self.series.render() + self.state_series.render()
                 + self.snmp_series.render()).encode()]

    def render_metrics(self) -> Any:
        """What the daemon hands the HTTP server."""
        if self.chunked:
            return [*self.series_chunks(), generate_latest(self.registry)]
        return (self.series.render() + self.state_series.render() + self.snmp_series.render()
                + generate_latest(self.registry).decode())

    def observe_icmp(self, result: ProbeResult, now: float) -> None:
        self.series.observe(result)
        self.engine.observe(result, now)


def build(n_icmp: int, n_snmp: int, kabupaten: int, workdir: Path) -> tuple[Province, dict[str, Any]]:
    config = workdir / "province.yaml"
    province_summary.main(["config", "--out", str(config), "--devices", str(n_icmp),
                           "--snmp-devices", str(n_snmp), "--kabupaten", str(kabupaten),
                           "--port", "1", "--state-dir", str(workdir)])
    t0 = time.process_time()
    inventory = load_inventory(config)
    figures: dict[str, Any] = {"load_s": time.process_time() - t0}
    checks = list(inventory.checks)
    registry = CollectorRegistry(auto_describe=True)
    SelfMetrics(registry)
    engine = StateEngine()
    province = Province(checks, [c for c in checks if c.kind == "icmp"],
                        [c for c in checks if c.kind == "snmp"], dict(inventory.snmp_modules),
                        TargetSeries(), SnmpSeries(), StateSeries(engine.statuses), engine, registry)
    t0 = time.process_time()
    province.series.set_checks(checks)
    province.snmp_series.set_checks(checks, inventory.snmp_modules)
    figures["set_checks_s"] = time.process_time() - t0
    engine.set_checks(checks, START)
    return province, figures


def feed(province: Province, rounds: int, seed: int) -> dict[str, float]:
    """`rounds` results per check; the series' own CPU per result is timed."""
    rng = random.Random(seed)  # noqa: S311 - synthetic RTTs, the same on every run
    figures: dict[str, float] = {}
    icmp_cpu = snmp_cpu = 0.0
    families = {}
    for check in province.snmp:
        profile = check.profile
        assert isinstance(profile, SnmpProfile)
        families[check.target] = snmp_families(check, [province.modules[m] for m in profile.modules], rng)
    for r in range(rounds):
        started = START + 60.0 * (r + 1)
        results = [icmp_result(c, rng, started) for c in province.icmp]
        t0 = time.process_time()
        for result in results:
            province.series.observe(result)
        icmp_cpu += time.process_time() - t0
        for result in results:
            province.engine.observe(result, started + 3.0)
        polls = [snmp_result(c, families[c.target], started) for c in province.snmp]
        t0 = time.process_time()
        for poll in polls:
            province.snmp_series.observe(poll)
        snmp_cpu += time.process_time() - t0
        province.icmp_results, province.snmp_results = results, polls
    figures["observe_icmp_us"] = icmp_cpu / max(1, rounds * len(province.icmp)) * 1e6
    figures["observe_snmp_us"] = snmp_cpu / max(1, rounds * len(province.snmp)) * 1e6
    return figures


# ------------------------------------------------------------------------------ measurements

def measure_render(province: Province, scrapes: int) -> dict[str, float]:
    cpu, wall = [], []
    body = b""
    for _ in range(scrapes):
        t0, w0 = time.thread_time(), time.perf_counter()
        out = province.render_metrics()
        cpu.append(time.thread_time() - t0)
        wall.append(time.perf_counter() - w0)
        body = out.encode() if isinstance(out, str) else b"".join(out)
        del out
    lines = body.count(b"\n")
    headers = body.count(b"\n# ") + body.startswith(b"# ")
    t0 = time.thread_time()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    gz = sum(len(compressor.compress(body[i:i + 262144])) for i in range(0, len(body), 262144))
    gz += len(compressor.flush())
    gzip_cpu = time.thread_time() - t0
    return {"render_cpu_s": statistics.median(cpu), "render_wall_s": statistics.median(wall),
            "bytes": len(body), "series": lines - headers, "gzip_bytes": gz,
            "gzip_cpu_s": gzip_cpu}


@dataclass
class Stalls:
    """The largest gap between 5 ms ticks, since the last reset."""

    worst: float = 0.0
    gaps: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(10**7):  # bounded; ends with `stop`
            if stop.is_set():
                return
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            gap = loop.time() - due
            self.worst = max(self.worst, gap)
            self.gaps.append(gap)


class EchoTraffic:
    """Stands in for the pinger's socket work: every syscall releases the GIL and has to win
    it back from a rendering thread, which is how a scrape stalls a busy loop far more than an
    idle one. Datagrams go from one UDP socket on 127.0.0.1 to another, read by the loop."""

    def __init__(self) -> None:
        self.receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.receiver.bind(("127.0.0.1", 0))
        self.receiver.setblocking(False)
        self.sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sender.setblocking(False)
        self.address = self.receiver.getsockname()
        self.received = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.receiver.fileno(), self._drain)

    def send(self, echoes: int) -> None:
        for _ in range(echoes):
            with contextlib.suppress(BlockingIOError):
                self.sender.sendto(ECHO, self.address)

    def _drain(self) -> None:
        for _ in range(1000):
            try:
                self.receiver.recv(2048)
            except BlockingIOError:
                return
            self.received += 1

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self.receiver.fileno())
        self.receiver.close()
        self.sender.close()


async def feed_loop(province: Province, stop: asyncio.Event, rate_icmp: float,
                    rate_snmp: float, echoes: EchoTraffic | None) -> None:
    """Results into the series at the province's rate, on the scheduler's 50 ms grid, with
    3 echoes' socket work per ICMP result."""
    icmp, snmp = province.icmp_results, province.snmp_results
    i = j = 0
    credit_i = credit_s = 0.0
    for _ in range(10**6):
        if stop.is_set():
            return
        await asyncio.sleep(FEED_TICK)
        now = time.time()
        credit_i += rate_icmp * FEED_TICK
        credit_s += rate_snmp * FEED_TICK
        while credit_i >= 1 and icmp:
            if echoes is not None:
                echoes.send(3)
            province.observe_icmp(icmp[i % len(icmp)], now)
            i, credit_i = i + 1, credit_i - 1
        while credit_s >= 1 and snmp:
            province.snmp_series.observe(snmp[j % len(snmp)])
            j, credit_s = j + 1, credit_s - 1


class GcPauses:
    """Collections and their pauses (any thread), by generation, while installed."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def summary(self) -> str:
        return ", ".join(f"gen{g}: {len(p)} max {max(p, default=0) * 1e3:.1f} ms "
                         f"total {sum(p) * 1e3:.0f} ms" for g, p in self.pauses.items())


async def curl(url: str, gzip: bool) -> tuple[float, int, str]:
    """(seconds, bytes on the wire, status) of one scrape by curl, which does not decode."""
    args = ["curl", "-sS", "--max-time", str(CURL_MAX_S), "-o", "/dev/null",
            "-w", "%{time_total} %{size_download} %{http_code}"]
    if gzip:
        args += ["-H", "Accept-Encoding: gzip"]
    proc = await asyncio.create_subprocess_exec(*args, url, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), CURL_MAX_S + 5)
    seconds, size, status = out.decode().split()
    return float(seconds), int(size), status


async def measure_http(province: Province, scrapes: int, quiet_s: float,
                       with_echoes: bool) -> dict[str, Any]:
    server = HttpServer("127.0.0.1:0", Endpoints(province.render_metrics, lambda: True,
                                                 lambda: (True, "")))
    server.start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    stop = asyncio.Event()
    stalls = Stalls()
    rate_icmp = len(province.icmp) / 60.0
    rate_snmp = len(province.snmp) / 60.0
    loop = asyncio.get_running_loop()
    echoes = EchoTraffic() if with_echoes else None
    if echoes is not None:
        echoes.start(loop)
    tasks = [asyncio.create_task(stalls.run(stop)),
             asyncio.create_task(feed_loop(province, stop, rate_icmp, rate_snmp, echoes))]
    figures: dict[str, Any] = {}
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        await asyncio.sleep(quiet_s)
        figures["quiet_max_stall_ms"] = stalls.worst * 1e3
        figures["quiet_p99_stall_ms"] = _p99(stalls.gaps) * 1e3
        for mode in ("plain", "gzip"):
            rows = []
            for _ in range(scrapes):
                stalls.worst, stalls.gaps = 0.0, []
                c0 = time.process_time()
                seconds, size, status = await curl(url, mode == "gzip")
                await asyncio.sleep(0.05)  # a stall right at the end still lands in this scrape
                rows.append((seconds, size, status, stalls.worst, time.process_time() - c0,
                             _p99(stalls.gaps)))
                await asyncio.sleep(0.5)
            figures[f"{mode}_scrape_s"] = statistics.median(r[0] for r in rows)
            figures[f"{mode}_scrape_max_s"] = max(r[0] for r in rows)
            figures[f"{mode}_wire_bytes"] = rows[-1][1]
            figures[f"{mode}_status"] = ",".join(sorted({r[2] for r in rows}))
            figures[f"{mode}_max_stall_ms"] = max(r[3] for r in rows) * 1e3
            figures[f"{mode}_median_max_stall_ms"] = statistics.median(r[3] for r in rows) * 1e3
            figures[f"{mode}_p99_tick_gap_ms"] = max(r[5] for r in rows) * 1e3
            figures[f"{mode}_process_cpu_s"] = statistics.median(r[4] for r in rows)
    finally:
        if pauses in gc.callbacks:
            gc.callbacks.remove(pauses)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.stop()
        if echoes is not None:
            echoes.close(loop)
            figures["echo_datagrams"] = echoes.received
    figures["gc_while_serving"] = pauses.summary()
    return figures


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# ------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--icmp", type=int, default=10000, help="devices (all pinged), <= 62,500")
    parser.add_argument("--snmp", type=int, default=500, help="of those, polled over SNMP")
    parser.add_argument("--kabupaten", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="results per check before measuring")
    parser.add_argument("--scrapes", type=int, default=3, help="per measurement")
    parser.add_argument("--quiet", type=float, default=3.0, help="seconds fed without scrapes")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() after loading")
    parser.add_argument("--gen0", type=int, default=0, help="gc gen-0 threshold (0: leave it)")
    parser.add_argument("--switch-interval", type=float, default=0.0,
                        help="sys.setswitchinterval (0: leave it at 5 ms)")
    parser.add_argument("--dump", help="write the per-target part of the body here (to diff)")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-echoes", action="store_true",
                        help="feed results without the stand-in echo socket traffic")
    args = parser.parse_args(argv)
    if not 1 <= args.icmp <= 62500 or not 0 <= args.snmp <= args.icmp:
        parser.error("need 1 <= --icmp <= 62500 and 0 <= --snmp <= --icmp")
    if shutil.which("curl") is None and not args.no_http:
        parser.error("curl is missing (apt-get install curl), or use --no-http")
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.gen0:
        gc.set_threshold(args.gen0, *gc.get_threshold()[1:])
    print(f"monitord: {monitord.__file__}")
    with tempfile.TemporaryDirectory(prefix="scrape_bench.") as tmp:
        province, figures = build(args.icmp, args.snmp, args.kabupaten, Path(tmp))
        print(f"checks: {len(province.icmp)} ICMP + {len(province.snmp)} SNMP; "
              f"{'chunked (new)' if province.chunked else 'str (old)'} renderer")
        figures |= feed(province, args.rounds, args.seed)
        if not args.no_freeze:  # as the daemon does after a load
            gc.collect()
            gc.freeze()
        figures["rss_fed_mb"] = rss_mb()  # the series held between scrapes
        figures |= measure_render(province, args.scrapes)
        if args.dump:
            body = b"".join(province.series_chunks())
            Path(args.dump).write_bytes(body)
            figures["dump_sha256"] = hashlib.sha256(body).hexdigest()[:16]
        if not args.no_http:
            figures |= asyncio.run(measure_http(province, args.scrapes, args.quiet,
                                                not args.no_echoes))
    figures["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for key, value in figures.items():
        print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
