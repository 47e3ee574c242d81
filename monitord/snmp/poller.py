"""Poll one device: fetch its modules' scalars and tables, turn them into samples.

A DevicePoller lives as long as its check and remembers what makes the next poll cheaper:
- row labels (ifName, ifAlias, ...) are walked every `label_refresh`, not every poll, and
  whenever a row appears that has none yet;
- fallback sources (32-bit counters behind 64-bit ones, ifHighSpeed behind ifSpeed) are
  walked on the full polls that refresh labels, and in between only if some row needed them.

Samples come out already rendered as exposition lines, grouped by metric family, so a
scrape only joins strings.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from monitord.metrics.targets import escape_label_value, format_value, label_pairs
from monitord.model import HIERARCHY_LABELS, Check, SnmpPollResult, SnmpProfile
from monitord.snmp import ber
from monitord.snmp.modules import IndexPart, LabelColumn, Metric, SnmpModule, Source, Table
from monitord.snmp.session import SnmpSession
from monitord.snmp.transport import RequestStats
from monitord.snmp.walker import Cell, Column, WalkError, get_scalars, walk_columns

SYS_UPTIME = ber.encode_oid("1.3.6.1.2.1.1.3.0")


@dataclass(slots=True)
class _TableState:
    row_labels: dict[bytes, str] = field(default_factory=dict)  # index suffix -> ',a="x",...'
    labels_at: float = -math.inf  # monotonic time of the last label walk
    fallbacks_used: frozenset[bytes] = frozenset()  # fallback columns some row needed


@dataclass(slots=True)
class _Problems:
    """Per-poll value problems (wrong type, unparsable string): counted, first one kept."""

    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first.setdefault(reason, message)


class DevicePoller:
    def __init__(self, check: Check, modules: list[SnmpModule], session: SnmpSession) -> None:
        assert isinstance(check.profile, SnmpProfile)
        self.check = check
        self.profile: SnmpProfile = check.profile
        self.modules = modules
        self.session = session
        self.base_labels = label_pairs(zip(HIERARCHY_LABELS, check.hierarchy(), strict=True))
        self._tables = [t for m in modules for t in m.tables]
        self._state = {id(t): _TableState() for t in self._tables}
        scalar_oids = {SYS_UPTIME: None}
        for module in modules:
            scalar_oids.update(dict.fromkeys(module.scalar_oids()))
        self._scalar_oids = list(scalar_oids)
        self.stats = RequestStats()  # of the poll running now, or the last one

    async def poll(self) -> SnmpPollResult:
        started = time.time()
        loop_start = time.monotonic()
        stats = self.stats = RequestStats()  # readable if the scheduler cuts the poll off
        deadline = asyncio.get_running_loop().time() + self.profile.deadline
        problems = _Problems()
        try:
            # The poll's own deadline (the scheduler's is a second later): a poll cut off here
            # still reports the requests, retries and timeouts it spent.
            async with asyncio.timeout_at(deadline):
                families, varbinds, uptime = await self._collect(stats, deadline, problems)
        except TimeoutError:
            error, reason = (f"deadline of {self.profile.deadline:g}s reached after "
                             f"{stats.requests} requests; nothing from this poll is exported",
                             "deadline")
        except WalkError as exc:
            error, reason = str(exc), exc.reason
        else:
            return SnmpPollResult(
                check=self.check, started=started, duration=time.monotonic() - loop_start,
                requests=stats.requests, retries=stats.retries, timeouts=stats.timeouts,
                varbinds=varbinds, families={k: "".join(v) for k, v in families.items()},
                uptime_ticks=uptime, value_errors=dict(problems.counts),
                value_error_examples=dict(problems.first))
        return SnmpPollResult(
            check=self.check, started=started, duration=time.monotonic() - loop_start,
            error=error, error_reason=reason, deadline_exceeded=reason == "deadline",
            requests=stats.requests, retries=stats.retries, timeouts=stats.timeouts)

    async def _collect(self, stats: RequestStats, deadline: float,
                       problems: _Problems) -> tuple[dict[str, list[str]], int, int | None]:
        profile, session = self.profile, self.session
        scalars = await get_scalars(session, list(self._scalar_oids), profile.max_oids_per_request,
                                    stats, deadline)
        varbinds = len(scalars)
        now = time.monotonic()
        # Per table: a full walk (labels and every fallback) or only what the samples need.
        full = {id(t): now - self._state[id(t)].labels_at >= t.label_refresh for t in self._tables}
        columns = [c for t in self._tables for c in self._columns(t, full[id(t)])]
        walked = await walk_columns(session, columns, profile.max_repetitions,
                                    profile.max_oids_per_request, stats, deadline)
        # A row without labels yet (a new interface): fetch its labels now, in this poll, so
        # its series are born with their final label set (no churn on the next label refresh).
        missing: list[bytes] = []
        for table in self._tables:
            if table.labels and not full[id(table)]:
                row_labels = self._state[id(table)].row_labels
                if any(suffix not in row_labels for suffix in walked.get(table.primary_columns[0], {})):
                    full[id(table)] = True
                    missing += [c for c in self._columns(table, True) if c not in walked]
        if missing:
            walked.update(await walk_columns(session, missing, profile.max_repetitions,
                                             profile.max_oids_per_request, stats, deadline))
        varbinds += sum(len(rows) for rows in walked.values())
        families: dict[str, list[str]] = {}
        scalar_columns = {oid: {b"": cell} for oid, cell in scalars.items()}
        for module in self.modules:
            for metric in module.scalars:
                self._scalar_samples(metric, scalars, scalar_columns, families, problems)
        for table in self._tables:
            self._table_samples(table, walked, full[id(table)], now, families, problems)
        uptime_cell = scalars.get(SYS_UPTIME)
        uptime = None
        if uptime_cell is not None:
            if uptime_cell[0] == ber.TIMETICKS and isinstance(uptime_cell[1], int):
                uptime = uptime_cell[1]
            else:
                problems.add("wrong_type", f"sysUpTime.0 is {ber.TAG_NAMES.get(uptime_cell[0], '?')}"
                                           ", not TimeTicks")
        return families, varbinds, uptime

    def _columns(self, table: Table, full: bool) -> list[bytes]:
        """Columns of `table` to walk: on a full walk labels and every fallback, else only
        the fallbacks some row needed on the last full walk."""
        if full:
            return [*table.primary_columns, *table.label_columns, *table.fallback_columns]
        used = self._state[id(table)].fallbacks_used
        return [*table.primary_columns, *(c for c in table.fallback_columns if c in used)]

    def _scalar_samples(self, metric: Metric, scalars: dict[bytes, Cell],
                        scalar_columns: dict[bytes, Column], families: dict[str, list[str]],
                        problems: _Problems) -> None:
        base = self.base_labels
        if metric.type == "info":
            pairs = [(label.name, _label_text(scalars[label.oid], label))
                     for label in metric.labels if label.oid in scalars]
            if pairs:
                extra = "," + label_pairs(pairs)
                families.setdefault(metric.name, []).append(f"{metric.name}{{{base}{extra}}} 1\n")
            return
        value = _value_of(_candidates(metric, scalar_columns), b"", problems)
        if value is not None:
            families.setdefault(metric.name, []).append(f"{metric.name}{{{base}}} {value}\n")

    def _table_samples(self, table: Table, walked: dict[bytes, Column], full: bool,
                       now: float, families: dict[str, list[str]], problems: _Problems) -> None:
        state = self._state[id(table)]
        rows: dict[bytes, None] = {}
        for column in table.primary_columns:
            rows.update(dict.fromkeys(walked.get(column, ())))
        if full or not table.labels:  # without label columns, row labels are the index alone
            state.row_labels = {suffix: _row_labels(table, suffix, walked) for suffix in rows}
        if full:
            state.labels_at = now
        row_labels = state.row_labels
        base = self.base_labels
        used: set[bytes] = set()
        for metric in table.metrics:
            lines = families.setdefault(metric.name, [])
            name = metric.name
            candidates = _candidates(metric, walked)
            for suffix in rows:
                extra = row_labels.get(suffix)
                if extra is None:
                    extra = _index_labels(table.index, suffix)
                value = _value_of(candidates, suffix, problems, used)
                if value is not None:
                    lines.append(f"{name}{{{base}{extra}}} {value}\n")
        if full:
            state.fallbacks_used = frozenset(used)


# A metric's sources for one poll: (source, its column, its multiplier column), None if absent.
_Candidates = list[tuple[Source, Column | None, Column | None]]


def _candidates(metric: Metric, columns: dict[bytes, Column]) -> _Candidates:
    return [(s, columns.get(s.oid), columns.get(s.multiply_by) if s.multiply_by else None)
            for s in metric.sources]


def _value_of(candidates: _Candidates, suffix: bytes, problems: _Problems,
              used: set[bytes] | None = None) -> str | None:
    """The rendered value of a metric for one row (or scalar): the first usable source."""
    for position, (source, column, factors) in enumerate(candidates):
        cell = column.get(suffix) if column is not None else None
        if cell is None:
            continue
        number = _number(cell, source, problems)
        if number is None or (isinstance(number, int) and number in source.unless):
            continue
        if source.multiply_by is not None:
            factor_cell = factors.get(suffix) if factors is not None else None
            factor = _number(factor_cell, source, problems) if factor_cell else None
            if factor is None:
                continue
            number = number * factor
        if position and used is not None:
            used.add(source.oid)
            if source.multiply_by is not None:
                used.add(source.multiply_by)
        if source.scale != 1.0:
            # 15 significant digits: a scaled value shows as 0.7, not 0.7000000000000001.
            number = float(f"{number * source.scale:.15g}")
        return str(number) if isinstance(number, int) else format_value(number)
    return None


def _number(cell: Cell, source: Source, problems: _Problems) -> int | float | None:
    tag, value = cell
    if tag in ber.NUMERIC_TAGS and isinstance(value, int):
        return value
    if source.from_string and isinstance(value, bytes):
        try:
            return float(value.decode("ascii", "replace").strip())
        except ValueError:
            problems.add("unparsable", f"{ber.decode_oid(source.oid)}: {value[:32]!r} is not a number")
            return None
    if tag in ber.EXCEPTION_TAGS or tag == ber.NULL:
        return None
    problems.add("wrong_type", f"{ber.decode_oid(source.oid)}: expected a number, got "
                               f"{ber.TAG_NAMES.get(tag, hex(tag))}")
    return None


def _label_text(cell: Cell, label: LabelColumn) -> str:
    tag, value = cell
    if isinstance(value, bytes):
        if tag == ber.IP_ADDRESS and len(value) == 4:
            text = ".".join(str(b) for b in value)
        else:
            text = " ".join(value.decode("utf-8", "replace").replace("\x00", " ").split())
    elif value is None:
        text = ""
    else:
        text = str(value)
    if label.value_map is not None:
        text = label.value_map.get(text, text)
    return text


def _index_labels(index: tuple[IndexPart, ...], suffix: bytes) -> str:
    try:
        arcs = ber.decode_index(suffix)
    except ber.BerError:
        arcs = ()
    out = []
    pos = 0
    for part in index:
        take = arcs[pos:] if part.arcs is None else arcs[pos:pos + part.arcs]
        pos += len(take)
        mac = part.format == "mac"
        text = ":".join(f"{a:02x}" for a in take) if mac else ".".join(str(a) for a in take)
        if part.value_map is not None:
            text = part.value_map.get(text, text)
        out.append(f',{part.name}="{escape_label_value(text)}"')
    return "".join(out)


def _row_labels(table: Table, suffix: bytes, walked: dict[bytes, Column]) -> str:
    out = _index_labels(table.index, suffix)
    for label in table.labels:
        cell = walked.get(label.oid, {}).get(suffix)
        text = _label_text(cell, label) if cell is not None else ""
        out += f',{label.name}="{escape_label_value(text)}"'
    return out
