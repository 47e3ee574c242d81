"""MqttPublisher against a real mosquitto (tests/integration/mosquitto.py): events delivered in
order with every field, nothing lost across a broker restart, retained statuses rebuilt on a
broker that forgot them, TLS and passwords, each kind of connection failure with its metric
label and log line, the last-will on a killed daemon and the "stopped" status on a clean stop,
and the shipped ACL example.

Blocking helpers (the recorder's waits, starting and stopping the broker) run in threads, so
the publisher keeps running on the test's event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitord.lab.mqtt_recorder import Received
from monitord.metrics.mqtt_metrics import MqttCollector
from monitord.model import MqttSettings, MqttTls, Secret
from monitord.mqtt.publisher import MqttPublisher
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)
from tests.integration.harness import free_port, parse_samples, stop_process, value
from tests.integration.mosquitto import (
    CertificateAuthority,
    Mosquitto,
    MqttRecorder,
    retained,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "exporters" / "mqtt" / "schema"
PREFIX = "spbe/sulbar"
EVENTS, DAEMON = f"{PREFIX}/events", f"{PREFIX}/daemon"
CLIENT_ID = "monitord-sulbar"
PASSWORD = "kata-sandi-rahasia-7Q"  # noqa: S105 - the test broker's, checked never to be logged
BOT_PASSWORD = "sandi-bot"  # noqa: S105


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


class MemoryOutbox:
    """An in-memory Outbox. It stands in for our own component (the SQLite history store's
    outbox, written separately), not for a protocol peer: the broker here is the real one."""

    def __init__(self) -> None:
        self.rows: dict[int, StateEvent] = {}
        self._next_seq = 1

    def add(self, event: StateEvent) -> StateEvent:
        stored = dataclasses.replace(event, seq=self._next_seq)
        self.rows[self._next_seq] = stored
        self._next_seq += 1
        return stored

    async def pending(self, limit: int) -> list[StateEvent]:
        return [self.rows[seq] for seq in sorted(self.rows)[:limit]]

    async def delivered(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self.rows.pop(seq, None)

    async def pending_count(self) -> int:
        return len(self.rows)


def placement(target: str, name: str = "", parent: str | None = "kab-mamasa-rtr") -> Placement:
    address = f"10.76.{len(target)}.{sum(map(ord, target)) % 250 + 1}"
    return Placement(target=target, province="sulbar", kabupaten="mamasa", site=f"site-{target}",
                     role="desa-ap", address=address, name=name, parent=parent)


def make_event(n: int) -> StateEvent:
    """The n-th of a varied series: down/up changes, a flapping event, a root device."""
    flapping = n % 7 == 3
    down = n % 2 == 0
    where = placement(f"desa-{n % 5}-ap", name=f"AP Desa Bonéhau {n}",
                      parent=None if n % 5 == 0 else "kab-mamasa-rtr")
    return StateEvent(
        id=new_event_id(), time=1_795_370_000 + n * 0.25,
        kind=EventKind.FLAPPING if flapping else EventKind.STATE, placement=where,
        from_state=State.DOWN if flapping else (State.UP if down else State.DOWN),
        to_state=State.DOWN if (flapping or down) else State.UP,
        reason="3 of the last 5 probes failed" if down else "2 good probes in a row",
        reason_code=ReasonCode.PROBES_FAILED if down else ReasonCode.PROBES_GOOD,
        root_cause=where.target if down else None, flapping=flapping)


def make_status(target: str, state: State = State.UP, name: str = "") -> TargetStatus:
    down = state == State.DOWN
    return TargetStatus(
        placement=placement(target, name=name), state=state, since=1_795_369_000.5,
        reason="3 of the last 5 probes failed" if down else "2 good probes in a row",
        reason_code=ReasonCode.PROBES_FAILED if down else ReasonCode.PROBES_GOOD,
        root_cause=target if down else None, own_state=state)


def rfc3339(timestamp: float) -> str:
    # Independent of monitord.mqtt.payloads on purpose: test times are whole milliseconds.
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def expected_placement(where: Placement) -> dict[str, Any]:
    return {"target": where.target, "name": where.name, "province": where.province,
            "kabupaten": where.kabupaten, "site": where.site, "role": where.role,
            "address": where.address, "parent": where.parent}


def expected_event(event: StateEvent) -> dict[str, Any]:
    return {"schema": "monitord.event/1", "id": event.id, "seq": event.seq,
            "time": rfc3339(event.time), "timestamp": event.time, "kind": event.kind.value,
            **expected_placement(event.placement), "from": event.from_state.value,
            "to": event.to_state.value, "reason": event.reason,
            "reason_code": event.reason_code.value, "root_cause": event.root_cause,
            "flapping": event.flapping}


def expected_status(status: TargetStatus) -> dict[str, Any]:
    return {"schema": "monitord.status/1", **expected_placement(status.placement),
            "state": status.state.value, "since": rfc3339(status.since),
            "since_timestamp": status.since, "reason": status.reason,
            "reason_code": status.reason_code.value, "root_cause": status.root_cause,
            "flapping": status.flapping}


def settings_for(broker: Mosquitto | None = None, *, port: int | None = None,
                 **overrides: Any) -> MqttSettings:
    base = MqttSettings(host="127.0.0.1", port=broker.port if broker else (port or 0),
                        client_id=CLIENT_ID, topic_prefix=PREFIX, keepalive=10.0,
                        connect_timeout=5.0, max_backoff=2.0)
    return dataclasses.replace(base, **overrides)


@asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[asyncio.Task[None]]:
    """The publisher's run() as a task, cancelled (a clean stop) on the way out."""
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=10)
        assert done, "the publisher did not stop within 10 s of being cancelled"


async def until(what: str, condition: Callable[[], object], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def wait_messages(recorder: MqttRecorder, what: str,
                        predicate: Callable[[list[Received]], Any], within: float = 15.0) -> Any:
    return await asyncio.to_thread(recorder.wait_for, what, predicate, within)


def distinct_events(messages: list[Received]) -> list[dict[str, Any]]:
    """Event payloads in arrival order, duplicates (same id) dropped as consumers do."""
    seen: set[str] = set()
    events = []
    for message in messages:
        if message.topic == EVENTS:
            doc = message.json()
            key = str(doc.get("id", doc))  # a forged message without an id counts as itself
            if key not in seen:
                seen.add(key)
                events.append(doc)
    return events


def metric_samples(publisher: MqttPublisher) -> list[tuple[str, dict[str, str], float]]:
    registry = CollectorRegistry()
    registry.register(MqttCollector(lambda: publisher.stats))
    return parse_samples(generate_latest(registry).decode())


def daemon_docs(messages: list[Received]) -> list[dict[str, Any]]:
    return [m.json() for m in messages if m.topic == DAEMON]


async def test_events_arrive_in_order_with_every_field(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    event_schema, daemon_schema = validator("event"), validator("daemon")
    outbox = MemoryOutbox()
    stored = [outbox.add(make_event(n)) for n in range(230)]  # three batches waiting at start
    with Mosquitto(tmp_path / "broker") as broker, \
            MqttRecorder(broker, f"{PREFIX}/#") as recorder:
        publisher = MqttPublisher(settings_for(broker), outbox, dict)
        async with running(publisher):
            await wait_messages(recorder, "the stored events",
                                lambda ms: len(distinct_events(ms)) >= len(stored))
            stored += [outbox.add(make_event(n)) for n in range(230, 260)]
            publisher.notify_events()
            await wait_messages(recorder, "the events added while connected",
                                lambda ms: len(distinct_events(ms)) >= len(stored))
            await until("the outbox to empty", lambda: not outbox.rows)
            await until("the outbox gauge to drop", lambda: publisher.stats.outbox_pending == 0)
            samples = metric_samples(publisher)

    received = [m for m in recorder.messages if m.topic == EVENTS]
    assert [m.json()["seq"] for m in received] == [e.seq for e in stored]  # in order, no dupes
    for message, event in zip(received, stored, strict=True):
        assert not message.retain
        doc = message.json()
        event_schema.validate(doc)
        assert doc == expected_event(event)
    online = daemon_docs(recorder.messages)[0]
    daemon_schema.validate(online)
    assert online["status"] == "online"
    assert online["client_id"] == CLIENT_ID
    assert value(samples, "monitord_mqtt_connected") == 1
    assert value(samples, "monitord_mqtt_connects_total", result="ok") == 1
    assert value(samples, "monitord_mqtt_connects_total", result="auth") == 0
    assert value(samples, "monitord_mqtt_messages_published_total", topic="event") == len(stored)
    assert value(samples, "monitord_mqtt_messages_published_total", topic="daemon") == 1
    assert value(samples, "monitord_mqtt_publish_failures_total") == 0
    assert value(samples, "monitord_mqtt_outbox_events") == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_broker_restart_loses_no_event(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="monitord.mqtt")
    outbox = MemoryOutbox()
    # Persistence keeps the recorder's session, so it gets what was published while it was
    # still reconnecting after the restart.
    with Mosquitto(tmp_path / "broker", persistence=True) as broker, \
            MqttRecorder(broker, EVENTS) as recorder:
        publisher = MqttPublisher(settings_for(broker), outbox, dict)
        async with running(publisher):
            stored = [outbox.add(make_event(n)) for n in range(5)]
            publisher.notify_events()
            await wait_messages(recorder, "the first events", lambda ms: len(ms) >= 5)

            await asyncio.to_thread(broker.stop)
            await until("the publisher to notice", lambda: not publisher.connected)
            stored += [outbox.add(make_event(n)) for n in range(5, 25)]
            publisher.notify_events()
            # The gauge follows the notify at once, not at the next attempt (1 s at the soonest).
            await until("the outbox gauge", lambda: publisher.stats.outbox_pending == 20,
                        within=0.8)
            await until("two refused reconnects",
                        lambda: publisher.stats.connects["refused"] >= 2, within=20)
            await asyncio.to_thread(broker.start)

            await wait_messages(recorder, "every event", lambda ms: len(distinct_events(ms)) >= 25,
                                within=30)
            await until("the outbox to empty", lambda: not outbox.rows)
            assert publisher.connected
            assert publisher.stats.connects["ok"] == 2

    assert [doc["seq"] for doc in distinct_events(recorder.messages)] == [e.seq for e in stored]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum("lost the connection" in e for e in errors) == 1, errors
    # The broker stayed down over several attempts: one ERROR line, the rest at DEBUG.
    assert sum("refused the TCP connection" in e for e in errors) == 1, errors
    assert any("refused the TCP connection" in r.getMessage() for r in caplog.records
               if r.levelno == logging.DEBUG)
    assert any("connected to MQTT broker" in r.getMessage() for r in caplog.records
               if r.levelno == logging.INFO)


async def test_events_stay_in_the_outbox_until_the_broker_acknowledges_them(tmp_path: Path) -> None:
    outbox = MemoryOutbox()
    with Mosquitto(tmp_path / "broker", persistence=True) as broker, \
            MqttRecorder(broker, EVENTS) as recorder:
        publisher = MqttPublisher(settings_for(broker), outbox, dict)
        async with running(publisher):
            await until("a connection", lambda: publisher.connected)
            await asyncio.to_thread(broker.save)  # the recorder's session survives the crash
            broker.pause()
            stored = [outbox.add(make_event(n)) for n in range(20)]
            publisher.notify_events()
            await asyncio.sleep(1.0)  # ample time to write 20 messages into the socket
            assert len(outbox.rows) == 20, "events were marked delivered without a PUBACK"
            assert publisher.stats.published["event"] == 0
            await asyncio.to_thread(broker.kill)  # the broker crashes with them unread
            await until("the publisher to notice", lambda: not publisher.connected)
            await asyncio.to_thread(broker.start)
            await wait_messages(recorder, "every event", lambda ms: len(distinct_events(ms)) >= 20,
                                within=30)
            await until("the outbox to empty", lambda: not outbox.rows)
    assert [doc["seq"] for doc in distinct_events(recorder.messages)] == [e.seq for e in stored]
    assert publisher.stats.publish_failures == 20  # cut off by the crash, published again after
    assert publisher.stats.published["event"] == 20


class LockedOnceOutbox(MemoryOutbox):
    """The first read fails as SQLite does under a long write lock."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    async def pending(self, limit: int) -> list[StateEvent]:
        if self.failures_left:
            self.failures_left -= 1
            raise sqlite3.OperationalError("database is locked")
        return await super().pending(limit)


async def test_a_failing_outbox_read_is_logged_and_retried(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    outbox = LockedOnceOutbox()
    stored = outbox.add(make_event(1))
    with Mosquitto(tmp_path / "broker") as broker, MqttRecorder(broker, EVENTS) as recorder:
        publisher = MqttPublisher(settings_for(broker), outbox, dict)
        async with running(publisher):
            await wait_messages(recorder, "the event", lambda ms: ms)
    assert recorder.messages[0].json()["id"] == stored.id
    assert publisher.stats.connects["ok"] == 2  # it started over, and did not die
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "database is locked" in failure.getMessage()
    assert failure.exc_info is not None  # not the broker's fault: a traceback helps


async def test_retained_statuses_follow_changes_and_survive_a_broker_that_forgot_them(
        tmp_path: Path) -> None:
    status_schema = validator("status")
    statuses = {
        "dc-mamuju-core": make_status("dc-mamuju-core", name="Pusat Data Provinsi Sulawesi Barat"),
        "desa-bonehau-ap": make_status("desa-bonehau-ap", State.DOWN, name="AP Desa Bonéhau"),
        # Lontara, the Buginese script: non-ASCII must survive as UTF-8.
        "desa-tabulahan-ap": make_status("desa-tabulahan-ap", name="ᨈᨅᨘᨒᨖ Tabulahan"),
    }
    targets = f"{PREFIX}/targets/#"
    with Mosquitto(tmp_path / "broker", persistence=False) as broker, \
            MqttRecorder(broker, targets) as recorder:
        publisher = MqttPublisher(settings_for(broker), MemoryOutbox(), lambda: statuses)
        async with running(publisher):
            await wait_messages(recorder, "every status", lambda ms: len(ms) >= 3)
            now = await asyncio.to_thread(retained, broker, targets)
            assert {m.topic: m.json() for m in now} == {
                f"{PREFIX}/targets/{t}": expected_status(s) for t, s in statuses.items()}
            for message in now:
                status_schema.validate(message.json())

            statuses["dc-mamuju-core"] = make_status("dc-mamuju-core", State.DOWN)
            publisher.notify_status(["dc-mamuju-core"])
            await wait_messages(recorder, "the changed status", lambda ms: any(
                m.topic.endswith("/dc-mamuju-core") and m.payload and m.json()["state"] == "down"
                for m in ms))

            del statuses["desa-tabulahan-ap"]
            publisher.notify_removed(["desa-tabulahan-ap"])
            await wait_messages(recorder, "the removed target's status cleared", lambda ms: any(
                m.topic.endswith("/desa-tabulahan-ap") and m.payload == b"" for m in ms))
            now = await asyncio.to_thread(retained, broker, targets)
            assert sorted(m.topic for m in now) == [f"{PREFIX}/targets/dc-mamuju-core",
                                                    f"{PREFIX}/targets/desa-bonehau-ap"]

            await asyncio.to_thread(broker.stop)
            await until("the publisher to notice", lambda: not publisher.connected)
            await asyncio.to_thread(broker.start)  # no persistence: no retained message left
            await until("the publisher to reconnect", lambda: publisher.connected, within=20)
            recorder_after = MqttRecorder(broker, f"{PREFIX}/#", client_id="after-restart",
                                          clean_session=True)
            with recorder_after:
                # Live or retained: a subscriber that came before the republish gets them live.
                await wait_messages(recorder_after, "the statuses and daemon status again",
                                    lambda ms: len({m.topic for m in ms}) >= 3)
                await asyncio.sleep(0.3)  # a cleared target would show up by now
            # What the broker now holds for the next subscriber.
            stored = await asyncio.to_thread(retained, broker, f"{PREFIX}/#")
            after = {m.topic: m.json() for m in stored}
    assert after.pop(DAEMON)["status"] == "online"
    assert after == {f"{PREFIX}/targets/{t}": expected_status(s) for t, s in statuses.items()}


async def test_tls_with_password(tmp_path: Path) -> None:
    outbox = MemoryOutbox()
    event = outbox.add(make_event(1))
    with Mosquitto(tmp_path / "broker", tls=True,
                   users={"monitord": PASSWORD, "bot": BOT_PASSWORD}) as broker, \
            MqttRecorder(broker, EVENTS, username="bot", password=BOT_PASSWORD,
                         tls=True) as recorder:
        settings = settings_for(broker, username="monitord", password=Secret(PASSWORD, "inline"),
                                tls=MqttTls(ca_file=broker.ca_file))
        publisher = MqttPublisher(settings, outbox, dict)
        async with running(publisher):
            await wait_messages(recorder, "the event over TLS", lambda ms: ms)
    assert recorder.messages[0].json() == expected_event(event)
    assert publisher.stats.connects == {"ok": 1, "refused": 0, "auth": 0, "tls": 0,
                                        "timeout": 0, "error": 0}


async def test_tls_with_a_client_certificate(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    with Mosquitto(tmp_path / "broker", tls=True, require_certificate=True) as broker:
        assert broker.ca is not None
        cert, key = broker.ca.issue_client(tmp_path / "client", "monitord-sulbar")
        tls = MqttTls(ca_file=broker.ca_file, cert_file=str(cert), key_file=str(key))
        publisher = MqttPublisher(settings_for(broker, tls=tls), MemoryOutbox(), dict)
        async with running(publisher):
            await until("a connection", lambda: publisher.connected)

        # Without one, TLS 1.3 completes the handshake and the broker's alert comes after it,
        # which paho only logs: still a "tls" failure, with the alert in the one ERROR line.
        without = MqttPublisher(settings_for(broker, tls=MqttTls(ca_file=broker.ca_file),
                                             connect_timeout=1.0), MemoryOutbox(), dict)
        async with running(without):
            await until("a TLS failure", lambda: without.stats.connects["tls"] >= 1)
    assert without.stats.connects["timeout"] == 0
    assert without.stats.last_error.endswith("failed: TLSV13_ALERT_CERTIFICATE_REQUIRED")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [without.stats.last_error]


async def test_wrong_password_is_an_auth_failure_logged_once_without_the_password(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # paho's own logger too: nothing may print the password
    wrong = "salah-kata-sandi-9Z"
    with Mosquitto(tmp_path / "broker", users={"monitord": PASSWORD}) as broker:
        settings = settings_for(broker, username="monitord", password=Secret(wrong, "env:MQTT_PW"))
        publisher = MqttPublisher(settings, MemoryOutbox(), dict)
        async with running(publisher):
            await until("two refused logins", lambda: publisher.stats.connects["auth"] >= 2)
            samples = metric_samples(publisher)
    assert (value(samples, "monitord_mqtt_connects_total", result="auth") or 0) >= 2
    assert value(samples, "monitord_mqtt_connects_total", result="ok") == 0
    assert value(samples, "monitord_mqtt_connected") == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"MQTT broker 127.0.0.1:{broker.port} rejected user 'monitord'" in errors[0]
    assert publisher.stats.last_error == errors[0]
    assert wrong not in caplog.text
    assert PASSWORD not in caplog.text
    assert wrong not in repr(settings)


# paho leaves the socket of a failed TLS handshake for the garbage collector to close.
PAHO_TLS_SOCKET_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning")


@PAHO_TLS_SOCKET_LEAK
async def test_untrusted_certificate_is_a_tls_failure(tmp_path: Path) -> None:
    other_ca = CertificateAuthority.create(tmp_path / "other", "not-the-broker-ca")
    with Mosquitto(tmp_path / "broker", tls=True) as broker:
        settings = settings_for(broker, tls=MqttTls(ca_file=str(other_ca.cert_file)))
        publisher = MqttPublisher(settings, MemoryOutbox(), dict)
        async with running(publisher):
            await until("a TLS failure", lambda: publisher.stats.connects["tls"] >= 1)
    # OpenSSL's words depend on whether the broker sends its CA along with its certificate.
    assert re.search(f"TLS with MQTT broker 127.0.0.1:{broker.port} failed, its certificate was "
                     "rejected: (self-signed certificate in certificate chain|unable to get local "
                     "issuer certificate)$", publisher.stats.last_error)
    assert publisher.stats.connects["ok"] == 0


@PAHO_TLS_SOCKET_LEAK
async def test_verify_hostname(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker", tls=True, cert_hosts=["mqtt.sulbar.example"]) as broker:
        strict = MqttPublisher(settings_for(broker, tls=MqttTls(ca_file=broker.ca_file)),
                               MemoryOutbox(), dict)
        async with running(strict):
            await until("a TLS failure", lambda: strict.stats.connects["tls"] >= 1)
        assert "mismatch" in strict.stats.last_error
        lenient = MqttPublisher(
            settings_for(broker, tls=MqttTls(ca_file=broker.ca_file, verify_hostname=False)),
            MemoryOutbox(), dict)
        async with running(lenient):
            await until("a connection", lambda: lenient.connected)


async def test_nothing_listening_is_refused_and_a_silent_broker_a_timeout() -> None:
    refused = MqttPublisher(settings_for(port=free_port()), MemoryOutbox(), dict)
    async with running(refused):
        await until("a refused connection", lambda: refused.stats.connects["refused"] >= 1)
    assert "refused the TCP connection" in refused.stats.last_error

    # A broker that accepts TCP but never sends CONNACK (hung): the kernel completes the
    # handshake on the listening socket; nobody ever reads.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hung = MqttPublisher(settings_for(port=port, connect_timeout=0.5), MemoryOutbox(), dict)
        async with running(hung):
            await until("a timeout", lambda: hung.stats.connects["timeout"] >= 1)
    assert "did not answer within 0.5 s" in hung.stats.last_error


LAST_WILL_SCRIPT = """
import asyncio, sys
from monitord.model import MqttSettings
from monitord.mqtt.publisher import MqttPublisher

class EmptyOutbox:
    async def pending(self, limit): return []
    async def delivered(self, seqs): pass
    async def pending_count(self): return 0

settings = MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), client_id=sys.argv[2],
                        topic_prefix=sys.argv[3], keepalive=10.0)
asyncio.run(MqttPublisher(settings, EmptyOutbox(), dict).run())
"""


def test_killed_daemon_goes_offline_by_last_will(tmp_path: Path) -> None:
    daemon_schema = validator("daemon")
    script = tmp_path / "publish.py"
    script.write_text(textwrap.dedent(LAST_WILL_SCRIPT))
    log = tmp_path / "publisher.log"
    with Mosquitto(tmp_path / "broker") as broker, MqttRecorder(broker, DAEMON) as recorder, \
            log.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(script), str(broker.port), CLIENT_ID, PREFIX],
                                cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            recorder.wait_for("the daemon online", lambda ms: any(
                m.json()["status"] == "online" for m in ms))
            proc.kill()  # SIGKILL, by its PID: no chance to say goodbye
            proc.wait(timeout=10)
            recorder.wait_for("the last-will", lambda ms: any(
                m.json()["status"] == "offline" for m in ms))
        finally:
            stop_process(proc)
        will = daemon_docs(recorder.messages)[-1]
        daemon_schema.validate(will)
        assert will == {"schema": "monitord.daemon/1", "status": "offline", "client_id": CLIENT_ID,
                        "reason": "connection lost", "version": will["version"]}
        assert [m.json() for m in retained(broker, DAEMON)] == [will]


async def test_clean_stop_says_stopped_and_no_last_will(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker, MqttRecorder(broker, DAEMON) as recorder:
        publisher = MqttPublisher(settings_for(broker), MemoryOutbox(), dict)
        task = asyncio.create_task(publisher.run())
        await wait_messages(recorder, "the daemon online", lambda ms: ms)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
        assert time.monotonic() - started < 3  # bounded by STOP_TIMEOUT (2 s)
        await wait_messages(recorder, "the daemon offline", lambda ms: len(ms) >= 2)
        await asyncio.sleep(0.5)  # a last-will would have been published at once
        docs = daemon_docs(recorder.messages)
        assert [(d["status"], d.get("reason")) for d in docs] == [("online", None),
                                                                  ("offline", "stopped")]
        retained_now = await asyncio.to_thread(retained, broker, DAEMON)
        assert [m.json() for m in retained_now] == [docs[-1]]
        assert not publisher.connected


ACL_EXAMPLE = ROOT / "exporters" / "mqtt" / "acl.example"


async def test_shipped_acl_example_lets_monitord_write_and_bots_only_read(tmp_path: Path) -> None:
    outbox = MemoryOutbox()
    statuses: Mapping[str, TargetStatus] = {"dc-mamuju-core": make_status("dc-mamuju-core")}
    with Mosquitto(tmp_path / "broker", users={"monitord": PASSWORD, "bot": BOT_PASSWORD},
                   acl_file=ACL_EXAMPLE) as broker, \
            MqttRecorder(broker, f"{PREFIX}/#", username="bot", password=BOT_PASSWORD) as bot:
        settings = settings_for(broker, username="monitord", password=Secret(PASSWORD, "inline"))
        publisher = MqttPublisher(settings, outbox, lambda: statuses)
        async with running(publisher):
            first = outbox.add(make_event(1))
            publisher.notify_events()
            await wait_messages(bot, "event, status and daemon status", lambda ms: len(ms) >= 3)
            # The bot tries to forge an event; the broker acknowledges and drops it (MQTT 3.1.1
            # has no way to say no to a PUBLISH).
            bot.client.publish(EVENTS, b'{"forged": true}', qos=1).wait_for_publish(timeout=5)
            second = outbox.add(make_event(2))
            publisher.notify_events()
            await wait_messages(bot, "the second event", lambda ms: len(distinct_events(ms)) >= 2)
            await asyncio.sleep(0.3)
    assert [m.json()["id"] for m in bot.messages if m.topic == EVENTS] == [first.id, second.id]
