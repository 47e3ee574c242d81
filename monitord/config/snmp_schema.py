"""The `snmp:` section of a config file: profiles (credentials and timing) and modules
(what to fetch and how to name it). Validated strictly, like the rest of the file."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from monitord.config.values import Duration, Secret
from monitord.model import HIERARCHY_LABELS, INFO_LABELS, AuthProtocol, PrivProtocol
from monitord.snmp.ber import MAX_ARC

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_OID = re.compile(r"^\.?[0-2](\.(0|[1-9][0-9]*))+$")
# Labels monitord puts on SNMP series itself; module labels may not reuse them.
SNMP_RESERVED_LABELS = frozenset((*HIERARCHY_LABELS, *INFO_LABELS, "module", "reason"))


def _oid(value: object) -> str:
    if isinstance(value, str) and _OID.match(value.strip()):
        text = value.strip().lstrip(".")
        arcs = text.split(".")
        # What BER can carry: 32-bit sub-identifiers, and a second one below 40 under 0 and 1.
        if all(len(a) <= 10 and int(a) <= MAX_ARC for a in arcs) and (
                arcs[0] == "2" or int(arcs[1]) < 40):
            return text
    raise ValueError(f"{value!r} is not a numeric OID (like 1.3.6.1.2.1.1.3.0)")


def _metric_name(value: object) -> str:
    if not isinstance(value, str) or not _METRIC_NAME.match(value) or value.startswith("__"):
        raise ValueError(f"{value!r} is not a valid Prometheus metric name")
    return value


def _label_name(value: object) -> str:
    if not isinstance(value, str) or not _LABEL_NAME.match(value) or value.startswith("__"):
        raise ValueError(f"{value!r} is not a valid Prometheus label name")
    if value in SNMP_RESERVED_LABELS:
        raise ValueError(f"label {value!r} is reserved: monitord sets it itself")
    return value


Oid = Annotated[str, BeforeValidator(_oid)]
MetricName = Annotated[str, BeforeValidator(_metric_name)]
LabelName = Annotated[str, BeforeValidator(_label_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)




class SnmpProfileSpec(_Strict):
    version: Literal["1", "2c", "3"] = "2c"
    community: Secret | None = None
    username: str | None = None
    auth_protocol: AuthProtocol | None = None
    auth_password: Secret | None = None
    priv_protocol: PrivProtocol | None = None
    priv_password: Secret | None = None
    context: str = ""
    port: int = Field(default=161, ge=1, le=65535)
    interval: Duration = 60.0
    timeout: Duration = 2.0
    retries: int = Field(default=1, ge=0, le=10)
    deadline: Duration | None = None
    max_repetitions: int = Field(default=25, ge=1, le=500)
    max_oids_per_request: int = Field(default=10, ge=1, le=100)
    modules: list[str] = Field(default_factory=lambda: ["system", "if_mib"])

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(version := data.get("version"), int | float):
            # 2.0 == 2 finds "2c"; no int(): int(.inf) raises OverflowError, not ValueError
            names: dict[float, str] = {1: "1", 2: "2c", 3: "3"}
            data = {**data, "version": names.get(version, str(version))}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SnmpProfileSpec:
        if self.version == "3":
            if self.community is not None:
                raise ValueError("version 3 uses username and passwords, not community")
            if not self.username:
                raise ValueError("version 3 needs a username")
            if (self.auth_protocol is None) != (self.auth_password is None):
                raise ValueError("auth_protocol and auth_password go together")
            if (self.priv_protocol is None) != (self.priv_password is None):
                raise ValueError("priv_protocol and priv_password go together")
            if self.priv_protocol is not None and self.auth_protocol is None:
                raise ValueError("privacy (priv_protocol) needs authentication (auth_protocol)")
        else:
            if self.community is None:
                raise ValueError(f"version {self.version} needs a community")
            extra = [k for k in ("username", "auth_protocol", "auth_password", "priv_protocol",
                                 "priv_password") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to version 3")
        deadline = self.deadline if self.deadline is not None else self.interval
        if deadline > self.interval:
            raise ValueError(f"deadline {deadline:g}s is longer than interval {self.interval:g}s; "
                             "polls would overlap")
        if self.timeout > deadline:
            raise ValueError(f"timeout {self.timeout:g}s is longer than the poll deadline "
                             f"{deadline:g}s")
        return self


class SourceSpec(_Strict):
    """Where a metric's value comes from. A metric lists one or more: the first that has a
    usable value for a row wins (e.g. ifHCInOctets, then ifInOctets)."""

    oid: Oid
    scale: float = 1.0
    unless: list[int] = Field(default_factory=list)  # values that mean "not available"
    multiply_by: Oid | None = None  # another column (tables) or scalar OID, e.g. allocation units
    from_string: bool = False  # the agent sends the number as an OCTET STRING


class LabelSpec(_Strict):
    name: LabelName
    oid: Oid
    map: dict[str, str] | None = None  # value -> label value (e.g. storage type OIDs to names)


class IndexSpec(_Strict):
    name: LabelName
    arcs: int | None = Field(default=None, ge=1, le=128)  # sub-identifiers taken; None = the rest
    format: Literal["number", "mac", "ip"] = "number"
    map: dict[str, str] | None = None


def _index_item(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


class MetricSpec(_Strict):
    name: MetricName
    help: str
    type: Literal["gauge", "counter", "info"] = "gauge"
    oid: Oid | None = None  # shorthand for sources: [{oid: ...}]
    scale: float | None = None  # with oid
    from_string: bool = False  # with oid
    sources: list[SourceSpec] | None = None
    labels: list[LabelSpec] = Field(default_factory=list)  # info metrics of scalars

    @model_validator(mode="after")
    def _shape(self) -> MetricSpec:
        if self.type == "info":
            if not self.name.endswith("_info"):
                raise ValueError(f"info metric {self.name!r} must end in _info")
            if self.oid is not None or self.sources is not None:
                raise ValueError("an info metric takes labels, not oid or sources")
            return self
        if (self.oid is None) == (self.sources is None):
            raise ValueError("give either oid or sources")
        if self.oid is None and (self.scale is not None or self.from_string):
            raise ValueError("scale and from_string go on each source when sources are given")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")
        if self.type != "counter" and self.name.endswith("_total"):
            raise ValueError(f"{self.name!r} ends in _total but is not a counter")
        return self

    def resolved_sources(self) -> list[SourceSpec]:
        if self.sources is not None:
            return self.sources
        if self.oid is None:
            return []
        return [SourceSpec(oid=self.oid, scale=1.0 if self.scale is None else self.scale,
                           from_string=self.from_string)]


class TableSpec(_Strict):
    name: str
    index: list[Annotated[IndexSpec, BeforeValidator(_index_item)]] = Field(min_length=1)
    labels: list[LabelSpec] = Field(default_factory=list)
    label_refresh: Duration = 600.0
    metrics: list[MetricSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_info(self) -> TableSpec:
        for metric in self.metrics:
            if metric.type == "info":
                raise ValueError(f"{metric.name}: table metrics are gauges or counters; "
                                 "table labels already describe each row")
        names = [i.name for i in self.index] + [label.name for label in self.labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label {dupes[0]!r} is defined twice")
        return self


class ModuleSpec(_Strict):
    description: str = ""
    scalars: list[MetricSpec] = Field(default_factory=list)
    tables: list[TableSpec] = Field(default_factory=list)


class ModulesFile(_Strict):
    """The shipped default modules file."""

    modules: dict[str, ModuleSpec]


class SnmpSpec(_Strict):
    max_in_flight: int = Field(default=200, ge=1, le=10000)  # requests, across all devices
    profiles: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")],
                   SnmpProfileSpec] = Field(default_factory=dict)
    modules: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")],
                  ModuleSpec] = Field(default_factory=dict)


class DeviceSnmpSpec(_Strict):
    profile: str
    modules: list[str] | None = None  # default: the profile's modules


def _device_snmp(value: object) -> object:
    return {"profile": value} if isinstance(value, str) else value


DeviceSnmp = Annotated[DeviceSnmpSpec, BeforeValidator(_device_snmp)]
