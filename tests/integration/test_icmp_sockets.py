"""The pinger chooses ping sockets where ping_group_range allows, else one raw socket, and
says which; both paths give the same results. ping_group_range is per network namespace, so
flipping it here (inside the suite's own namespace) touches nothing else."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.icmp.pinger import Pinger
from monitord.model import SocketMode

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


@pytest.fixture
def ping_group_range() -> Iterator[Path]:
    original = PING_GROUP_RANGE.read_text()
    yield PING_GROUP_RANGE
    PING_GROUP_RANGE.write_text(original)


@pytest.mark.parametrize(("group_range", "mode", "expected"), [
    ("0 2147483647", "auto", "dgram"),  # ping sockets allowed for root's group: preferred
    ("1 0", "auto", "raw"),  # ping sockets disabled (the kernel default): raw socket
    ("0 2147483647", "raw", "raw"),  # forced by config
])
async def test_socket_choice_and_log_line(ping_group_range: Path, group_range: str, mode: SocketMode,
                                          expected: str, caplog: pytest.LogCaptureFixture) -> None:
    ping_group_range.write_text(group_range)  # noqa: ASYNC240 - procfs, instant
    caplog.set_level(logging.INFO)
    pinger = Pinger(mode)
    pinger.open()
    try:
        assert pinger.describe() == {"ipv4": expected, "ipv6": expected}
        logged = "unprivileged ping socket" if expected == "dgram" else "raw socket"
        assert sum(logged in r.getMessage() for r in caplog.records) == 2  # one per family
        targets = [ipaddress.ip_address(a) for a in ("127.0.0.1", "127.4.0.9", "::1")]
        for target in targets:
            outcome = await pinger.ping(target, count=4, packet_interval=0.01, timeout=1.0, size=56)
            assert (outcome.sent, outcome.received, outcome.error) == (4, 4, None)
            assert len(outcome.rtts) == 4
            assert all(0 <= rtt < 0.1 for rtt in outcome.rtts)
    finally:
        pinger.close()


async def test_many_concurrent_bursts_share_one_socket(ping_group_range: Path) -> None:
    # raw: every reply on one socket, matched by sequence
    ping_group_range.write_text("1 0")  # noqa: ASYNC240 - procfs, instant
    pinger = Pinger("auto")
    pinger.open()
    try:
        targets = [ipaddress.ip_address(f"127.5.{i // 250}.{i % 250 + 1}") for i in range(2000)]
        outcomes = await asyncio.gather(*(pinger.ping(t, 3, 0.005, 2.0, 16) for t in targets))
        assert sum(o.sent for o in outcomes) == 6000
        assert sum(o.received for o in outcomes) == 6000
        assert pinger.counters()["ipv4"] == (0, 0)  # nothing unmatched, no receive errors
    finally:
        pinger.close()


async def test_unreachable_network_is_an_error_value() -> None:
    pinger = Pinger("auto")
    pinger.open()
    try:
        # No route in the suite's namespace (only lo): sendto fails, reported, not raised.
        outcome = await pinger.ping(ipaddress.ip_address("198.19.255.1"), 3, 0.01, 0.5, 56)
        assert (outcome.sent, outcome.received) == (0, 0)
        assert outcome.error == "send failed: Network is unreachable"
        outcome6 = await pinger.ping(ipaddress.ip_address("2001:db8::1"), 2, 0.01, 0.5, 56)
        assert outcome6.error is not None
        assert "unreachable" in outcome6.error
    finally:
        pinger.close()
