"""Shared pieces of the fuzz tests (issue 9) and of bench/fuzz.py.

- Tally: counts the inputs a property really tried (the tests assert the count, so a budget
  that silently shrank would fail) and, in the long run, collects failures instead of stopping
  at the first one.
- A BER encoder of SNMP responses written here, sharing nothing with monitord.snmp.ber, so the
  seeds and the structured messages are not shaped by the decoder under test; seed responses
  built from the device recordings in tests/data/snmprec; byte-level mutations.
- YAML text mutations, alias bombs and deep nesting for the config loader.
"""

from __future__ import annotations

import bisect
import gc
import ipaddress
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.snmprec import DEFAULT_RECORDINGS, Record, Recording

# ---- budgets and tallies ---------------------------------------------------------------------

SCALE_ENV = "MONITORD_FUZZ_SCALE"  # bench/fuzz.py multiplies every budget by this
COLLECT_ENV = "MONITORD_FUZZ_COLLECT"  # "1": record failures and go on (bench/fuzz.py)


def budget(ci_examples: int) -> int:
    """Examples for one property: the CI figure, scaled for the long run."""
    return max(1, round(ci_examples * float(os.environ.get(SCALE_ENV, "1"))))


@dataclass
class Tally:
    """Inputs tried by one property and the distinct failures seen (long run only)."""

    name: str
    target: int
    inputs: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # signature -> first example
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None

    def settings(self) -> settings:
        return settings(max_examples=self.target, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))

    def run(self, check: Callable[[], None], describe: Callable[[], str]) -> None:
        """Run one input's check. Under pytest a failure propagates (hypothesis shrinks it);
        in the long run it is recorded by where it was raised, and the run goes on."""
        self.inputs += 1
        try:
            check()
        except Exception as exc:
            if os.environ.get(COLLECT_ENV) != "1":
                raise
            self.failures.setdefault(_signature(exc), describe()[:500])

    @property
    def seconds(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def finish(self) -> None:
        self.ended = time.perf_counter()

    def summary(self) -> str:
        lines = [f"fuzz {self.name}: {self.inputs} inputs (wanted {self.target}), "
                 f"{len(self.failures)} distinct failures, {self.seconds:.1f}s"]
        lines += [f"    {signature}\n      e.g. {example}" for signature, example in self.failures.items()]
        return "\n".join(lines)


@contextmanager
def cpu_seconds() -> Iterator[Callable[[], float]]:
    """Time a check in CPU seconds with the cyclic GC held off: on a busy machine wall time
    lies, and late in a long run a full collection of hypothesis' own (large) heap can take a
    second and would land on whichever small input happened to trigger it."""
    was_enabled = gc.isenabled()
    gc.disable()
    started = time.process_time()
    try:
        yield lambda: time.process_time() - started
    finally:
        if was_enabled:
            gc.enable()


TALLIES: list[Tally] = []  # every property run in this process, for bench/fuzz.py


def tally(name: str, ci_examples: int) -> Tally:
    """A fresh tally for one property run."""
    made = Tally(name, budget(ci_examples))
    TALLIES.append(made)
    return made


def _signature(exc: BaseException) -> str:
    """Exception type and the innermost monitord frame: one crash, however many inputs."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/monitord/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "test"
    # numbers (positions, characters, sizes) vary between inputs of one failure
    message = re.sub(r"[0-9a-f]*\d[0-9a-f]*", "N", str(exc).split("\n")[0])[:120]
    return f"{type(exc).__name__} at {where}: {message}"


# ---- a BER encoder of SNMP messages, independent of monitord.snmp.ber -----------------------

SEQUENCE, INTEGER, OCTET_STRING, NULL, OID = 0x30, 0x02, 0x04, 0x05, 0x06
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, GET_BULK = 0xA0, 0xA1, 0xA2, 0xA5

# snmprec type codes -> BER tags
_SNMPREC_TAGS = {"2": INTEGER, "4": OCTET_STRING, "4x": OCTET_STRING, "5": NULL, "6": OID,
                 "64": IP_ADDRESS, "65": COUNTER32, "66": GAUGE32, "67": TIMETICKS,
                 "68": OPAQUE, "70": COUNTER64}
SNMP_TAGS = (INTEGER, OCTET_STRING, NULL, OID, SEQUENCE, IP_ADDRESS, COUNTER32, GAUGE32,
             TIMETICKS, OPAQUE, COUNTER64, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW,
             GET, GET_NEXT, RESPONSE, GET_BULK, 0xA3, 0xA4, 0xA6, 0xA7, 0xA8)

Arcs = tuple[int, ...]
Value = int | bytes | str | None
Expected = tuple[bytes, int, Value]  # (OID content, tag, decoded value)
Cell = tuple[bytes, int, bytes, Value]  # (OID content, tag, content octets, decoded value)


def ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def tlv(tag: int, content: bytes, length: bytes | None = None) -> bytes:
    """One TLV; `length` overrides the minimal length octets (long forms, lies)."""
    return bytes((tag,)) + (ber_length(len(content)) if length is None else length) + content


def signed_content(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def unsigned_content(value: int) -> bytes:
    # a leading zero octet when the top bit is set, as agents send 2^64 - 1 (9 octets)
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def oid_content(arcs: Sequence[int]) -> bytes:
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def record_value(record: Record) -> tuple[int, bytes, Value] | None:
    """(tag, content octets, value as monitord should decode it) of one recorded value,
    or None for the recordings' anonymised non-hex strings."""
    if not record.valid:
        return None
    tag = _SNMPREC_TAGS[record.tag]
    value = record.value
    content: bytes
    if isinstance(value, int):
        content = signed_content(value) if tag == INTEGER else unsigned_content(value)
    elif tag == IP_ADDRESS:
        value = content = ipaddress.IPv4Address(str(value)).packed
    elif tag == OID:
        arcs = tuple(int(a) for a in str(value).split("."))
        content, value = oid_content(arcs), ".".join(map(str, arcs))
    else:  # strings, Opaque, NULL
        content = value if isinstance(value, bytes) else b""
    return tag, content, value


def varbind(oid: Arcs | bytes, value_tlv: bytes) -> bytes:
    content = oid if isinstance(oid, bytes) else oid_content(oid)
    return tlv(SEQUENCE, tlv(OID, content) + value_tlv)


def response(request_id: int, varbinds: Sequence[bytes], error_status: int = 0,
             error_index: int = 0, community: bytes = b"public", version: int = 1) -> bytes:
    pdu = (tlv(INTEGER, signed_content(request_id)) + tlv(INTEGER, signed_content(error_status))
           + tlv(INTEGER, signed_content(error_index)) + tlv(SEQUENCE, b"".join(varbinds)))
    return tlv(SEQUENCE, tlv(INTEGER, signed_content(version)) + tlv(OCTET_STRING, community)
               + tlv(RESPONSE, pdu))


@dataclass(frozen=True)
class Request:
    """A v1/v2c request as the test agents read it."""

    version: int
    community: bytes
    pdu: int
    request_id: int
    non_repeaters: int
    max_repetitions: int
    oids: tuple[Arcs, ...]


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at pos (well-formed input only)."""
    tag, first = data[pos], data[pos + 1]
    pos += 2
    length = first
    if first & 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return tag, pos, pos + length


def _arcs(content: bytes) -> Arcs:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    top = min(first // 40, 2)
    return (top, first - 40 * top, *arcs[1:])


def parse_request(data: bytes) -> Request:
    """monitord's requests are well-formed; a malformed one raises IndexError/ValueError."""
    _, pos, _ = _read_tlv(data, 0)
    _, start, pos = _read_tlv(data, pos)
    version = int.from_bytes(data[start:pos], "big")
    _, start, pos = _read_tlv(data, pos)
    community = data[start:pos]
    pdu, pos, _ = _read_tlv(data, pos)
    ints = []
    for _ in range(3):
        _, start, pos = _read_tlv(data, pos)
        ints.append(int.from_bytes(data[start:pos], "big", signed=True))
    _, pos, end = _read_tlv(data, pos)
    oids = []
    while pos < end:
        _, vb_start, vb_end = _read_tlv(data, pos)
        _, oid_start, oid_end = _read_tlv(data, vb_start)
        oids.append(_arcs(data[oid_start:oid_end]))
        pos = vb_end
    return Request(version, community, pdu, ints[0], ints[1], ints[2], tuple(oids))


# ---- an agent over a recording (for the UDP server and the scripted sessions) -------------


AgentCell = tuple[Arcs, int, bytes, Value]  # (OID, tag, content octets, decoded value)


class RecordingAgent:
    """Answers GET, GETNEXT and GETBULK from a recording as RFC 3416 says (v2c)."""

    def __init__(self, recording: Recording) -> None:
        self.values: dict[Arcs, tuple[int, bytes, Value]] = {}
        for record in recording:
            value = record_value(record)
            if value is not None:
                self.values[record.oid] = value
        self.sorted = sorted(self.values)

    def _next(self, oid: Arcs) -> AgentCell:
        i = bisect.bisect_right(self.sorted, oid)
        if i == len(self.sorted):
            return (oid, END_OF_MIB_VIEW, b"", None)
        found = self.sorted[i]
        return (found, *self.values[found])

    def answer_cells(self, pdu: int, oids: Sequence[Arcs], max_repetitions: int) -> list[AgentCell]:
        if pdu == GET:
            return [(oid, *self.values.get(oid, (NO_SUCH_OBJECT, b"", None))) for oid in oids]
        if pdu == GET_NEXT:
            return [self._next(oid) for oid in oids]
        cursor = list(oids)
        out: list[AgentCell] = []
        for _ in range(max(1, max_repetitions)):
            row = [self._next(oid) for oid in cursor]
            out += row
            cursor = [cell[0] for cell in row]
            if len(out) > 60:  # a real agent stops where its response would get too big
                break
        return out

    def answer(self, request: Request) -> list[bytes]:
        """The varbinds of the response, encoded."""
        cells = self.answer_cells(request.pdu, request.oids, request.max_repetitions)
        return [varbind(oid, tlv(tag, content)) for oid, tag, content, _ in cells]


@cache
def recordings() -> tuple[Recording, ...]:
    return tuple(Recording.load(p) for p in sorted(DEFAULT_RECORDINGS.glob("*.snmprec")))


@cache
def seed_responses() -> tuple[tuple[bytes, tuple[Cell, ...]], ...]:
    """Real responses (GET of one OID, GETBULK of 25 consecutive ones, one ending in
    endOfMibView) from every recording, with what each must decode to."""
    seeds = []
    request_ids = (1, 127, 128, 65535, 2**31 - 1)
    for n, recording in enumerate(recordings()):
        cells: list[Cell] = []
        for record in recording:
            value = record_value(record)
            if value is not None:
                cells.append((oid_content(record.oid), *value))
        for k, start in enumerate((0, len(cells) // 3, 2 * len(cells) // 3, len(cells) - 5)):
            for size in (1, 25):
                chosen = cells[max(0, start):max(0, start) + size]
                if start == len(cells) - 5 and size == 25:  # walked off the end of the MIB
                    chosen.append((chosen[-1][0], END_OF_MIB_VIEW, b"", None))
                binds = [varbind(oid, tlv(tag, content)) for oid, tag, content, _ in chosen]
                rid = request_ids[(n + k) % len(request_ids)]
                seeds.append((response(rid, binds), tuple(chosen)))
    return tuple(seeds)


# ---- byte mutations ----------------------------------------------------------------------------

INTERESTING_LENGTHS = (
    b"\x00", b"\x01", b"\x7f", b"\x80",  # 0x80: the indefinite form, which SNMP forbids
    b"\x81\x00", b"\x81\x7f", b"\x81\xff", b"\x82\x00\x05", b"\x82\xff\xff",
    b"\x84\x7f\xff\xff\xff", b"\x84\x80\x00\x00\x00", b"\x84\xff\xff\xff\xff",  # 2^31, 2^32-1
    b"\x85\x01\x00\x00\x00\x00", b"\x88" + b"\xff" * 8, b"\xff", b"\x84", b"\x82\x01",
)
INTERESTING_TAGS = (*SNMP_TAGS, 0x00, 0x01, 0x03, 0x1F, 0x3F, 0x45, 0x47, 0x83, 0x9F, 0xBF, 0xFF)


def tlv_headers(data: bytes) -> list[tuple[int, int]]:
    """(tag position, length-octets count) of every TLV found walking data as nested BER,
    stopping quietly where it stops making sense (the input may already be mutated)."""
    found: list[tuple[int, int]] = []
    stack = [(0, len(data))]
    while stack and len(found) < 4096:
        pos, end = stack.pop()
        while pos + 2 <= end:
            tag, first = data[pos], data[pos + 1]
            count = first & 0x7F if first & 0x80 else 0
            if count > 4 or pos + 2 + count > end:
                break
            length = int.from_bytes(data[pos + 2:pos + 2 + count], "big") if count else first
            start = pos + 2 + count
            if start + length > end:
                break
            found.append((pos, 1 + count))
            if tag & 0x20:  # constructed: look inside
                stack.append((start, start + length))
            pos = start + length
    return sorted(found)


Mutation = tuple[str, int, int, bytes]


def mutations() -> st.SearchStrategy[Mutation]:
    return st.tuples(st.sampled_from(sorted(_MUTATORS)), st.integers(0, 2**16),
                     st.integers(0, 2**16), st.binary(max_size=12))


def _truncate(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    return data[:a % (len(data) + 1)]


def _set(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    at = a % len(data)
    return data[:at] + bytes((b % 256,)) + data[at + 1:]


def _flip(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    at = a % len(data)
    return data[:at] + bytes((data[at] ^ (1 << (b % 8)),)) + data[at + 1:]


def _insert(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    at = a % len(data)
    return data[:at] + extra + data[at:]


def _delete(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    at = a % len(data)
    return data[:at] + data[at + 1 + b % 16:]


def _duplicate(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    at = a % len(data)
    return data[:at] + data[at:at + 1 + b % 64] + data[at:]


def _tag(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    headers = tlv_headers(data)
    if not headers:
        return data
    pos, _ = headers[a % len(headers)]
    return data[:pos] + bytes((INTERESTING_TAGS[b % len(INTERESTING_TAGS)],)) + data[pos + 1:]


def _length(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    headers = tlv_headers(data)
    if not headers:
        return data
    pos, octets = headers[a % len(headers)]
    old = int.from_bytes(data[pos + 2:pos + 1 + octets], "big") if octets > 1 else data[pos + 1]
    choices = [*INTERESTING_LENGTHS, ber_length(old + 1), ber_length(max(0, old - 1)),
               bytes((0x84,)) + old.to_bytes(4, "big")]  # a non-minimal but true length
    return data[:pos + 1] + choices[b % len(choices)] + data[pos + 1 + octets:]


def _nest(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    """Wrap a TLV's content in up to 300 SEQUENCE layers (the lengths stay honest)."""
    headers = tlv_headers(data)
    if not headers:
        return data
    pos, _ = headers[a % len(headers)]
    _, start, end = _read_tlv(data, pos)
    inner = data[start:end]
    for _ in range(1 + b % 300):
        inner = tlv(SEQUENCE, inner)
    return data[:pos + 1] + ber_length(len(inner)) + inner + data[end:]


def _swap(data: bytes, a: int, b: int, extra: bytes) -> bytes:
    """Exchange two TLVs (varbinds out of order, a value where an OID goes, ...)."""
    headers = tlv_headers(data)
    if not headers:
        return data
    first, second = sorted((headers[a % len(headers)], headers[b % len(headers)]))
    _, _, end1 = _read_tlv(data, first[0])
    _, _, end2 = _read_tlv(data, second[0])
    if end1 > second[0]:  # nested: not two separate TLVs
        return data
    return (data[:first[0]] + data[second[0]:end2] + data[end1:second[0]]
            + data[first[0]:end1] + data[end2:])


_MUTATORS: dict[str, Callable[[bytes, int, int, bytes], bytes]] = {
    "truncate": _truncate, "set": _set, "flip": _flip, "insert": _insert, "delete": _delete,
    "duplicate": _duplicate, "tag": _tag, "length": _length, "nest": _nest, "swap": _swap,
}


def mutate(data: bytes, mutation: Mutation) -> bytes:
    """Apply one mutation; positions wrap around the current length."""
    kind, a, b, extra = mutation
    return _MUTATORS[kind](data, a, b, extra) if data else extra


# ---- structurally valid BER with something wrong in it ----------------------------------------


# Strategies are built once: building them per draw costs more than the decoding under test.
_CHOICE = st.integers(0, 11)
_TRUE_FORM = st.integers(0, 2)
_WRONG_KIND = st.integers(0, 2)
_DELTA = st.integers(-3, 3)
_LIE = st.sampled_from(INTERESTING_LENGTHS)
_ODD_TAG = st.sampled_from(INTERESTING_TAGS)
_SIZES = st.sampled_from([1, 4, 5, 6, 9, 10, 17, 64, 129, 700, 1800, 4000])
_BIG_NUMBER = _SIZES.map(lambda n: b"\x7f" + b"\xff" * n)  # numbers far beyond 64 bits
_BIG_ARCS = st.one_of(  # OID content with enormous sub-identifiers, or ending inside one
    _SIZES.map(lambda n: b"\x2b" + b"\xff" * n + b"\x7f"),
    _SIZES.map(lambda n: b"\x2b\x06" + b"\x81" * n),
    st.integers(2**32, 2**200).map(lambda v: oid_content((1, 3, v))),
)
_ODD_CONTENT = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"\x80", b"\x80" * 50 + b"\x01"]),
    st.integers(0, 2**72 - 1).map(lambda v: v.to_bytes(9, "big")),  # Counter64 in 9 octets
    _BIG_NUMBER, _BIG_NUMBER, _BIG_ARCS, _BIG_ARCS,
)


def true_lengths(size: int) -> tuple[bytes, ...]:
    """Length octets that say `size`: minimal, and two non-minimal forms BER allows."""
    return (ber_length(size), bytes((0x82,)) + size.to_bytes(2, "big"),
            bytes((0x84,)) + size.to_bytes(4, "big"))


def draw_length(draw: st.DrawFn, size: int) -> bytes:
    """Mostly a true length (minimal or not), sometimes a lie."""
    choice = draw(_CHOICE)
    if choice < 9:
        return true_lengths(size)[choice % 3]
    if choice < 11:
        return draw(_LIE)
    return ber_length(max(0, size + draw(_DELTA)))


@st.composite
def structured_responses(draw: st.DrawFn) -> tuple[bytes, tuple[int, int, int, tuple[Expected, ...]] | None]:
    """A response with one or two elements wrong: a lying length, another tag, odd content
    (9+ octet numbers, huge OID arcs, ...), the varbind list nested deep. Lengths use the
    minimal and the non-minimal definite forms. Also returns what it must decode to when
    nothing went wrong."""
    seeds = seed_responses()
    _, cells = seeds[draw(st.integers(0, len(seeds) - 1))]
    chosen = cells[:draw(st.integers(0, len(cells)))]
    # One or two elements go wrong (counted in the order they are built); more and the
    # decoder would almost always stop at the first, never reaching the later ones.
    wrong = set(draw(st.lists(st.integers(0, 3 * len(chosen) + 8), max_size=2)))
    built = 0

    def element(tag: int, content: bytes) -> bytes:
        nonlocal built
        built += 1
        if built - 1 not in wrong:
            return tlv(tag, content, true_lengths(len(content))[draw(_TRUE_FORM)])
        kind = draw(_WRONG_KIND)
        if kind == 0:  # a lie about the length
            return tlv(tag, content, draw(_LIE) if draw(_CHOICE) < 10
                       else ber_length(max(0, len(content) + draw(_DELTA))))
        odd_content = draw(_ODD_CONTENT)  # another tag and content, or odd content
        return tlv(draw(_ODD_TAG) if kind == 1 else tag, odd_content,
                   true_lengths(len(odd_content))[draw(_TRUE_FORM)])

    request_id = draw(st.integers(-(2**31), 2**31 - 1))
    status = draw(st.integers(0, 18))
    index = draw(st.integers(0, len(chosen)))
    binds = []
    for oid, tag, content, _ in chosen:
        binds.append(element(SEQUENCE, element(OID, oid) + element(tag, content)))
    nesting = draw(st.integers(0, 3))
    varbind_list = element(SEQUENCE, b"".join(binds))
    for _ in range(nesting * draw(st.integers(0, 400))):  # a varbind list buried deep
        wrong.add(-1)
        varbind_list = tlv(SEQUENCE, varbind_list)
    pdu = (element(INTEGER, signed_content(request_id)) + element(INTEGER, signed_content(status))
           + element(INTEGER, signed_content(index)) + varbind_list)
    message = element(SEQUENCE, element(INTEGER, b"\x01") + element(OCTET_STRING, b"public")
                      + element(RESPONSE, pdu))
    expected = tuple((oid, tag, value) for oid, tag, _, value in chosen)
    honest = all(w >= built for w in wrong)  # no element went wrong
    return message, ((request_id, status, index, expected) if honest else None)


_VALUE_TAGS = st.sampled_from((INTEGER, COUNTER32, GAUGE32, TIMETICKS, COUNTER64, OID,
                                OCTET_STRING, IP_ADDRESS, OPAQUE, NULL, END_OF_MIB_VIEW))


@st.composite
def odd_values(draw: st.DrawFn) -> bytes:
    """A real response with one varbind's value (or OID) replaced by odd content under a
    proper tag: a Counter64 of 9+ octets, a number of thousands of octets, an OID with huge
    or unfinished sub-identifiers, an empty INTEGER."""
    seeds = seed_responses()
    _, cells = seeds[draw(st.integers(0, len(seeds) - 1))]
    at = draw(st.integers(0, len(cells) - 1))
    odd = draw(_ODD_CONTENT)
    in_oid = draw(st.booleans())
    tag = draw(_VALUE_TAGS)
    binds = []
    for i, (oid, value_tag, content, _) in enumerate(cells):
        if i == at:
            binds.append(varbind(odd, tlv(value_tag, content)) if in_oid
                         else varbind(oid, tlv(tag, odd)))
        else:
            binds.append(varbind(oid, tlv(value_tag, content)))
    return response(draw(st.integers(0, 2**31 - 1)), binds)


# ---- config texts --------------------------------------------------------------------------------

YAML_SNIPPETS = (
    ": ", "- ", "\t", "  ", "\n", "&a ", "*a", "<<: *a\n", "!!int ", "!!float ", "!!binary ",
    "!!timestamp ", "!!python/object/apply:os.system ", "!!set ", "{", "}", "[", "]", "'", '"',
    "---\n", "...\n", "? ", "|\n", ">-\n", "#", "%YAML 1.1\n", "\x00", "\ufeff", "\x85",
    "\u2028", "é", "日本", "🐍", "1e999", ".nan", ".inf", "-.inf", "0x" + "f" * 200,
    "9" * 5000, "1" + "0" * 400, "2025-13-45", "2025-02-30 25:61", "0o777", "1_000",
    "~", "null", "yes", "no", "on", "0.", "-0", "1:30:00", "\\x00", '"\\0"', '"\\ud800"',
    "{env: MONITORD_FUZZ_UNSET}", "{file: /nonexistent/secret}", "{env: ''}", "{file: ''}",
)


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str:
    """`text` with a few edits of the kinds people (and disks) make."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        lines = lines or [""]
        kind = draw(st.sampled_from(("insert", "delete", "dup_line", "swap_lines", "indent",
                                     "value", "junk", "drop_line")))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        line = lines[i] if lines else ""
        col = draw(st.integers(0, len(line)))
        if kind == "insert":
            lines[i:i + 1] = (line[:col] + draw(st.sampled_from(YAML_SNIPPETS))
                              + line[col:]).split("\n")
        elif kind == "delete":
            lines[i] = line[:col] + line[col + draw(st.integers(1, 20)):]
        elif kind == "dup_line":  # the classic duplicate key
            lines.insert(i, line)
        elif kind == "swap_lines" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = " " * draw(st.integers(0, 6)) + line.lstrip(" ")
        elif kind == "value" and ": " in line:
            key = line.split(": ", 1)[0]
            lines[i] = f"{key}: {draw(yaml_scalar_text())}"
        elif kind == "junk":
            lines[i] = line[:col] + draw(st.text(max_size=20)) + line[col:]
        elif kind == "drop_line" and lines:
            del lines[i]
    return "\n".join(lines)


def yaml_scalar_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(YAML_SNIPPETS), st.integers().map(str),
                     st.floats().map(repr), st.text(max_size=30).map(repr),
                     st.text(max_size=20))


def yaml_values() -> st.SearchStrategy[Any]:
    """Plain data as YAML can carry it, including what configs never should."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(-(10**600), 10**600),
        st.floats(), st.text(max_size=30), st.dates(), st.datetimes(),
        st.sampled_from(["10.0.0.1", "::1", "30s", "500ms", "2m", "0s", "-1s", "1e999s", "",
                         "lan", "village-ap", "1.3.6.1.2.1.1.3.0", "1.40.1", "2." + "9" * 50]),
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=4),
                        max_leaves=24)


def structural_mutation(data: Any, path: Sequence[int], action: int, replacement: Any) -> Any:
    """A copy of `data` with the node that `path` picks (each step: which child) dropped,
    replaced, given an unknown sibling, or wrapped in a list."""
    if not path or not isinstance(data, dict | list) or not data:
        return [replacement] if action == 3 else replacement
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    if len(path) == 1 and action == 0:
        del copy[key]
    elif len(path) == 1 and action == 2 and isinstance(copy, dict):
        copy[f"unknown_{path[0]}"] = replacement
    else:
        copy[key] = structural_mutation(copy[key], path[1:], action, replacement)
    return copy


ALIAS_PLACES = ("kabupaten", "devices", "labels", "unless", "top", "merge", "device_tree",
                "snmp_tree")


def alias_bomb(levels: int, fanout: int, place: str) -> str:
    """A billion-laughs document: `levels` anchors, each aliasing the one before `fanout`
    times. The two *_tree places are shaped like the schema, so that validation would walk
    every copy: fanout^3 devices, or fanout^4 `unless` values of SNMP modules."""
    many = ", ".join
    if place == "device_tree":  # anchors inside valid places: nothing fails before the resolver
        device = "&d {id: d, address: 10.0.0.1, role: village-ap}"
        site = f"&s {{id: s, devices: [{many([device] + ['*d'] * (fanout - 1))}]}}"
        kabupaten = f"&k {{id: k, sites: [{many([site] + ['*s'] * (fanout - 1))}]}}"
        return f"province: {{id: p, kabupaten: [{many([kabupaten] + ['*k'] * (fanout - 1))}]}}\n"
    if place == "snmp_tree":
        source = f"&s {{oid: 1.3.6.1.2.1.2.2.1.10, unless: [{many(str(n) for n in range(fanout))}]}}"
        metric = (f"&m {{name: m_octets_total, type: counter, help: h, "
                  f"sources: [{many([source] + ['*s'] * (fanout - 1))}]}}")
        table = f"&t {{name: t, index: [i], metrics: [{many([metric] + ['*m'] * (fanout - 1))}]}}"
        return (f"snmp: {{modules: {{m: {{tables: [{many([table] + ['*t'] * (fanout - 1))}]}}}}}}\n"
                "province: {id: p}\n")
    anchors = ["  l0: &l0 [lol, lol]"] if place != "devices" else [
        "  l0: &l0 [{id: d, address: 10.0.0.1, role: village-ap}]"]
    for n in range(1, levels + 1):
        if place in ("labels", "merge"):
            refs = ", ".join(f"k{m}: *l{n - 1}" for m in range(fanout))
            anchors.append(f"  l{n}: &l{n} {{{refs}}}")
        else:
            anchors.append(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fanout)}]")
    uses = {
        "top": "province: {id: p}\n",
        "kabupaten": "province:\n  id: p\n  kabupaten: TOP\n",
        "devices": "province:\n  id: p\n  kabupaten: [{id: k, sites: [{id: s, devices: TOP}]}]\n",
        "labels": "province:\n  id: p\n  defaults: {labels: TOP}\n",
        "merge": "province:\n  <<: TOP\n  id: p\n",
        "unless": "snmp:\n  modules:\n    m:\n      scalars:\n        - {name: m_x, help: h, "
                  "sources: [{oid: 1.3.6.1.2.1.1.3.0, unless: TOP}]}\nprovince: {id: p}\n",
    }
    return "x-bomb:\n" + "\n".join(anchors) + "\n" + uses[place].replace("TOP", f"*l{levels}")


def deep_nesting(depth: int, form: str) -> str:
    """A value nested `depth` levels deep, in flow or block style, as the province."""
    if form == "flow_list":
        return "province: " + "[" * depth + "]" * depth + "\n"
    if form == "flow_map":
        return "province: " + "{a: " * depth + "1" + "}" * depth + "\n"
    lines = ["province:"]
    for level in range(1, depth + 1):
        lines.append("  " * level + ("- " if form == "block_list" else "a:"))
        if form == "block_list":
            lines[-1] = "  " * level + "-"
    lines.append("  " * (depth + 1) + "x")
    return "\n".join(lines) + "\n"
