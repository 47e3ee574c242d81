"""A user-space ICMP echo responder that answers after a delay: the lab's VSAT link.

This kernel has no netem, so a ~600 ms satellite hop is made here instead: run inside a network
namespace whose kernel echo replies are off (net.ipv4.icmp_echo_ignore_all=1), it reads every
echo request arriving in that namespace on a raw IPv4 socket and answers each one (same
identifier, sequence and payload) after `delay` plus uniform jitter, from the address the
request was sent to (so one responder serves every address of the namespace).

    python -m monitord.lab.echo_responder --delay-ms 600 --jitter-ms 50 --control FILE

It prints "ready" once listening. SIGUSR1 re-reads the JSON control file
({"delay_ms": D, "jitter_ms": J}) and prints "applied D J", so a delay is a fault that starts
and changes at runtime, not a restart. Replies waiting to be sent are bounded (--max-pending);
requests beyond that are dropped, as a congested link would. SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ECHO_REQUEST = 8
ECHO_REPLY = 0
_ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_MAX_PACKET = 65535
# <linux/in.h>; the socket module names it only from Python 3.12.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
DEFAULT_MAX_PENDING = 4096


@dataclass(frozen=True, slots=True)
class Delay:
    """How long a reply waits: `delay` plus a uniform draw from [-jitter, +jitter] (seconds)."""

    delay: float
    jitter: float = 0.0

    def draw(self, rng: random.Random) -> float:
        return max(0.0, self.delay + rng.uniform(-self.jitter, self.jitter))

    @classmethod
    def from_ms(cls, delay_ms: float, jitter_ms: float) -> Delay:
        if delay_ms < 0 or jitter_ms < 0:
            raise ValueError(f"delay and jitter cannot be negative ({delay_ms}, {jitter_ms} ms)")
        return cls(delay_ms / 1000, jitter_ms / 1000)


@dataclass(frozen=True, slots=True)
class EchoRequest:
    source: str  # who asked: the reply goes there
    destination: str  # the address asked: the reply comes from it
    identifier: int
    sequence: int
    payload: bytes


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse_echo_request(packet: bytes) -> EchoRequest | None:
    """The echo request in a raw IPv4 packet (IP header included), or None if it is anything
    else or damaged (a bad ICMP checksum, a truncated header)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header_length = (packet[0] & 0x0F) * 4
    total_length = int.from_bytes(packet[2:4], "big")
    icmp = packet[header_length:min(total_length, len(packet))]
    if header_length < 20 or len(icmp) < _ICMP_HEADER.size:
        return None
    kind, code, _, identifier, sequence = _ICMP_HEADER.unpack_from(icmp)
    if kind != ECHO_REQUEST or code != 0 or checksum(icmp) != 0:
        return None
    return EchoRequest(source=socket.inet_ntoa(packet[12:16]),
                       destination=socket.inet_ntoa(packet[16:20]),
                       identifier=identifier, sequence=sequence,
                       payload=icmp[_ICMP_HEADER.size:])


def echo_reply(request: EchoRequest) -> bytes:
    """The ICMP echo reply (no IP header) that answers `request`."""
    header = _ICMP_HEADER.pack(ECHO_REPLY, 0, 0, request.identifier, request.sequence)
    body = header + request.payload
    return body[:2] + checksum(body).to_bytes(2, "big") + body[4:]


def read_control(path: Path) -> Delay:
    """The delay in a control file: {"delay_ms": D, "jitter_ms": J} (jitter optional)."""
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or "delay_ms" not in doc:
        raise ValueError(f"{path}: expected {{\"delay_ms\": D, \"jitter_ms\": J}}")
    return Delay.from_ms(float(doc["delay_ms"]), float(doc.get("jitter_ms", 0)))


class EchoResponder:
    """Answers echo requests read from a raw ICMP socket after the current Delay."""

    def __init__(self, sock: socket.socket, delay: Delay, max_pending: int = DEFAULT_MAX_PENDING,
                 rng: random.Random | None = None) -> None:
        self.sock = sock
        self.delay = delay
        self.max_pending = max_pending
        self.pending = 0
        self.answered = 0
        self.dropped = 0  # over max_pending
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.sock.setblocking(False)
        loop.add_reader(self.sock.fileno(), self._readable)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())

    def _readable(self) -> None:
        for _ in range(1000):  # bounded per wake-up: the loop's timers must get their turn
            try:
                packet = self.sock.recv(_MAX_PACKET)
            except (BlockingIOError, InterruptedError):
                return
            request = parse_echo_request(packet)
            if request is None:
                continue
            if self.pending >= self.max_pending:
                self.dropped += 1
                continue
            self.pending += 1
            assert self._loop is not None
            self._loop.call_later(self.delay.draw(self._rng), self._answer, request)

    def _answer(self, request: EchoRequest) -> None:
        self.pending -= 1
        # IP_PKTINFO's spec_dst picks the source address: the address the request was sent to,
        # not whichever address of the interface the kernel would choose.
        info = struct.pack("=I4s4s", 0, socket.inet_aton(request.destination), bytes(4))
        try:
            self.sock.sendmsg([echo_reply(request)], [(socket.IPPROTO_IP, IP_PKTINFO, info)],
                              0, (request.source, 0))
        except OSError:  # the link is down or the buffer is full: a lost reply, as on the air
            return
        self.answered += 1


def open_raw_socket() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)


async def serve(responder: EchoResponder, control: Path | None) -> None:
    """Until SIGTERM/SIGINT; SIGUSR1 applies the control file."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if control is not None:
        loop.add_signal_handler(signal.SIGUSR1, _apply_control, responder, control)
    responder.start(loop)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        responder.stop()


def _apply_control(responder: EchoResponder, control: Path) -> None:
    try:
        delay = read_control(control)
    except (OSError, ValueError) as error:  # keep the old delay; say why
        print(f"control error: {error}", flush=True)
        return
    responder.delay = delay
    print(f"applied {delay.delay * 1000:g} {delay.jitter * 1000:g}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitord.lab.echo_responder",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--delay-ms", type=float, default=600.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--control", type=Path, help="JSON file re-read on SIGUSR1")
    parser.add_argument("--max-pending", type=int, default=DEFAULT_MAX_PENDING)
    args = parser.parse_args(argv)
    try:
        delay = Delay.from_ms(args.delay_ms, args.jitter_ms)
        sock = open_raw_socket()
    except (ValueError, OSError) as error:
        print(f"echo_responder: {error}", file=sys.stderr)
        return 2
    with sock:
        asyncio.run(serve(EchoResponder(sock, delay, args.max_pending), args.control))
    return 0


if __name__ == "__main__":
    sys.exit(main())
