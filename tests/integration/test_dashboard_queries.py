"""The shipped Grafana dashboards against the lab (tests/integration/lab.py): every panel query
and template-variable query is run against the lab's real Prometheus, which scrapes a real
monitord and evaluates the shipped recording rules, and must return data without error; and
every metric a dashboard or a rule reads must be one monitord exports (or a recording rule,
or one Prometheus itself makes).

Grafana is not needed for this: tests/dashboards.py extracts the queries and replaces Grafana's
variables (every dashboard variable on "All", $__rate_interval and the like by fixed
durations), and turns label_values(...) into PromQL with one series per value.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests import dashboards
from tests.integration.prometheus_stack import ApiError, shipped_rule_files

if TYPE_CHECKING:  # the lab module is a plugin: see its docstring
    from tests.integration.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.slow]
pytest_plugins = ["tests.integration.lab"]

# How long the lab runs before the queries: 5-minute rates and the recording rules built on
# them need a few scrapes, and the histogram quantiles a few probes with replies.
WARM_UP = 40
RANGE_STEP = 5  # seconds: a panel's range query, as Grafana would send it for a short range
# Series Prometheus makes itself for every scrape and every alerting rule.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added",
                     "ALERTS", "ALERTS_FOR_STATE"}


@pytest.fixture(scope="module")
def warm_lab(lab: Lab) -> Lab:
    lab.wait_running_for(WARM_UP)
    return lab


def has_data(data: dict[str, Any]) -> bool:
    if data["resultType"] in ("vector", "matrix"):
        return bool(data["result"])
    return True  # a scalar or string always has its one value


def problem(lab: Lab, query: dashboards.Query, start: float, end: float) -> str | None:
    """What is wrong with one dashboard query against the lab, or None."""
    try:
        expr = query.runnable()
    except ValueError as exc:
        return f"cannot be made runnable: {exc}"
    try:
        if query.variable or query.instant:
            data = lab.prometheus.query(expr)
        else:
            data = lab.prometheus.query_range(expr, start, end, RANGE_STEP)
    except ApiError as exc:
        return f"Prometheus refuses it: {exc}\n      {expr}"
    return None if has_data(data) else f"no data\n      {expr}"


def test_the_dashboards_are_there() -> None:
    boards = dashboards.load()
    uids = {board.get("uid") for board in boards.values()}
    assert {"monitord-noc", "monitord-links", "monitord-villages", "monitord-datacenter",
            "monitord-spbe", "monitord-self"} <= uids
    assert len(uids) == len(boards), "every dashboard has a uid of its own"


def test_every_panel_and_variable_query_returns_data(warm_lab: Lab) -> None:
    queries = dashboards.all_queries()
    assert queries
    end = time.time()
    start = max(warm_lab.started, end - 3600)
    failures = [f"{q.where}: {why}" for q in queries
                if (why := problem(warm_lab, q, start, end)) is not None]
    assert failures == [], f"{len(failures)} of {len(queries)} queries fail:\n" + "\n".join(failures)


def exported_names(lab: Lab) -> set[str]:
    """Every metric name the lab's monitord exports: in its /metrics now (TYPE lines too, so a
    counter with no sample yet counts) and in anything Prometheus has scraped from it."""
    text = lab.daemon.metrics_text()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    names |= {line.split("{")[0].split()[0] for line in text.splitlines()
              if line and not line.startswith("#")}
    names |= {f"{n}{suffix}" for n in list(names) for suffix in ("_bucket", "_sum", "_count")
              if f"# TYPE {n} histogram" in text}
    return names | set(lab.prometheus.label_values("__name__", '{job="monitord"}'))


def rule_expressions() -> tuple[set[str], list[tuple[str, str]]]:
    """(names the rules record, [(where, expression)] of every rule), from the shipped files."""
    recorded: set[str] = set()
    exprs: list[tuple[str, str]] = []
    for path in shipped_rule_files():
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("record") or rule.get("alert")
                if "record" in rule:
                    recorded.add(rule["record"])
                exprs.append((f"{path.name} / {group['name']} / {name}", str(rule["expr"])))
    return recorded, exprs


def test_every_metric_used_is_one_monitord_exports(warm_lab: Lab) -> None:
    recorded, rules = rule_expressions()
    assert rules, "no rules shipped"
    known = exported_names(warm_lab) | recorded | PROMETHEUS_SERIES
    used = list(rules)
    for q in dashboards.all_queries():
        try:
            used.append((q.where, q.runnable()))
        except ValueError:
            continue  # reported by test_every_panel_and_variable_query_returns_data
    offenders = sorted({f"{where}: {name}" for where, expr in used
                        for name in dashboards.metric_names(expr) if name not in known})
    assert offenders == [], "metrics monitord does not export:\n" + "\n".join(offenders)
