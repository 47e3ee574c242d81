"""MQTT payloads and topics: every payload valid against its shipped JSON Schema and carrying
exactly the fields the schema documents, the schemas in step with the state enums, the
README's examples valid, RFC 3339 times, and non-ASCII text kept as UTF-8."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import monitord
from monitord.config.state_schema import MqttSpec
from monitord.mqtt.payloads import (
    daemon_payload,
    daemon_topic,
    event_payload,
    events_topic,
    rfc3339,
    status_payload,
    target_topic,
)
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)

MQTT_DIR = Path(__file__).resolve().parents[2] / "exporters" / "mqtt"
# 2026-11-22T03:04:05.123Z, the README's example instant.
T0 = datetime(2026, 11, 22, 3, 4, 5, 123000, tzinfo=UTC).timestamp()

BONEHAU = Placement(target="desa-bonehau-ap", province="sulbar", kabupaten="mamasa",
                    site="desa-bonehau", role="desa-ap", address="10.76.12.2",
                    name="AP Kantor Desa Bonéhau", parent="kab-mamasa-rtr")
CORE = Placement(target="dc-mamuju-core", province="sulbar", kabupaten="mamuju", site="dc",
                 role="dc-core", address="2001:db8::1", name="")


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MQTT_DIR / "schema" / f"{name}.schema.json").read_text())
    return loaded


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())


def event(**changes: Any) -> StateEvent:
    fields: dict[str, Any] = {
        "id": new_event_id(T0), "time": T0, "kind": EventKind.STATE, "placement": BONEHAU,
        "from_state": State.DOWN, "to_state": State.UNREACHABLE,
        "reason": "parent kab-mamasa-rtr is down", "reason_code": ReasonCode.PARENT_DOWN,
        "root_cause": "kab-mamasa-rtr", "flapping": False, "seq": 4182,
    }
    return StateEvent(**(fields | changes))


def status(**changes: Any) -> TargetStatus:
    fields: dict[str, Any] = {
        "placement": BONEHAU, "state": State.UNREACHABLE, "since": T0,
        "reason": "parent kab-mamasa-rtr is down", "reason_code": ReasonCode.PARENT_DOWN,
        "root_cause": "kab-mamasa-rtr", "own_state": State.DOWN,
    }
    return TargetStatus(**(fields | changes))


@pytest.mark.parametrize("name", ["event", "status", "daemon"])
def test_schemas_are_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema(name))


def test_schema_enums_match_the_state_model() -> None:
    states = sorted(s.value for s in State)
    codes = sorted(c.value for c in ReasonCode)
    event_props, status_props = schema("event")["properties"], schema("status")["properties"]
    assert sorted(event_props["from"]["enum"]) == states
    assert sorted(event_props["to"]["enum"]) == states
    assert sorted(status_props["state"]["enum"]) == states
    assert sorted(event_props["reason_code"]["enum"]) == codes
    assert sorted(status_props["reason_code"]["enum"]) == codes
    assert sorted(event_props["kind"]["enum"]) == sorted(k.value for k in EventKind)


@pytest.mark.parametrize("stored", [
    event(),
    event(kind=EventKind.FLAPPING, from_state=State.UP, to_state=State.UP, flapping=True,
          reason="5 changes in 30 minutes", reason_code=ReasonCode.FLAPPING_STARTED,
          root_cause=None),
    event(placement=CORE, from_state=State.UNKNOWN, to_state=State.UP, root_cause=None,
          reason="first probe", reason_code=ReasonCode.FIRST_PROBE, seq=1),
], ids=["unreachable", "flapping", "root-device"])
def test_event_payload(stored: StateEvent) -> None:
    doc = json.loads(event_payload(stored))
    validator("event").validate(doc)
    # Exactly the documented fields: nothing undocumented leaks, nothing documented is missing.
    assert list(doc) == list(schema("event")["properties"])
    assert doc["id"] == stored.id
    assert doc["seq"] == stored.seq
    assert doc["time"] == rfc3339(stored.time)
    assert doc["timestamp"] == stored.time
    assert (doc["kind"], doc["from"], doc["to"]) == (stored.kind.value, stored.from_state.value,
                                                     stored.to_state.value)
    assert (doc["target"], doc["name"], doc["address"], doc["parent"]) == (
        stored.placement.target, stored.placement.name, stored.placement.address,
        stored.placement.parent)
    assert (doc["reason_code"], doc["root_cause"], doc["flapping"]) == (
        stored.reason_code.value, stored.root_cause, stored.flapping)


def test_an_event_not_yet_stored_is_not_published() -> None:
    with pytest.raises(ValueError, match="no seq"):
        event_payload(event(seq=None))


def test_status_payload() -> None:
    doc = json.loads(status_payload(status()))
    validator("status").validate(doc)
    assert list(doc) == list(schema("status")["properties"])
    assert doc["state"] == "unreachable"
    assert doc["since"] == "2026-11-22T03:04:05.123Z"
    assert doc["since_timestamp"] == T0
    assert doc["root_cause"] == "kab-mamasa-rtr"
    assert "own_state" not in doc


def test_daemon_payloads() -> None:
    check = validator("daemon")
    online = json.loads(daemon_payload("online", "monitord-sulbar", since=T0))
    offline = json.loads(daemon_payload("offline", "monitord-sulbar", reason="stopped"))
    check.validate(online)
    check.validate(offline)
    assert online == {"schema": "monitord.daemon/1", "status": "online",
                      "client_id": "monitord-sulbar", "since": "2026-11-22T03:04:05.123Z",
                      "version": monitord.__version__}
    assert offline == {"schema": "monitord.daemon/1", "status": "offline",
                       "client_id": "monitord-sulbar", "reason": "stopped",
                       "version": monitord.__version__}
    with pytest.raises(ValueError, match="since"):
        daemon_payload("online", "monitord-sulbar")
    with pytest.raises(ValueError, match="reason"):
        daemon_payload("offline", "monitord-sulbar")


@pytest.mark.parametrize(("name", "breakage"), [
    ("event", {"to": "sideways"}),
    ("event", {"reason_code": "because"}),
    ("event", {"time": "2026-11-22T03:04:05Z"}),  # no milliseconds
    ("event", {"time": "2026-11-22T03:04:05.123+07:00"}),  # not UTC
    ("event", {"id": None}),
    ("status", {"since_timestamp": "yesterday"}),
    ("daemon", {"status": "online", "reason": "stopped"}),  # online carries `since`, not a reason
])
def test_schemas_reject_wrong_payloads(name: str, breakage: dict[str, Any]) -> None:
    payload = {"event": lambda: event_payload(event()), "status": lambda: status_payload(status()),
               "daemon": lambda: daemon_payload("offline", "m", reason="stopped")}[name]()
    doc = json.loads(payload) | breakage
    with pytest.raises(jsonschema.ValidationError):
        validator(name).validate(doc)


def test_readme_examples_are_valid() -> None:
    """Every JSON example in the README validates against the schema it names."""
    readme = (MQTT_DIR / "README.md").read_text()
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", readme, re.S)]
    kinds = {"monitord.event/1": "event", "monitord.status/1": "status",
             "monitord.daemon/1": "daemon"}
    assert sorted(kinds[e["schema"]] for e in examples) == ["daemon", "daemon", "event", "status"]
    for example in examples:
        validator(kinds[example["schema"]]).validate(example)


def test_readme_settings_example_is_valid_config() -> None:
    readme = (MQTT_DIR / "README.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    spec = MqttSpec.model_validate(yaml.safe_load(block)["mqtt"])
    assert spec.tls is not None
    assert spec.tls.verify_hostname


@pytest.mark.parametrize(("timestamp", "text"), [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (T0, "2026-11-22T03:04:05.123Z"),
    (T0 + 0.0004, "2026-11-22T03:04:05.123Z"),
    (T0 + 0.0006, "2026-11-22T03:04:05.124Z"),
    (T0 - 0.123 + 0.9996, "2026-11-22T03:04:06.000Z"),  # rounds into the next second
    (1_798_761_599.9999, "2027-01-01T00:00:00.000Z"),  # ... and the next year
])
def test_rfc3339(timestamp: float, text: str) -> None:
    assert rfc3339(timestamp) == text
    assert datetime.fromisoformat(text).tzinfo is not None


def test_non_ascii_text_is_utf8_not_escaped() -> None:
    lontara = Placement(target="desa-tabulahan-ap", province="sulbar", kabupaten="mamasa",
                        site="desa-tabulahan", role="desa-ap", address="10.76.12.9",
                        name="ᨈᨅᨘᨒᨖ Tabulahan — Bonéhau", parent=None)
    for payload in (event_payload(event(placement=lontara)),
                    status_payload(status(placement=lontara))):
        assert "ᨈᨅᨘᨒᨖ Tabulahan — Bonéhau".encode() in payload
        assert b"\\u" not in payload
        assert json.loads(payload.decode("utf-8"))["name"] == lontara.name


def test_topics() -> None:
    assert events_topic("spbe/sulbar") == "spbe/sulbar/events"
    assert daemon_topic("spbe/sulbar") == "spbe/sulbar/daemon"
    assert target_topic("spbe/sulbar", "desa-bonehau-ap") == "spbe/sulbar/targets/desa-bonehau-ap"
    for bad in ("", "a/b", "ap+1", "ap#", "a\0b"):
        with pytest.raises(ValueError, match="cannot be an MQTT topic level"):
            target_topic("spbe/sulbar", bad)
