"""Echo request building: header fields, payload and the incrementally computed checksum."""

from __future__ import annotations

import struct

import pytest

from monitord.icmp.packet import ECHO_REQUEST_V4, ECHO_REQUEST_V6, EchoRequestBuilder, payload


def internet_checksum_ok(packet: bytes) -> bool:
    """RFC 1071: the ones-complement sum over a packet with its checksum folds to 0xFFFF."""
    data = packet + b"\x00" * (len(packet) % 2)
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


@pytest.mark.parametrize("size", [0, 1, 7, 56, 1400])
@pytest.mark.parametrize("sequence", [0, 1, 0x7FFF, 0xFFFE, 0xFFFF])
def test_raw_ipv4_request_has_a_valid_checksum(size: int, sequence: int) -> None:
    identifier = 0xBEEF
    packet = EchoRequestBuilder(ECHO_REQUEST_V4, identifier, size, with_checksum=True).build(sequence)
    assert len(packet) == 8 + size
    kind, code, _checksum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    assert (kind, code, ident, seq) == (ECHO_REQUEST_V4, 0, identifier, sequence)
    assert packet[8:] == payload(size)
    assert internet_checksum_ok(packet)


def test_kernel_checksummed_requests_leave_it_zero() -> None:
    # Ping sockets and raw ICMPv6 sockets compute the checksum in the kernel.
    packet = EchoRequestBuilder(ECHO_REQUEST_V6, 0, 56, with_checksum=False).build(42)
    assert packet[0] == ECHO_REQUEST_V6
    assert packet[2:4] == b"\x00\x00"
    assert struct.unpack("!H", packet[6:8]) == (42,)


def test_payload_is_exactly_the_requested_size() -> None:
    assert [len(payload(n)) for n in (0, 1, 22, 23, 100)] == [0, 1, 22, 23, 100]
    assert payload(30).startswith(b"monitord-echo-payload-")
