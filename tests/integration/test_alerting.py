"""The shipped alert rules and Alertmanager routing, end to end with real processes: monitord
probing the lab (tests/integration/lab.py), a real Prometheus evaluating
exporters/prometheus/rules/*.yml, a real Alertmanager running exporters/alertmanager/alertmanager.yml
and a loopback webhook standing in for the province's paging relay.

What the test run changes in those files, and why (prometheus_stack.py does it):
- every alert's `for:` is cut to 3 s and rule groups are evaluated every second: the lab's
  monitord probes every second, and minutes of `for` cannot be waited out in a test;
- Alertmanager's group_wait / group_interval / repeat_interval become 1s / 1s / 1h, for the
  same reason (and so that no notification is a repeat);
- every webhook URL's host:port becomes the test's receiver; the path, which names the
  receiver, is kept, so the test sees which receiver the routing tree picked.
Expressions, labels, annotations, routes, grouping and inhibitions are tested as shipped.

The scenario: majene's kabupaten link fails. The NOC must be paged for the link (at the
receivers the routing tree gives it), and not for any village behind it: monitord calls those
villages unreachable and the rules must not fire for them. That, not the inhibition, is what
keeps village alerts quiet through an outage: an alert inhibited after it fired never sends
its resolve, so the rules leave unreachable targets out and the inhibition is the second line
(tested on its own with alerts sent straight to Alertmanager). When the link is back, the
link alert's resolve arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.integration.prometheus_stack import (
    ALERTMANAGER_CONFIG,
    TEST_FOR,
    Alertmanager,
    Notification,
    NotifiedAlert,
    WebhookReceiver,
    alertmanager_config_for_test,
    prometheus_duration,
    routed_receivers,
    shipped_rule_files,
)

if TYPE_CHECKING:  # the lab module is a plugin: see its docstring
    from tests.integration.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.slow]
pytest_plugins = ["tests.integration.lab"]

LINK_ALERT = "MonitordKabupatenLinkDown"
TARGET_ALERT = "MonitordTargetDown"
# Alerts that can be about a village; the inhibition must silence each behind a failed link.
VILLAGE_ALERTS = ("MonitordSiteDown", "MonitordTargetDown", "MonitordTargetFlapping",
                  "MonitordHighPacketLoss", "MonitordHighLatency", "MonitordLinkSaturated",
                  "MonitordInterfaceDown", "MonitordDeviceRebooted", "MonitordSnmpDown")
HIERARCHY = ("province", "kabupaten", "site", "role", "target")
SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = ("summary", "description", "summary_id", "description_id", "runbook", "runbook_id")
# How long the outage is watched after the villages are unreachable: well past their alerts'
# `for` (3 s in a test run), Alertmanager's group_wait and a few evaluations.
WATCH = prometheus_duration(TEST_FOR) + 12


def notified(notifications: list[Notification], alertname: str, target: str, status: str,
             receiver: str | None = None) -> tuple[Notification, NotifiedAlert] | None:
    for n in notifications:
        for alert in n.alerts:
            if (alert.labels.get("alertname"), alert.labels.get("target"), alert.status) == (
                    alertname, target, status) and receiver in (None, n.receiver):
                return n, alert
    return None


def received_by_all(receivers: list[str], alertname: str, target: str,
                    status: str) -> Callable[[list[Notification]], bool]:
    """A check for WebhookReceiver.wait_for: every one of `receivers` got this alert."""
    def check(notifications: list[Notification]) -> bool:
        return all(notified(notifications, alertname, target, status, r) for r in receivers)
    return check


def about(targets: list[str], notifications: list[Notification]) -> list[str]:
    return [f"{n.receiver}: {a.status} {a.labels.get('alertname')} {a.labels.get('target')}"
            for n in notifications for a in n.alerts if a.labels.get("target") in targets]


def firing_for_villages(lab: Lab, start: float, end: float) -> list[dict[str, str]]:
    """Every village alert Prometheus had firing at any evaluation between start and end."""
    villages = "|".join(v.replace(".", r"\.") for v in lab.villages)  # ids: [A-Za-z0-9_.-]
    data = lab.prometheus.query_range(f'ALERTS{{alertstate="firing", target=~`{villages}`}}',
                                      start, end, 1)
    return [dict(series["metric"]) for series in data["result"]]


def assert_well_formed(alert: NotifiedAlert) -> None:
    """The contract every alert keeps: severity, hierarchy labels, text in both languages."""
    assert alert.labels.get("severity") in SEVERITIES, alert.labels
    missing = [k for k in HIERARCHY if not alert.labels.get(k)]
    assert missing == [], f"labels {missing} missing from {alert.labels}"
    empty = [k for k in ANNOTATIONS if not alert.annotations.get(k, "").strip()]
    assert empty == [], f"annotations {empty} missing from {alert.annotations}"
    unexpanded = [k for k, v in alert.annotations.items() if "{{" in v or "<no value>" in v]
    assert unexpanded == [], {k: alert.annotations[k] for k in unexpanded}


def test_every_shipped_rule_loads_and_evaluates_cleanly(lab: Lab) -> None:
    """Every rule file is loaded and no rule fails to evaluate (a many-to-many join, say, is
    only an error at evaluation time, against real series)."""
    lab.wait_running_for(15)
    groups = lab.prometheus.rule_groups()
    assert {g["file"] for g in groups} == {str(p) for p in lab.rule_files}
    assert sum(len(g["rules"]) for g in groups) > 0
    broken = [f"{g['name']}/{r['name']}: {r.get('lastError')}" for g in groups for r in g["rules"]
              if r.get("health") != "ok" or r.get("lastError")]
    assert broken == [], "\n".join(broken)


def test_failed_kabupaten_link_pages_for_the_link_and_not_its_villages(lab: Lab) -> None:
    webhook, link = lab.webhook, lab.link_target
    lab.wait_states(lab.settled_states())
    # The pipeline works before anything is claimed about silence: the powered-off server's
    # alert has gone all the way to a receiver.
    found = webhook.wait_for(f"{TARGET_ALERT} for {lab.powered_off} at the webhook",
                             lambda ns: notified(ns, TARGET_ALERT, lab.powered_off, "firing"))
    assert_well_formed(found[1])

    before = len(webhook.received())
    failed_at = time.time()
    lab.link.link_down()
    try:
        lab.wait_states({link: "down", **dict.fromkeys(lab.villages_behind_link, "unreachable")})
        _, alert = webhook.wait_for(f"{LINK_ALERT} firing at the webhook",
                                    lambda ns: notified(ns[before:], LINK_ALERT, link, "firing"))
        assert_well_formed(alert)
        assert (alert.labels["kabupaten"], alert.labels["role"]) == (lab.link_kabupaten,
                                                                      "kabupaten-link")
        # It reaches every receiver the shipped routing tree gives these labels, and each URL
        # path names its receiver (that is how the relay tells them apart).
        receivers = routed_receivers(lab.alertmanager_config, alert.labels)
        webhook.wait_for(f"{LINK_ALERT} at {receivers}",
                         received_by_all(receivers, LINK_ALERT, link, "firing"), timeout=10)
        assert all(n.receiver == n.named_receiver for n in webhook.received())

        time.sleep(WATCH)  # the outage goes on, well past the villages' `for`
        assert lab.states()[link] == "down"
        assert about(lab.villages, webhook.received()[before:]) == []
        assert firing_for_villages(lab, failed_at, time.time()) == []
    finally:
        lab.link.link_up()

    webhook.wait_for(f"the resolve of {LINK_ALERT} at {receivers}",
                     received_by_all(receivers, LINK_ALERT, link, "resolved"))
    lab.wait_states(lab.settled_states())
    time.sleep(prometheus_duration(TEST_FOR) + 3)  # nor does the recovery page for villages
    assert about(lab.villages, webhook.received()[before:]) == []
    assert firing_for_villages(lab, failed_at, time.time()) == []
    assert webhook.bad_requests == []


# --- the inhibition on its own -------------------------------------------------------------

def shipped_alert_labels() -> dict[str, dict[str, str]]:
    """{alert name: its static labels} of the shipped rules (first rule of each name)."""
    out: dict[str, dict[str, str]] = {}
    for path in shipped_rule_files():
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    out.setdefault(rule["alert"], {str(k): str(v) for k, v in
                                                   (rule.get("labels") or {}).items()})
    return out


def synthetic(alertname: str, static: dict[str, str], kabupaten: str, site: str, role: str,
              target: str) -> dict[str, Any]:
    """An alert as Prometheus would send it for these labels."""
    labels = {**static, "alertname": alertname, "province": "sulbar", "kabupaten": kabupaten,
              "site": site, "role": role, "target": target}
    return {"labels": labels, "annotations": {"summary": f"{alertname} {target}"},
            "startsAt": datetime.now(UTC).isoformat()}


@pytest.fixture
def alerting(tmp_path: Path) -> Iterator[tuple[Alertmanager, WebhookReceiver]]:
    with WebhookReceiver() as webhook:
        config = alertmanager_config_for_test(ALERTMANAGER_CONFIG, webhook.url,
                                              tmp_path / "alertmanager.yml")
        manager = Alertmanager(tmp_path / "alertmanager", config)
        try:
            yield manager, webhook
        finally:
            manager.stop()


def test_link_alert_inhibits_the_alerts_of_villages_behind_it(
        alerting: tuple[Alertmanager, WebhookReceiver]) -> None:
    """Alerts sent straight to the shipped Alertmanager config: while majene's link alert is
    active, every kind of village alert in majene is held back; the same alerts in another
    kabupaten (whose link is fine) go out, which shows they would have been seen."""
    manager, webhook = alerting
    rules = shipped_alert_labels()
    kinds = [name for name in VILLAGE_ALERTS if name in rules]
    assert LINK_ALERT in rules
    assert kinds, f"none of {VILLAGE_ALERTS} in the shipped rules"

    manager.post_alerts([synthetic(LINK_ALERT, rules[LINK_ALERT], "majene", "kominfo-majene",
                                   "kabupaten-link", "majene-link")])
    webhook.wait_for(f"{LINK_ALERT} at the webhook",
                     lambda ns: notified(ns, LINK_ALERT, "majene-link", "firing"), timeout=15)
    behind = [(name, f"ap-majene-{i}") for i, name in enumerate(kinds)]
    elsewhere = [(name, f"ap-mamuju-{i}") for i, name in enumerate(kinds)]
    manager.post_alerts(
        [synthetic(name, rules[name], "majene", f"desa-{t}", "village-ap", t) for name, t in behind]
        + [synthetic(name, rules[name], "mamuju", f"desa-{t}", "village-ap", t)
           for name, t in elsewhere])

    webhook.wait_for("the other kabupaten's village alerts at the webhook", lambda ns: all(
        notified(ns, name, t, "firing") for name, t in elsewhere), timeout=15)
    time.sleep(3)  # a few group intervals more for anything that was not held back
    assert about([t for _, t in behind], webhook.received()) == []
    held = {a["labels"]["target"]: a["status"] for a in manager.alerts()
            if a["labels"]["target"] in {t for _, t in behind}}
    assert set(held) == {t for _, t in behind}
    assert all(s["state"] == "suppressed" and s["inhibitedBy"] for s in held.values()), held
