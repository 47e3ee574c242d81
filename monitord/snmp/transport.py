"""One UDP socket per address family for every SNMPv1/v2c request monitord makes.

Requests are matched to responses by request-id and source address; a response from anyone
else, or for a request that already gave up, is counted and dropped. A retry re-sends the
same bytes with the same request-id, so a late answer to the first try still counts (as
net-snmp does). A global cap bounds requests in flight: pysnmp's experience (PEERS.md) is
that a thousand outstanding requests overflow socket buffers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass, field

from monitord.model import IPAddress
from monitord.snmp.ber import BerError, Response, decode_response, peek_request_id

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 65535


class SnmpTimeoutError(Exception):
    """No response after every retry."""


@dataclass(slots=True)
class RequestStats:
    """What one poll cost on the wire; the poller exports these per device."""

    requests: int = 0
    retries: int = 0
    timeouts: int = 0  # requests that got no answer after every retry
    malformed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TransportCounters:
    sent: int = 0
    received: int = 0
    unmatched: int = 0  # late, duplicate or foreign datagrams
    malformed: int = 0


@dataclass(eq=False, slots=True)
class _Pending:
    future: asyncio.Future[bytes]
    address: tuple[str, int]


class UdpTransport:
    def __init__(self, max_in_flight: int = 200) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randrange(1, 2**30)  # noqa: S311 (not security: a request-id)
        self._slots = asyncio.Semaphore(max_in_flight)
        self.counters = TransportCounters()
        self._warned_sources: set[tuple[str, str]] = set()

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))  # noqa: S104 (ephemeral client port)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)
            self._sockets[family] = sock
        return sock

    def close(self) -> None:
        loop = asyncio.get_event_loop()
        for sock in self._sockets.values():
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        for pending in self._pending.values():
            pending.future.cancel()
        self._pending.clear()

    def counter_values(self) -> dict[str, int]:
        c = self.counters
        return {"sent": c.sent, "received": c.received, "unmatched": c.unmatched,
                "malformed": c.malformed}

    @property
    def slots(self) -> asyncio.Semaphore:
        """The global in-flight cap, shared with the SNMPv3 path."""
        return self._slots

    def new_request_id(self) -> int:
        self._next_id = self._next_id + 1 if self._next_id < 2**31 - 1 else 1
        return self._next_id

    async def request(self, address: IPAddress, port: int, request_id: int, message: bytes,
                      try_timeout: float, retries: int, stats: RequestStats) -> Response:
        """Send `message` (which carries `request_id`) and return the decoded response."""
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        peer = (str(address), port)
        sock = self._socket(family)
        async with self._slots:
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = _Pending(future, peer)
            stats.requests += 1
            try:
                for attempt in range(retries + 1):
                    if attempt:
                        stats.retries += 1
                    self._send(sock, message, peer)
                    try:
                        data = await asyncio.wait_for(asyncio.shield(future), try_timeout)
                    except TimeoutError:
                        continue
                    break
                else:
                    stats.timeouts += 1
                    raise SnmpTimeoutError(f"no response after {retries + 1} tries of {try_timeout:g}s")
            finally:
                self._pending.pop(request_id, None)
                if not future.done():
                    future.cancel()
        try:
            response = decode_response(data)
        except BerError as exc:
            self.counters.malformed += 1
            stats.malformed.append(str(exc))
            raise
        return response

    def _send(self, sock: socket.socket, message: bytes, peer: tuple[str, int]) -> None:
        try:
            sock.sendto(message, peer)
            self.counters.sent += 1
        except BlockingIOError:
            log.debug("send buffer full; the retry will resend")  # the timeout covers it
        # Other OSErrors (network unreachable, ...) propagate: the poll reports them.

    def _readable(self, sock: socket.socket) -> None:
        """Drain every datagram that is ready: one wake-up for many responses."""
        pending = self._pending
        counters = self.counters
        recv = sock.recvfrom
        while True:
            try:
                data, source = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable reported on the socket: the timeout handles it
                continue
            request_id = peek_request_id(data)
            entry = pending.get(request_id) if request_id is not None else None
            if entry is None or entry.future.done():
                counters.unmatched += 1
                continue
            if not _same_peer(source, entry.address):
                # A multi-homed agent answering from another address looks like a timeout;
                # say why once per pair rather than leave the operator guessing.
                counters.unmatched += 1
                pair = (source[0], entry.address[0])
                if pair not in self._warned_sources:
                    self._warned_sources.add(pair)
                    log.warning("dropped an SNMP response from %s:%d to a request sent to %s:%d "
                                "(agents must answer from the address polled)",
                                source[0], source[1], *entry.address)
                continue
            counters.received += 1
            entry.future.set_result(data)


def _same_peer(source: tuple[str, int] | tuple[str, int, int, int], peer: tuple[str, int]) -> bool:
    host = source[0]
    if host.startswith("::ffff:"):
        host = host[7:]
    return source[1] == peer[1] and host == peer[0]


