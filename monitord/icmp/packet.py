"""ICMP echo requests, IPv4 and IPv6 (replies are parsed inline in the pinger's receive loop).

Only raw IPv4 sockets need a checksum from us: ping sockets (SOCK_DGRAM) and raw ICMPv6
sockets have the kernel compute it.
"""

from __future__ import annotations

import struct

ECHO_REQUEST_V4 = 8
ECHO_REPLY_V4 = 0
ECHO_REQUEST_V6 = 128
ECHO_REPLY_V6 = 129

_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_PATTERN = b"monitord-echo-payload-"


def payload(size: int) -> bytes:
    """A recognisable fixed payload of `size` bytes."""
    return (_PATTERN * (size // len(_PATTERN) + 1))[:size]


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class EchoRequestBuilder:
    """Builds echo requests for one socket; the payload's checksum share is computed once."""

    def __init__(self, request_type: int, identifier: int, size: int, with_checksum: bool) -> None:
        self._type = request_type
        self._identifier = identifier
        self._payload = payload(size)
        self._with_checksum = with_checksum
        self._partial = (request_type << 8) + identifier + _ones_complement_sum(self._payload)

    def build(self, sequence: int) -> bytes:
        checksum = _fold(self._partial + sequence) if self._with_checksum else 0
        return _HEADER.pack(self._type, 0, checksum, self._identifier, sequence) + self._payload
