"""Every query in dashboards/*.json, and the same query made runnable against a plain
Prometheus: panel targets' `expr` and template variables' queries, with Grafana's variables
($kabupaten, ${role:regex}, $__range, $__rate_interval...) replaced by values Prometheus
accepts and label_values(...) turned into PromQL.

Used by tests/unit/test_dashboards.py (structure, metric names) and by the integration test
that runs every query against a Prometheus scraping monitord (tests/integration).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"

# Grafana's built-in variables, as Grafana would set them for a one-hour range.
DEFAULT_RANGE = "1h"
DEFAULT_INTERVAL = "15s"
DEFAULT_RATE_INTERVAL = "1m"

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# $name, ${name}, ${name:format}, [[name]], [[name:format]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*?)\s*,\s*)?(\w+)\s*\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.DOTALL)
_METRICS = re.compile(r"^\s*metrics\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Query:
    """One query of one dashboard, as written there."""

    dashboard: str  # title
    uid: str
    panel: str  # the panel's title, or "variable NAME"
    ref: str  # the target's refId, or the variable's name
    expr: str
    variable: bool  # a template-variable query (label_values(...) etc.), not a panel target
    instant: bool
    variables: tuple[tuple[str, str], ...]  # the dashboard's variables with "All" selected

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} [{self.ref}]"

    def runnable(self, *, range_: str = DEFAULT_RANGE, interval: str = DEFAULT_INTERVAL,
                 rate_interval: str = DEFAULT_RATE_INTERVAL,
                 values: Mapping[str, str] | None = None) -> str:
        """PromQL for an instant query: variables replaced (by default every variable on
        "All"), a variable query turned into PromQL whose result has one series per value."""
        chosen = {**dict(self.variables), **(values or {})}
        expr = substitute(self.expr, chosen, range_=range_, interval=interval,
                          rate_interval=rate_interval)
        return variable_query_to_promql(expr) if self.variable else expr

    def metric_names(self) -> set[str]:
        """The metric names the query reads (a variable query's label names are not)."""
        return metric_names(self.runnable())


def load(directory: Path = DASHBOARDS) -> dict[Path, Json]:
    """Every dashboard JSON in the directory (not its subdirectories), by path."""
    return {path: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.json"))}


def panels(board: Json) -> Iterator[Json]:
    """Every panel, rows included, and the panels folded inside collapsed rows."""
    for item in board.get("panels", []):
        yield item
        yield from item.get("panels", [])


def variable_query(variable: Json) -> str | None:
    """A query variable's query: a string, or {"query": ...} in Grafana 10's model."""
    if variable.get("type") != "query":
        return None
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query if isinstance(query, str) else None


def all_values(board: Json) -> dict[str, str]:
    """The value each variable takes in a query with "All" (or its current value) selected."""
    out: dict[str, str] = {}
    for variable in board.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable.get("includeAll"):
            out[name] = variable.get("allValue") or ".*"
        elif isinstance(variable.get("current"), dict) and "value" in variable["current"]:
            value = variable["current"]["value"]
            out[name] = "|".join(value) if isinstance(value, list) else str(value)
        else:
            out[name] = ".*"
    return out


def queries(board: Json) -> list[Query]:
    title, uid = board.get("title", "?"), board.get("uid", "?")
    values = tuple(sorted(all_values(board).items()))
    out = [Query(title, uid, f"variable {v['name']}", v["name"], query, True, True, values)
           for v in board.get("templating", {}).get("list", [])
           if (query := variable_query(v)) is not None]
    for panel in panels(board):
        for t in panel.get("targets", []):
            if t.get("expr"):
                out.append(Query(title, uid, panel.get("title", "?"), t.get("refId", "?"),
                                 t["expr"], False, bool(t.get("instant")), values))
    return out


def all_queries(directory: Path = DASHBOARDS) -> list[Query]:
    return [q for board in load(directory).values() for q in queries(board)]


def seconds(duration: str) -> float:
    """A Prometheus duration ("1h30m", "15s") in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def substitute(expr: str, values: Mapping[str, str], *, range_: str = DEFAULT_RANGE,
               interval: str = DEFAULT_INTERVAL,
               rate_interval: str = DEFAULT_RATE_INTERVAL) -> str:
    """Replace dashboard variables by `values` and Grafana's built-ins by the given durations;
    an unknown variable is an error rather than a query that silently matches nothing."""
    builtins = {
        "__range": range_, "__range_s": f"{seconds(range_):g}",
        "__range_ms": f"{seconds(range_) * 1000:g}",
        "__interval": interval, "__interval_ms": f"{seconds(interval) * 1000:g}",
        "__rate_interval": rate_interval,
    }

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in builtins:
            return builtins[name]
        if name in values:
            return values[name]
        raise ValueError(f"unknown variable ${name} in {expr!r}")

    return _VARIABLE.sub(replace, expr)


def variable_query_to_promql(query: str) -> str:
    """A Prometheus data source's variable query as PromQL with one series per value:
    label_values([selector,] label), query_result(expr), metrics(regex)."""
    if match := _LABEL_VALUES.match(query):
        selector, label = match.group(1), match.group(2)
        # label_values lists non-empty values only.
        present = f'{label}!=""'
        if not selector:
            return f"count by ({label}) ({{{present}}})"
        if selector.endswith("}"):
            inner = selector[selector.index("{") + 1:-1].strip()
            selector = f"{selector[:selector.index('{')]}{{{inner + ', ' if inner else ''}{present}}}"
        elif re.fullmatch(r"[a-zA-Z_:][\w:]*", selector):
            selector = f"{selector}{{{present}}}"
        else:
            raise ValueError(f"label_values over something not a series selector: {query!r}")
        return f"count by ({label}) ({selector})"
    if match := _QUERY_RESULT.match(query):
        return match.group(1)
    if match := _METRICS.match(query):
        return f'count by (__name__) ({{__name__=~"{match.group(1).strip()}"}})'
    raise ValueError(f"unsupported variable query: {query!r}")


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MODIFIER = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])[a-zA-Z_:][\w:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "bool", "offset", "atan2", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (variables allowed) reads: identifiers left once
    strings, label matchers, ranges, grouping clauses and function calls are taken out."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _MODIFIER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        follows = text[match.end():].lstrip()
        if follows.startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
