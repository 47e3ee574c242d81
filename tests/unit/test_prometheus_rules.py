"""The Prometheus rules and the Alertmanager config in exporters/, checked by the real tools
(promtool check and test, amtool check-config and routes test), plus what the tools cannot see:
every alert fires in some promtool test with its hierarchy labels and bilingual annotations,
every alert is also tested not firing, and the `for` durations are ordered so that an
inhibition never swallows a resolve notification (exporters/alertmanager/README.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "exporters" / "prometheus"
RECORDING_RULES = PROMETHEUS / "rules" / "monitord-recording.yml"
ALERT_RULES = PROMETHEUS / "rules" / "monitord-alerts.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
SCRAPE_CONFIG = PROMETHEUS / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "exporters" / "alertmanager" / "alertmanager.yml"
SULBAR = ROOT / "config" / "sulbar.yaml"

HIERARCHY = ("province", "kabupaten", "site", "role", "target")
ANNOTATIONS = frozenset({"summary", "description", "runbook",
                         "summary_id", "description_id", "runbook_id"})
SEVERITIES = frozenset({"critical", "warning", "info"})
SELF_GROUP = "monitord-self-alerts"  # monitord's own health: instance and job, no hierarchy
LINK_ALERT = "MonitordKabupatenLinkDown"
# What a village behind a failed link would raise if monitord did not call it unreachable.
VILLAGE_SYMPTOMS = frozenset({"MonitordSiteDown", "MonitordTargetDown", "MonitordHighPacketLoss",
                              "MonitordHighLatency", "MonitordSnmpDown", "MonitordInterfaceDown",
                              "MonitordTargetFlapping"})
# Role selectors of rule variants that never apply to a village.
NOT_VILLAGE = ('role!~"kabupaten-link|village-.*|.*vsat.*"', 'role="kabupaten-link"',
               'role=~"dc-.*"')
# Alerts about an event rather than a condition: they fire at once, for the event's window.
EVENT_ALERTS = frozenset({"MonitordDeviceRebooted"})
# Names other issue-5 work relies on (integration test, dashboards).
CONTRACT_ALERTS = frozenset({LINK_ALERT, "MonitordSiteDown", "MonitordTargetDown",
                             "MonitordHighPacketLoss", "MonitordHighLatency"})
CONTRACT_RECORDINGS = frozenset({
    "target:monitord_icmp_loss_ratio:rate5m", "target:monitord_icmp_rtt_seconds:p50_5m",
    "target:monitord_icmp_rtt_seconds:p95_5m", "target:monitord_availability:ratio_1h",
    "target:monitord_availability:ratio_1d", "target:monitord_availability:ratio_30d",
    "interface:monitord_if_utilization:ratio_rate5m"})
WEBHOOK_BASE = "http://127.0.0.1:9095/"
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: scripts/setup.sh --test installs it "
                    "(Debian packages prometheus and prometheus-alertmanager)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def seconds(duration: str) -> float:
    """A Prometheus duration ("90s", "1h30m") in seconds."""
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


@dataclass(frozen=True)
class AlertRule:
    group: str
    name: str
    expr: str
    for_seconds: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class ExpectedAlert:
    """One exp_alerts entry of a promtool test."""

    where: str  # file and test name, for messages
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def alert_rules() -> list[AlertRule]:
    return [AlertRule(group=group["name"], name=rule["alert"], expr=rule["expr"],
                      for_seconds=seconds(rule.get("for", "0s")),
                      labels=rule.get("labels", {}), annotations=rule.get("annotations", {}))
            for group in load(ALERT_RULES)["groups"] for rule in group["rules"]]


def rule_groups() -> list[str]:
    return [group["name"] for path in (RECORDING_RULES, ALERT_RULES)
            for group in load(path)["groups"]]


def alert_rule_tests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in RULE_TESTS:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                yield f"{path.name}: {test.get('name', '?')}", case


def expected_alerts() -> list[ExpectedAlert]:
    return [ExpectedAlert(where=where, name=case["alertname"],
                          labels={k: str(v) for k, v in alert.get("exp_labels", {}).items()},
                          annotations=alert.get("exp_annotations", {}))
            for where, case in alert_rule_tests() for alert in case.get("exp_alerts") or []]


def template_pattern(template: str) -> re.Pattern[str]:
    """What a Go template can render to: its literal text, anything for each action, and
    anything for a whole {{ if }} / {{ with }} block (which may render nothing at all)."""
    pattern, depth = [], 0
    for piece in re.split(r"({{.*?}})", template, flags=re.DOTALL):
        action = re.fullmatch(r"{{-?\s*(\w*).*?}}", piece, flags=re.DOTALL)
        if action is None:
            if depth == 0:
                pattern.append(re.escape(piece))
            continue
        keyword = action.group(1)
        if keyword in ("if", "with", "range"):
            if depth == 0:
                pattern.append(".*?")
            depth += 1
        elif keyword == "end":
            depth -= 1
        elif depth == 0 and keyword != "else":
            pattern.append(".*?")
    return re.compile("".join(pattern), flags=re.DOTALL)


def fires(rule: AlertRule, alert: ExpectedAlert) -> bool:
    """Whether an expected alert is this rule's: same name and static labels, and every
    annotation rendered from this rule's template (variants differ in their text)."""
    if alert.name != rule.name or set(alert.annotations) != set(rule.annotations):
        return False
    if any(alert.labels.get(k) != v for k, v in rule.labels.items()):
        return False
    return all(template_pattern(rule.annotations[key]).fullmatch(text) is not None
               for key, text in alert.annotations.items())


def rule_id(rule: AlertRule) -> str:
    return f"{rule.name}{dict(rule.labels)}"


# --- the tools ------------------------------------------------------------------------------


def test_promtool_checks_the_rule_files() -> None:
    result = run(tool("promtool"), "check", "rules", str(RECORDING_RULES), str(ALERT_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_scrape_config_and_its_rule_files() -> None:
    result = run(tool("promtool"), "check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    assert len(RULE_TESTS) >= 5
    result = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_checks_the_alertmanager_config() -> None:
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# --- the alert rules and their tests --------------------------------------------------------


def test_every_alert_has_a_severity_and_bilingual_annotations() -> None:
    rules = alert_rules()
    assert {rule.name for rule in rules} >= CONTRACT_ALERTS
    for rule in rules:
        assert rule.labels.get("severity") in SEVERITIES, rule_id(rule)
        assert set(rule.annotations) == ANNOTATIONS, rule_id(rule)
        assert all(text.strip() for text in rule.annotations.values()), rule_id(rule)


def test_every_alert_rule_fires_in_a_promtool_test() -> None:
    """Each rule (variants of one alert included) is matched by some expected alert, so its
    expression, labels and rendered annotations were all checked by promtool."""
    alerts = expected_alerts()
    unfired = [rule_id(rule) for rule in alert_rules()
               if not any(fires(rule, alert) for alert in alerts)]
    assert not unfired, f"no promtool test fires: {unfired}"


def test_every_expected_alert_belongs_to_one_rule() -> None:
    rules = alert_rules()
    for alert in expected_alerts():
        owners = [rule_id(rule) for rule in rules if fires(rule, alert)]
        assert len(owners) == 1, f"{alert.where}: {alert.name} {dict(alert.labels)} -> {owners}"


def test_every_per_target_alert_carries_the_hierarchy_labels() -> None:
    rules = alert_rules()
    for alert in expected_alerts():
        owner = next((rule for rule in rules if fires(rule, alert)), None)
        if owner is not None and owner.group != SELF_GROUP:  # an unowned one fails above
            missing = [label for label in HIERARCHY if label not in alert.labels]
            assert not missing, f"{alert.where}: {alert.name} lacks {missing}"


def test_every_alert_is_also_tested_not_firing() -> None:
    quiet = {case["alertname"] for _, case in alert_rule_tests() if not case.get("exp_alerts")}
    assert not {rule.name for rule in alert_rules()} - quiet


def test_rule_tests_fix_the_order_of_every_group() -> None:
    """Unlisted groups run in random order in promtool: an alert would sometimes read the
    previous evaluation's recorded series, and its test would flake."""
    groups = rule_groups()
    for path in RULE_TESTS:
        test_file = load(path)
        assert test_file["group_eval_order"] == groups, path.name
        assert sorted(test_file["rule_files"]) == ["../rules/monitord-alerts.yml",
                                                   "../rules/monitord-recording.yml"]


def test_the_recorded_series_others_rely_on_exist() -> None:
    recorded = {rule["record"] for group in load(RECORDING_RULES)["groups"]
                for rule in group["rules"]}
    assert recorded >= CONTRACT_RECORDINGS


# --- timing: `for` durations ----------------------------------------------------------------


def link_rule() -> AlertRule:
    (rule,) = [rule for rule in alert_rules() if rule.name == LINK_ALERT]
    return rule


def test_village_symptoms_wait_longer_than_the_link_alert() -> None:
    """A village published down just before its link's verdict (monitord's parent wait timed
    out) is unreachable again before its alert could fire, and the link alert fires first."""
    link = link_rule()
    village_rules = [rule for rule in alert_rules() if rule.name in VILLAGE_SYMPTOMS
                     and not any(selector in rule.expr for selector in NOT_VILLAGE)]
    assert {rule.name for rule in village_rules} == VILLAGE_SYMPTOMS
    for rule in village_rules:
        assert rule.for_seconds > link.for_seconds, rule_id(rule)


def route_group_intervals(node: Mapping[str, Any], inherited: float) -> Iterator[float]:
    own = seconds(node["group_interval"]) if "group_interval" in node else inherited
    yield own
    for child in node.get("routes", []):
        yield from route_group_intervals(child, own)


def test_link_alert_waits_for_resolved_village_alerts_to_be_notified() -> None:
    """When the link goes down, a village alert that had fired resolves at the next rule
    evaluation after the scrape that shows the village unreachable, and is notified resolved
    within one group_interval; only then may the link alert start inhibiting it."""
    scrape_global = load(SCRAPE_CONFIG)["global"]
    slack = seconds(scrape_global["scrape_interval"]) + seconds(
        scrape_global["evaluation_interval"])
    longest_group_interval = max(route_group_intervals(load(ALERTMANAGER_CONFIG)["route"], 300))
    assert link_rule().for_seconds > longest_group_interval + slack


def windows(expr: str) -> list[float]:
    """Range windows an expression reads: [10m] selectors and recorded *rate5m / *_5m series."""
    found = re.findall(r"\[(\w+)\]", expr) + re.findall(r"\w+:\w+:\w*?(?:rate|_)(\d+[smhd])\b",
                                                        expr)
    return [seconds(window) for window in found]


def test_for_outlasts_the_window_an_alert_reads() -> None:
    """A 5-minute rate still holds an outage for 5 minutes after it ended: a `for` longer than
    the window keeps that tail from firing a loss alert on a target that is back."""
    for rule in alert_rules():
        if rule.name in EVENT_ALERTS:
            assert rule.for_seconds == 0, rule_id(rule)
            continue
        assert rule.for_seconds > max(windows(rule.expr), default=0), rule_id(rule)


# --- Alertmanager: routing, grouping, inhibition, receivers --------------------------------


ROUTES: list[tuple[dict[str, str], list[str]]] = [
    # A down link pages the NOC and tells the kabupaten's team.
    ({"alertname": LINK_ALERT, "severity": "critical", "role": "kabupaten-link",
      "province": "sulbar", "kabupaten": "majene"}, ["noc-oncall", "kab-majene"]),
    # A link's warnings reach the NOC's chat and the kabupaten's team, no page.
    ({"alertname": "MonitordHighPacketLoss", "severity": "warning", "role": "kabupaten-link",
      "province": "sulbar", "kabupaten": "mamasa"}, ["noc-chat", "kab-mamasa"]),
    # Villages (radio and VSAT) are the kabupaten team's.
    ({"alertname": "MonitordSiteDown", "severity": "warning", "role": "village-vsat",
      "province": "sulbar", "kabupaten": "mamuju"}, ["kab-mamuju"]),
    ({"alertname": "MonitordTargetDown", "severity": "warning", "role": "village-ap",
      "province": "sulbar", "kabupaten": "pasangkayu"}, ["kab-pasangkayu"]),
    # A kabupaten without a team falls back to the NOC's chat.
    ({"alertname": "MonitordSiteDown", "severity": "warning", "role": "village-ap",
      "province": "sulbar", "kabupaten": "baru"}, ["noc-chat"]),
    # The data center is the NOC's: paged when critical.
    ({"alertname": "MonitordTargetDown", "severity": "critical", "role": "dc-server",
      "province": "sulbar", "kabupaten": "provinsi"}, ["noc-oncall"]),
    ({"alertname": "MonitordUpsOnBattery", "severity": "critical", "role": "dc-ups",
      "province": "sulbar", "kabupaten": "provinsi"}, ["noc-oncall"]),
    ({"alertname": "MonitordHostDiskFull", "severity": "warning", "role": "dc-server",
      "province": "sulbar", "kabupaten": "provinsi"}, ["noc-chat"]),
    ({"alertname": "MonitordDeviceRebooted", "severity": "info", "role": "dc-network",
      "province": "sulbar", "kabupaten": "provinsi"}, ["noc-chat"]),
    # monitord itself.
    ({"alertname": "MonitordDown", "severity": "critical", "job": "monitord"}, ["noc-oncall"]),
    ({"alertname": "MonitordProbesLate", "severity": "warning", "job": "monitord"},
     ["noc-chat"]),
]


def route(labels: Mapping[str, str]) -> list[str]:
    """The receivers amtool resolves for an alert with these labels, in tree order."""
    result = subprocess.run(
        [tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
         *(f"{name}={value}" for name, value in labels.items())],
        capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip().split(",")


@pytest.mark.parametrize(("labels", "receivers"), ROUTES,
                         ids=[f"{labels['alertname']}-{labels.get('role', 'self')}"
                              for labels, _ in ROUTES])
def test_routing_tree(labels: dict[str, str], receivers: list[str]) -> None:
    assert route(labels) == receivers
    verify = run(tool("amtool"), "config", "routes", "test",
                 f"--config.file={ALERTMANAGER_CONFIG}",
                 f"--verify.receivers={','.join(receivers)}",
                 *(f"{name}={value}" for name, value in labels.items()))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def sulbar_kabupaten_with_links() -> list[str]:
    return [kabupaten["id"] for kabupaten in load(SULBAR)["province"]["kabupaten"]
            if "uplink" in kabupaten]


def test_every_kabupaten_of_the_example_inventory_has_its_team() -> None:
    kabupaten_ids = sulbar_kabupaten_with_links()
    assert len(kabupaten_ids) == 6
    for kabupaten in kabupaten_ids:
        village = {"alertname": "MonitordSiteDown", "severity": "warning",
                   "role": "village-ap", "province": "sulbar", "kabupaten": kabupaten}
        link = {"alertname": LINK_ALERT, "severity": "critical", "role": "kabupaten-link",
                "province": "sulbar", "kabupaten": kabupaten}
        assert route(village) == [f"kab-{kabupaten}"]
        assert route(link) == ["noc-oncall", f"kab-{kabupaten}"]


def test_grouping_keeps_an_outage_to_one_notification_per_alert_name_and_team() -> None:
    """A province-wide outage of one kind is one notification to the NOC; a kabupaten's team
    gets one per alert name, however many villages are in it."""
    tree = load(ALERTMANAGER_CONFIG)["route"]
    assert tree["group_by"] == ["province", "alertname"]
    (teams,) = [child for child in tree["routes"]
                if child.get("matchers") == ['role=~"kabupaten-link|village-.*"']]
    assert teams["group_by"] == ["province", "kabupaten", "alertname"]
    assert all("group_by" not in child for child in teams["routes"])


def inhibit_rules() -> list[dict[str, Any]]:
    return list(load(ALERTMANAGER_CONFIG)["inhibit_rules"])


def test_a_down_link_inhibits_everything_else_in_its_kabupaten() -> None:
    (rule,) = [rule for rule in inhibit_rules()
               if rule["source_matchers"] == [f'alertname="{LINK_ALERT}"']]
    assert rule["equal"] == ["province", "kabupaten"]
    # Not the link's own other alerts: they are about the link, and stay visible.
    assert rule["target_matchers"] == ['role!="kabupaten-link"']


def test_a_critical_alert_inhibits_the_warning_of_the_same_alert_and_target() -> None:
    (rule,) = [rule for rule in inhibit_rules()
               if 'severity="critical"' in rule["source_matchers"]]
    # The target label must be present: alerts without one (monitord's own) are equal on it.
    assert 'target=~".+"' in rule["source_matchers"]
    assert rule["target_matchers"] == ['severity="warning"']
    assert rule["equal"] == ["alertname", "province", "target"]


def test_receivers_are_webhooks_named_by_their_path() -> None:
    receivers = load(ALERTMANAGER_CONFIG)["receivers"]
    assert {receiver["name"] for receiver in receivers} >= {"noc-oncall", "noc-chat"}
    for receiver in receivers:
        assert set(receiver) == {"name", "webhook_configs"}, receiver["name"]
        (webhook,) = receiver["webhook_configs"]
        assert webhook["url"] == WEBHOOK_BASE + receiver["name"]
        assert webhook["send_resolved"] is True
