"""Helpers for bench/snmp_bench.sh: configs, an HTTP load client, scrape deltas, profile, table.

Subcommands (key=value lines or Markdown on stdout):
  exporter-config  write an snmp_exporter 0.21 config with an `if_mib` module equivalent to
                   upstream v0.21.0's (every ifTable + ifXTable column, ifAlias/ifDescr/ifName
                   lookups, sysUpTime GET)
  monitord-config  write a monitord config: N devices 127.0.0.1..N, one SNMP profile, either the
                   shipped `if_mib` module or `bench_if_all` (the same columns as snmp_exporter)
  load             N HTTP GETs at a fixed concurrency (stdlib threads), with the server's CPU
  monitord         deltas between two monitord /metrics scrapes      -> key=value lines
  profile          top functions of a `py-spy record --format raw` file -> Markdown
  median           the median of a file of numbers (one per line)
  table            render the result rows (TSV) as Markdown, with SUMMARY lines

Prometheus text is parsed with bench/exposition.py.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from exposition import exposition_stats, number, samples

IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1"
IF_NUMBER = "1.3.6.1.2.1.2.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3"

# snmp_exporter's if_mib metrics of the two tables (upstream v0.21.0 snmp.yml, generated from
# IF-MIB): (name, OID, snmp_exporter type). ifDescr, ifName and ifAlias are not metrics there:
# they are walked too, as lookups that label every row.
IF_METRICS: tuple[tuple[str, str, str], ...] = (
    ("ifIndex", f"{IF_TABLE}.1", "gauge"),
    ("ifType", f"{IF_TABLE}.3", "EnumAsInfo"),
    ("ifMtu", f"{IF_TABLE}.4", "gauge"),
    ("ifSpeed", f"{IF_TABLE}.5", "gauge"),
    ("ifPhysAddress", f"{IF_TABLE}.6", "PhysAddress48"),
    ("ifAdminStatus", f"{IF_TABLE}.7", "gauge"),
    ("ifOperStatus", f"{IF_TABLE}.8", "gauge"),
    ("ifLastChange", f"{IF_TABLE}.9", "gauge"),
    ("ifInOctets", f"{IF_TABLE}.10", "counter"),
    ("ifInUcastPkts", f"{IF_TABLE}.11", "counter"),
    ("ifInNUcastPkts", f"{IF_TABLE}.12", "counter"),
    ("ifInDiscards", f"{IF_TABLE}.13", "counter"),
    ("ifInErrors", f"{IF_TABLE}.14", "counter"),
    ("ifInUnknownProtos", f"{IF_TABLE}.15", "counter"),
    ("ifOutOctets", f"{IF_TABLE}.16", "counter"),
    ("ifOutUcastPkts", f"{IF_TABLE}.17", "counter"),
    ("ifOutNUcastPkts", f"{IF_TABLE}.18", "counter"),
    ("ifOutDiscards", f"{IF_TABLE}.19", "counter"),
    ("ifOutErrors", f"{IF_TABLE}.20", "counter"),
    ("ifOutQLen", f"{IF_TABLE}.21", "gauge"),
    ("ifSpecific", f"{IF_TABLE}.22", "OctetString"),
    ("ifInMulticastPkts", f"{IF_X_TABLE}.2", "counter"),
    ("ifInBroadcastPkts", f"{IF_X_TABLE}.3", "counter"),
    ("ifOutMulticastPkts", f"{IF_X_TABLE}.4", "counter"),
    ("ifOutBroadcastPkts", f"{IF_X_TABLE}.5", "counter"),
    ("ifHCInOctets", f"{IF_X_TABLE}.6", "counter"),
    ("ifHCInUcastPkts", f"{IF_X_TABLE}.7", "counter"),
    ("ifHCInMulticastPkts", f"{IF_X_TABLE}.8", "counter"),
    ("ifHCInBroadcastPkts", f"{IF_X_TABLE}.9", "counter"),
    ("ifHCOutOctets", f"{IF_X_TABLE}.10", "counter"),
    ("ifHCOutUcastPkts", f"{IF_X_TABLE}.11", "counter"),
    ("ifHCOutMulticastPkts", f"{IF_X_TABLE}.12", "counter"),
    ("ifHCOutBroadcastPkts", f"{IF_X_TABLE}.13", "counter"),
    ("ifLinkUpDownTrapEnable", f"{IF_X_TABLE}.14", "gauge"),
    ("ifHighSpeed", f"{IF_X_TABLE}.15", "gauge"),
    ("ifPromiscuousMode", f"{IF_X_TABLE}.16", "gauge"),
    ("ifConnectorPresent", f"{IF_X_TABLE}.17", "gauge"),
    ("ifCounterDiscontinuityTime", f"{IF_X_TABLE}.19", "gauge"),
)
IF_LOOKUPS: tuple[tuple[str, str], ...] = (  # (snmp_exporter label, OID), upstream order
    ("ifAlias", f"{IF_X_TABLE}.18"), ("ifDescr", f"{IF_TABLE}.2"), ("ifName", f"{IF_X_TABLE}.1"),
)
# Upstream's enum_values. ifType's has ~300 IANAifType entries; only the ones an interface
# here can have are kept (a map lookup costs the same either way; an unknown value is shown
# as its number).
ENUMS: dict[str, dict[int, str]] = {
    "ifType": {1: "other", 6: "ethernetCsmacd", 24: "softwareLoopback", 53: "propVirtual",
               131: "tunnel", 135: "l2vlan", 161: "ieee8023adLag", 209: "bridge"},
    "ifAdminStatus": {1: "up", 2: "down", 3: "testing"},
    "ifOperStatus": {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant",
                     6: "notPresent", 7: "lowerLayerDown"},
    "ifLinkUpDownTrapEnable": {1: "enabled", 2: "disabled"},
    "ifPromiscuousMode": {1: "true", 2: "false"},
    "ifConnectorPresent": {1: "true", 2: "false"},
}
# The bench module turns the two string-valued exporter metrics into row labels (snmp_exporter
# renders them as a label on a constant-1 sample, which is the same information).
LABEL_METRICS = {"ifPhysAddress": "if_phys_address", "ifSpecific": "if_specific"}
BENCH_MODULE = "bench_if_all"


def snake(name: str) -> str:
    """ifHCInOctets -> if_hc_in_octets (promtool wants snake_case metric names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def emit(values: dict[str, object]) -> None:
    for key, value in values.items():
        print(f"{key}={value}")


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def check_loopback(address: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        sys.exit(f"refusing non-loopback address {address!r}")


# ---------------------------------------------------------------------------------------- configs

def cmd_exporter_config(args: argparse.Namespace) -> int:
    lines = [
        "# generated by bench/snmp_summary.py exporter-config (bench/snmp_bench.sh): the if_mib",
        "# module of upstream snmp_exporter v0.21.0's snmp.yml (pre-0.23 format: modules at the top",
        "# level, auth inside), help texts shortened, ifType's enum reduced.",
        "if_mib:",
        "  walk:",
        "  - 1.3.6.1.2.1.2",
        "  - 1.3.6.1.2.1.31.1.1",
        "  get:",
        f"  - {SYS_UPTIME}.0",
        "  metrics:",
        "  - name: sysUpTime",
        f"    oid: {SYS_UPTIME}",
        "    type: gauge",
        "    help: The time (in hundredths of a second) since the agent was last re-initialized.",
        "  - name: ifNumber",
        f"    oid: {IF_NUMBER}",
        "    type: gauge",
        "    help: The number of network interfaces present on this system.",
    ]
    for name, oid, kind in IF_METRICS:
        lines += [f"  - name: {name}", f"    oid: {oid}", f"    type: {kind}",
                  f"    help: IF-MIB {name} - {oid}",
                  "    indexes:", "    - labelname: ifIndex", "      type: gauge", "    lookups:"]
        for label, label_oid in IF_LOOKUPS:
            lines += ["    - labels:", "      - ifIndex", f"      labelname: {label}",
                      f"      oid: {label_oid}", "      type: DisplayString"]
        if name in ENUMS:
            lines.append("    enum_values:")
            lines += [f'      {k}: "{v}"' for k, v in ENUMS[name].items()]
    lines += ["  version: 2", f"  max_repetitions: {args.max_repetitions}", "  retries: 1",
              "  timeout: 5s", "  auth:", "    community: public"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


def _bench_module() -> list[str]:
    """A monitord module walking every column snmp_exporter's if_mib walks, every poll."""
    out = [
        f"    {BENCH_MODULE}:",
        "      description: bench only - every ifTable + ifXTable column, like snmp_exporter if_mib",
        "      scalars:",
        "        - name: bench_if_number",
        "          help: ifNumber",
        f"          oid: {IF_NUMBER}.0",
        "      tables:",
        "        - name: interfaces",
        "          index: [if_index]",
        "          label_refresh: 1ms   # labels walked on every poll, as snmp_exporter does",
        "          labels:",
        f"            - {{name: if_descr, oid: {IF_TABLE}.2}}",
        f"            - {{name: if_name, oid: {IF_X_TABLE}.1}}",
        f"            - {{name: if_alias, oid: {IF_X_TABLE}.18}}",
    ]
    out += [f"            - {{name: {label}, oid: {oid}}}"
            for name, oid, _ in IF_METRICS if (label := LABEL_METRICS.get(name))]
    out.append("          metrics:")
    for name, oid, kind in IF_METRICS:
        if name in LABEL_METRICS:
            continue
        counter = kind == "counter"
        # promtool: a gauge's name must not contain "counter"
        metric = snake(name).replace("counter_discontinuity", "discontinuity")
        out += [f"            - name: bench_{metric}{'_total' if counter else ''}",
                f"              type: {'counter' if counter else 'gauge'}",
                f"              help: {name}",
                f"              oid: {oid}"]
    return out


def cmd_monitord_config(args: argparse.Namespace) -> int:
    module = "if_mib" if args.module == "if_mib" else BENCH_MODULE
    lines = [
        "# generated by bench/snmp_summary.py monitord-config (bench/snmp_bench.sh)",
        "daemon:",
        f"  listen: 127.0.0.1:{args.port}",
        f"  state_dir: {args.state_dir}",
        "profiles:",
        "  quiet:            # every device is also pinged: once an hour, so not in the window",
        "    interval: 1h",
        "    count: 1",
        "    timeout: 1s",
        "snmp:",
        "  profiles:",
        "    bench:",
        "      version: 2c",
        "      community: public",
        f"      port: {args.snmp_port}",
        f"      interval: {args.interval}",
        f"      timeout: {args.timeout}",
        "      retries: 1",
        f"      max_repetitions: {args.max_repetitions}",
        f"      max_oids_per_request: {args.max_oids}",
        f"      modules: [{module}]",
    ]
    if module == BENCH_MODULE:
        lines += ["  modules:", *_bench_module()]
    lines += [
        "province:",
        "  id: bench",
        "  defaults: {profile: quiet, role: dc-server, snmp: bench}",
        "  kabupaten:",
        "    - id: loopback",
        "      sites:",
        "        - id: lo",
        "          devices:",
    ]
    for i in range(1, args.devices + 1):
        address = f"127.0.0.{i}"
        check_loopback(address)
        lines.append(f"            - {{id: d{i:03d}, address: {address}}}")
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


# ------------------------------------------------------------------------------------ HTTP load

def proc_cpu(pid: int) -> float:
    """utime + stime (all threads) of a running process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class LoadStats:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    expect_ok: int = 0
    samples: int = 0
    size: int = 0
    errors: list[str] = field(default_factory=list)


def cmd_load(args: argparse.Namespace) -> int:
    """Exactly `n` GETs of one loopback URL by `concurrency` threads; bounded in time."""
    host = urllib.parse.urlsplit(args.url).hostname or ""
    check_loopback(host)
    lock = threading.Lock()
    stats = LoadStats()
    todo = iter(range(args.n))
    stop_at = time.monotonic() + args.max_seconds

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                if next(todo, None) is None:
                    return
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(args.url, timeout=args.req_timeout) as r:  # noqa: S310 (loopback, checked)
                    body = r.read()
                    good = r.status == 200
            except (urllib.error.URLError, OSError) as exc:
                with lock:
                    stats.failed += 1
                    stats.errors.append(repr(exc)[:120])
                continue
            dt = time.perf_counter() - t0
            expected = args.expect.encode() in body
            samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            with lock:
                stats.latencies.append(dt)
                stats.ok += good
                stats.failed += not good
                stats.expect_ok += good and expected
                stats.samples += samples
                stats.size += len(body)

    s0 = proc_cpu(args.server_pid)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic()) + args.req_timeout)
    wall = time.perf_counter() - t0
    s1 = proc_cpu(args.server_pid)
    lat = sorted(stats.latencies)
    done = stats.ok + stats.failed
    emit({
        "requests": args.n,
        "done": done,
        "ok": stats.expect_ok,
        "failed": args.n - stats.expect_ok,
        "http_failed": stats.failed,
        "wall_s": f"{wall:.3f}",
        "server_cpu_s": f"{s1 - s0:.2f}",
        "p50_ms": fmt(statistics.median(lat) * 1e3 if lat else math.nan, 1),
        "p99_ms": fmt(lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))] * 1e3 if lat else math.nan, 1),
        "samples_per_req": fmt(stats.samples / stats.ok if stats.ok else math.nan, 0),
        "bytes_per_req": fmt(stats.size / stats.ok if stats.ok else math.nan, 0),
        "first_error": (stats.errors[0] if stats.errors else "-").replace("\n", " "),
    })
    return 0


# --------------------------------------------------------------------------------------- scrapes

@dataclass
class Scrape:
    per_device: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    probes: dict[str, float] = field(default_factory=dict)  # snmp outcome -> count
    errors: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # reason -> count


_DEVICE = {
    "monitord_snmp_polls_total": "polls",
    "monitord_snmp_varbinds_total": "varbinds",
    "monitord_snmp_requests_total": "requests",
    "monitord_snmp_retries_total": "retries",
    "monitord_snmp_timeouts_total": "timeouts",
    "monitord_snmp_last_poll_timestamp_seconds": "last_start",
    "monitord_snmp_poll_duration_seconds": "duration",
    "monitord_snmp_up": "up",
}


def load_scrape(path: Path) -> Scrape:
    s = Scrape()
    wanted = (*_DEVICE, "monitord_probes_total", "monitord_snmp_errors_total")
    for name, labels, value in samples(path, wanted):
        if name in _DEVICE:
            s.per_device[labels.get("target", "")][_DEVICE[name]] = value
        elif name == "monitord_probes_total" and labels.get("kind") == "snmp":
            s.probes[labels.get("outcome", "")] = value
        elif name == "monitord_snmp_errors_total":
            s.errors[labels.get("reason", "")] += value
    return s


def cmd_monitord(args: argparse.Namespace) -> int:
    """Deltas of the window. The poll rate comes from each device's own counters: between two
    scrapes, Δpolls polls started in (last_start before, last_start after], so
    Δpolls / Δlast_start is the device's poll rate, not disturbed by where the scrapes fell."""
    a, b = load_scrape(Path(args.before)), load_scrape(Path(args.after))
    totals: Counter[str] = Counter()
    rate = 0.0
    for target, after in b.per_device.items():
        before = a.per_device.get(target, {})
        for key in ("polls", "varbinds", "requests", "retries", "timeouts"):
            totals[key] += int(after.get(key, 0) - before.get(key, 0))
        span = after.get("last_start", 0) - before.get("last_start", 0)
        polls = after.get("polls", 0) - before.get("polls", 0)
        if span > 0 and polls > 0:
            rate += polls / span
    probes = {k: v - a.probes.get(k, 0) for k, v in b.probes.items()}
    errors = {k: v - a.errors.get(k, 0) for k, v in b.errors.items() if v - a.errors.get(k, 0)}
    complete = int(probes.get("success", 0))
    durations = [d["duration"] for f in [args.before, args.after, *args.extra]
                 for d in load_scrape(Path(f)).per_device.values() if "duration" in d]
    size, series = exposition_stats(Path(args.after))
    polls = totals["polls"]
    emit({
        "devices": len(b.per_device),
        "devices_up": sum(1 for d in b.per_device.values() if d.get("up") == 1),
        "polls": polls,
        "complete": complete,
        "failed": polls - complete,
        "probes": " ".join(f"{k}:{int(v)}" for k, v in sorted(probes.items())) or "-",
        "errors": " ".join(f"{k}:{int(v)}" for k, v in sorted(errors.items())) or "0",
        "varbinds": totals["varbinds"],
        "requests": totals["requests"],
        "retries": totals["retries"],
        "timeouts": totals["timeouts"],
        "varbinds_per_walk": fmt(totals["varbinds"] / complete if complete else math.nan, 1),
        "requests_per_walk": fmt(totals["requests"] / polls if polls else math.nan, 1),
        "poll_rate": f"{rate:.4f}",
        "duration_p50_ms": fmt(statistics.median(durations) * 1e3 if durations else math.nan, 1),
        "duration_max_ms": fmt(max(durations) * 1e3 if durations else math.nan, 1),
        "duration_samples": len(durations),
        "bytes": size,
        "series": series,
    })
    return 0


def cmd_median(args: argparse.Namespace) -> int:
    values = [float(x) for x in Path(args.file).read_text().split()]
    print(fmt(statistics.median(values) if values else math.nan, args.digits))
    return 0


# --------------------------------------------------------------------------------------- profile

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")
# Entry and event-loop plumbing: in (nearly) every stack, so not worth a row of their own.
_PLUMBING = frozenset({
    "_run_module_as_main", "_run_code", "<module>", "main", "_run", "run", "Runner.run",
    "BaseEventLoop.run_until_complete", "BaseEventLoop.run_forever", "BaseEventLoop._run_once",
})


def _frame(frame: str) -> tuple[str, str, str]:
    """`function (path:line)` -> (function, short path, line): monitord's files by package
    path, the standard library's by file name."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip(), "?", ""
    path = m.group("file")
    ours = "monitord/" in path
    short = "monitord/" + path.split("monitord/", 1)[1] if ours else path.rsplit("/", 1)[-1]
    return m.group("func"), short, m.group("line") or ""


def cmd_profile(args: argparse.Namespace) -> int:
    """Self and inclusive shares of the samples of a py-spy raw file (with line numbers)."""
    self_funcs: Counter[str] = Counter()
    self_lines: Counter[str] = Counter()
    self_files: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in Path(args.raw).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # py-spy puts `process ...` and `thread ...` pseudo-frames first; they are not code
        frames = [_frame(f) for f in stack.split(";")
                  if f.strip() and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        func, path, lineno = frames[-1]
        self_funcs[f"{func} ({path})"] += count
        self_lines[f"{path}:{lineno} {func}"] += count
        self_files[path] += count
        for name in {f"{f} ({p})" for f, p, _ in frames if f not in _PLUMBING}:
            incl[name] += count
    if total == 0:
        print("no samples")
        return 1
    busy = total / (args.rate * args.seconds) if args.rate and args.seconds else math.nan

    def table(title: str, counts: Counter[str]) -> list[str]:
        rows = [f"| {c / total * 100:.1f} | `{name}` |" for name, c in counts.most_common(args.top)]
        return ["", f"| {title} | |", "|---:|---|", *rows]

    out = [f"{total} samples at {args.rate:g} Hz over {args.seconds:g} s "
           f"(= {fmt(busy * 100, 0)} % of one core)"]
    out += table("self % by function", self_funcs)
    out += table("self % by file", self_files)
    out += table("self % by line", self_lines)
    out += table("inclusive %", incl)
    text = "\n".join(out) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    return 0


# ----------------------------------------------------------------------------------------- table

@dataclass
class Row:
    tool: str
    variant: str
    walks: float
    ok: str
    failed: str
    varbinds: float  # per walk
    requests: float  # per walk
    cpu_ms: float  # per walk
    scrape_ms: float  # per walk, /metrics exposition (monitord); NaN: not applicable
    agent_ms: float  # per walk
    p50_ms: float
    notes: str

    @property
    def us_per_varbind(self) -> float:
        return self.cpu_ms * 1e3 / self.varbinds if self.varbinds > 0 else math.nan

    @property
    def us_per_varbind_exposed(self) -> float:
        """Including the exposition: monitord renders at scrape time part of what
        snmp_exporter's CPU (one scrape = one walk) already holds."""
        if self.tool == "snmpbulkwalk":
            return math.nan
        extra = 0.0 if math.isnan(self.scrape_ms) else self.scrape_ms
        return (self.cpu_ms + extra) * 1e3 / self.varbinds if self.varbinds > 0 else math.nan


def read_rows(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("tool\t"):
            continue
        f = line.split("\t")
        f += [""] * (12 - len(f))
        rows.append(Row(f[0], f[1], number(f[2]), f[3] or "-", f[4] or "-", number(f[5]), number(f[6]),
                        number(f[7]), number(f[8]), number(f[9]), number(f[10]), f[11]))
    return rows


def cmd_table(args: argparse.Namespace) -> int:
    rows = read_rows(Path(args.rows))
    exporter = next((r for r in rows if r.tool == "snmp_exporter" and r.varbinds > 0), None)
    base = exporter.us_per_varbind if exporter is not None else math.nan
    summary = []
    for r in rows:
        summary.append(
            f"SUMMARY snmp tool={r.tool} variant={r.variant.replace(' ', '_')} walks={fmt(r.walks, 0)} "
            f"ok={r.ok} failed={r.failed} varbinds/walk={fmt(r.varbinds, 0)} "
            f"requests/walk={fmt(r.requests, 1)} cpu_ms/walk={fmt(r.cpu_ms, 2)} "
            f"cpu_us/varbind={fmt(r.us_per_varbind, 2)} "
            f"cpu_us/varbind_with_exposition={fmt(r.us_per_varbind_exposed, 2)} "
            f"ratio_to_snmp_exporter={fmt(r.us_per_varbind / base, 2)} "
            f"agent_cpu_ms/walk={fmt(r.agent_ms, 2)} p50_walk_ms={fmt(r.p50_ms, 1)}")
    out: list[str] = []
    if args.title:
        out += [f"# {args.title}", ""]
    out += [
        "| tool | variant | walks ok / failed | varbinds/walk | requests/walk | CPU ms/walk "
        "| CPU µs/varbind | ratio to snmp_exporter | µs/varbind with /metrics | ratio with /metrics "
        "| agent CPU ms/walk | p50 walk ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.tool} | {r.variant} | {r.ok} / {r.failed} | {fmt(r.varbinds, 0)} "
            f"| {fmt(r.requests, 1)} | {fmt(r.cpu_ms, 1)} | {fmt(r.us_per_varbind, 2)} "
            f"| {fmt(r.us_per_varbind / base, 2)} | {fmt(r.us_per_varbind_exposed, 2)} "
            f"| {fmt(r.us_per_varbind_exposed / base, 2)} | {fmt(r.agent_ms, 1)} | {fmt(r.p50_ms, 1)} |")
    out += ["", "```", *summary, "```", "", "## Details", ""]
    out += [f"- **{r.tool} {r.variant}**: {r.notes}" for r in rows]
    text = "\n".join(out) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("exporter-config")
    p.add_argument("--out", required=True)
    p.add_argument("--max-repetitions", type=int, default=25)
    p.set_defaults(func=cmd_exporter_config)
    p = sub.add_parser("monitord-config")
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--module", choices=("if_mib", "all"), required=True)
    p.add_argument("--snmp-port", type=int, default=1161)
    p.add_argument("--interval", default="1s")
    p.add_argument("--timeout", default="500ms")
    p.add_argument("--max-repetitions", type=int, default=25)
    p.add_argument("--max-oids", type=int, default=10)
    p.set_defaults(func=cmd_monitord_config)
    p = sub.add_parser("load")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--expect", default="")
    p.add_argument("--req-timeout", type=float, default=60.0)
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.set_defaults(func=cmd_load)
    p = sub.add_parser("monitord")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("extra", nargs="*", help="more scrapes, for poll durations only")
    p.set_defaults(func=cmd_monitord)
    p = sub.add_parser("median")
    p.add_argument("file")
    p.add_argument("--digits", type=int, default=1)
    p.set_defaults(func=cmd_median)
    p = sub.add_parser("profile")
    p.add_argument("raw")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out")
    p.set_defaults(func=cmd_profile)
    p = sub.add_parser("table")
    p.add_argument("rows")
    p.add_argument("--out")
    p.add_argument("--title", default="")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
