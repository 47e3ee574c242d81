"""The immutable values that flow through monitord: checks in, results out.

A Check is resolved once from the inventory at load time and never changes; a reload builds
new Checks. A ProbeResult is what a prober returns: failure is a value, never an exception.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from monitord.report.settings import ReportSettings

if TYPE_CHECKING:
    from monitord.http.settings import WebSettings
    from monitord.shard import Shard
    from monitord.snmp.modules import SnmpModule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Which ICMP socket to use: a ping socket if allowed, else raw (auto), or one of them forced.
SocketMode = Literal["auto", "dgram", "raw"]

# The hierarchy labels every per-target series carries, in exposition order.
HIERARCHY_LABELS: tuple[str, ...] = ("province", "kabupaten", "site", "role", "target", "address")
# Labels monitord_target_info sets itself; operator labels may not reuse these either.
INFO_LABELS: tuple[str, ...] = ("kind", "parent", "profile", "name", "latitude", "longitude")


@dataclass(frozen=True, slots=True)
class StateParams:
    """Hysteresis and thresholds of one ICMP profile (config key `profiles.NAME.state`);
    see monitord.state for what they drive."""

    down_failures: int = 3  # failed probes (no reply at all) ...
    down_window: int = 5  # ... among the last this many probes make a target down
    up_successes: int = 2  # consecutive good probes bring a down target back
    max_loss_ratio: float = 0.2  # a probe losing more than this is degraded
    max_rtt: float | None = None  # a probe whose median RTT exceeds this (s) is degraded
    flap_changes: int = 5  # this many state changes ...
    flap_window: float = 1800.0  # ... within this many seconds is flapping


@dataclass(frozen=True, slots=True)
class IcmpProfile:
    """How one ICMP probe is run: a burst of `count` echoes, like fping -C / smokeping."""

    name: str
    interval: float  # seconds between probe starts
    count: int  # echoes per probe
    packet_interval: float  # seconds between echoes of one probe
    timeout: float  # seconds a reply may take, per echo
    size: int  # ICMP payload bytes
    state: StateParams = StateParams()  # hysteresis and thresholds of the target state

    @property
    def deadline(self) -> float:
        """Seconds after the probe starts by which it must have finished."""
        return (self.count - 1) * self.packet_interval + self.timeout


class Secret:
    """A community or password. Its repr and str name where it came from, never the value,
    so it cannot leak into a log line, an error message or a metric label by accident."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # "inline", "env:NAME" or "file:PATH"

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"<secret from {self.source}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:  # the same value from the same place
        return (isinstance(other, Secret) and self.source == other.source
                and hmac.compare_digest(self._value, other._value))

    def __hash__(self) -> int:
        return hash(self.source)


AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "AES", "AES192", "AES256", "AES192C", "AES256C"]


@dataclass(frozen=True, slots=True)
class SnmpCredentials:
    """Who monitord is to a device: a community (v1/v2c) or a USM user (v3)."""

    version: int  # 0 = v1, 1 = v2c, 3 = v3 (the message version field's values)
    community: Secret | None = None
    username: str = ""
    auth_protocol: AuthProtocol | None = None
    auth_password: Secret | None = None
    priv_protocol: PrivProtocol | None = None
    priv_password: Secret | None = None
    context: str = ""

    @property
    def version_name(self) -> str:
        """As operators write it: 1, 2c or 3."""
        return {0: "1", 1: "2c"}.get(self.version, str(self.version))

    @property
    def security_level(self) -> str:
        if self.version != 3:
            return ""
        if self.priv_protocol:
            return "authPriv"
        return "authNoPriv" if self.auth_protocol else "noAuthNoPriv"


@dataclass(frozen=True, slots=True)
class SnmpProfile:
    """How one device is polled over SNMP: credentials, timing, walk shape and modules."""

    name: str
    credentials: SnmpCredentials
    interval: float
    timeout: float  # per request try
    retries: int
    deadline: float  # the whole poll must finish within this many seconds of its start
    max_repetitions: int  # GETBULK max-repetitions
    max_oids_per_request: int  # columns walked in lock-step per request, OIDs per GET
    port: int = 161
    modules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MqttTls:
    """TLS towards the broker. Without ca_file the system's CA store is used."""

    ca_file: str | None = None
    cert_file: str | None = None  # client certificate (with key_file), if the broker wants one
    key_file: str | None = None
    verify_hostname: bool = True


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how state events are published (config key `mqtt`)."""

    host: str
    port: int
    client_id: str
    topic_prefix: str  # no trailing slash: topics are PREFIX/events, PREFIX/targets/ID, ...
    keepalive: float = 30.0
    username: str | None = None
    password: Secret | None = None
    tls: MqttTls | None = None
    connect_timeout: float = 10.0
    max_backoff: float = 60.0  # reconnect delay doubles from 1 s up to this


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
    profile: IcmpProfile | SnmpProfile  # IcmpProfile for kind "icmp", SnmpProfile for "snmp"
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
    snmp_modules: Mapping[str, SnmpModule] = field(default_factory=dict)
    snmp_max_in_flight: int = 200  # SNMP requests outstanding across all devices
    history_retention: float = 400 * 86400.0  # seconds of state events kept
    mqtt: MqttSettings | None = None  # where state events are published, if anywhere
    report: ReportSettings = field(default_factory=ReportSettings)  # SLOs, windows, schedule
    web: WebSettings | None = None  # TLS and basic auth of the HTTP endpoint; None: plain, open
    shard: Shard | None = None  # daemon.shard: which targets this instance owns; None: all

    def by_target(self) -> dict[str, Check]:
        """Every device once, by its ICMP check (every device has one)."""
        return {c.target: c for c in self.checks if c.kind == "icmp"}


@dataclass(frozen=True, slots=True)
class SnmpPollResult:
    """Outcome of one SNMP poll of one device. A failed poll carries no samples at all: a
    walk cut off half way must not look like a complete one."""

    check: Check
    started: float  # wall-clock start, seconds since the epoch
    duration: float
    error: str | None = None
    error_reason: str | None = None  # short label: timeout, deadline, malformed, usm, ...
    deadline_exceeded: bool = False
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    varbinds: int = 0
    families: Mapping[str, str] = field(default_factory=dict)  # metric name -> rendered lines
    uptime_ticks: int | None = None  # sysUpTime.0 if the device has it
    value_errors: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    value_error_examples: Mapping[str, str] = field(default_factory=dict)  # reason -> first

    @property
    def success(self) -> bool:
        return self.error is None


# What a prober returns, by kind.
Outcome = ProbeResult | SnmpPollResult
