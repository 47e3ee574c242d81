"""HostCollector: the values it exports against what the kernel and the file system say, real
UDP receive-buffer drops on loopback, scrape cost, and the exposition of all self-monitoring
metrics checked by promtool."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from monitord.metrics.host_metrics import HostCollector, read_netstat
from monitord.metrics.loop_lag import LoopLagMonitor
from monitord.metrics.selfmetrics import SelfMetrics
from monitord.state.history import HISTORY_FILE

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(collector: Collector) -> Samples:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def test_history_db_sizes_are_the_files_sizes(tmp_path: Path) -> None:
    (tmp_path / HISTORY_FILE).write_bytes(b"x" * 8192)
    (tmp_path / f"{HISTORY_FILE}-wal").write_bytes(b"y" * 4120)
    samples = scrape(HostCollector(tmp_path))
    assert samples[("monitord_history_db_size_bytes", (("file", HISTORY_FILE),))] == 8192
    assert samples[("monitord_history_db_size_bytes", (("file", f"{HISTORY_FILE}-wal"),))] == 4120


def test_absent_history_files_are_zero(tmp_path: Path) -> None:
    samples = scrape(HostCollector(tmp_path))
    assert samples[("monitord_history_db_size_bytes", (("file", HISTORY_FILE),))] == 0
    assert samples[("monitord_history_db_size_bytes", (("file", f"{HISTORY_FILE}-wal"),))] == 0


def test_state_dir_filesystem_matches_statvfs(tmp_path: Path) -> None:
    samples = scrape(HostCollector(tmp_path))
    fs = os.statvfs(tmp_path)
    assert samples[("monitord_state_dir_filesystem_size_bytes", ())] == fs.f_blocks * fs.f_frsize
    avail = samples[("monitord_state_dir_filesystem_avail_bytes", ())]
    # Other writers on the same file system may change it between the two reads.
    assert 0 < avail <= fs.f_blocks * fs.f_frsize
    assert abs(avail - fs.f_bavail * fs.f_frsize) < 256 * 2**20


def test_missing_state_dir_leaves_out_only_its_filesystem(tmp_path: Path) -> None:
    samples = scrape(HostCollector(tmp_path / "not-created-yet"))
    assert "monitord_state_dir_filesystem_size_bytes" not in names(samples)
    assert samples[("monitord_history_db_size_bytes", (("file", HISTORY_FILE),))] == 0
    assert {"monitord_host_load1", "monitord_host_memory_available_bytes",
            "monitord_process_threads"} <= names(samples)


def test_host_load_and_memory_are_plausible(tmp_path: Path) -> None:
    samples = scrape(HostCollector(tmp_path))
    for minutes in (1, 5, 15):
        assert samples[(f"monitord_host_load{minutes}", ())] >= 0
    assert samples[("monitord_host_cpus", ())] == os.cpu_count()
    total = samples[("monitord_host_memory_total_bytes", ())]
    assert 0 < samples[("monitord_host_memory_available_bytes", ())] <= total


def test_threads_count_a_new_thread(tmp_path: Path) -> None:
    collector = HostCollector(tmp_path)
    before = scrape(collector)[("monitord_process_threads", ())]
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(10,))
    thread.start()
    try:
        during = scrape(collector)[("monitord_process_threads", ())]
    finally:
        release.set()
        thread.join(timeout=10)
    assert during == before + 1


def test_full_receive_buffer_shows_as_rcvbuf_errors(tmp_path: Path) -> None:
    """Datagrams to a loopback socket nobody reads, with the smallest buffer the kernel
    allows: most are dropped, and the counters must say so."""
    collector = HostCollector(tmp_path)
    rcvbuf = ("monitord_netstat_udp_rcvbuf_errors_total", (("family", "ipv4"),))
    in_errors = ("monitord_netstat_udp_in_errors_total", (("family", "ipv4"),))
    before = scrape(collector)
    sent = 200
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel rounds it up
        receiver.bind(("127.0.0.1", 0))
        for _ in range(sent):
            sender.sendto(b"\0" * 1200, receiver.getsockname())
        after = scrape(collector)
    # Only a few 1200-byte datagrams fit in the minimum buffer; other traffic only adds.
    assert after[rcvbuf] - before[rcvbuf] >= sent - 20
    assert after[in_errors] - before[in_errors] >= sent - 20


SNMP = """\
Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 33640
Icmp: InMsgs InErrors InCsumErrors OutMsgs OutErrors
Icmp: 104 3 1 100 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors
Udp: 406 7 12 410 11 0 1
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors
UdpLite: 900 900 900 900 900 900 900
"""

SNMP6 = """\
Ip6InReceives                   	500
Icmp6InMsgs                     	72
Icmp6InErrors                   	2
Udp6InDatagrams                 	30
Udp6RcvbufErrors                	5
UdpLite6RcvbufErrors            	900
"""


def test_netstat_parses_both_families(tmp_path: Path) -> None:
    (tmp_path / "snmp").write_text(SNMP)
    (tmp_path / "snmp6").write_text(SNMP6)
    counters = read_netstat(tmp_path / "snmp", tmp_path / "snmp6")
    assert counters["ipv4"]["Udp RcvbufErrors"] == 11
    assert counters["ipv4"]["Udp InErrors"] == 12
    assert counters["ipv4"]["Icmp InErrors"] == 3
    assert counters["ipv6"] == {"Icmp InMsgs": 72, "Icmp InErrors": 2, "Udp InDatagrams": 30,
                                "Udp RcvbufErrors": 5}  # neither Ip6 nor UdpLite6


def test_netstat_metrics_without_ipv6(tmp_path: Path) -> None:
    (tmp_path / "snmp").write_text(SNMP)
    samples = scrape(HostCollector(tmp_path, tmp_path / "snmp", tmp_path / "no-snmp6"))
    assert samples[("monitord_netstat_udp_rcvbuf_errors_total", (("family", "ipv4"),))] == 11
    assert samples[("monitord_netstat_icmp_in_msgs_total", (("family", "ipv4"),))] == 104
    assert not any(dict(labels).get("family") == "ipv6" for _, labels in samples)


def test_netstat_without_proc_is_left_out(tmp_path: Path) -> None:
    samples = scrape(HostCollector(tmp_path, tmp_path / "none", tmp_path / "none6"))
    assert not any(name.startswith("monitord_netstat_") for name in names(samples))
    assert "monitord_history_db_size_bytes" in names(samples)


def test_a_scrape_is_cheap(tmp_path: Path) -> None:
    """Nothing in it grows with the number of targets; a few /proc reads take well under 1 ms."""
    collector = HostCollector(tmp_path)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        list(collector.collect())
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.010


def test_self_monitoring_exposition_passes_promtool(tmp_path: Path) -> None:
    """All of monitord's own metrics in one registry: registering would fail on a name used
    twice (process_* from ProcessCollector), and promtool checks the conventions."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not on PATH: scripts/test.sh installs it (Debian package prometheus)")
    (tmp_path / HISTORY_FILE).write_bytes(b"x" * 4096)
    registry = CollectorRegistry(auto_describe=True)
    SelfMetrics(registry)
    registry.register(HostCollector(tmp_path))
    registry.register(LoopLagMonitor())
    text = generate_latest(registry).decode()
    assert "monitord_netstat_udp_rcvbuf_errors_total" in text
    assert "monitord_event_loop_lag_max_seconds" in text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, check=False, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""
