"""A purpose-built BER codec for SNMPv1/v2c messages: the hot path of SNMP polling.

pysnmp decodes every varbind through pyasn1's generic machinery (about 150 us of CPU per
varbind, PEERS.md); an SNMP response only ever holds a handful of types, so a flat loop over
the bytes does the same job for a small fraction of that. OIDs stay in their BER encoding
(`bytes`, the content octets without tag and length): a column's encoding is a byte prefix
of every instance's encoding, so "is this varbind still in the column" is `startswith`, and
the row index is the suffix, decoded only when a label needs it.

SNMPv3 messages go through pysnmp (monitord.snmp.session), which then hands back varbinds in
the same shape as decode_response().
"""

from __future__ import annotations

from dataclasses import dataclass

# Universal and SNMP application tags of varbind values.
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

# PDU tags.
GET = 0xA0
GET_NEXT = 0xA1
RESPONSE = 0xA2
GET_BULK = 0xA5
REPORT = 0xA8

NUMERIC_TAGS = frozenset({INTEGER, COUNTER32, GAUGE32, TIMETICKS, COUNTER64})
EXCEPTION_TAGS = frozenset({NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
TAG_NAMES = {
    INTEGER: "INTEGER", OCTET_STRING: "OCTET STRING", NULL: "NULL",
    OBJECT_IDENTIFIER: "OBJECT IDENTIFIER", IP_ADDRESS: "IpAddress", COUNTER32: "Counter32",
    GAUGE32: "Gauge32", TIMETICKS: "TimeTicks", OPAQUE: "Opaque", COUNTER64: "Counter64",
    NO_SUCH_OBJECT: "noSuchObject", NO_SUCH_INSTANCE: "noSuchInstance",
    END_OF_MIB_VIEW: "endOfMibView",
}
ERROR_STATUS_NAMES = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
    "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
    "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
    "authorizationError", "notWritable", "inconsistentName",
)
TOO_BIG = 1
NO_SUCH_NAME = 2
# Bounds on what an agent may send. Numbers: 2^64 - 1 takes 9 octets (a leading zero), and
# anything longer could not even be printed or scaled. OID sub-identifiers: 32 bits (RFC 2578).
MAX_NUMBER_OCTETS = 9
MAX_ARC = 2**32 - 1

Value = int | bytes | str | None  # int for numbers, bytes for strings/addresses, str for OIDs
# (oid as BER content octets, value tag, decoded value)
Varbind = tuple[bytes, int, Value]


class BerError(ValueError):
    """A message that is not well-formed SNMP; the text says what and where."""


@dataclass(frozen=True, slots=True)
class Response:
    request_id: int
    error_status: int
    error_index: int  # 1-based varbind the error refers to, 0 if none
    varbinds: list[Varbind]

    def error_name(self) -> str:
        status = self.error_status
        return ERROR_STATUS_NAMES[status] if 0 <= status < len(ERROR_STATUS_NAMES) else str(status)


def encode_oid(dotted: str) -> bytes:
    """BER content octets of an OID given as "1.3.6.1..." (a leading dot is allowed)."""
    try:
        parts = [int(p) for p in dotted.strip().lstrip(".").split(".")]
    except ValueError:
        raise ValueError(f"{dotted!r} is not a valid OID") from None
    if len(parts) < 2 or parts[0] > 2 or (parts[0] < 2 and parts[1] > 39) or min(parts) < 0:
        raise ValueError(f"{dotted!r} is not a valid OID")
    out = bytearray()
    for arc in [parts[0] * 40 + parts[1], *parts[2:]]:
        out += _base128(arc)
    return bytes(out)


def _base128(arc: int) -> bytes:
    chunk = [arc & 0x7F]
    arc >>= 7
    while arc:
        chunk.append(0x80 | (arc & 0x7F))
        arc >>= 7
    return bytes(reversed(chunk))


def decode_oid(content: bytes) -> str:
    """Dotted form of BER OID content octets."""
    return ".".join(str(a) for a in oid_arcs(content, first=True))


def decode_index(suffix: bytes) -> tuple[int, ...]:
    """Sub-identifiers of an OID suffix (a row index): no first-two-arcs packing."""
    return tuple(oid_arcs(suffix, first=False))


def oid_arcs(content: bytes, first: bool) -> list[int]:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
        elif value > MAX_ARC >> 7:  # the next octet would take it past 32 bits
            raise BerError("OID sub-identifier larger than 2^32 - 1")
    if value or (content and content[-1] & 0x80):
        raise BerError("OID ends inside a sub-identifier")
    if first and arcs:
        head = arcs[0]
        top = 2 if head >= 80 else head // 40
        arcs[0:1] = [top, head - 40 * top]
    return arcs


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return _tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def encode_varbind_list(oids: list[bytes]) -> bytes:
    """The varbind list of a request: every OID paired with NULL."""
    return _tlv(SEQUENCE, b"".join(_tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, o) + b"\x05\x00")
                                   for o in oids))


def encode_request(version: int, community: bytes, pdu: int, request_id: int,
                   varbind_list: bytes, non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A complete v1 (version 0) or v2c (version 1) request message. For GET_BULK the two
    integers are non-repeaters and max-repetitions, otherwise error-status and -index (0)."""
    body = (_integer(request_id) + _integer(non_repeaters if pdu == GET_BULK else 0)
            + _integer(max_repetitions if pdu == GET_BULK else 0) + varbind_list)
    return _tlv(SEQUENCE, _integer(version) + _tlv(OCTET_STRING, community) + _tlv(pdu, body))


def _header(data: bytes, pos: int, tag: int, what: str, *, whole: bool = True) -> tuple[int, int]:
    """Check the tag at pos; return (content start, content end). With whole=False the content
    may run past the data's end (a truncated message whose start is still readable)."""
    if pos + 2 > len(data) or data[pos] != tag:
        found = f"0x{data[pos]:02x}" if pos < len(data) else "end of data"
        raise BerError(f"expected {what} (tag 0x{tag:02x}) at byte {pos}, found {found}")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise BerError(f"unsupported length encoding at byte {pos - 1}")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data) and whole:
        raise BerError(f"{what} at byte {pos} claims {length} bytes; only {len(data) - pos} left")
    return pos, end


def _read_int(data: bytes, pos: int, what: str) -> tuple[int, int]:
    start, end = _header(data, pos, INTEGER, what)
    if end - start > MAX_NUMBER_OCTETS:
        raise BerError(f"{what} at byte {start} is an INTEGER of {end - start} octets")
    return int.from_bytes(data[start:end], "big", signed=True), end


def peek_request_id(data: bytes) -> int | None:
    """The request-id of a v1/v2c message, or None if it is not one (cheap pre-match)."""
    try:
        # A truncated answer still carries its request-id: match it to its request, so the
        # poll fails as malformed rather than waiting out a timeout for an answer that came.
        start, _ = _header(data, 0, SEQUENCE, "message", whole=False)
        _, pos = _read_int(data, start, "version")
        _, pos = _header(data, pos, OCTET_STRING, "community")
        if pos + 1 >= len(data):  # no PDU tag and length
            return None
        pdu_start = pos + 2 + (data[pos + 1] & 0x7F if data[pos + 1] & 0x80 else 0)
        return _read_int(data, pdu_start, "request-id")[0]
    except BerError:
        return None


def decode_response(data: bytes) -> Response:
    """Decode a v1/v2c Response message. Raises BerError naming the first problem."""
    start, _ = _header(data, 0, SEQUENCE, "message")
    _, pos = _read_int(data, start, "version")
    _, pos = _header(data, pos, OCTET_STRING, "community")
    if pos >= len(data) or data[pos] != RESPONSE:
        found = f"0x{data[pos]:02x}" if pos < len(data) else "end of data"
        raise BerError(f"expected a Response PDU (0xa2) at byte {pos}, found {found}")
    pos, _ = _header(data, pos, RESPONSE, "Response PDU")
    request_id, pos = _read_int(data, pos, "request-id")
    error_status, pos = _read_int(data, pos, "error-status")
    error_index, pos = _read_int(data, pos, "error-index")
    pos, end = _header(data, pos, SEQUENCE, "varbind list")
    return Response(request_id, error_status, error_index, decode_varbinds(data, pos, end))


_UNSIGNED_TAGS = frozenset({COUNTER32, COUNTER64, GAUGE32, TIMETICKS})
_BYTES_TAGS = frozenset({OCTET_STRING, IP_ADDRESS, OPAQUE})


def decode_varbinds(data: bytes, pos: int, end: int) -> list[Varbind]:  # noqa: PLR0912 (one flat loop on purpose)
    """The varbinds in data[pos:end]. One flat loop with the common short forms inlined:
    this is where an SNMP walk spends its CPU."""
    out: list[Varbind] = []
    append = out.append
    from_bytes = int.from_bytes
    try:
        while pos < end:
            if data[pos] != SEQUENCE:
                raise BerError(f"expected a varbind (tag 0x30) at byte {pos}, found 0x{data[pos]:02x}")
            length = data[pos + 1]
            if length & 0x80:
                pos, vb_end = _header(data, pos, SEQUENCE, "varbind")
            else:
                pos += 2
                vb_end = pos + length
            if data[pos] != OBJECT_IDENTIFIER:
                raise BerError(f"expected an OID (tag 0x06) at byte {pos}, found 0x{data[pos]:02x}")
            length = data[pos + 1]
            if length & 0x80:
                pos, oid_end = _header(data, pos, OBJECT_IDENTIFIER, "OID")
            else:
                pos += 2
                oid_end = pos + length
            oid = data[pos:oid_end]
            tag = data[oid_end]
            length = data[oid_end + 1]
            if length & 0x80:
                pos, value_end = _header(data, oid_end, tag, "value")
            else:
                pos = oid_end + 2
                value_end = pos + length
            if value_end != vb_end or vb_end > end:
                raise BerError(f"varbind at byte {pos} is malformed (value overruns the varbind)")
            value: Value
            if value_end - pos > MAX_NUMBER_OCTETS and tag in NUMERIC_TAGS:
                raise BerError(f"{TAG_NAMES[tag]} of {value_end - pos} octets at byte {pos}")
            if tag in _UNSIGNED_TAGS:
                value = from_bytes(data[pos:value_end], "big")
            elif tag == INTEGER:
                value = from_bytes(data[pos:value_end], "big", signed=True)
            elif tag in _BYTES_TAGS:
                value = data[pos:value_end]
            elif tag == OBJECT_IDENTIFIER:
                value = decode_oid(data[pos:value_end])
            else:  # NULL, noSuchObject, noSuchInstance, endOfMibView, or unknown
                value = None
            append((oid, tag, value))
            pos = value_end
    except IndexError:
        raise BerError(f"message truncated in the varbind list near byte {pos}") from None
    return out
