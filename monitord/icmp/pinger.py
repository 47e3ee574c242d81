"""The shared-socket pinger: many concurrent multi-echo probes over one socket per family.

Why this shape (see PEERS.md): a socket per ping makes every raw socket see every reply and
costs a file descriptor, a reader and a wake-up per echo. Here one non-blocking socket per
address family is registered once with the event loop; a reader callback drains it and
matches replies to probes by sequence number (and identifier on raw sockets). Sends are
timer callbacks, not coroutines, so an echo costs one sendto, one recvmsg and a dict lookup.

RTTs use the kernel's receive timestamp (SO_TIMESTAMPNS), so a busy event loop does not
inflate them: the reply's arrival time is when the kernel got it, not when Python read it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from dataclasses import dataclass

from monitord.icmp.packet import EchoRequestBuilder, parse_reply
from monitord.icmp.sockets import IcmpSocket, IcmpSocketError, SocketMode, open_icmp_socket
from monitord.model import IPAddress

log = logging.getLogger(__name__)

_SCM_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
_RECV_BYTES = 256  # enough for an IPv4 header plus the ICMP header; the payload is not needed
_DRAIN_LIMIT = 10_000  # replies read per wake-up before yielding to the loop


@dataclass(frozen=True, slots=True)
class EchoOutcome:
    """What one burst of echoes to one address produced. Times are seconds."""

    sent: int
    received: int
    rtts: tuple[float, ...]
    error: str | None
    duration: float


class _Probe:
    """Mutable bookkeeping for one burst in flight; owned by the event loop thread."""

    __slots__ = ("address", "attempts", "count", "error", "future", "handles", "received",
                 "rtts", "sent", "seqs", "started_ns", "timeout_ns")

    def __init__(self, address: str, count: int, timeout: float, future: asyncio.Future[None]) -> None:
        self.address = address
        self.count = count
        self.timeout_ns = int(timeout * 1e9)
        self.future = future
        self.attempts = 0
        self.sent = 0
        self.received = 0
        self.rtts: list[float] = []
        self.error: str | None = None
        self.seqs: list[int] = []
        self.handles: list[asyncio.TimerHandle] = []
        self.started_ns = time.time_ns()

    def finish(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class _Endpoint:
    """One address family's socket, its sequence counter and its probes in flight."""

    def __init__(self, icmp: IcmpSocket) -> None:
        self.icmp = icmp
        self.pending: dict[int, tuple[_Probe, int]] = {}  # sequence -> (probe, send time ns)
        self.next_seq = 0
        self.builders: dict[int, EchoRequestBuilder] = {}
        self.unmatched = 0  # replies that matched no probe in flight (late or foreign)
        self.receive_errors = 0

    def builder(self, size: int) -> EchoRequestBuilder:
        b = self.builders.get(size)
        if b is None:
            b = EchoRequestBuilder(self.icmp.request_type, self.icmp.identifier, size,
                                   self.icmp.needs_checksum)
            self.builders[size] = b
        return b

    def allocate_seq(self) -> int | None:
        for _ in range(0x10000):
            seq = self.next_seq
            self.next_seq = (seq + 1) & 0xFFFF
            if seq not in self.pending:
                return seq
        return None  # 65536 echoes in flight on one socket


class Pinger:
    """Sends bursts of ICMP echoes to many addresses concurrently over shared sockets."""

    def __init__(self, mode: SocketMode = "auto") -> None:
        self._mode = mode
        self._endpoints: dict[int, _Endpoint] = {}
        self._open_errors: dict[int, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        """Open both families' sockets now (and log which kind), so failures show at start."""
        self._loop = asyncio.get_running_loop()
        for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            try:
                icmp = open_icmp_socket(family, self._mode)
            except IcmpSocketError as exc:
                self._open_errors[version] = str(exc)
                log.warning("ICMP %s", exc)
                continue
            endpoint = _Endpoint(icmp)
            self._endpoints[version] = endpoint
            self._loop.add_reader(icmp.sock.fileno(), self._drain, endpoint)
            log.info("ICMP %s", icmp.describe())

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(endpoint.icmp.sock.fileno())
            endpoint.icmp.sock.close()
            for probe, _ in endpoint.pending.values():
                probe.finish()
        self._endpoints.clear()

    def describe(self) -> dict[str, str]:
        """Socket kind per family, for `monitord_icmp_socket_info`."""
        return {("ipv4" if v == 4 else "ipv6"): e.icmp.mode for v, e in self._endpoints.items()}

    def counters(self) -> dict[str, tuple[int, int]]:
        """(unmatched replies, receive errors) per family."""
        return {("ipv4" if v == 4 else "ipv6"): (e.unmatched, e.receive_errors)
                for v, e in self._endpoints.items()}

    async def ping(self, address: IPAddress, count: int, packet_interval: float,
                   timeout: float, size: int) -> EchoOutcome:  # noqa: ASYNC109 - per-echo timeout
        """Send `count` echoes `packet_interval` apart; each reply counts if within `timeout`."""
        loop = asyncio.get_running_loop()
        endpoint = self._endpoints.get(address.version)
        if endpoint is None:
            error = self._open_errors.get(address.version, "pinger is not open")
            return EchoOutcome(0, 0, (), error, 0.0)
        probe = _Probe(str(address), count, timeout, loop.create_future())
        self._send(endpoint, probe, size)
        for i in range(1, count):
            probe.handles.append(loop.call_later(i * packet_interval, self._send, endpoint, probe, size))
        probe.handles.append(loop.call_later((count - 1) * packet_interval + timeout, probe.finish))
        try:
            await probe.future
        finally:
            for handle in probe.handles:
                handle.cancel()
            pending = endpoint.pending
            for seq in probe.seqs:
                entry = pending.get(seq)
                if entry is not None and entry[0] is probe:
                    del pending[seq]
        return EchoOutcome(
            sent=probe.sent,
            received=probe.received,
            rtts=tuple(probe.rtts),
            error=probe.error,
            duration=(time.time_ns() - probe.started_ns) / 1e9,
        )

    def _send(self, endpoint: _Endpoint, probe: _Probe, size: int) -> None:
        probe.attempts += 1
        seq = endpoint.allocate_seq()
        if seq is None:
            probe.error = "too many echoes in flight (65536 on one socket)"
        else:
            packet = endpoint.builder(size).build(seq)
            sent_ns = time.time_ns()
            try:
                endpoint.icmp.sock.sendto(packet, (probe.address, 0))
            except OSError as exc:
                probe.error = f"send failed: {exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}"
            else:
                endpoint.pending[seq] = (probe, sent_ns)
                probe.seqs.append(seq)
                probe.sent += 1
        # Nothing in flight and nothing more to send: no reason to wait out the timeout.
        if probe.attempts == probe.count and probe.sent == probe.received:
            probe.finish()

    def _drain(self, endpoint: _Endpoint) -> None:
        icmp = endpoint.icmp
        recvmsg = icmp.sock.recvmsg
        pending = endpoint.pending
        has_ip_header = icmp.has_ip_header
        reply_type = icmp.reply_type
        check_identifier = icmp.mode == "raw"
        for _ in range(_DRAIN_LIMIT):
            try:
                data, ancillary, _flags, source = recvmsg(_RECV_BYTES, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                endpoint.receive_errors += 1
                log.debug("ICMP receive error: %s", exc)
                return
            parsed = parse_reply(data, has_ip_header, reply_type)
            if parsed is None:
                continue
            identifier, seq = parsed
            if check_identifier and identifier != icmp.identifier:
                continue  # another program's echo seen on our raw socket
            entry = pending.get(seq)
            if entry is None or entry[0].address != source[0]:
                endpoint.unmatched += 1
                continue
            probe, sent_ns = entry
            del pending[seq]
            received_ns = time.time_ns()
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(payload)
                    received_ns = sec * 1_000_000_000 + nsec
            rtt_ns = received_ns - sent_ns
            if rtt_ns > probe.timeout_ns:
                continue  # arrived, but later than this echo's timeout: counted as lost
            probe.rtts.append(max(rtt_ns, 0) / 1e9)
            probe.received += 1
            if probe.received == probe.count or (
                probe.attempts == probe.count and probe.received == probe.sent
            ):
                probe.finish()
