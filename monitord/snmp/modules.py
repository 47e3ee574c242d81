"""SNMP modules, compiled: which OIDs to fetch and how they become Prometheus samples.

A module is declared in YAML (the shipped defaults in default_modules.yaml, or the config
file's `snmp.modules`) and compiled once at load into these frozen structures, with every
OID already in its BER encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from pydantic import ValidationError

from monitord.config.errors import ConfigError
from monitord.config.snmp_schema import (
    IndexSpec,
    LabelSpec,
    MetricSpec,
    ModulesFile,
    ModuleSpec,
    SourceSpec,
)
from monitord.config.yamlload import load_yaml
from monitord.snmp.ber import encode_oid

DEFAULT_MODULES_FILE = "default_modules.yaml"
MetricType = Literal["gauge", "counter", "info"]


@dataclass(frozen=True, slots=True)
class Source:
    oid: bytes  # a column (tables) or an instance (scalars)
    scale: float
    unless: frozenset[int]
    multiply_by: bytes | None
    from_string: bool


@dataclass(frozen=True, slots=True)
class LabelColumn:
    name: str
    oid: bytes
    value_map: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class IndexPart:
    name: str
    arcs: int | None  # None: the rest of the index
    format: Literal["number", "mac", "ip"]
    value_map: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    help: str
    type: MetricType
    sources: tuple[Source, ...]
    labels: tuple[LabelColumn, ...] = ()  # info metrics of scalars only


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    index: tuple[IndexPart, ...]
    labels: tuple[LabelColumn, ...]
    label_refresh: float
    metrics: tuple[Metric, ...]
    # Derived once here, read on every poll:
    primary_columns: tuple[bytes, ...] = field(init=False)  # each metric's first source (+ factor)
    fallback_columns: tuple[bytes, ...] = field(init=False)  # the other sources, not primary
    label_columns: tuple[bytes, ...] = field(init=False)

    def __post_init__(self) -> None:
        primary: dict[bytes, None] = {}
        fallback: dict[bytes, None] = {}
        for metric in self.metrics:
            for position, source in enumerate(metric.sources):
                into = fallback if position else primary
                into[source.oid] = None
                if source.multiply_by is not None:
                    into[source.multiply_by] = None
        object.__setattr__(self, "primary_columns", tuple(primary))
        object.__setattr__(self, "fallback_columns", tuple(c for c in fallback if c not in primary))
        object.__setattr__(self, "label_columns", tuple(label.oid for label in self.labels))


@dataclass(frozen=True, slots=True)
class SnmpModule:
    name: str
    description: str
    scalars: tuple[Metric, ...]
    tables: tuple[Table, ...]

    def scalar_oids(self) -> tuple[bytes, ...]:
        out: dict[bytes, None] = {}
        for metric in self.scalars:
            for source in metric.sources:
                out[source.oid] = None
                if source.multiply_by is not None:
                    out[source.multiply_by] = None
            for label in metric.labels:
                out[label.oid] = None
        return tuple(out)


def _source(spec: SourceSpec) -> Source:
    return Source(encode_oid(spec.oid), spec.scale, frozenset(spec.unless),
                  encode_oid(spec.multiply_by) if spec.multiply_by else None, spec.from_string)


def _label(spec: LabelSpec) -> LabelColumn:
    return LabelColumn(spec.name, encode_oid(spec.oid), spec.map)


def _metric(spec: MetricSpec) -> Metric:
    return Metric(spec.name, spec.help, spec.type,
                  tuple(_source(s) for s in spec.resolved_sources()),
                  tuple(_label(label) for label in spec.labels))


def _index(spec: IndexSpec) -> IndexPart:
    return IndexPart(spec.name, spec.arcs, spec.format, spec.map)


def compile_module(name: str, spec: ModuleSpec) -> SnmpModule:
    return SnmpModule(
        name=name,
        description=spec.description,
        scalars=tuple(_metric(m) for m in spec.scalars),
        tables=tuple(Table(t.name, tuple(_index(i) for i in t.index),
                           tuple(_label(label) for label in t.labels), t.label_refresh,
                           tuple(_metric(m) for m in t.metrics)) for t in spec.tables),
    )


def metric_conflicts(modules: Mapping[str, SnmpModule]) -> list[tuple[str, str]]:
    """(module, problem) for metric names that two modules define with different types:
    one family may be fed by several modules (radio metrics of three vendors) only if they
    agree on what it is."""
    seen: dict[str, tuple[str, MetricType]] = {}
    problems = []
    for module in modules.values():
        metrics = [*module.scalars, *(m for t in module.tables for m in t.metrics)]
        for metric in metrics:
            first = seen.setdefault(metric.name, (module.name, metric.type))
            if first[1] != metric.type:
                problems.append((module.name, f"metric {metric.name} is a {metric.type} here but "
                                              f"a {first[1]} in module {first[0]}"))
    return problems


def load_default_module_specs() -> dict[str, ModuleSpec]:
    """The shipped modules. A problem here is a bug in monitord; the tests load this file."""
    resource = resources.files("monitord.snmp").joinpath(DEFAULT_MODULES_FILE)
    with resources.as_file(resource) as path:
        doc = load_yaml(path)
    try:
        return dict(ModulesFile.model_validate(doc.data).modules)
    except ValidationError as exc:
        raise ConfigError(doc.source, [str(exc)]) from None
