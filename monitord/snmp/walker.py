"""Fetch scalars and walk table columns, in lock-step, with as few requests as possible.

A lock-step walk asks for several columns in one GETBULK: the response holds
max-repetitions rows of every column asked, so a 200-interface ifTable + ifXTable takes a few
dozen requests where a subtree walk (snmpbulkwalk, snmp_exporter) takes hundreds. A column
leaves the walk when the agent steps past its end; the next waiting column takes its place.
SNMPv1 has no GETBULK: the same loop runs on GETNEXT, one row per request.

Any failure ends the whole walk with a WalkError: a walk cut off half way never returns
partial tables as if they were complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from monitord.snmp import ber
from monitord.snmp.ber import BerError, Value
from monitord.snmp.session import SnmpSession, SnmpV3Error
from monitord.snmp.transport import RequestStats, SnmpTimeoutError

Cell = tuple[int, Value]  # (tag, value)
Column = dict[bytes, Cell]  # row index suffix -> cell


class WalkError(Exception):
    """Why a poll could not complete; `reason` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _describe(oids: list[bytes], walk: bool) -> str:
    """What a request asked, for an error message (built only when something failed)."""
    if not walk:
        return f"GET {ber.decode_oid(oids[0])}"
    more = f" and {len(oids) - 1} more columns" if len(oids) > 1 else ""
    return f"walk of {ber.decode_oid(oids[0])}{more}"


def _oid_text(oid: bytes) -> str:
    """An OID the agent sent, for a message: dotted, or its octets if it is not even valid."""
    try:
        return ber.decode_oid(oid)
    except BerError:
        return f"an invalid OID (0x{oid.hex()})"


def _check_deadline(deadline: float, oids: list[bytes], walk: bool, stats: RequestStats) -> None:
    if asyncio.get_running_loop().time() >= deadline:
        what = f"the {_describe(oids[:1], walk)}" if walk else "GET"
        raise WalkError("deadline", f"deadline reached during {what} after {stats.requests} "
                                    "requests; nothing from this poll is exported")


async def _request(call: Awaitable[ber.Response], oids: list[bytes], walk: bool) -> ber.Response:
    """Await a session call, turning its failures into WalkErrors that say what failed."""
    try:
        return await call
    except SnmpTimeoutError as exc:
        raise WalkError("timeout", f"{_describe(oids, walk)}: {exc}") from None
    except BerError as exc:
        raise WalkError("malformed", f"{_describe(oids, walk)}: malformed response: {exc}") from None
    except SnmpV3Error as exc:
        raise WalkError("usm", f"{_describe(oids, walk)}: SNMPv3: {exc}") from None
    except OSError as exc:
        raise WalkError("send", f"{_describe(oids, walk)}: {exc.strerror or exc}") from None


async def get_scalars(session: SnmpSession, oids: list[bytes], max_oids: int,
                      stats: RequestStats, deadline: float) -> dict[bytes, Cell]:
    """GET every OID; absent ones (noSuchObject/-Instance, v1 noSuchName) are left out."""
    found: dict[bytes, Cell] = {}
    for start in range(0, len(oids), max_oids):
        chunk = oids[start:start + max_oids]
        while chunk:
            _check_deadline(deadline, chunk, False, stats)
            response = await _request(session.get(chunk, stats), chunk, walk=False)
            if response.error_status:
                bad = response.error_index
                if response.error_status == ber.NO_SUCH_NAME and 1 <= bad <= len(chunk):
                    del chunk[bad - 1]  # v1 reports one missing OID per try: drop it, ask again
                    continue
                raise WalkError("agent_error", f"{_describe(chunk, False)}: agent answered "
                                               f"{response.error_name()} (index {bad})")
            wanted = set(chunk)
            for oid, tag, value in response.varbinds:
                if oid in wanted and tag not in ber.EXCEPTION_TAGS:
                    found[oid] = (tag, value)
            break
    return found


async def walk_columns(session: SnmpSession, columns: list[bytes], max_repetitions: int,
                       max_oids: int, stats: RequestStats, deadline: float) -> dict[bytes, Column]:
    """Every row of every column, walked in lock-step batches of up to max_oids columns."""
    tables: dict[bytes, Column] = {c: {} for c in columns}
    cursor = {c: c for c in columns}
    active = list(dict.fromkeys(columns))
    bulk = session.version != 0
    repetitions = max_repetitions
    while active:
        batch = active[:max_oids]
        _check_deadline(deadline, batch, True, stats)
        asked = [cursor[c] for c in batch]
        if bulk:
            response = await _request(session.get_bulk(asked, repetitions, stats), batch, walk=True)
        else:
            response = await _request(session.get_next(asked, stats), batch, walk=True)
        status = response.error_status
        if status:
            bad = response.error_index
            if status == ber.NO_SUCH_NAME and not bulk and 1 <= bad <= len(batch):
                active.remove(batch[bad - 1])  # v1: that column ran off the end of the MIB
                continue
            if status == ber.TOO_BIG and repetitions > 1:
                repetitions = max(1, repetitions // 2)
                continue
            raise WalkError("agent_error", f"{_describe(batch, True)}: agent answered "
                                           f"{response.error_name()} (index {bad})")
        finished = _take_rows(response.varbinds, batch, tables, cursor)
        if finished:
            active = [c for c in active if c not in finished]
    return tables


def _take_rows(varbinds: list[ber.Varbind], batch: list[bytes], tables: dict[bytes, Column],
               cursor: dict[bytes, bytes]) -> set[bytes]:
    """File a response's varbinds under their columns; return the columns that ended.
    Varbind i belongs to column i mod len(batch) (RFC 3416 GETBULK order)."""
    if not varbinds:
        raise WalkError("malformed", f"{_describe(batch, True)}: the agent returned no varbinds")
    width = len(batch)
    finished: set[bytes] = set()
    progressed = False
    for i, (oid, tag, value) in enumerate(varbinds):
        column = batch[i % width]
        if column in finished:
            continue
        if tag == ber.END_OF_MIB_VIEW or len(oid) <= len(column) or not oid.startswith(column):
            finished.add(column)
            continue
        rows = tables[column]
        suffix = oid[len(column):]
        if suffix in rows:
            raise WalkError("malformed", f"{_describe(batch, True)}: the agent returned "
                                         f"{_oid_text(oid)} twice (OID loop)")
        rows[suffix] = (tag, value)
        cursor[column] = oid
        progressed = True
    if not progressed and not finished:
        raise WalkError("malformed", f"{_describe(batch, True)}: the response made no progress")
    return finished
