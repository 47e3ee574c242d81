"""Topology-aware state, its history and its MQTT events, end to end: a real monitord probing
a kabupaten link and villages in test namespaces, publishing to a real mosquitto.

(1) the link fails: one DOWN (the link), its villages UNREACHABLE with the link as root cause,
    no village DOWN; the link comes back: everything recovers from fresh probes;
(2) the broker is stopped while states change, then restarted: every event arrives;
(3) monitord is SIGKILLed with undelivered events: after a restart they are delivered, and the
    history has no gap and no duplicate;
(4) the last-will flips the daemon's status to offline when monitord is killed;
(5) TLS + password towards mosquitto (and a wrong password is a clear error, not a stall).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitord.lab.mqtt_recorder import Received
from monitord.state.history import HISTORY_FILE, HistoryStore
from monitord.state.model import StateEvent
from tests.integration.conftest import DaemonFactory
from tests.integration.fault_checks import assert_history_consistent
from tests.integration.harness import MonitordProcess, Sample, free_port, value, wait_for
from tests.integration.mosquitto import Mosquitto, MqttRecorder, retained
from tests.integration.netns import KabupatenLink

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PREFIX = "test/sulbar"
EVENTS = f"{PREFIX}/events"
DAEMON = f"{PREFIX}/daemon"
LINK = "majene-link"
VILLAGES = ("desa-1", "desa-2", "desa-3", "desa-4")
DEAD = "desa-dead"  # routed through the link, but nothing answers there
CORE = "core"


@pytest.fixture
def kabupaten() -> Iterator[KabupatenLink]:
    with KabupatenLink(villages=len(VILLAGES)) as link:
        yield link


def write_config(tmp_path: Path, link: KabupatenLink, port: int, broker: Mosquitto,
                 **mqtt: Any) -> Path:
    """core (loopback) -> majene-link (test namespace) -> villages behind it."""
    villages = [{"id": v, "address": a} for v, a in zip(VILLAGES, link.villages, strict=True)]
    villages.append({"id": DEAD, "address": link.absent_village})
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(tmp_path / "state")},
        "profiles": {"fast": {
            "interval": "1s", "count": 2, "packet_interval": "100ms", "timeout": "300ms",
            "state": {"down_failures": 2, "down_window": 3, "up_successes": 2,
                      "flap_changes": 100},
        }},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX,
                 "keepalive": "5s", "max_backoff": "1s", **mqtt},
        "province": {
            "id": "sulbar", "uplink": CORE, "defaults": {"profile": "fast"},
            "kabupaten": [
                {"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                    {"id": CORE, "address": "127.0.0.1", "role": "dc-network"}]}]},
                {"id": "majene", "uplink": LINK, "sites": [
                    {"id": "kominfo", "devices": [
                        {"id": LINK, "address": link.address, "role": "kabupaten-link"}]},
                    {"id": "desa", "defaults": {"role": "village-ap"}, "devices": villages},
                ]},
            ],
        },
    }
    path = tmp_path / "monitord.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def events_of(messages: list[Received]) -> list[dict[str, Any]]:
    return [m.json() for m in messages if m.topic == EVENTS]


def latest_states(events: list[dict[str, Any]]) -> dict[str, str]:
    states: dict[str, str] = {}
    for event in events:
        states[event["target"]] = event["to"]
    return states


def settled(recorder: MqttRecorder, want: dict[str, str], after: int = 0) -> list[dict[str, Any]]:
    """Wait until the events received put every target in `want` in its wanted state; returns
    the events from index `after` on."""
    def check(messages: list[Received]) -> list[dict[str, Any]] | None:
        events = events_of(messages)
        states = latest_states(events)
        return events[after:] if all(states.get(t) == s for t, s in want.items()) else None
    return recorder.wait_for(f"states {want}", check, timeout=30)


ALL_UP = {CORE: "up", LINK: "up", **dict.fromkeys(VILLAGES, "up"), DEAD: "down"}
LINK_FAILED = {LINK: "down", **dict.fromkeys(VILLAGES, "unreachable"), DEAD: "unreachable"}


def stored_events(state_dir: Path) -> list[StateEvent]:
    store = HistoryStore(state_dir / HISTORY_FILE)
    try:
        return store.events()
    finally:
        store.close()


def test_a_failed_link_is_one_down_event_and_its_villages_unreachable(
        tmp_path: Path, daemons: DaemonFactory, port: int, kabupaten: KabupatenLink) -> None:
    with Mosquitto(tmp_path / "broker") as broker, MqttRecorder(broker, EVENTS) as recorder:
        config = write_config(tmp_path, kabupaten, port, broker)
        daemon = daemons.start(config, port)
        settled(recorder, ALL_UP)
        before = len(events_of(recorder.messages))

        kabupaten.link_down()
        failed = settled(recorder, LINK_FAILED, after=before)
        downs = [e for e in failed if e["to"] == "down"]
        assert [e["target"] for e in downs] == [LINK], "one DOWN: the link, nothing else"
        for event in failed:
            if event["to"] == "unreachable":
                assert event["root_cause"] == LINK
                assert event["reason_code"] == "parent_down"
        assert {e["target"] for e in failed if e["to"] == "unreachable"} == {*VILLAGES, DEAD}
        # The outage goes on: still no village is ever called down.
        samples = wait_for("three more probe rounds of the failed link", lambda: (
            s if (value(s := daemon.samples(), "monitord_probes_per_target_total", target=LINK)
                  or 0) >= 8 else None))
        assert [e for e in events_of(recorder.messages)[before:] if e["to"] == "down"] == downs
        for village in (*VILLAGES, DEAD):
            assert value(samples, "monitord_target_state", target=village,
                         state="unreachable") == 1
            assert value(samples, "monitord_target_root_cause", target=village,
                         root_cause=LINK) == 1
        assert value(samples, "monitord_target_state", target=LINK, state="down") == 1
        assert value(samples, "monitord_target_root_cause", target=LINK, root_cause=LINK) == 1
        lint = subprocess.run(["promtool", "check", "metrics"], input=daemon.metrics_text(),
                              capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr  # state, history, mqtt series

        before = len(events_of(recorder.messages))
        kabupaten.link_up()
        recovered = settled(recorder, ALL_UP, after=before)
        assert {(e["target"], e["from"], e["to"]) for e in recovered} == {
            (LINK, "down", "up"), *((v, "unreachable", "up") for v in VILLAGES),
            (DEAD, "unreachable", "down")}
        listed = subprocess.run([sys.executable, "-m", "monitord", "targets", "-c", str(config)],
                                capture_output=True, text=True, check=True).stdout
        rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
        assert rows[DEAD][2:5:2] == ["DOWN", DEAD]
        assert rows["desa-1"][2] == "UP"
        daemon.stop()

    history = stored_events(tmp_path / "state")
    assert_history_consistent(history)
    assert [e.id for e in history] == [e["id"] for e in events_of(recorder.messages)]


def test_events_made_while_the_broker_is_down_all_arrive_after_it_returns(
        tmp_path: Path, daemons: DaemonFactory, port: int, kabupaten: KabupatenLink) -> None:
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    try:
        with MqttRecorder(broker, EVENTS) as recorder:  # persistent session: queued for it
            daemon = daemons.start(write_config(tmp_path, kabupaten, port, broker), port)
            settled(recorder, ALL_UP)
            broker.stop()
            probes_before = value(daemon.samples(), "monitord_probes_per_target_total",
                                  target=LINK) or 0
            kabupaten.link_down()
            wait_for("the link down and its events waiting in the outbox", lambda: (
                value(s := daemon.samples(), "monitord_target_state", target=LINK,
                      state="down") == 1
                and (value(s, "monitord_mqtt_outbox_events") or 0) >= 6))
            kabupaten.link_up()
            # every village, not just the first: they recover one probe apart (a run saw 11 of 12)
            def all_back_up() -> list[Sample] | None:
                s = daemon.samples()
                return s if all(value(s, "monitord_target_state", target=target, state=state) == 1
                                for target, state in ALL_UP.items()) else None

            samples = wait_for("everything back up while the broker is still away", all_back_up)
            assert value(samples, "monitord_mqtt_connected") == 0
            # probing went on without the broker
            assert (value(samples, "monitord_probes_per_target_total", target=LINK) or 0) \
                >= probes_before + 4
            waiting = value(samples, "monitord_mqtt_outbox_events") or 0
            assert waiting >= 12  # down + 5 unreachable, then up + 5 recoveries

            broker.start()
            wait_for("the outbox to drain", lambda: value(
                daemon.samples(), "monitord_mqtt_outbox_events") == 0)
            daemon.stop()
            history = stored_events(tmp_path / "state")
            received = recorder.wait_for("every stored event", lambda m: (
                ids if {e.id for e in history} <= (ids := {e["id"] for e in events_of(m)})
                else None))
            assert len(received) == len(history)
    finally:
        broker.stop()
    assert_history_consistent(history)


def test_events_left_undelivered_by_a_sigkill_are_delivered_after_restart(
        tmp_path: Path, daemons: DaemonFactory, port: int, kabupaten: KabupatenLink) -> None:
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    try:
        with MqttRecorder(broker, EVENTS) as recorder:
            config = write_config(tmp_path, kabupaten, port, broker)
            first = daemons.start(config, port)
            settled(recorder, ALL_UP)
            broker.stop()
            kabupaten.link_down()
            wait_for("the failure stored but not delivered", lambda: (
                value(s := first.samples(), "monitord_target_state", target="desa-1",
                      state="unreachable") == 1
                and (value(s, "monitord_mqtt_outbox_events") or 0) >= 6))
            first.proc.kill()  # SIGKILL, by the PID this test started
            first.proc.wait(timeout=10)
            undelivered = {e.id for e in stored_events(tmp_path / "state")} - {
                e["id"] for e in events_of(recorder.messages)}
            assert len(undelivered) >= 6

            broker.start()
            second = daemons.start(config, port)
            recorder.wait_for("the events the killed daemon left behind", lambda m: (
                undelivered <= {e["id"] for e in events_of(m)}))
            kabupaten.link_up()
            settled(recorder, ALL_UP, after=0)
            wait_for("the outbox to drain", lambda: value(
                second.samples(), "monitord_mqtt_outbox_events") == 0)
            second.stop()
    finally:
        broker.stop()
    history = stored_events(tmp_path / "state")
    assert_history_consistent(history)  # the restart restored states: nothing re-invented
    assert {e.id for e in history} <= {e["id"] for e in events_of(recorder.messages)}
    store = HistoryStore(tmp_path / "state" / HISTORY_FILE)
    try:
        runs = store.runs()
    finally:
        store.close()
    assert [run.stopped is None for run in runs] == [True, False]  # the killed run never stopped


def test_the_last_will_marks_the_daemon_offline_when_it_is_killed(
        tmp_path: Path, daemons: DaemonFactory, port: int, kabupaten: KabupatenLink) -> None:
    with Mosquitto(tmp_path / "broker") as broker, MqttRecorder(broker, DAEMON) as recorder:
        config = write_config(tmp_path, kabupaten, port, broker)
        daemon = daemons.start(config, port)
        online = recorder.wait_for("online", lambda m: [x.json() for x in m
                                                         if x.json()["status"] == "online"])
        assert online[-1]["client_id"] == "monitord-sulbar"
        daemon.proc.kill()
        daemon.proc.wait(timeout=10)
        offline = recorder.wait_for("offline", lambda m: [x.json() for x in m
                                                           if x.json()["status"] == "offline"])
        assert offline[-1]["reason"] == "connection lost"
        [kept] = retained(broker, DAEMON)
        assert kept.json()["status"] == "offline"

        clean = daemons.start(config, port)
        recorder.wait_for("online again", lambda m: m[-1].json()["status"] == "online")
        clean.stop()
        recorder.wait_for("offline, stopped", lambda m: m[-1].json().get("reason") == "stopped")


def test_tls_and_password_towards_the_broker(
        tmp_path: Path, daemons: DaemonFactory, port: int, kabupaten: KabupatenLink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    users = {"monitord": "rahasia-monitord-1", "bot": "rahasia-bot-2"}
    with Mosquitto(tmp_path / "broker", users=users, tls=True) as broker, MqttRecorder(
            broker, EVENTS, username="bot", password=users["bot"], tls=True) as recorder:
        monkeypatch.setenv("TEST_MQTT_PASSWORD", "wrong-password")
        tls = {"ca_file": broker.ca_file}
        config = write_config(tmp_path, kabupaten, port, broker, username="monitord",
                              password={"env": "TEST_MQTT_PASSWORD"}, tls=tls)
        refused = daemons.start(config, port)
        samples = wait_for("a refused connection, while probing goes on", lambda: (
            s if (value(s := refused.samples(), "monitord_mqtt_connects_total", result="auth")
                  or 0) >= 1
            and (value(s, "monitord_probes_per_target_total", target=CORE) or 0) >= 2 else None))
        assert value(samples, "monitord_mqtt_connected") == 0
        assert value(samples, "monitord_target_state", target=CORE, state="up") == 1
        refused.stop()
        log = refused.log()
        assert "wrong-password" not in log
        assert "127.0.0.1" in log
        assert "monitord" in log
        assert any(word in log.lower() for word in ("not authori", "bad user name or password"))

        monkeypatch.setenv("TEST_MQTT_PASSWORD", users["monitord"])
        daemon: MonitordProcess = daemons.start(config, port)
        events = settled(recorder, ALL_UP)
        assert {e["schema"] for e in events} == {"monitord.event/1"}
        assert value(daemon.samples(), "monitord_mqtt_connected") == 1
        status = retained(broker, f"{PREFIX}/targets/{DEAD}", username="bot",
                          password=users["bot"], tls=True)
        assert [json.loads(m.payload)["state"] for m in status] == ["down"]


def test_a_second_daemon_on_the_same_state_dir_is_refused(
        tmp_path: Path, daemons: DaemonFactory, port: int, kabupaten: KabupatenLink) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        config = write_config(tmp_path, kabupaten, port, broker)
        daemons.start(config, port)
        (tmp_path / "other").mkdir()
        other = write_config(tmp_path / "other", kabupaten, free_port(), broker)
        doc = yaml.safe_load(other.read_text())
        doc["daemon"]["state_dir"] = str(tmp_path / "state")
        other.write_text(yaml.safe_dump(doc))
        result = subprocess.run([sys.executable, "-m", "monitord", "run", "-c", str(other)],
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2
        assert "is in use by another monitord" in result.stderr
