"""The Grafana dashboards (dashboards/*.json) and their provisioning files, without Grafana or
a network: the JSON is what dashboards/generator builds, uids are fixed, every panel reads the
`${datasource}` variable, every query parses (promtool) and reads only metrics monitord exports
or the recording rules define, and panels do not overlap. Whether each query returns data is
the integration test's job (a real Prometheus scraping a lab monitord).

Also tests tests/dashboards.py itself, which that integration test relies on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.generator import build_all
from tests.dashboards import (
    DASHBOARDS,
    Query,
    all_queries,
    load,
    metric_names,
    panels,
    queries,
    substitute,
    variable_query,
    variable_query_to_promql,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEFAULT_MODULES = ROOT / "monitord" / "snmp" / "default_modules.yaml"
RECORDING_RULES = ROOT / "exporters" / "prometheus" / "rules" / "monitord-recording.yml"
PROVISIONING = DASHBOARDS / "provisioning"

UIDS = {"monitord-noc", "monitord-links", "monitord-villages", "monitord-datacenter",
        "monitord-spbe", "monitord-self"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HIERARCHY_VARIABLES = ("kabupaten", "role", "site")
# Series Prometheus makes itself for every scrape.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added"}

BOARDS = load()
QUERIES = all_queries()


def board_id(path: Path) -> str:
    return path.name


# --- tests/dashboards.py -----------------------------------------------------------------

def test_substitute_replaces_every_variable_form() -> None:
    values = {"kabupaten": "majene|mamuju", "role": ".*"}
    expr = ('rate(x{kabupaten=~"$kabupaten", role=~"${role}", a=~"${kabupaten:regex}", '
            'b=~"[[role]]"}[$__rate_interval]) / $__range_s and y[$__range] offset $__interval')
    assert substitute(expr, values, range_="2h", interval="30s", rate_interval="2m") == (
        'rate(x{kabupaten=~"majene|mamuju", role=~".*", a=~"majene|mamuju", '
        'b=~".*"}[2m]) / 7200 and y[2h] offset 30s')


def test_substitute_refuses_an_unknown_variable() -> None:
    with pytest.raises(ValueError, match=r"\$zone"):
        substitute('x{zone=~"$zone"}', {"kabupaten": ".*"})


@pytest.mark.parametrize(("query", "promql"), [
    ("label_values(monitord_target_info, kabupaten)",
     'count by (kabupaten) (monitord_target_info{kabupaten!=""})'),
    ('label_values(monitord_target_info{role=~"village-.*"}, site)',
     'count by (site) (monitord_target_info{role=~"village-.*", site!=""})'),
    ("label_values(up{}, instance)", 'count by (instance) (up{instance!=""})'),
    ("label_values(kabupaten)", 'count by (kabupaten) ({kabupaten!=""})'),
    ("query_result(topk(3, up))", "topk(3, up)"),
    ("metrics(monitord_if_.*)", 'count by (__name__) ({__name__=~"monitord_if_.*"})'),
])
def test_variable_queries_become_promql(query: str, promql: str) -> None:
    assert variable_query_to_promql(query) == promql


def test_variable_query_of_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        variable_query_to_promql("label_names()")


def test_metric_names_skips_functions_labels_strings_and_durations() -> None:
    expr = ('histogram_quantile(0.99, sum by (kind, le) (rate(a_bucket{job="monitord", '
            'x=~"up|b"}[$__rate_interval]))) or on (kind) sum by (kind) (b) * 0 + ignoring(state) '
            'target:c:rate5m - time() > bool 1e-9 and avg_over_time(d[1h:5m])')
    assert metric_names(expr) == {"a_bucket", "b", "target:c:rate5m", "d"}


def test_a_variable_query_reads_its_selector_not_its_label() -> None:
    [query] = [q for q in queries(BOARDS[DASHBOARDS / "monitord-noc.json"])
               if q.variable and q.ref == "site"]
    assert query.metric_names() == {"monitord_target_info"}


# --- the files -------------------------------------------------------------------------------

def test_json_files_are_what_the_generator_builds() -> None:
    built = build_all()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in BOARDS}
    assert set(on_disk) == set(built), "run: python -m dashboards.generator"
    stale = [name for name, text in built.items() if on_disk[name] != text]
    assert not stale, f"{stale} differ from dashboards/generator: run python -m dashboards.generator"


def test_uids_are_fixed_unique_and_name_the_file() -> None:
    uids = [board["uid"] for board in BOARDS.values()]
    assert sorted(uids) == sorted(UIDS)
    for path, board in BOARDS.items():
        assert path.stem == board["uid"]
        assert board["id"] is None, "a provisioned dashboard must not carry a database id"
        assert "monitord" in board["tags"]
        assert board["schemaVersion"] == 38
        assert board["title"].startswith("monitord / ")


@pytest.mark.parametrize("path", list(BOARDS), ids=board_id)
def test_every_panel_and_query_reads_the_datasource_variable(path: Path) -> None:
    board = BOARDS[path]
    variables = board["templating"]["list"]
    [ds] = [v for v in variables if v["type"] == "datasource"]
    assert (ds["name"], ds["query"]) == ("datasource", "prometheus")
    for variable in variables:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    for panel in panels(board):
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for t in panel["targets"]:
            assert t["datasource"] == DATASOURCE, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


@pytest.mark.parametrize("path", list(BOARDS), ids=board_id)
def test_kabupaten_role_site_variables(path: Path) -> None:
    by_name = {v["name"]: v for v in BOARDS[path]["templating"]["list"]}
    for name in HIERARCHY_VARIABLES:
        variable = by_name[name]
        query = variable_query(variable)
        assert query is not None
        assert re.fullmatch(rf"label_values\(monitord_target_info(\{{.*\}})?, {name}\)", query)
        assert variable["multi"]
        assert variable["includeAll"]
        assert variable["allValue"] == ".*"
        assert variable["refresh"] == 2, "refresh on time-range change: sites come and go"
    # Each narrows the next, so a kabupaten's sites are what the site list offers.
    assert "$kabupaten" in (variable_query(by_name["role"]) or "")
    assert {"$kabupaten", "$role"} <= set(re.findall(r"\$\w+", variable_query(by_name["site"]) or ""))


@pytest.mark.parametrize("path", list(BOARDS), ids=board_id)
def test_panels_do_not_overlap_and_fit_the_grid(path: Path) -> None:
    placed = [(p.get("title", ""), p["gridPos"]) for p in BOARDS[path]["panels"]]
    ids = [p["id"] for p in BOARDS[path]["panels"]]
    assert len(set(ids)) == len(ids)
    for title, pos in placed:
        assert min(pos["w"], pos["h"]) > 0, title
        assert min(pos["x"], pos["y"]) >= 0, title
        assert pos["x"] + pos["w"] <= 24, title
    for (a, pa), (b, pb) in combinations(placed, 2):
        apart = (pa["x"] + pa["w"] <= pb["x"] or pb["x"] + pb["w"] <= pa["x"]
                 or pa["y"] + pa["h"] <= pb["y"] or pb["y"] + pb["h"] <= pa["y"])
        assert apart, f"{a!r} {pa} overlaps {b!r} {pb}"


# --- the queries ---------------------------------------------------------------------------

def _balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:\\.|[^"\\])*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.where)
def test_query_is_balanced(query: Query) -> None:
    assert _balanced(query.expr), query.expr


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses PromQL only inside rule files: every query becomes a recording rule of
    a group named after its panel, so an error names the panel."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Prometheus 2.x) is needed"
    groups = [{"name": f"{i} {q.where}", "rules": [{"record": "dashboard:query", "expr": q.runnable()}]}
              for i, q in enumerate(QUERIES)]
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _expand(name: str) -> list[str]:
    """README spelling to metric names: `a_{b,c}_d` is two names; a brace group that does not
    follow `_` lists labels and is dropped; `x_*` stays a prefix pattern."""
    match = re.search(r"_\{([^}]*)\}", name)
    if match is None:
        return [re.sub(r"\{.*\}$", "", name)]
    head, tail = name[:match.start() + 1], name[match.end():]
    return [n for option in match.group(1).split(",") for n in _expand(head + option + tail)]


def _readme_metrics() -> set[str]:
    section = README.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 2:
            continue
        histogram = "histogram" in cells
        for token in re.findall(r"`([^`]+)`", cells[0].replace("\\|", "|")):
            for name in _expand(token):
                if not re.fullmatch(r"[a-z_]+[a-z0-9_]*\*?", name) or name.startswith("_"):
                    continue
                names.add(name)
                if histogram:
                    names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def _module_metrics() -> set[str]:
    modules: dict[str, Any] = yaml.safe_load(DEFAULT_MODULES.read_text())["modules"]
    names: set[str] = set()
    for module in modules.values():
        names.update(m["name"] for m in module.get("scalars", []))
        for tab in module.get("tables", []):
            names.update(m["name"] for m in tab.get("metrics", []))
    return names


def _recording_rules() -> set[str]:
    assert RECORDING_RULES.is_file(), f"{RECORDING_RULES} is missing: the dashboards read it"
    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def test_readme_parsing_finds_the_families() -> None:
    known = _readme_metrics()
    for name in ("monitord_icmp_rtt_seconds_bucket", "monitord_if_out_discards_total",
                 "monitord_ups_output_frequency_hertz", "monitord_target_state",
                 "monitord_probes_total", "monitord_hr_storage_used_bytes", "process_*"):
        assert name in known
    assert "monitord_probes_total{kind,outcome}" not in known


def test_every_metric_a_dashboard_reads_is_exported_or_recorded() -> None:
    recorded = _recording_rules()
    known = _readme_metrics() | _module_metrics() | recorded | PROMETHEUS_SERIES
    prefixes = tuple(name[:-1] for name in known if name.endswith("*"))
    unknown = sorted({(name, q.where) for q in QUERIES for name in q.metric_names()
                      if name not in known and not name.startswith(prefixes)})
    assert not unknown, "\n".join(f"{name} in {where}" for name, where in unknown)
    # Recording rules by their level:metric:operations name only: a typo there is not a prefix.
    used = {name for q in QUERIES for name in q.metric_names() if ":" in name}
    assert used <= recorded, used - recorded


def test_per_target_queries_honour_the_hierarchy_variables() -> None:
    """A panel that reads per-target series filters them by $kabupaten, $role and $site (the
    self-health panels about monitord itself filter by $instance instead)."""
    per_target = ("monitord_target_", "monitord_icmp_rtt", "monitord_icmp_jitter", "monitord_if_",
                  "monitord_radio_", "monitord_ups_", "monitord_hr_", "monitord_ucd_",
                  "monitord_device_", "monitord_snmp_up", "target:", "interface:")
    missing = [q.where for q in QUERIES if not q.variable
               and any(n.startswith(per_target) for n in metric_names(q.expr))
               and not all(f"${v}" in q.expr for v in HIERARCHY_VARIABLES)]
    assert not missing, missing


def test_scoped_dashboards_stay_in_their_roles() -> None:
    """With role=All (`.*`) the links, villages and data-center dashboards still read only
    their own roles: every per-target selector there carries the role scope."""
    scopes = {"monitord-links": 'role=~"kabupaten-.*"', "monitord-villages": 'role=~"village-.*"',
              "monitord-datacenter": 'role=~"dc-.*"'}
    for q in QUERIES:
        if q.uid in scopes:
            for selector in re.findall(r"\{[^{}]*\$kabupaten[^{}]*\}", q.expr):
                assert scopes[q.uid] in selector, f"{q.where}: {selector}"


# --- provisioning ---------------------------------------------------------------------------

def test_dashboard_provider() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "monitord.yml").read_text())
    assert doc["apiVersion"] == 1
    [provider] = doc["providers"]
    assert provider["type"] == "file"
    assert Path(provider["options"]["path"]).is_absolute()


def test_datasource_is_prometheus() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert doc["apiVersion"] == 1
    [source] = doc["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"].startswith("http")
    assert source["jsonData"]["timeInterval"] == "15s", "the example scrape interval"


def test_geomap_reads_coordinates_from_target_info() -> None:
    board = BOARDS[DASHBOARDS / "monitord-noc.json"]
    [geomap] = [p for p in panels(board) if p["type"] == "geomap"]
    location = geomap["options"]["layers"][0]["location"]
    assert (location["latitude"], location["longitude"]) == ("latitude", "longitude")
    [t] = geomap["targets"]
    assert t["format"] == "table"
    assert t["instant"]
    assert "group_left (latitude, longitude)" in t["expr"]


def test_every_dashboard_is_reachable_from_the_others() -> None:
    for board in BOARDS.values():
        [link] = board["links"]
        assert link["type"] == "dashboards"
        assert link["tags"] == ["monitord"]
        assert link["includeVars"]
        assert link["keepTime"]


def test_json_is_plain_json() -> None:
    for path in BOARDS:
        json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_all_queries_covers_every_target_and_variable() -> None:
    expected = sum(len(p.get("targets", [])) for b in BOARDS.values() for p in panels(b))
    expected += sum(1 for b in BOARDS.values() for v in b["templating"]["list"]
                    if v["type"] == "query")
    assert len(QUERIES) == expected
    assert {q.uid for q in QUERIES} == UIDS
