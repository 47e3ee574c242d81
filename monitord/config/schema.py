"""The shape of a monitord config file, validated strictly: unknown keys are errors.

These models describe the file as written (with inheritance not yet applied);
monitord.config.inventory resolves them into immutable Checks.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from monitord.config.report_schema import ReportSpec
from monitord.config.snmp_schema import DeviceSnmp, SnmpSpec
from monitord.config.state_schema import HistorySpec, MqttSpec, StateSpec
from monitord.config.values import Duration, FilePath, parse_duration
from monitord.config.web_schema import WebSpec
from monitord.model import HIERARCHY_LABELS, INFO_LABELS, SocketMode
from monitord.shard import Shard

__all__ = ["Duration", "parse_duration"]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_address(value: object) -> str:
    """An IPv4 or IPv6 literal, normalised; hostnames are refused so nothing depends on DNS."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IPv4 or IPv6 address (hostnames are not supported)"
        ) from None


def check_labels(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("labels must be a mapping of label name to value")
    out: dict[str, str] = {}
    for name, label_value in value.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"{name!r} is not a valid Prometheus label name")
        if name in HIERARCHY_LABELS or name in INFO_LABELS:
            raise ValueError(f"label {name!r} is reserved: monitord sets it from the inventory")
        if not isinstance(label_value, str | int | float) or isinstance(label_value, bool):
            raise ValueError(f"label {name!r} must have a string value")
        out[name] = str(label_value)
    return out


def parse_listen(value: object) -> str:
    """host:port, [v6]:port or :port for the HTTP server."""
    match = re.match(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]*):(\d+)$", str(value))
    if not isinstance(value, str) or not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"{value!r} is not a listen address (use host:port, [v6]:port or :port)")
    return value


def check_shard(value: object) -> str:
    """i/N: this instance owns shard i of N (monitord.shard)."""
    Shard.parse(str(value))
    return str(value).strip()


Address = Annotated[str, BeforeValidator(parse_address)]
Labels = Annotated[dict[str, str], BeforeValidator(check_labels)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]
Role = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ProfileSpec(_Strict):
    """A named ICMP probe profile."""

    interval: Duration = 30.0
    count: int = Field(default=5, ge=1, le=100)
    packet_interval: Duration = 1.0
    timeout: Duration = 2.0
    size: int = Field(default=56, ge=0, le=65000)
    state: StateSpec = Field(default_factory=StateSpec)

    @model_validator(mode="after")
    def _fits_interval(self) -> ProfileSpec:
        deadline = (self.count - 1) * self.packet_interval + self.timeout
        if deadline > self.interval:
            raise ValueError(
                f"a probe lasts up to (count-1) x packet_interval + timeout = {deadline:g}s, "
                f"longer than interval {self.interval:g}s; probes would overlap"
            )
        return self


class CoordinatesSpec(_Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class DefaultsSpec(_Strict):
    """Settings inherited by everything below the level that declares them."""

    profile: str | None = None
    role: Role | None = None
    labels: Labels = Field(default_factory=dict)
    snmp: DeviceSnmp | None = None  # SNMP profile (and modules) for devices below


class DeviceSpec(_Strict):
    id: Identifier
    name: str = ""
    role: Role | None = None
    address: Address
    profile: str | None = None
    snmp: DeviceSnmp | None = None  # poll over SNMP with this profile (or mapping)
    parent: Identifier | None = None
    labels: Labels = Field(default_factory=dict)
    coordinates: CoordinatesSpec | None = None


class SiteSpec(_Strict):
    id: Identifier
    name: str = ""
    uplink: Identifier | None = None  # implied parent of the site's devices
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    coordinates: CoordinatesSpec | None = None
    devices: list[DeviceSpec] = Field(default_factory=list)


class KabupatenSpec(_Strict):
    id: Identifier
    name: str = ""
    uplink: Identifier | None = None  # implied parent of devices in this kabupaten
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    sites: list[SiteSpec] = Field(default_factory=list)


class ProvinceSpec(_Strict):
    id: Identifier
    name: str = ""
    uplink: Identifier | None = None  # the provincial core: implied parent of kabupaten uplinks
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    kabupaten: list[KabupatenSpec] = Field(default_factory=list)


class DaemonSpec(_Strict):
    listen: Annotated[str, BeforeValidator(parse_listen)] = "127.0.0.1:9521"
    state_dir: FilePath = "/var/lib/monitord"
    max_concurrent_probes: int = Field(default=2000, ge=1, le=100000)
    icmp_socket: SocketMode = "auto"
    # Probes start on this grid: longer = fewer wake-ups and less CPU, later starts.
    scheduler_tick: Duration = Field(default=0.05, le=1.0)
    shard: Annotated[str, BeforeValidator(check_shard)] | None = None  # "i/N"; --shard wins


class ConfigFile(_Strict):
    daemon: DaemonSpec = Field(default_factory=DaemonSpec)
    profiles: dict[Identifier, ProfileSpec] = Field(default_factory=dict)
    snmp: SnmpSpec = Field(default_factory=SnmpSpec)
    history: HistorySpec = Field(default_factory=HistorySpec)
    mqtt: MqttSpec | None = None  # publish state events; without it events are only stored
    report: ReportSpec = Field(default_factory=ReportSpec)  # SLOs, maintenance, schedule
    web: WebSpec = Field(default_factory=WebSpec)  # TLS and basic auth of the HTTP endpoint
    province: ProvinceSpec
