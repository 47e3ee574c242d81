"""The shared-socket pinger: many concurrent multi-echo probes over one socket per family.

Why this shape (see PEERS.md): a socket per ping makes every raw socket see every reply and
costs a file descriptor, a reader and a wake-up per echo. Here one non-blocking socket per
address family is registered once with the event loop; a reader callback drains it and
matches replies to probes by sequence number (and identifier on raw sockets). Probes are
plain callbacks, not coroutines, so an echo costs one sendto, one recvmsg and a dict lookup.

RTTs use the kernel's receive timestamp (SO_TIMESTAMPNS), so a busy event loop does not
inflate them: the reply's arrival time is when the kernel got it, not when Python read it.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import itertools
import logging
import math
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from monitord.icmp.packet import EchoRequestBuilder
from monitord.icmp.sockets import (
    SCM_TIMESTAMPNS,
    IcmpSocket,
    IcmpSocketError,
    open_icmp_socket,
)
from monitord.model import IPAddress, SocketMode

log = logging.getLogger(__name__)

_TIMESPEC = struct.Struct("qq")
_ID_SEQ = struct.Struct("!HH")  # identifier and sequence, 4 bytes into the ICMP header
_RECV_BYTES = 256  # enough for an IPv4 header plus the ICMP header; the payload is not needed
_DRAIN_LIMIT = 10_000  # replies read per wake-up before yielding to the loop


@dataclass(slots=True)
class EchoOutcome:
    """What one burst of echoes to one address produced. Times are seconds. Not frozen: one
    is built per probe, and a frozen dataclass's __init__ costs several times more."""

    sent: int
    received: int
    rtts: tuple[float, ...]
    error: str | None
    duration: float


EchoCallback = Callable[[EchoOutcome], None]

# Echoes and expiries due within this much of a timer firing are handled in that same firing:
# one event-loop wake-up serves every probe that started on the same scheduler tick.
_BATCH_SLACK = 0.001


class _Probe:
    """Mutable bookkeeping for one burst in flight; owned by the event loop thread."""

    __slots__ = ("address", "attempts", "count", "done", "endpoint", "error", "interval",
                 "on_done", "received", "rtts", "sent", "seqs", "size", "start", "started_ns",
                 "timeout", "timeout_ns")

    def __init__(self, endpoint: _Endpoint, address: str, count: int, interval: float,
                 timeout: float, size: int, start: float, on_done: EchoCallback) -> None:
        self.endpoint = endpoint
        self.address = address
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.timeout_ns = int(timeout * 1e9)
        self.size = size
        self.start = start  # loop time of the first echo
        self.on_done = on_done
        self.done = False
        self.attempts = 0
        self.sent = 0
        self.received = 0
        self.rtts: list[float] = []
        self.error: str | None = None
        self.seqs: list[int] = []
        self.started_ns = time.time_ns()

    def next_event(self) -> float:
        """Loop time of this probe's next echo, or of its expiry once all are sent."""
        if self.attempts < self.count:
            return self.start + self.attempts * self.interval
        return self.start + (self.count - 1) * self.interval + self.timeout


class _Endpoint:
    """One address family's socket, its sequence counter and its echoes in flight."""

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
        seq = self.next_seq
        self.next_seq = (seq + 1) & 0xFFFF
        if seq not in self.pending:  # the usual case: far fewer than 65536 echoes in flight
            return seq
        for _ in range(0xFFFF):
            seq = self.next_seq
            self.next_seq = (seq + 1) & 0xFFFF
            if seq not in self.pending:
                return seq
        return None  # 65536 echoes in flight on one socket


class Pinger:
    """Sends bursts of ICMP echoes to many addresses concurrently over shared sockets.

    Every probe's next echo or expiry sits in one heap served by one re-armed timer, rather
    than a TimerHandle per echo: fewer objects, and one wake-up for all probes due together.
    """

    def __init__(self, mode: SocketMode = "auto") -> None:
        self._mode = mode
        self._endpoints: dict[int, _Endpoint] = {}
        self._open_errors: dict[int, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeline: list[tuple[float, int, _Probe]] = []
        self._tiebreak = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = math.inf

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
        """Close the sockets; probes in flight end now with what they have."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for endpoint in self._endpoints.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(endpoint.icmp.sock.fileno())
            endpoint.icmp.sock.close()
        in_flight = [probe for _, _, probe in self._timeline]
        self._timeline.clear()
        for probe in in_flight:
            if not probe.done:
                probe.error = probe.error or "pinger closed"
                self._finish(probe)
        self._endpoints.clear()

    def describe(self) -> dict[str, str]:
        """Socket kind per family, for `monitord_icmp_socket_info`."""
        return {("ipv4" if v == 4 else "ipv6"): e.icmp.mode for v, e in self._endpoints.items()}

    def counters(self) -> dict[str, tuple[int, int]]:
        """(unmatched replies, receive errors) per family."""
        return {("ipv4" if v == 4 else "ipv6"): (e.unmatched, e.receive_errors)
                for v, e in self._endpoints.items()}

    def start(self, address: IPAddress, count: int, packet_interval: float, timeout: float,
              size: int, on_done: EchoCallback, start_at: float | None = None) -> None:
        """Start a burst of `count` echoes `packet_interval` apart, the first one now; each
        reply counts if it comes within `timeout`. `on_done` gets the outcome, exactly once
        (possibly before start returns, if nothing could be sent).

        `start_at` (loop time, at most now) is when the burst counts as started: the later
        echoes are timed from it, so a caller that starts many bursts on a common tick gets
        their later echoes on common ticks too, served by one wake-up."""
        endpoint = self._endpoints.get(address.version)
        if endpoint is None:
            error = self._open_errors.get(address.version, "pinger is not open")
            on_done(EchoOutcome(0, 0, (), error, 0.0))
            return
        assert self._loop is not None
        now = self._loop.time()
        start = now if start_at is None else min(start_at, now)
        probe = _Probe(endpoint, str(address), count, packet_interval, timeout, size, start, on_done)
        self._send(probe)
        if not probe.done:
            self._schedule(probe)

    async def ping(self, address: IPAddress, count: int, packet_interval: float,
                   timeout: float, size: int) -> EchoOutcome:  # noqa: ASYNC109 - per-echo timeout
        """start() as a coroutine."""
        future: asyncio.Future[EchoOutcome] = asyncio.get_running_loop().create_future()

        def resolve(outcome: EchoOutcome) -> None:
            if not future.done():
                future.set_result(outcome)

        self.start(address, count, packet_interval, timeout, size, resolve)
        return await future

    def _schedule(self, probe: _Probe) -> None:
        when = probe.next_event()
        heapq.heappush(self._timeline, (when, next(self._tiebreak), probe))
        if when < self._timer_when:
            if self._timer is not None:
                self._timer.cancel()
            assert self._loop is not None
            self._timer = self._loop.call_at(when, self._on_timer)
            self._timer_when = when

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._timer_when = math.inf
        timeline = self._timeline
        horizon = self._loop.time() + _BATCH_SLACK
        while timeline and timeline[0][0] <= horizon:
            _, _, probe = heapq.heappop(timeline)
            if probe.done:
                continue  # finished early (all replies in): a stale entry
            if probe.attempts < probe.count:
                self._send(probe)
                if not probe.done:
                    heapq.heappush(timeline, (probe.next_event(), next(self._tiebreak), probe))
            else:
                self._finish(probe)  # the last echo's timeout has passed
        if timeline:
            self._timer_when = timeline[0][0]
            self._timer = self._loop.call_at(self._timer_when, self._on_timer)

    def _finish(self, probe: _Probe) -> None:
        probe.done = True
        pending = probe.endpoint.pending
        for seq in probe.seqs:
            entry = pending.get(seq)
            if entry is not None and entry[0] is probe:
                del pending[seq]
        probe.on_done(EchoOutcome(
            sent=probe.sent,
            received=probe.received,
            rtts=tuple(probe.rtts),
            error=probe.error,
            duration=(time.time_ns() - probe.started_ns) / 1e9,
        ))

    def _send(self, probe: _Probe) -> None:
        endpoint = probe.endpoint
        probe.attempts += 1
        seq = endpoint.allocate_seq()
        if seq is None:
            probe.error = "too many echoes in flight (65536 on one socket)"
        else:
            packet = endpoint.builder(probe.size).build(seq)
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
            self._finish(probe)

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
            # parse_reply(), inlined: this loop runs once per reply.
            offset = (data[0] & 0x0F) * 4 if has_ip_header else 0
            if len(data) < offset + 8 or data[offset] != reply_type:
                continue
            identifier, seq = _ID_SEQ.unpack_from(data, offset + 4)
            if check_identifier and identifier != icmp.identifier:
                continue  # another program's echo seen on our raw socket
            entry = pending.get(seq)
            if entry is None or entry[0].address != source[0]:
                endpoint.unmatched += 1
                continue
            probe, sent_ns = entry
            del pending[seq]
            if ancillary and ancillary[0][1] == SCM_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack(ancillary[0][2])
                received_ns = sec * 1_000_000_000 + nsec
            else:  # no kernel timestamp: now is the best we have
                received_ns = time.time_ns()
            rtt_ns = received_ns - sent_ns
            if rtt_ns > probe.timeout_ns:
                continue  # arrived, but later than this echo's timeout: counted as lost
            probe.rtts.append(max(rtt_ns, 0) / 1e9)
            probe.received += 1
            if probe.received == probe.count or (
                probe.attempts == probe.count and probe.received == probe.sent
            ):
                self._finish(probe)
