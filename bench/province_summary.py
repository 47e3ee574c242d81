"""Helpers for bench/province_bench.sh: the province lab's configs, agent readiness, figures from
scrapes, and the result table.

Subcommands (key=value lines or Markdown on stdout):
  config            write a monitord config for the province: N devices 127.1.X.Y (a data
                    center, kabupaten links, villages), the first N_SNMP of them in a fixed
                    order also polled over SNMP (snmpsim serving the device recordings); with
                    --targets/--agents also the address list and the `address community` list
  exporter-config   write an snmp_exporter 0.21 config: bench/snmp_summary.py's `if_mib`
                    module once per community (in 0.21 the community is part of the module)
  agents-ready      wait (bounded) until every SNMP endpoint answers a GET from its own address
  window            figures of a measurement window from its first and last scrape: scheduler
                    lateness per kind, event-loop lag, probe outcomes, history writes; with
                    --scrapes also /metrics time, size and CPU and the RSS over time
  exporter-scrapes  snmp_exporter's scrapes of every device: ok, varbinds, latency
  table             render every figure (the key=value file the bench wrote) as Markdown, with
                    the goals' verdicts and a sizing table

Prometheus text is parsed with bench/exposition.py, histogram quantiles as icmp_summary.py does.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import socket
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import snmp_summary
from exposition import exposition_stats, number, samples
from icmp_summary import histogram_quantile

ROOT = Path(__file__).resolve().parent.parent

# Recording (= snmpsim community) -> the monitord modules that poll it: interfaces plus the
# health module the device has (as in tests/integration/lab.py).
BASE_MODULES = ("system", "if_mib")
MODULES: dict[str, tuple[str, ...]] = {
    "dc-switch-cisco-catalyst-ios": BASE_MODULES,
    "dc-firewall-fortinet-fortigate501e": BASE_MODULES,
    "dc-server-synology-rs2212rp": (*BASE_MODULES, "host_resources", "ucd"),
    "dc-server-vmware-esxi7-proliant-dl380p": (*BASE_MODULES, "host_resources"),
    "dc-ups-apc-smartups-rt3000xl": (*BASE_MODULES, "apc_ups"),
    "kabupaten-router-ubiquiti-edgerouter-pro8": (*BASE_MODULES, "host_resources", "ucd"),
    "village-ap-ubiquiti-litebeam5acgen2": (*BASE_MODULES, "radio_airmax"),
    "village-ap-mikrotik-rb952ui-5ac2nd": (*BASE_MODULES, "radio_mikrotik"),
    "village-ap-cambium-epmp": (*BASE_MODULES, "radio_cambium"),
    "village-ap-ubiquiti-airfiber5xhd": (*BASE_MODULES, "radio_airfiber"),
    "village-vsat-uhp-vsat-terminal": BASE_MODULES,
}
# Data-center devices after the core router, and village devices polled over SNMP, cycle
# through these (role, id prefix, recording).
DC_KINDS = (
    ("dc-network", "sw", "dc-switch-cisco-catalyst-ios"),
    ("dc-firewall", "fw", "dc-firewall-fortinet-fortigate501e"),
    ("dc-server", "nas", "dc-server-synology-rs2212rp"),
    ("dc-server", "hv", "dc-server-vmware-esxi7-proliant-dl380p"),
    ("dc-ups", "ups", "dc-ups-apc-smartups-rt3000xl"),
)
LINK_RECORDING = "kabupaten-router-ubiquiti-edgerouter-pro8"
VILLAGE_KINDS = (
    ("village-ap", "village-ap-ubiquiti-litebeam5acgen2"),
    ("village-ap", "village-ap-mikrotik-rb952ui-5ac2nd"),
    ("village-ap", "village-ap-cambium-epmp"),
    ("village-ap", "village-ap-ubiquiti-airfiber5xhd"),
    ("village-vsat", "village-vsat-uhp-vsat-terminal"),
)
DC_SIZE = 20  # devices in the data center, the core router included
CORE = "prov-core-rtr-01"
GOAL_LATENESS_P99_S = 0.05
GOAL_SCRAPE_S = 1.0
GOAL_LAG_S = 0.05


def emit(values: dict[str, object]) -> None:
    for key, value in values.items():
        text = str(value).replace("\n", " ").replace("=", ":")
        print(f"{key}={text}")


def fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def address_of(index: int) -> str:
    """Device `index` (0-based) -> 127.1.X.Y, Y in 1..250: up to 62,500 devices."""
    address = f"127.1.{index // 250}.{index % 250 + 1}"
    if not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"refusing non-loopback address {address}")
    return address


# ------------------------------------------------------------------------------------- inventory

@dataclass(frozen=True)
class Device:
    id: str
    kabupaten: str
    site: str
    role: str
    address: str
    recording: str | None  # polled over SNMP, served from this recording


@dataclass
class _Slot:
    """A device before the SNMP choice: where it sits and what it would be."""

    id: str
    kabupaten: str
    site: str
    role: str
    tier: str  # "dc", "link", "village": the order SNMP devices are chosen in
    dc_kind: int = -1


def _slots(n: int, kabupaten: int) -> list[_Slot]:
    """A data center (core router + DC_SIZE-1 devices), then kabupaten, each a link device in
    its kominfo office and one village device per village site behind it."""
    slots = [_Slot(CORE, "provinsi", "pusat-data", "dc-network", "core")]
    for i in range(1, min(DC_SIZE, n)):
        role, prefix, _ = DC_KINDS[(i - 1) % len(DC_KINDS)]
        slots.append(_Slot(f"prov-{prefix}-{i:02d}", "provinsi", "pusat-data", role, "dc",
                           (i - 1) % len(DC_KINDS)))
    rest = n - len(slots)
    count = min(kabupaten, max(1, rest // 10)) if rest > 0 else 0
    for k in range(count):
        villages = (rest - count) // count + (1 if k < (rest - count) % count else 0)
        kab = f"kab{k + 1:02d}"
        slots.append(_Slot(f"{kab}-link", kab, f"{kab}-kominfo", "kabupaten-link", "link"))
        slots += [_Slot(f"{kab}-ap{v + 1:04d}", kab, f"{kab}-desa{v + 1:04d}", "village-ap",
                        "village") for v in range(villages)]
    return slots


def province(n: int, n_snmp: int, kabupaten: int) -> list[Device]:
    """The devices in inventory order. SNMP goes to the data center's devices first, then the
    kabupaten links, then villages spread evenly over the province."""
    slots = _slots(n, kabupaten)
    chosen: set[int] = set()
    for tier in ("dc", "link"):
        for i, s in enumerate(slots):
            if s.tier == tier and len(chosen) < n_snmp:
                chosen.add(i)
    villages = [i for i, s in enumerate(slots) if s.tier == "village"]
    wanted = min(n_snmp - len(chosen), len(villages))
    chosen.update(villages[j * len(villages) // wanted] for j in range(wanted))
    devices: list[Device] = []
    village_ordinal = 0
    for i, s in enumerate(slots):
        role, recording = s.role, None
        if i in chosen and s.tier == "dc":
            recording = DC_KINDS[s.dc_kind][2]
        elif i in chosen and s.tier == "link":
            recording = LINK_RECORDING
        elif i in chosen:
            role, recording = VILLAGE_KINDS[village_ordinal % len(VILLAGE_KINDS)]
            village_ordinal += 1
        devices.append(Device(s.id, s.kabupaten, s.site, role, address_of(i), recording))
    return devices


def snmp_profile_name(recording: str) -> str:
    return "snmp-" + recording.split("-", 1)[1]


def cmd_config(args: argparse.Namespace) -> int:
    devices = province(args.devices, args.snmp_devices, args.kabupaten)
    polled = [d for d in devices if d.recording]
    with_snmp = not args.icmp_only and polled
    lines = [
        "# generated by bench/province_summary.py config (bench/province_bench.sh)",
        "daemon:",
        f"  listen: 127.0.0.1:{args.port}",
        f"  state_dir: {args.state_dir}",
        f"  max_concurrent_probes: {args.max_concurrent}",
        *([f"  scheduler_tick: {args.scheduler_tick}"] if args.scheduler_tick else []),
        "profiles:",
        "  province:",
        f"    interval: {args.interval}",
        f"    count: {args.count}",
        f"    packet_interval: {args.packet_interval}",
        f"    timeout: {args.timeout}",
    ]
    if with_snmp:
        lines += ["snmp:", "  profiles:"]
        for recording in sorted({d.recording for d in polled if d.recording}):
            lines += [
                f"    {snmp_profile_name(recording)}:",
                "      version: 2c",
                f"      community: {recording}",
                f"      port: {args.snmp_port}",
                f"      interval: {args.snmp_interval}",
                f"      timeout: {args.snmp_timeout}",
                "      retries: 1",
                f"      max_repetitions: {args.max_repetitions}",
                f"      max_oids_per_request: {args.max_oids}",
                f"      modules: [{', '.join(MODULES[recording])}]",
            ]
    lines += ["province:", "  id: bench", f"  uplink: {CORE}", "  defaults: {profile: province}",
              "  kabupaten:"]
    kab_open = site_open = ""
    for d in devices:
        if d.kabupaten != kab_open:
            kab_open, site_open = d.kabupaten, ""
            lines.append(f"    - id: {d.kabupaten}")
            if d.kabupaten != "provinsi":
                lines.append(f"      uplink: {d.kabupaten}-link")
            lines.append("      sites:")
        if d.site != site_open:
            site_open = d.site
            lines += [f"        - id: {d.site}", "          devices:"]
        snmp = f", snmp: {snmp_profile_name(d.recording)}" if with_snmp and d.recording else ""
        lines.append(f"            - {{id: {d.id}, role: {d.role}, address: {d.address}{snmp}}}")
    Path(args.out).write_text("\n".join(lines) + "\n")
    if args.targets:
        Path(args.targets).write_text("".join(f"{d.address}\n" for d in devices))
    if args.agents:
        Path(args.agents).write_text("".join(f"{d.address} {d.recording}\n" for d in polled))
    return 0


def read_agents(path: Path) -> list[tuple[str, str]]:
    agents = []
    for line in path.read_text().splitlines():
        address, community = line.split()
        snmp_summary.check_loopback(address)
        agents.append((address, community))
    return agents


def cmd_exporter_config(args: argparse.Namespace) -> int:
    """snmp_summary's if_mib module (upstream v0.21.0's), renamed after each community."""
    base = Path(args.out + ".if_mib")
    snmp_summary.cmd_exporter_config(argparse.Namespace(out=str(base),
                                                        max_repetitions=args.max_repetitions))
    module = base.read_text().splitlines()
    base.unlink()
    comments = [line for line in module if line.startswith("#")]
    body = [line for line in module if not line.startswith("#")]
    if body[0] != "if_mib:" or body[-1] != "    community: public":
        raise SystemExit("snmp_summary's exporter module changed shape: update exporter-config")
    out = [*comments, "# one copy per community (bench/province_summary.py exporter-config)"]
    for community in sorted({c for _, c in read_agents(Path(args.agents))}):
        out += [f"{community}:", *body[1:-1], f"    community: {community}"]
    Path(args.out).write_text("\n".join(out) + "\n")
    return 0


def cmd_agents_ready(args: argparse.Namespace) -> int:
    """GET sysObjectID.0 from every endpoint, again for those that have not answered yet, until
    all have (from the address asked) or max_seconds pass."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.snmp_agents import v2c_get_sysobjectid  # noqa: PLC0415

    pending = dict(read_agents(Path(args.agents)))
    total = len(pending)
    t0 = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while pending and time.monotonic() - t0 < args.max_seconds:
            for address, community in pending.items():
                sock.sendto(v2c_get_sysobjectid(community), (address, args.port))
            round_end = time.monotonic() + 1.0
            while pending and time.monotonic() < round_end:
                try:
                    data, (peer, port) = sock.recvfrom(65535)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if port == args.port and data[:1] == b"\x30":
                    pending.pop(peer, None)
    emit({"agents": total, "answering": total - len(pending),
          "missing": ",".join(sorted(pending)[:5]) or "-",
          "seconds": f"{time.monotonic() - t0:.1f}"})
    return 0 if not pending else 1


# ---------------------------------------------------------------------------------------- window

@dataclass
class Histogram:
    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0
    count: float = 0.0

    def minus(self, before: Histogram) -> Histogram:
        return Histogram({le: v - before.buckets.get(le, 0.0) for le, v in self.buckets.items()},
                         self.total - before.total, self.count - before.count)

    def share_above(self, bound: float) -> float:
        """Fraction of observations above `bound` (a bucket bound: exact, no interpolation)."""
        if self.count <= 0 or bound not in self.buckets:
            return math.nan
        return 1.0 - self.buckets[bound] / self.count

    def highest_bucket(self) -> float:
        """The lowest bucket bound that every observation is under: the maximum is <= this."""
        if self.count <= 0:
            return math.nan
        for le, cumulative in sorted(self.buckets.items()):
            if cumulative >= self.count:
                return le
        return math.inf


@dataclass
class WindowScrape:
    lateness: dict[str, Histogram] = field(default_factory=lambda: defaultdict(Histogram))
    lag: Histogram = field(default_factory=Histogram)
    lag_max: float = math.nan
    probes: dict[tuple[str, str], float] = field(default_factory=dict)
    skipped: dict[tuple[str, str], float] = field(default_factory=dict)
    events_written: float = 0.0
    unwritten: float = 0.0
    rss: float = math.nan


_WINDOW_WANTED = (
    "monitord_scheduler_lateness_seconds", "monitord_event_loop_lag_seconds",
    "monitord_event_loop_lag_max_seconds", "monitord_probes_total",
    "monitord_probes_skipped_total", "monitord_history_events_written_total",
    "monitord_history_events_unwritten", "process_resident_memory_bytes",
)


def _add_histogram(h: Histogram, name: str, labels: dict[str, str], value: float) -> None:
    if name.endswith("_bucket"):
        h.buckets[float(labels["le"])] = value
    elif name.endswith("_sum"):
        h.total = value
    elif name.endswith("_count"):
        h.count = value


def load_window_scrape(path: Path) -> WindowScrape:
    s = WindowScrape()
    for name, labels, value in samples(path, _WINDOW_WANTED):
        if name.startswith("monitord_scheduler_lateness_seconds"):
            _add_histogram(s.lateness[labels.get("kind", "")], name, labels, value)
        elif name == "monitord_event_loop_lag_max_seconds":
            s.lag_max = value
        elif name.startswith("monitord_event_loop_lag_seconds"):
            _add_histogram(s.lag, name, labels, value)
        elif name == "monitord_probes_total":
            s.probes[labels.get("kind", ""), labels.get("outcome", "")] = value
        elif name == "monitord_probes_skipped_total":
            s.skipped[labels.get("kind", ""), labels.get("reason", "")] = value
        elif name == "monitord_history_events_written_total":
            s.events_written = value
        elif name == "monitord_history_events_unwritten":
            s.unwritten = value
        elif name == "process_resident_memory_bytes":
            s.rss = value
    return s


def _ms(seconds: float) -> str:
    return fmt(seconds * 1e3, 2)


def _histogram_figures(prefix: str, h: Histogram) -> dict[str, object]:
    return {
        f"{prefix}_count": int(h.count),
        f"{prefix}_p50_ms": _ms(histogram_quantile(0.5, h.buckets)),
        f"{prefix}_p99_ms": _ms(histogram_quantile(0.99, h.buckets)),
        f"{prefix}_mean_ms": _ms(h.total / h.count if h.count > 0 else math.nan),
        f"{prefix}_above_50ms_pct": fmt(h.share_above(0.05) * 100, 3),
        f"{prefix}_above_100ms_pct": fmt(h.share_above(0.1) * 100, 3),
        f"{prefix}_max_le_ms": _ms(h.highest_bucket()),
    }


@dataclass(frozen=True)
class ScrapeRow:
    """One timed /metrics scrape (a line of the bench's scrapes.tsv)."""

    t: float  # seconds since the window started
    wall: float
    size: int
    cpu: float  # process CPU seconds during the scrape (all of it, probing included)
    lag_max: float
    rss_kb: float
    inside: bool  # inside the window's CPU reading


def read_scrapes(path: Path) -> list[ScrapeRow]:
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("t\t"):
            continue
        t, wall, size, cpu, lag, rss, inside = line.split("\t")
        rows.append(ScrapeRow(float(t), float(wall), int(size), float(cpu), number(lag),
                              number(rss), inside == "1"))
    return rows


def _slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 2:
        return math.nan
    mx = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(v for _, v in points)
    var = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / var * 3600 if var > 0 else math.nan


def _quarter_median(points: list[tuple[float, float]], quarter: int) -> float:
    """Median value of the quarter-th quarter (0-3) of the readings, in time order."""
    n = len(points)
    return statistics.median(v for _, v in points[quarter * n // 4:(quarter + 1) * n // 4])


def _scrape_figures(rows: list[ScrapeRow], cpu_s: float, wall_s: float) -> dict[str, object]:
    """Scrape time, size and CPU; probing CPU = the window's minus what its scrapes cost.

    A scrape's CPU reading also holds the probing done meanwhile: with p the probing rate,
    window CPU = p * (wall - scrape walls inside) + CPU read during those scrapes, so
    p = (cpu - Σcpu_inside) / (wall - Σwall_inside) and a scrape's own cost = cpu - p * wall."""
    inside = [r for r in rows if r.inside]
    rate = (cpu_s - sum(r.cpu for r in inside)) / (wall_s - sum(r.wall for r in inside))
    costs = [r.cpu - rate * r.wall for r in rows]
    walls = [r.wall for r in rows]
    rss = [(r.t, r.rss_kb) for r in rows if not math.isnan(r.rss_kb)]
    lags = [r.lag_max for r in rows if not math.isnan(r.lag_max)]
    mid = rss[len(rss) // 2][1] if rss else math.nan
    return {
        "scrapes": len(rows),
        "scrape_p50_s": fmt(statistics.median(walls), 3),
        "scrape_max_s": fmt(max(walls), 3),
        "scrape_bytes": rows[-1].size,
        "scrape_cpu_mean_s": fmt(statistics.fmean(costs), 3),
        "scrape_cpu_max_s": fmt(max(costs), 3),
        "probing_cpu_rate": f"{rate:.5f}",
        "probing_cpu_s": fmt(rate * wall_s, 3),
        "lag_max_gauge_max_ms": _ms(max(lags) if lags else math.nan),
        "rss_first_kb": int(rss[0][1]) if rss else "-",
        "rss_mid_kb": int(mid) if rss else "-",
        "rss_last_kb": int(rss[-1][1]) if rss else "-",
        "rss_max_kb": int(max(v for _, v in rss)) if rss else "-",
        "rss_slope_mb_per_h": fmt(_slope_per_hour(rss) / 1024, 1),
        # a single reading moves with the last scrape's buffers: compare quarters' medians
        "rss_q2_median_kb": int(_quarter_median(rss, 1)) if len(rss) >= 4 else "-",
        "rss_q4_median_kb": int(_quarter_median(rss, 3)) if len(rss) >= 4 else "-",
        "rss_slope_2nd_half_mb_per_h": fmt(_slope_per_hour(rss[len(rss) // 2:]) / 1024, 1),
    }


def cmd_window(args: argparse.Namespace) -> int:
    a, b = load_window_scrape(Path(args.before)), load_window_scrape(Path(args.after))
    out: dict[str, object] = {}
    for kind in sorted(b.lateness):
        out.update(_histogram_figures(f"lateness_{kind}", b.lateness[kind].minus(a.lateness[kind])))
    out.update(_histogram_figures("lag", b.lag.minus(a.lag)))
    out["lag_max_gauge_end_ms"] = _ms(b.lag_max)
    for (kind, outcome), value in sorted(b.probes.items()):
        out[f"probes_{kind}_{outcome}"] = int(value - a.probes.get((kind, outcome), 0.0))
    for (kind, reason), value in sorted(b.skipped.items()):
        out[f"skipped_{kind}_{reason}"] = int(value - a.skipped.get((kind, reason), 0.0))
    out["history_events_written"] = int(b.events_written - a.events_written)
    out["history_events_unwritten_end"] = int(b.unwritten)
    size, series = exposition_stats(Path(args.after))
    out["bytes"], out["series"] = size, series
    if args.scrapes:
        out.update(_scrape_figures(read_scrapes(Path(args.scrapes)), args.cpu_s, args.wall_s))
    emit(out)
    return 0


# ------------------------------------------------------------------------------ snmp_exporter

def cmd_exporter_scrapes(args: argparse.Namespace) -> int:
    """Every scrape's body in DIR/<address>.prom; TIMES has `code seconds` per scrape."""
    ok = failed = varbinds = size = 0
    for address, _ in read_agents(Path(args.agents)):
        body = Path(args.dir) / f"{address}.prom"
        pdus = [v for _, _, v in samples(body, ("snmp_scrape_pdus_returned",))] \
            if body.exists() else []
        # ifType is in every recording's ifTable (several lack ifIndex and the 32-bit octets)
        if pdus and (b"\nifType_info{" in (data := body.read_bytes())):
            ok += 1
            varbinds += int(pdus[0])
            size += len(data)
        else:
            failed += 1
    lines = [line.split() for line in Path(args.times).read_text().splitlines() if line.strip()]
    codes = [parts[0] for parts in lines]
    times = [float(parts[1]) for parts in lines if len(parts) == 2]
    emit({
        "ok": ok, "failed": failed, "http_not_200": sum(1 for c in codes if c != "200"),
        "varbinds": varbinds,
        "varbinds_per_scrape": fmt(varbinds / ok if ok else math.nan, 1),
        "bytes_per_scrape": fmt(size / ok if ok else math.nan, 0),
        "p50_ms": fmt(statistics.median(times) * 1e3 if times else math.nan, 1),
        "p99_ms": fmt(statistics.quantiles(times, n=100)[98] * 1e3 if len(times) > 1 else math.nan, 1),
    })
    return 0


# ----------------------------------------------------------------------------------------- table

class Figures:
    """The bench's key=value file, read with defaults (a skipped run leaves keys out)."""

    def __init__(self, path: Path) -> None:
        self.values: dict[str, str] = {}
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                self.values[key.strip()] = value.strip()

    def text(self, key: str) -> str:
        return self.values.get(key, "-")

    def num(self, key: str) -> float:
        return number(self.values.get(key, "").replace(",", ""))

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self.values.items())


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


def _below(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value < limit


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


@dataclass(frozen=True)
class Derived:
    """What the tables show, computed from the raw figures."""

    icmp_us_per_echo: float  # ICMP-only run, quiet window: process CPU / echoes sent
    fping_us_per_echo: float
    icmp_ms_per_target_round: float
    snmp_cpu_s: float  # full run's quiet window minus the ICMP-only run's CPU rate
    snmp_us_per_varbind: float
    snmp_ms_per_poll: float
    exporter_us_per_varbind: float
    quiet_cpu_share: float  # full run, quiet window: share of one core
    scraped_cpu_share: float  # full run, scraped window
    scrapes_cpu_share: float  # of which the scrapes themselves (their own wall time)


def derive(f: Figures) -> Derived:
    icmp_rate = _ratio(f.num("icmp.cpu_s"), f.num("icmp.wall_s"))
    snmp_cpu = f.num("quiet.cpu_s") - icmp_rate * f.num("quiet.wall_s")
    rounds = _ratio(f.num("icmp.wall_s"), f.num("interval_s"))
    scraped = _ratio(f.num("full.cpu_s"), f.num("full.wall_s"))
    return Derived(
        icmp_us_per_echo=_ratio(f.num("icmp.cpu_s"), f.num("icmp.echoes")) * 1e6,
        fping_us_per_echo=_ratio(f.num("fping.cpu_s"), f.num("fping.echoes")) * 1e6,
        icmp_ms_per_target_round=_ratio(f.num("icmp.cpu_s"), f.num("n_icmp") * rounds) * 1e3,
        snmp_cpu_s=snmp_cpu,
        snmp_us_per_varbind=_ratio(snmp_cpu, f.num("quiet.snmp.varbinds")) * 1e6,
        snmp_ms_per_poll=_ratio(snmp_cpu, f.num("quiet.snmp.polls")) * 1e3,
        exporter_us_per_varbind=_ratio(f.num("exporter.cpu_s"), f.num("exporter.varbinds")) * 1e6,
        quiet_cpu_share=_ratio(f.num("quiet.cpu_s"), f.num("quiet.wall_s")),
        scraped_cpu_share=scraped,
        scrapes_cpu_share=scraped - f.num("full.probing_cpu_rate"),
    )


def _skipped(f: Figures, window: str) -> int:
    return int(sum(number(v) for k, v in f.items() if k.startswith(f"{window}.skipped_")))


def _not_done(f: Figures, window: str) -> float:
    """ICMP probes that failed or ran out of time, and SNMP polls that failed."""
    return sum(f.num(f"{window}.{k}") for k in (
        "probes_icmp_failure", "probes_icmp_deadline_exceeded", "snmp.failed"))


def _lateness(f: Figures, window: str, kind: str) -> str:
    p = f"{window}.lateness_{kind}"
    return (f"{f.text(p + '_p50_ms')} / {f.text(p + '_p99_ms')} ms; "
            f"{f.text(p + '_above_50ms_pct')} % of {f.text(p + '_count')} > 50 ms, "
            f"max <= {f.text(p + '_max_le_ms')} ms")


def _lag(f: Figures, window: str, gauge: str) -> str:
    return (f"{f.text(f'{window}.{gauge}')} ms (histogram p99 {f.text(f'{window}.lag_p99_ms')} "
            f"ms, {f.text(f'{window}.lag_above_50ms_pct')} % of "
            f"{f.text(f'{window}.lag_count')} samples > 50 ms)")


def _memory_flat(f: Figures) -> bool | None:
    """Flat: the median RSS of the window's last quarter within 2 % of its second quarter's."""
    q2, q4 = f.num("full.rss_q2_median_kb"), f.num("full.rss_q4_median_kb")
    if math.isnan(q2) or math.isnan(q4):
        return None
    return abs(q4 - q2) / q2 < 0.02


def _windows(f: Figures) -> list[str]:
    """The full run's windows that ran (no quiet one with QUIET_S=0)."""
    return ["full", "quiet"] if f.num("quiet.wall_s") > 0 else ["full"]


def _cpu_rows(f: Figures, d: Derived) -> list[str]:
    return [
        f"| process CPU per echo sent (ICMP-only run, {fmt(f.num('icmp.echoes'), 0)} echoes) "
        f"| {fmt(d.icmp_us_per_echo, 1)} µs | - | fping {f.text('fping.version')} -C"
        f"{f.text('count')}, same {fmt(f.num('n_icmp'), 0)} targets: {fmt(d.fping_us_per_echo, 1)} µs; "
        f"monitord/fping {fmt(_ratio(d.icmp_us_per_echo, d.fping_us_per_echo), 2)} | - | - |",
        f"| process CPU per varbind, SNMP (quiet window minus the ICMP-only CPU rate; "
        f"{fmt(f.num('quiet.snmp.varbinds'), 0)} varbinds in {fmt(f.num('quiet.snmp.polls'), 0)} "
        f"polls) | {fmt(d.snmp_us_per_varbind, 2)} µs ({fmt(d.snmp_ms_per_poll, 2)} ms per poll) "
        f"| - | snmp_exporter {f.text('exporter.version')} `if_mib`, one scrape of each device: "
        f"{fmt(d.exporter_us_per_varbind, 2)} µs; monitord/exporter "
        f"{fmt(_ratio(d.snmp_us_per_varbind, d.exporter_us_per_varbind), 2)} (PEERS.md: 17.5 µs "
        f"on 8,000-varbind walks) | - | - |",
        f"| process CPU, share of one core | {fmt(d.quiet_cpu_share * 100, 1)} % "
        f"| {fmt(d.scraped_cpu_share * 100, 1)} % ({fmt(d.scrapes_cpu_share * 100, 1)} % in the "
        f"{f.text('full.scrapes_inside')} scrapes' own wall time) | - | - | - |",
        f"| probes and polls done / failed / skipped | {f.text('quiet.probes_icmp_success')} ICMP +"
        f" {f.text('quiet.snmp.complete')} SNMP / {fmt(_not_done(f, 'quiet'), 0)} / "
        f"{_skipped(f, 'quiet')} | {f.text('full.probes_icmp_success')} ICMP + "
        f"{f.text('full.snmp.complete')} SNMP / {fmt(_not_done(f, 'full'), 0)} / "
        f"{_skipped(f, 'full')} | - | everything on one process | "
        f"{_verdict(all(_not_done(f, w) == 0 and not _skipped(f, w) for w in _windows(f)))} |",
    ]


def _results_table(f: Figures, d: Derived) -> list[str]:
    mb = 1 / 1024
    lost_ok = all(f.text(f"{w}.icmp.lost") == "0" for w in _windows(f)) \
        and f.num("full.icmp.requests") > 0
    return [
        f"| figure | quiet window ({f.text('quiet.wall_s')} s, no scrape) | scraped window "
        f"({f.text('full.wall_s')} s, /metrics every {f.text('scrape_interval_s')} s) "
        "| peer, same run | goal | verdict |",
        "|---|---|---|---|---|---|",
        *_cpu_rows(f, d),
        f"| lost echoes | {f.text('quiet.icmp.lost')} of {f.text('quiet.icmp.requests')} "
        f"| {f.text('full.icmp.lost')} of {f.text('full.icmp.requests')} | fping: "
        f"{f.text('fping.lost')} of {f.text('fping.echoes')} | 0 | {_verdict(lost_ok)} |",
        f"| SNMP polls failed (errors) | {f.text('quiet.snmp.failed')} of "
        f"{f.text('quiet.snmp.polls')} ({f.text('quiet.snmp.errors')}) | {f.text('full.snmp.failed')}"
        f" of {f.text('full.snmp.polls')} ({f.text('full.snmp.errors')}) | snmp_exporter: "
        f"{f.text('exporter.failed')} of {fmt(f.num('exporter.ok') + f.num('exporter.failed'), 0)}"
        f" | 0 | {_verdict(f.text('full.snmp.failed') == '0')} |",
        f"| scheduler lateness ICMP, p50 / p99 (interpolated) | {_lateness(f, 'quiet', 'icmp')} "
        f"| {_lateness(f, 'full', 'icmp')} | - | p99 < 50 ms "
        f"| {_verdict(_below(f.num('full.lateness_icmp_p99_ms'), GOAL_LATENESS_P99_S * 1e3))} |",
        f"| scheduler lateness SNMP, p50 / p99 (interpolated) | {_lateness(f, 'quiet', 'snmp')} "
        f"| {_lateness(f, 'full', 'snmp')} | - | p99 < 50 ms "
        f"| {_verdict(_below(f.num('full.lateness_snmp_p99_ms'), GOAL_LATENESS_P99_S * 1e3))} |",
        f"| /metrics scrape: time p50 / max, size, CPU | - | {f.text('full.scrape_p50_s')} / "
        f"{f.text('full.scrape_max_s')} s over {f.text('full.scrapes')} scrapes; "
        f"{fmt(f.num('full.scrape_bytes') / 1e6, 1)} MB, {f.text('full.series')} series; "
        f"{f.text('full.scrape_cpu_mean_s')} s CPU each | snmp_exporter (one device per scrape, "
        f"{f.text('exporter_conc')} in parallel): p50 {f.text('exporter.p50_ms')} ms, "
        f"{f.text('exporter.bytes_per_scrape')} bytes | < 1 s "
        f"| {_verdict(_below(f.num('full.scrape_max_s'), GOAL_SCRAPE_S))} |",
        f"| event-loop stall: largest `monitord_event_loop_lag_max_seconds` read "
        f"| {_lag(f, 'quiet', 'lag_max_gauge_end_ms')} "
        f"| {_lag(f, 'full', 'lag_max_gauge_max_ms')} | - | < 50 ms "
        f"| {_verdict(_below(f.num('full.lag_max_gauge_max_ms'), GOAL_LAG_S * 1e3))} |",
        f"| RSS | at ready {fmt(f.num('full.rss_ready_kb') * mb, 0)} MB, after warm-up and the "
        f"quiet window {fmt(f.num('quiet.rss_kb') * mb, 0)} MB | start / middle / end / max "
        f"{fmt(f.num('full.rss_first_kb') * mb, 0)} / {fmt(f.num('full.rss_mid_kb') * mb, 0)} / "
        f"{fmt(f.num('full.rss_last_kb') * mb, 0)} / {fmt(f.num('full.rss_max_kb') * mb, 0)} MB, "
        f"medians of the 2nd / 4th quarter {fmt(f.num('full.rss_q2_median_kb') * mb, 1)} / "
        f"{fmt(f.num('full.rss_q4_median_kb') * mb, 1)} MB, slope {f.text('full.rss_slope_mb_per_h')}"
        f" MB/h ({f.text('full.rss_slope_2nd_half_mb_per_h')} in the 2nd half) | fping (peak) "
        f"{fmt(f.num('fping.rss_kb') * mb, 0)} MB, snmp_exporter {fmt(f.num('exporter.rss_kb') * mb, 0)}"
        f" MB | flat | {_verdict(_memory_flat(f))} |",
    ]


def _sizing_table(f: Figures, d: Derived) -> list[str]:
    n_icmp, n_snmp = f.num("n_icmp"), f.num("n_snmp")
    icmp_per_core = _ratio(f.num("interval_s"), d.icmp_ms_per_target_round / 1e3)
    snmp_per_core = _ratio(f.num("snmp_interval_s"), d.snmp_ms_per_poll / 1e3)
    baseline = f.num("baseline.rss_kb")
    mem_ready = (f.num("icmp.rss_ready_kb") - baseline) / 1024 / (n_icmp / 1000)
    mem_all = (f.num("full.rss_max_kb") - baseline) / 1024 / ((n_icmp + n_snmp) / 1000)
    scrape_per_target = f.num("full.scrape_p50_s") / (n_icmp + n_snmp)
    return [
        "| quantity | measured | derived |",
        "|---|---|---|",
        f"| ICMP: process CPU per target and round ({f.text('count')} echoes, scheduling, state "
        f"engine; ICMP-only run) | {fmt(d.icmp_ms_per_target_round, 3)} ms | ~{fmt(icmp_per_core, 0)}"
        f" targets per core at one round per {fmt(f.num('interval_s'), 0)} s, CPU alone |",
        f"| SNMP: process CPU per device poll (this mix: {f.text('quiet.snmp.varbinds_per_walk')} "
        f"varbinds, {f.text('quiet.snmp.requests_per_walk')} requests per poll) "
        f"| {fmt(d.snmp_ms_per_poll, 2)} ms | ~{fmt(snmp_per_core, 0)} devices per core at one "
        f"poll per {fmt(f.num('snmp_interval_s'), 0)} s, CPU alone |",
        f"| /metrics: time per target (p50 scrape / targets), bytes per target "
        f"| {fmt(scrape_per_target * 1e6, 1)} µs, {fmt(f.num('full.scrape_bytes') / (n_icmp + n_snmp), 0)}"
        f" bytes | a 1 s scrape at ~{fmt(GOAL_SCRAPE_S / scrape_per_target, 0)} targets; the scrape,"
        " not the CPU, sets the limit |",
        f"| memory per 1,000 ICMP targets at ready (RSS - empty daemon's "
        f"{fmt(baseline / 1024, 0)} MB) | {fmt(mem_ready, 1)} MB | inventory and series |",
        f"| memory per 1,000 targets, all in (full run's max RSS - empty daemon) "
        f"| {fmt(mem_all, 1)} MB | {fmt(mem_all * (n_icmp + n_snmp) / 1000 + baseline / 1024, 0)}"
        f" MB for this province |",
    ]


def cmd_table(args: argparse.Namespace) -> int:
    f = Figures(Path(args.figures))
    d = derive(f)
    out = [f"# {args.title}", "", "## Results", "", *_results_table(f, d), "",
           "## Sizing (from the figures above)", "", *_sizing_table(f, d), "",
           "## Every figure (key=value, as recorded)", "", "```"]
    out += [f"{k}={v}" for k, v in f.items()]
    out += ["```"]
    text = "\n".join(out) + "\n"
    Path(args.out).write_text(text)
    print(text, end="")
    return 0


# ------------------------------------------------------------------------------------------ main

def _config_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config")
    p.add_argument("--out", required=True)
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--snmp-devices", type=int, default=0)
    p.add_argument("--icmp-only", action="store_true", help="the same inventory without SNMP")
    p.add_argument("--kabupaten", type=int, default=40)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--max-concurrent", type=int, default=2000)
    p.add_argument("--scheduler-tick", default="", help="daemon.scheduler_tick (default: monitord's)")
    p.add_argument("--interval", default="60s")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--packet-interval", default="1s")
    p.add_argument("--timeout", default="2s")
    p.add_argument("--snmp-port", type=int, default=1161)
    p.add_argument("--snmp-interval", default="60s")
    p.add_argument("--snmp-timeout", default="2s")
    p.add_argument("--max-repetitions", type=int, default=25)
    p.add_argument("--max-oids", type=int, default=10)
    p.add_argument("--targets", help="also write every device address here")
    p.add_argument("--agents", help="also write `address community` of SNMP devices here")
    p.set_defaults(func=cmd_config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _config_parser(sub)
    p = sub.add_parser("exporter-config")
    p.add_argument("--agents", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-repetitions", type=int, default=25)
    p.set_defaults(func=cmd_exporter_config)
    p = sub.add_parser("agents-ready")
    p.add_argument("--agents", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.set_defaults(func=cmd_agents_ready)
    p = sub.add_parser("window")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--scrapes", help="scrapes.tsv of the window (then --cpu-s and --wall-s)")
    p.add_argument("--cpu-s", type=float, default=math.nan)
    p.add_argument("--wall-s", type=float, default=math.nan)
    p.set_defaults(func=cmd_window)
    p = sub.add_parser("exporter-scrapes")
    p.add_argument("--agents", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--times", required=True)
    p.set_defaults(func=cmd_exporter_scrapes)
    p = sub.add_parser("table")
    p.add_argument("figures")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="Province bench")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
