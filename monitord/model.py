"""The immutable values that flow through monitord: checks in, results out.

A Check is resolved once from the inventory at load time and never changes; a reload builds
new Checks. A ProbeResult is what a prober returns: failure is a value, never an exception.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Which ICMP socket to use: a ping socket if allowed, else raw (auto), or one of them forced.
SocketMode = Literal["auto", "dgram", "raw"]

# The hierarchy labels every per-target series carries, in exposition order.
HIERARCHY_LABELS: tuple[str, ...] = ("province", "kabupaten", "site", "role", "target", "address")
# Labels monitord_target_info sets itself; operator labels may not reuse these either.
INFO_LABELS: tuple[str, ...] = ("kind", "parent", "profile", "name", "latitude", "longitude")


@dataclass(frozen=True, slots=True)
class IcmpProfile:
    """How one ICMP probe is run: a burst of `count` echoes, like fping -C / smokeping."""

    name: str
    interval: float  # seconds between probe starts
    count: int  # echoes per probe
    packet_interval: float  # seconds between echoes of one probe
    timeout: float  # seconds a reply may take, per echo
    size: int  # ICMP payload bytes

    @property
    def deadline(self) -> float:
        """Seconds after the probe starts by which it must have finished."""
        return (self.count - 1) * self.packet_interval + self.timeout


@dataclass(frozen=True, slots=True)
class Coordinates:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Check:
    """One thing to probe, with everything needed to probe it and to label its results."""

    target: str  # the device id, unique in the inventory
    kind: str  # prober name, a key of probers.PROBERS
    address: IPAddress
    province: str
    kabupaten: str
    site: str
    role: str
    profile: IcmpProfile
    parent: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # operator labels, exported on monitord_target_info
    name: str = ""  # human name of the device
    coordinates: Coordinates | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.target)

    def hierarchy(self) -> tuple[str, ...]:
        """Values of HIERARCHY_LABELS, in order."""
        return (self.province, self.kabupaten, self.site, self.role, self.target, str(self.address))


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Outcome of one ICMP probe. RTTs are in seconds, one per reply received."""

    check: Check
    started: float  # wall-clock start, seconds since the epoch
    duration: float  # seconds from first send to completion
    sent: int
    received: int
    rtts: tuple[float, ...] = ()
    error: str | None = None  # why echoes could not be sent or the probe failed
    deadline_exceeded: bool = False

    @property
    def success(self) -> bool:
        return self.received > 0

    @property
    def loss_ratio(self) -> float:
        if self.sent == 0:
            return 1.0
        return 1.0 - self.received / self.sent

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference of consecutive RTTs (RFC 3550's idea, unsmoothed)."""
        if len(self.rtts) < 2:
            return None
        diffs = [abs(b - a) for a, b in zip(self.rtts, self.rtts[1:], strict=False)]
        return sum(diffs) / len(diffs)


@dataclass(frozen=True, slots=True)
class Inventory:
    """The resolved configuration: every check plus the daemon's own settings."""

    source: str  # file the inventory came from
    province: str
    checks: tuple[Check, ...]
    listen: str  # host:port of the HTTP server
    max_concurrent_probes: int
    state_dir: str
    icmp_socket: SocketMode = "auto"
    scheduler_tick: float = 0.05  # seconds; probes start on this grid
    profiles: dict[str, IcmpProfile] = field(default_factory=dict)

    def by_target(self) -> dict[str, Check]:
        return {c.target: c for c in self.checks}
