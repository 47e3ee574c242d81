"""Opening the one ICMP socket per address family.

Unprivileged ping sockets (SOCK_DGRAM + IPPROTO_ICMP) are preferred: the kernel gives each
socket its own echo identifier and delivers it only its own replies. Where
net.ipv4.ping_group_range excludes our group, one raw socket is used instead, and replies are
matched by our identifier and sequence number (a raw socket sees every ICMP packet).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monitord.icmp.packet import ECHO_REPLY_V4, ECHO_REPLY_V6, ECHO_REQUEST_V4, ECHO_REQUEST_V6
from monitord.model import SocketMode

log = logging.getLogger(__name__)


# Linux constants the socket module does not export.
SO_TIMESTAMPNS = 35  # kernel receive timestamps as struct timespec (CLOCK_REALTIME)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS  # the ancillary message type that carries them
SO_RCVBUFFORCE = 33
ICMP_FILTER = 1  # SOL_RAW option: bitmask of ICMPv4 types to drop
SOL_RAW = 255
ICMP6_FILTER = 1  # IPPROTO_ICMPV6 option: 256-bit block mask
RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024  # a burst of thousands of replies must not overflow


class IcmpSocketError(Exception):
    """No ICMP socket could be opened for an address family."""


@dataclass(frozen=True, slots=True)
class IcmpSocket:
    sock: socket.socket
    family: socket.AddressFamily
    mode: Literal["dgram", "raw"]
    identifier: int  # meaningful for raw sockets; the kernel rewrites it on ping sockets
    request_type: int
    reply_type: int
    has_ip_header: bool
    needs_checksum: bool

    def describe(self) -> str:
        fam = "IPv4" if self.family == socket.AF_INET else "IPv6"
        if self.mode == "dgram":
            return f"{fam}: unprivileged ping socket (SOCK_DGRAM), kernel demultiplexes replies"
        return f"{fam}: raw socket (SOCK_RAW), replies matched by identifier {self.identifier}"


def ping_group_range() -> str:
    try:
        return Path("/proc/sys/net/ipv4/ping_group_range").read_text().strip().replace("\t", " ")
    except OSError:
        return "unknown"


def open_icmp_socket(family: socket.AddressFamily, mode: SocketMode = "auto") -> IcmpSocket:
    """Open the ICMP socket for `family`: a ping socket if allowed (or asked), else raw."""
    v6 = family == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    errors: list[str] = []
    for kind in ("dgram", "raw") if mode == "auto" else (mode,):
        sock_type = socket.SOCK_DGRAM if kind == "dgram" else socket.SOCK_RAW
        try:
            sock = socket.socket(family, sock_type, proto)
        except OSError as exc:
            errors.append(f"{kind}: {exc.strerror or exc}")
            continue
        _tune(sock, family, kind)
        identifier = secrets.randbelow(0xFFFF) + 1 if kind == "raw" else 0
        return IcmpSocket(
            sock=sock,
            family=family,
            mode="dgram" if kind == "dgram" else "raw",
            identifier=identifier,
            request_type=ECHO_REQUEST_V6 if v6 else ECHO_REQUEST_V4,
            reply_type=ECHO_REPLY_V6 if v6 else ECHO_REPLY_V4,
            has_ip_header=kind == "raw" and not v6,
            needs_checksum=kind == "raw" and not v6,
        )
    fam = "IPv6" if v6 else "IPv4"
    raise IcmpSocketError(
        f"cannot open an ICMP socket for {fam} ({'; '.join(errors)}): allow ping sockets for "
        f"monitord's group with sysctl net.ipv4.ping_group_range (now {ping_group_range()!r}, "
        f"gid {os.getgid()}) or grant CAP_NET_RAW"
    )


def _tune(sock: socket.socket, family: socket.AddressFamily, kind: str) -> None:
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES)
    except OSError:  # not root: capped by net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    if kind != "raw":
        return
    if family == socket.AF_INET:
        # Drop every ICMP type but echo reply in the kernel, before it reaches Python.
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~(1 << ECHO_REPLY_V4) & 0xFFFFFFFF))
    else:
        blocked = [0xFFFFFFFF] * 8
        blocked[ECHO_REPLY_V6 >> 5] &= ~(1 << (ECHO_REPLY_V6 & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *blocked))
