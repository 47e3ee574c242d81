"""A small reader of snmpsim .snmprec recordings (`OID|TYPE|VALUE` per line).

Tests use it to work out what monitord should export from a recording without going through
monitord's own code: it deliberately shares nothing with monitord.snmp.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# The device recordings (LibreNMS test data; see the README there).
DEFAULT_RECORDINGS = Path(__file__).resolve().parent / "data" / "snmprec"

Oid = tuple[int, ...]
Value = int | bytes | str | None

INTEGER_TAGS = frozenset({"2", "65", "66", "67", "70"})  # Integer32 Counter32 Gauge32 TimeTicks Counter64
COUNTER64 = "70"


class SnmprecError(ValueError):
    pass


def parse_oid(text: str) -> Oid:
    """Sub-identifiers as numbers: leading zeros (FortiGate's `10.090.1`) mean nothing."""
    parts = text.strip().lstrip(".").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise SnmprecError(f"{text!r} is not a numeric OID")
    return tuple(int(p) for p in parts)


def dotted(oid: Iterable[int]) -> str:
    return ".".join(str(arc) for arc in oid)


@dataclass(frozen=True, slots=True)
class Record:
    oid: Oid
    tag: str
    raw: str  # VALUE exactly as written
    # int for Integer32/Counter/Gauge/TimeTicks; bytes for OCTET STRING (4 and 4x) and Opaque;
    # dotted text for OBJECT IDENTIFIER and IpAddress; None for NULL and for invalid hex.
    value: Value
    valid: bool = True  # False: a `4x` value that is not hex (anonymised upstream)

    @property
    def is_integer(self) -> bool:
        return self.tag in INTEGER_TAGS


def _decode(tag: str, raw: str) -> tuple[Value, bool]:
    """(value, valid) of one VALUE field."""
    value: Value = None
    if tag in INTEGER_TAGS:
        value = int(raw)
    elif tag == "4":
        value = raw.encode("latin-1")  # the file's own bytes, whatever their encoding
    elif tag in ("4x", "68"):
        try:
            value = bytes.fromhex(raw)
        except ValueError:
            return None, False  # e.g. Cisco's anonymised MACs `346288XXYYZZ`
    elif tag == "6":
        value = dotted(parse_oid(raw))
    elif tag == "64":
        value = str(ipaddress.IPv4Address(raw.strip()))
    elif tag != "5":
        raise SnmprecError(f"unknown or unsupported type tag {tag!r}")
    return value, True


def parse_line(line: str) -> Record:
    """One `OID|TYPE|VALUE` line; VALUE keeps its spaces (only the line ending goes)."""
    fields = line.rstrip("\r\n").split("|", 2)
    if len(fields) != 3:
        raise SnmprecError(f"{line!r} is not OID|TYPE|VALUE")
    oid_text, tag, raw = fields
    value, valid = _decode(tag, raw)
    return Record(parse_oid(oid_text), tag, raw, value, valid)


class Recording:
    """The records of one file by OID, in numeric OID order whatever the file's order."""

    def __init__(self, records: Iterable[Record], name: str = "") -> None:
        self.name = name
        by_oid: dict[Oid, Record] = {}
        for record in records:
            if record.oid in by_oid:
                raise SnmprecError(f"{name}: {dotted(record.oid)} is recorded twice")
            by_oid[record.oid] = record
        self.records = dict(sorted(by_oid.items()))
        self._oids = list(self.records)  # sorted: a column's instances are one contiguous run

    @classmethod
    def load(cls, path: Path) -> Recording:
        # latin-1 maps every byte to one character, so plain values keep their exact bytes.
        lines = path.read_text(encoding="latin-1").splitlines()
        try:
            return cls((parse_line(line) for line in lines if line.strip()), path.stem)
        except (SnmprecError, ValueError) as exc:
            raise SnmprecError(f"{path}: {exc}") from None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def get(self, oid: Oid | str) -> Record | None:
        return self.records.get(parse_oid(oid) if isinstance(oid, str) else oid)

    def column(self, oid: Oid | str) -> dict[Oid, Record]:
        """{row index: record} of the instances below `oid` (a table column)."""
        prefix = parse_oid(oid) if isinstance(oid, str) else oid
        n = len(prefix)
        rows: dict[Oid, Record] = {}
        for i in range(bisect.bisect_right(self._oids, prefix), len(self._oids)):
            instance = self._oids[i]
            if instance[:n] != prefix:
                break
            rows[instance[n:]] = self.records[instance]
        return rows

    def without(self, tag: str) -> Recording:
        """The recording as an agent would show it without one type (SNMPv1 has no Counter64)."""
        return Recording((r for r in self if r.tag != tag), self.name)
