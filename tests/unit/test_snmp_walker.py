"""The lock-step walker's edge cases and reboot detection.

The walker runs here against an in-memory agent (a sorted table answering GET, GETNEXT and
GETBULK as RFC 3416 says). This is a fake, on purpose: real agents (snmpd, snmpsim in the
integration tests) cannot be made to answer tooBig, loop, or truncate a response on demand.
"""

from __future__ import annotations

import bisect
import math

import pytest

from monitord.snmp import ber
from monitord.snmp.ber import Response, Varbind
from monitord.snmp.transport import RequestStats
from monitord.snmp.uptime import TICKS_WRAP, Uptime, advance
from monitord.snmp.walker import WalkError, get_scalars, walk_columns

IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_IN = "1.3.6.1.2.1.2.2.1.10"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"


def _arcs(oid: str) -> tuple[int, ...]:
    return tuple(int(a) for a in oid.split("."))


class MemoryAgent:
    """Answers from a dict of OID -> (tag, value), in numeric OID order."""

    def __init__(self, data: dict[str, tuple[int, ber.Value]], version: int = 1,
                 max_response: int = 10_000) -> None:
        self.version = version
        self._keys = sorted(data, key=_arcs)
        self._sorted = [_arcs(k) for k in self._keys]
        self._data = data
        self.max_response = max_response  # varbinds; more than this answers tooBig
        self.requests: list[tuple[str, int]] = []
        self.loop_at: str | None = None  # answer this OID again instead of moving on

    def _next(self, oid: bytes) -> Varbind:
        text = ber.decode_oid(oid)
        if self.loop_at is not None and text == self.loop_at:
            return (oid, *self._data[text])
        i = bisect.bisect_right(self._sorted, _arcs(text))
        if i == len(self._keys):
            return (oid, ber.END_OF_MIB_VIEW, None)
        key = self._keys[i]
        return (ber.encode_oid(key), *self._data[key])

    async def get(self, oids: list[bytes], stats: RequestStats) -> Response:
        stats.requests += 1
        self.requests.append(("get", len(oids)))
        out: list[Varbind] = []
        for index, oid in enumerate(oids, 1):
            cell = self._data.get(ber.decode_oid(oid))
            if cell is None and self.version == 0:
                return Response(0, ber.NO_SUCH_NAME, index, [])
            out.append((oid, *(cell or (ber.NO_SUCH_OBJECT, None))))
        return Response(0, 0, 0, out)

    async def get_next(self, oids: list[bytes], stats: RequestStats) -> Response:
        stats.requests += 1
        self.requests.append(("next", len(oids)))
        out = [self._next(o) for o in oids]
        for index, (_, tag, _) in enumerate(out, 1):
            if tag == ber.END_OF_MIB_VIEW and self.version == 0:
                return Response(0, ber.NO_SUCH_NAME, index, [])
        return Response(0, 0, 0, out)

    async def get_bulk(self, oids: list[bytes], max_repetitions: int,
                       stats: RequestStats) -> Response:
        stats.requests += 1
        self.requests.append(("bulk", max_repetitions))
        if len(oids) * max_repetitions > self.max_response:
            return Response(0, ber.TOO_BIG, 0, [])
        out: list[Varbind] = []
        cursor = list(oids)
        for _ in range(max_repetitions):
            row = [self._next(o) for o in cursor]
            out += row
            cursor = [vb[0] for vb in row]
        return Response(0, 0, 0, out)


def _table(rows: int, hc_rows: int) -> dict[str, tuple[int, ber.Value]]:
    data: dict[str, tuple[int, ber.Value]] = {"1.3.6.1.2.1.1.3.0": (ber.TIMETICKS, 12345)}
    for i in range(1, rows + 1):
        data[f"{IF_DESCR}.{i}"] = (ber.OCTET_STRING, f"eth{i}".encode())
        data[f"{IF_IN}.{i}"] = (ber.COUNTER32, i * 1000)
    for i in range(1, hc_rows + 1):
        data[f"{IF_HC_IN}.{i}"] = (ber.COUNTER64, 2**64 - i)
    return data


def _decoded(tables: dict[bytes, dict[bytes, tuple[int, ber.Value]]]) -> dict[str, dict[str, ber.Value]]:
    return {ber.decode_oid(col): {".".join(map(str, ber.decode_index(s))): v for s, (_, v) in rows.items()}
            for col, rows in tables.items()}


COLUMNS = [ber.encode_oid(c) for c in (IF_DESCR, IF_IN, IF_HC_IN)]


@pytest.mark.parametrize("version", [0, 1])
async def test_lock_step_walk_returns_every_row_of_every_column(version: int) -> None:
    agent = MemoryAgent(_table(rows=60, hc_rows=41), version=version)
    stats = RequestStats()
    tables = await walk_columns(agent, COLUMNS, max_repetitions=25, max_oids=10, stats=stats,
                                deadline=math.inf)
    walked = _decoded(tables)
    assert walked[IF_DESCR] == {str(i): f"eth{i}".encode() for i in range(1, 61)}
    assert walked[IF_IN] == {str(i): i * 1000 for i in range(1, 61)}
    assert walked[IF_HC_IN] == {str(i): 2**64 - i for i in range(1, 42)}  # a shorter column
    if version == 1:
        assert stats.requests == 3  # 60 rows / 25 per request, all three columns together
    else:
        # v1: one GETNEXT row per request, one more to see the ends, and one more because
        # the column at the end of the MIB makes v1 void the whole response (noSuchName).
        assert stats.requests == 62


async def test_columns_beyond_max_oids_join_as_others_finish() -> None:
    agent = MemoryAgent(_table(rows=10, hc_rows=10))
    tables = await walk_columns(agent, COLUMNS, max_repetitions=5, max_oids=2,
                                stats=RequestStats(), deadline=math.inf)
    assert all(len(rows) == 10 for rows in tables.values())


async def test_too_big_halves_max_repetitions_until_the_response_fits() -> None:
    agent = MemoryAgent(_table(rows=30, hc_rows=30), max_response=20)
    tables = await walk_columns(agent, COLUMNS, max_repetitions=25, max_oids=10,
                                stats=RequestStats(), deadline=math.inf)
    assert all(len(rows) == 30 for rows in tables.values())
    assert [r for kind, r in agent.requests if kind == "bulk"][:3] == [25, 12, 6]


async def test_an_agent_that_loops_ends_the_walk_with_an_error() -> None:
    agent = MemoryAgent(_table(rows=5, hc_rows=0))
    agent.loop_at = f"{IF_IN}.3"
    with pytest.raises(WalkError, match=r"returned 1\.3\.6\.1\.2\.1\.2\.2\.1\.10\.3 twice") as info:
        await walk_columns(agent, [ber.encode_oid(IF_IN)], 2, 10, RequestStats(), math.inf)
    assert info.value.reason == "malformed"


async def test_a_deadline_in_the_past_ends_the_walk_before_any_request() -> None:
    agent = MemoryAgent(_table(rows=5, hc_rows=0))
    with pytest.raises(WalkError, match="deadline") as info:
        await walk_columns(agent, COLUMNS, 25, 10, RequestStats(), deadline=0.0)
    assert info.value.reason == "deadline"
    assert agent.requests == []


@pytest.mark.parametrize("version", [0, 1])
async def test_scalars_that_do_not_exist_are_left_out(version: int) -> None:
    agent = MemoryAgent(_table(rows=1, hc_rows=0), version=version)
    wanted = [ber.encode_oid(o) for o in ("1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0")]
    found = await get_scalars(agent, wanted, 10, RequestStats(), math.inf)
    assert {ber.decode_oid(o): v for o, (_, v) in found.items()} == {"1.3.6.1.2.1.1.3.0": 12345}


# --- reboot detection -------------------------------------------------------------------------

def test_uptime_going_forward_is_no_reboot() -> None:
    first = advance(None, 1000, at=100.0)
    later = advance(first, 7000, at=160.0)
    assert (later.reboots, later.wraps, later.seconds) == (0, 0, 70.0)


def test_uptime_going_backwards_is_a_reboot() -> None:
    before = advance(None, 4215722485, at=1000.0)  # the Synology recording: ~488 days
    after = advance(before, 3000, at=1060.0)  # 30 s after a restart
    assert after.reboots == 1
    assert after.seconds == 30.0
    assert after.boot_time == pytest.approx(1030.0)


def test_timeticks_wrapping_at_2_to_the_32_is_not_a_reboot() -> None:
    before = Uptime(TICKS_WRAP - 3000, at=1000.0)  # 30 s before the 497-day wrap
    after = advance(before, 3000, at=1060.0)  # 60 s later: 30 s past the wrap
    assert (after.reboots, after.wraps) == (0, 1)
    assert after.seconds == pytest.approx((TICKS_WRAP + 3000) / 100)


def test_a_restart_near_the_wrap_is_still_a_reboot() -> None:
    before = Uptime(TICKS_WRAP - 3000, at=1000.0)
    after = advance(before, 100_000, at=1060.0)  # 1000 s of uptime cannot follow 60 s later
    assert (after.reboots, after.wraps) == (1, 0)
