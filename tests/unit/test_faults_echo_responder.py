"""The lab's delaying echo responder (monitord.lab.echo_responder), without raw sockets: its
packet handling on hand-built packets, and its scheduling on a fake socket."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from pathlib import Path
from typing import Any, cast

import pytest

from monitord.icmp.packet import EchoRequestBuilder
from monitord.lab.echo_responder import (
    Delay,
    EchoRequest,
    EchoResponder,
    checksum,
    echo_reply,
    parse_echo_request,
    read_control,
)


def ipv4(source: str, destination: str, icmp: bytes, options: bytes = b"") -> bytes:
    """An IPv4 packet around `icmp` (header checksum left 0: nobody here checks it)."""
    ihl = 5 + len(options) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(icmp), 1, 0, 64,
                       1, 0, socket.inet_aton(source), socket.inet_aton(destination)) \
        + options + icmp


def echo_request(identifier: int, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, identifier, sequence)
    body = header + payload
    return body[:2] + checksum(body).to_bytes(2, "big") + body[4:]


def test_checksum_of_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    assert checksum(b"\x01") == checksum(b"\x01\x00")  # odd length: padded with a zero


def test_parses_the_request_monitord_itself_sends() -> None:
    packet = EchoRequestBuilder(8, identifier=0x1234, size=56, with_checksum=True).build(7)
    parsed = parse_echo_request(ipv4("198.18.1.1", "198.19.1.3", packet))
    assert parsed == EchoRequest("198.18.1.1", "198.19.1.3", 0x1234, 7, packet[8:])


def test_the_reply_answers_the_request_with_a_valid_checksum() -> None:
    for payload in (b"", b"x", bytes(range(57))):  # even, odd, and monitord-sized
        request = parse_echo_request(ipv4("10.0.0.1", "10.0.0.2", echo_request(9, 65535, payload)))
        assert request is not None
        reply = echo_reply(request)
        assert checksum(reply) == 0
        assert struct.unpack("!BBHHH", reply[:8])[0:2] == (0, 0)  # echo reply, code 0
        assert struct.unpack("!HH", reply[4:8]) == (9, 65535)
        assert reply[8:] == payload


def test_ip_options_are_skipped() -> None:
    packet = ipv4("10.0.0.1", "10.0.0.2", echo_request(1, 2, b"abc"), options=b"\x01" * 4)
    request = parse_echo_request(packet)
    assert request is not None
    assert request.payload == b"abc"


@pytest.mark.parametrize("packet", [
    b"",
    b"\x45" + bytes(10),  # shorter than an IP header
    ipv4("10.0.0.1", "10.0.0.2", b"\x08\x00"),  # shorter than an ICMP header
    ipv4("10.0.0.1", "10.0.0.2", echo_request(1, 1, b"abc")[:-1] + b"x"),  # bad checksum
    ipv4("10.0.0.1", "10.0.0.2", struct.pack("!BBHHH", 0, 0, 0xFFFF, 0, 0)),  # a reply
    bytes([0x60]) + bytes(39),  # IPv6
])
def test_anything_but_an_intact_echo_request_is_ignored(packet: bytes) -> None:
    assert parse_echo_request(packet) is None


def test_delay_draws_stay_within_the_jitter_and_never_go_negative() -> None:
    rng = random.Random(1)  # noqa: S311 - jitter, not secrets
    draws = [Delay(0.6, 0.05).draw(rng) for _ in range(2000)]
    assert 0.55 <= min(draws) < 0.56
    assert 0.64 < max(draws) <= 0.65
    assert min(Delay(0.01, 0.05).draw(rng) for _ in range(200)) == 0.0
    with pytest.raises(ValueError, match="negative"):
        Delay.from_ms(-1, 0)


def test_control_file(tmp_path: Path) -> None:
    control = tmp_path / "c.json"
    control.write_text('{"delay_ms": 1200, "jitter_ms": 30}')
    assert read_control(control) == Delay(1.2, 0.03)
    control.write_text('{"delay_ms": 100}')
    assert read_control(control) == Delay(0.1, 0.0)
    control.write_text('{"jitter_ms": 100}')
    with pytest.raises(ValueError, match="delay_ms"):
        read_control(control)


class FakeRawSocket:
    """Hands out queued packets; records what is sent, and when (loop time)."""

    def __init__(self, fd: int, packets: list[bytes]) -> None:
        self._fd = fd
        self.packets = packets
        self.sent: list[tuple[float, bytes, Any, tuple[str, int]]] = []

    def fileno(self) -> int:
        return self._fd

    def setblocking(self, flag: bool) -> None:
        pass

    def recv(self, size: int) -> bytes:
        if not self.packets:
            raise BlockingIOError
        return self.packets.pop(0)

    def sendmsg(self, buffers: list[bytes], ancillary: Any, flags: int,
                address: tuple[str, int]) -> int:
        self.sent.append((asyncio.get_running_loop().time(), buffers[0], ancillary, address))
        return len(buffers[0])


async def test_each_request_is_answered_after_its_delay_from_the_address_asked() -> None:
    wake, other = socket.socketpair()
    packets = [ipv4("10.0.0.1", f"10.0.0.{n}", echo_request(5, n, b"p")) for n in (2, 3, 4)]
    fake = FakeRawSocket(wake.fileno(), [*packets, b"junk"])
    responder = EchoResponder(cast(socket.socket, fake), Delay(0.2, 0.05), max_pending=2)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        responder.start(loop)
        other.send(b"!")  # makes the fd readable: the responder drains the fake's queue
        await asyncio.sleep(0.4)
    finally:
        responder.stop()
        wake.close()
        other.close()
    assert (responder.answered, responder.dropped, responder.pending) == (2, 1, 0)
    for when, reply, ancillary, address in fake.sent:
        assert 0.15 <= when - started <= 0.3
        assert address == ("10.0.0.1", 0)
        [(level, kind, info)] = ancillary
        sequence = struct.unpack("!H", reply[6:8])[0]
        assert (level, kind) == (socket.IPPROTO_IP, 8)  # IP_PKTINFO
        assert info[4:8] == socket.inet_aton(f"10.0.0.{sequence}")  # the source: as asked
    assert sorted(struct.unpack("!H", r[6:8])[0] for _, r, _, _ in fake.sent) == [2, 3]
