"""The machine around monitord, read at scrape time: load, memory, the state directory's disk
and history database, the process's threads, and the kernel's UDP and ICMP counters.

The kernel counters (/proc/net/snmp, /proc/net/snmp6) are where probe replies get lost without
monitord ever seeing them: a full socket receive buffer drops a datagram before any read.
They mirror node_exporter's netstat collector (node_netstat_Udp_RcvbufErrors is
monitord_netstat_udp_rcvbuf_errors_total{family="ipv4"}, node_netstat_Udp6_RcvbufErrors the
same with family="ipv6"), so a host without node_exporter still shows them.

A scrape reads a few small /proc files and makes three stat calls: it costs the same with ten
targets or ten thousand. What cannot be read (no /proc/net/snmp6 when IPv6 is off, a state
directory not created yet) is left out of that scrape rather than failing it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord.state.history import HISTORY_FILE

__all__ = ["NETSTAT_COUNTERS", "HostCollector", "NetstatCounter", "read_netstat"]

SNMP_FILE = Path("/proc/net/snmp")
SNMP6_FILE = Path("/proc/net/snmp6")


@dataclass(frozen=True, slots=True)
class NetstatCounter:
    protocol: str  # as in /proc/net/snmp: Udp, Icmp (snmp6 spells them Udp6, Icmp6)
    field: str  # the kernel's name, e.g. RcvbufErrors
    metric: str  # without _total
    help: str


def _udp(field: str, snake: str, meaning: str) -> NetstatCounter:
    return NetstatCounter("Udp", field, f"monitord_netstat_udp_{snake}",
                          f"UDP {meaning} (kernel counters Udp {field}, Udp6{field}; the whole "
                          "network namespace, not only monitord's sockets).")


def _icmp(field: str, snake: str, meaning: str) -> NetstatCounter:
    return NetstatCounter("Icmp", field, f"monitord_netstat_icmp_{snake}",
                          f"ICMP {meaning} (kernel counters Icmp {field}, Icmp6{field}; the whole "
                          "network namespace, not only monitord's sockets).")


NETSTAT_COUNTERS: tuple[NetstatCounter, ...] = (
    _udp("InDatagrams", "in_datagrams", "datagrams delivered to sockets"),
    _udp("NoPorts", "no_ports", "datagrams for a port no socket listens on"),
    _udp("InErrors", "in_errors", "datagrams received but not delivered; includes the "
         "receive-buffer and checksum errors"),
    _udp("RcvbufErrors", "rcvbuf_errors", "datagrams dropped because the receiving socket's "
         "buffer was full: SNMP replies lost inside this host"),
    _udp("SndbufErrors", "sndbuf_errors", "datagrams not sent because the sending socket's "
         "buffer was full"),
    _udp("InCsumErrors", "in_csum_errors", "datagrams received with a bad checksum"),
    _icmp("InMsgs", "in_msgs", "messages received, echo replies included"),
    _icmp("InErrors", "in_errors", "messages received but malformed (bad checksum or length)"),
    _icmp("InCsumErrors", "in_csum_errors", "messages received with a bad checksum"),
    _icmp("OutMsgs", "out_msgs", "messages sent, echo requests included"),
    _icmp("OutErrors", "out_errors", "messages not sent because of an error"),
)


def read_netstat(snmp: Path = SNMP_FILE, snmp6: Path = SNMP6_FILE) -> dict[str, dict[str, int]]:
    """{"ipv4": {"Udp RcvbufErrors": n, ...}, "ipv6": {"Udp RcvbufErrors": n, ...}}; a family
    whose file cannot be read is absent."""
    counters: dict[str, dict[str, int]] = {}
    with contextlib.suppress(OSError):
        counters["ipv4"] = _parse_snmp(snmp.read_text())
    with contextlib.suppress(OSError):
        counters["ipv6"] = _parse_snmp6(snmp6.read_text())
    return counters


def _parse_snmp(text: str) -> dict[str, int]:
    """/proc/net/snmp: per protocol a line of field names, then a line of values."""
    values: dict[str, int] = {}
    lines = text.splitlines()
    for header, row in zip(lines[::2], lines[1::2], strict=False):
        protocol, _, names = header.partition(":")
        _, _, numbers = row.partition(":")
        for name, number in zip(names.split(), numbers.split(), strict=False):
            values[f"{protocol} {name}"] = int(number)
    return values


def _parse_snmp6(text: str) -> dict[str, int]:
    """/proc/net/snmp6: one `Udp6RcvbufErrors 0` per line; keyed like IPv4 (`Udp RcvbufErrors`)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        key, number = parts
        for protocol in ("Udp6", "Icmp6"):  # not UdpLite6, which starts the same
            if key.startswith(protocol) and not key.startswith("UdpLite6"):
                values[f"{protocol[:-1]} {key[len(protocol):]}"] = int(number)
                break
    return values


class HostCollector(Collector):
    """monitord_host_*, monitord_state_dir_*, monitord_history_db_size_bytes,
    monitord_process_threads and monitord_netstat_*; the process's CPU, memory and file
    descriptors come from prometheus_client's ProcessCollector (process_*)."""

    def __init__(self, state_dir: str | Path, snmp: Path = SNMP_FILE,
                 snmp6: Path = SNMP6_FILE) -> None:
        self._state_dir = Path(state_dir)
        self._snmp = snmp
        self._snmp6 = snmp6
        self._process = psutil.Process()

    def collect(self) -> Iterable[Metric]:
        yield from self._host()
        yield from self._state_dir_usage()
        yield self._history_db()
        yield GaugeMetricFamily("monitord_process_threads", "Operating-system threads of monitord.",
                                value=int(self._process.num_threads()))
        yield from self._netstat()

    def _host(self) -> Iterator[Metric]:
        for minutes, load in zip((1, 5, 15), os.getloadavg(), strict=True):
            yield GaugeMetricFamily(f"monitord_host_load{minutes}",
                                    f"The host's {minutes}-minute load average.", value=load)
        yield GaugeMetricFamily("monitord_host_cpus", "Logical CPUs of the host (to read the load by).",
                                value=os.cpu_count() or 0)
        memory = psutil.virtual_memory()
        yield GaugeMetricFamily("monitord_host_memory_total_bytes", "The host's physical memory.",
                                value=int(memory.total))
        yield GaugeMetricFamily(
            "monitord_host_memory_available_bytes",
            "Memory the host can give to programs without swapping (MemAvailable).",
            value=int(memory.available))

    def _state_dir_usage(self) -> Iterator[Metric]:
        try:
            fs = os.statvfs(self._state_dir)
        except OSError:
            return
        yield GaugeMetricFamily(
            "monitord_state_dir_filesystem_size_bytes",
            "Size of the file system holding daemon.state_dir.", value=fs.f_blocks * fs.f_frsize)
        yield GaugeMetricFamily(
            "monitord_state_dir_filesystem_avail_bytes",
            "Space monitord may still use on the file system holding daemon.state_dir (the "
            "history stops growing when it runs out).", value=fs.f_bavail * fs.f_frsize)

    def _history_db(self) -> Metric:
        family = GaugeMetricFamily(
            "monitord_history_db_size_bytes",
            "Size of the history database files in daemon.state_dir (0: absent); a -wal file that "
            "keeps growing means checkpoints cannot complete.", labels=["file"])
        for name in (HISTORY_FILE, f"{HISTORY_FILE}-wal"):
            try:
                size = (self._state_dir / name).stat().st_size
            except OSError:
                size = 0
            family.add_metric([name], size)
        return family

    def _netstat(self) -> Iterator[Metric]:
        counters = read_netstat(self._snmp, self._snmp6)
        if not counters:
            return
        for counter in NETSTAT_COUNTERS:
            family = CounterMetricFamily(counter.metric, counter.help, labels=["family"])
            for name, values in counters.items():
                value = values.get(f"{counter.protocol} {counter.field}")
                if value is not None:  # an older kernel may lack a field (InCsumErrors: 3.10)
                    family.add_metric([name], value)
            if family.samples:
                yield family
