"""The demo's terminal summary (monitord.lab.summary) from /metrics text and MQTT events."""

from __future__ import annotations

from dataclasses import replace

from monitord.lab.scrape import parse_samples
from monitord.lab.summary import (
    Frame,
    Snapshot,
    change_from_event,
    changes_between,
    render,
    snapshot,
)
from monitord.mqtt.payloads import event_payload
from monitord.state.model import EventKind, Placement, ReasonCode, State, StateEvent

TARGETS = [  # target, kabupaten, role, address, state, root cause
    ("prov-core-rtr-01", "provinsi", "dc-network", "198.18.128.2", "up", None),
    ("dc-sw-01", "provinsi", "dc-network", "198.18.129.10", "up", None),
    ("majene-link", "majene", "kabupaten-link", "198.18.131.2", "down", "majene-link"),
    ("ap-majene-01", "majene", "village-ap", "198.19.129.10", "unreachable", "majene-link"),
    ("vsat-majene-02", "majene", "village-vsat", "198.19.193.10", "unreachable", "majene-link"),
    ("mamuju-link", "mamuju", "kabupaten-link", "198.18.132.2", "up", None),
    ("ap-mamuju-01", "mamuju", "village-ap", "198.19.130.10", "degraded", "ap-mamuju-01"),
]
STATES = ("unknown", "up", "degraded", "down", "unreachable")


def metrics(probes: float, states: dict[str, str] | None = None) -> str:
    """monitord's /metrics as far as the summary reads it."""
    lines = ["# TYPE monitord_target_state gauge"]
    for target, kab, role, address, recorded, _ in TARGETS:
        state = (states or {}).get(target, recorded)
        labels = (f'province="lab",kabupaten="{kab}",site="s",role="{role}",target="{target}",'
                  f'address="{address}"')
        lines += [f'monitord_target_state{{{labels},state="{s}"}} {int(s == state)}' for s in STATES]
    lines.append("# TYPE monitord_target_root_cause gauge")
    for target, kab, _role, _address, _state, cause in TARGETS:
        if cause:
            lines.append(f'monitord_target_root_cause{{target="{target}",kabupaten="{kab}",'
                         f'root_cause="{cause}"}} 1')
    lines.append("# TYPE monitord_target_state_since_timestamp_seconds gauge")
    lines += [f'monitord_target_state_since_timestamp_seconds{{target="{t[0]}"}} 1700000000'
              for t in TARGETS]
    lines.append("# TYPE monitord_probes_total counter")
    lines.append(f'monitord_probes_total{{kind="icmp",outcome="success"}} {probes}')
    lines.append(f'monitord_probes_total{{kind="icmp",outcome="failure"}} {probes / 2}')
    lines.append(f'monitord_probes_total{{kind="snmp",outcome="success"}} {probes / 10}')
    lines.append("# TYPE monitord_snmp_up gauge")
    lines += [f'monitord_snmp_up{{target="{t[0]}"}} {0 if t[4] in ("down", "unreachable") else 1}'
              for t in TARGETS]
    lines.append("# TYPE monitord_mqtt_connected gauge")
    lines.append("monitord_mqtt_connected 1")
    return "\n".join(lines) + "\n"


def take(probes: float, at: float, states: dict[str, str] | None = None) -> Snapshot:
    return snapshot(parse_samples(metrics(probes, states)), at)


def test_a_snapshot_reads_states_root_causes_probes_and_snmp() -> None:
    s = take(300, 1000.0)
    assert {t: v.state for t, v in s.targets.items()} == {t[0]: t[4] for t in TARGETS}
    assert s.targets["ap-majene-01"].root_cause == "majene-link"
    assert s.targets["majene-link"].since == 1700000000
    assert s.probes == {"icmp": 450.0, "snmp": 30.0}
    assert (s.snmp_ok, s.snmp_devices) == (4, 7)
    assert s.mqtt_connected is True


def test_the_summary_counts_per_kabupaten_and_names_the_root_cause_with_what_it_takes() -> None:
    before, now = take(300, 1000.0), take(340, 1010.0)
    text = render(now, Frame(started=940.0, previous=before))
    lines = text.splitlines()
    assert "running 1m10s" in lines[0]
    assert "7 targets" in lines[0]
    assert "6.4 probes/s (icmp 6.0, snmp 0.4)" in lines[0]  # (60 + 4) / 10 s, by kind
    assert "SNMP: 4/7 devices' last poll complete   MQTT connected" in lines[1]
    table = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in lines
             if line.strip().split(" ")[0] in ("provinsi", "majene", "mamuju")}
    # UP DEGRADED DOWN UNREACHABLE UNKNOWN
    assert table == {"provinsi": [2, 0, 0, 0, 0], "majene": [0, 0, 1, 2, 0],
                     "mamuju": [1, 1, 0, 0, 0]}
    problems = text.split("Not up (root causes first):\n")[1].split("Recent state changes:")[0]
    first, second = problems.splitlines()
    assert first.split()[:2] == ["DOWN", "majene-link"]
    assert first.endswith("2 unreachable behind it: ap-majene-01, vsat-majene-02")
    assert second.split()[:2] == ["DEGRADED", "ap-mamuju-01"]
    assert "none yet" in text


def test_an_all_up_province_says_so_and_the_first_frame_has_no_rate() -> None:
    up = {t[0]: "up" for t in TARGETS}
    text = render(take(10, 5.0, up), Frame(started=0.0))
    assert "nothing: every target is up" in text
    assert "probes/s: (next frame)" in text


def test_changes_come_from_monitord_s_own_mqtt_event_payload() -> None:
    event = StateEvent(
        id="0190a2c4-0000-7000-8000-000000000001", time=1700000123.5, kind=EventKind.STATE,
        placement=Placement("ap-majene-01", "lab", "majene", "desa-majene-01", "village-ap",
                            "198.19.129.10", parent="majene-link"),
        from_state=State.UP, to_state=State.UNREACHABLE, reason="parent majene-link is down",
        reason_code=ReasonCode.PARENT_DOWN, root_cause="majene-link", flapping=False, seq=7)
    change = change_from_event(event_payload(event))
    assert change is not None
    assert (change.time, change.target, change.from_state, change.to_state) == (
        1700000123.5, "ap-majene-01", "up", "unreachable")
    assert (change.reason_code, change.root_cause) == ("parent_down", "majene-link")
    text = render(take(1, 1.0), Frame(started=0.0, changes=[change]))
    assert "ap-majene-01  up -> unreachable  (parent_down)  root cause majene-link" in text
    flapping = replace(event, kind=EventKind.FLAPPING)  # not a state change
    assert change_from_event(event_payload(flapping)) is None
    assert change_from_event(b"not json") is None
    assert change_from_event(b'{"kind": "state"}') is None


def test_without_mqtt_changes_are_seen_between_snapshots() -> None:
    before = take(1, 1.0, {"majene-link": "up"})
    after = take(2, 2.0)
    changes = changes_between(before, after)
    assert [(c.target, c.from_state, c.to_state) for c in changes] == [("majene-link", "up", "down")]
