"""Every secret of a config stays secret: one test that collects everything monitord says
(the daemon's debug log in text and JSON, /metrics, the answer to a failed reload, and the
output and errors of every CLI command) and greps it for every secret value.

The secrets come inline, from the environment and from files: an SNMP v2c community, SNMP v3
authentication and privacy passwords, an MQTT password that a real mosquitto refuses, and a
basic-auth bcrypt hash. Things go wrong on purpose, so that error paths run: the SNMP agents do
not exist (timeouts), the broker refuses the login, a reload names a secret file that cannot
be read, and `poll` fails.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.integration.conftest import DaemonFactory
from tests.integration.harness import MonitordProcess, Sample, monitord_cli, value, wait_for
from tests.integration.mosquitto import Mosquitto

COMMUNITY = "komunitas-R4hasia-77"
AUTH = "authKunci-R4hasia-88"
PRIV = "privKunci-R4hasia-99"
MQTT_PASSWORD = "mqttSandi-R4hasia-11"  # noqa: S105  # a test secret, made to be searched for
WEB_PASSWORD = "webSandi-R4hasia-22"  # noqa: S105
WEB_HASH = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
SECRETS = (COMMUNITY, AUTH, PRIV, MQTT_PASSWORD, WEB_HASH)


def write_config(tmp_path: Path, port: int, broker: Mosquitto, *, web: bool = False,
                 priv_file: Path | None = None) -> Path:
    priv = priv_file or tmp_path / "priv-password"
    priv.parent.mkdir(parents=True, exist_ok=True)
    if priv_file is None:
        priv.write_text(PRIV + "\n")
    doc: dict[str, Any] = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(tmp_path / "state")},
        "profiles": {"fast": {"interval": "1s", "count": 1, "timeout": "300ms"}},
        "snmp": {"profiles": {
            "v2": {"version": "2c", "community": COMMUNITY, "interval": "2s",
                   "timeout": "300ms", "retries": 0},
            "v3": {"version": "3", "username": "monitord", "auth_protocol": "SHA",
                   "auth_password": {"env": "TEST_SNMP_AUTH"}, "priv_protocol": "AES",
                   "priv_password": {"file": str(priv)}, "interval": "2s",
                   "timeout": "300ms", "retries": 0}}},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "monitord",
                 "password": {"env": "TEST_MQTT_PASSWORD"}, "max_backoff": "1s"},
        "province": {"id": "sulbar", "defaults": {"profile": "fast", "role": "dc-server"},
                     "kabupaten": [{"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                         {"id": "srv-v2", "address": "127.0.0.2", "snmp": "v2"},
                         {"id": "srv-v3", "address": "127.0.0.3", "snmp": "v3"}]}]}]},
    }
    if web:
        doc["web"] = {"basic_auth_users": {"prometheus": WEB_HASH}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / ("monitord-web.yaml" if web else "monitord.yaml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def errors_seen(daemon: MonitordProcess) -> list[Sample] | None:
    samples = daemon.samples()
    refused = value(samples, "monitord_mqtt_connects_total", result="auth") or 0
    polled = value(samples, "monitord_snmp_polls_total", target="srv-v3") or 0
    failed = value(samples, "monitord_snmp_up", target="srv-v3") == 0
    return samples if refused >= 1 and polled >= 1 and failed else None


def cli(*args: str) -> str:
    done = monitord_cli(*args, timeout=120)
    return f"$ monitord {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}"


def test_no_secret_appears_in_anything_monitord_says(
        tmp_path: Path, daemons: DaemonFactory, port: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SNMP_AUTH", AUTH)
    monkeypatch.setenv("TEST_MQTT_PASSWORD", MQTT_PASSWORD)
    monkeypatch.setenv("MONITORD_LOG_LEVEL", "debug")
    said: dict[str, str] = {}
    with Mosquitto(tmp_path / "broker", users={"monitord": "the-broker-wants-another"}) as broker:
        config = write_config(tmp_path, port, broker)
        web_config = write_config(tmp_path, port, broker, web=True)  # for the CLI only
        for fmt in ("text", "json"):
            monkeypatch.setenv("MONITORD_LOG_FORMAT", fmt)
            daemon = daemons.start(config, port)
            samples = wait_for("failed SNMP polls and a refused MQTT login",
                               partial(errors_seen, daemon), timeout=30)
            said[f"/metrics ({fmt})"] = daemon.metrics_text()
            write_config(tmp_path, port, broker, priv_file=tmp_path / "missing" / "priv")
            status, body = daemon.post("/-/reload")
            assert status != 200, body
            said[f"reload answer ({fmt})"] = body
            write_config(tmp_path, port, broker)
            daemon.stop()
            said[f"daemon log ({fmt})"] = daemon.log()
            assert samples

        for args in (("check-config",), ("targets",), ("targets", "--json"),
                     ("poll", "srv-v2"), ("poll", "srv-v3"), ("probe", "srv-v2", "--count", "1"),
                     ("report", "--from", "2026-01-01", "--to", "2026-01-01")):
            said[" ".join(args)] = cli(*args, "-c", str(config))
        said["check-config (web)"] = cli("check-config", "-c", str(web_config))
        said["bad config"] = cli("check-config", "-c", str(write_config(
            tmp_path / "bad", port, broker, priv_file=tmp_path / "missing" / "priv")))

    # The outputs are the real thing, with the error paths taken (else the test proves nothing).
    assert "srv-v3" in said["daemon log (text)"]
    assert '"level"' in said["daemon log (json)"]
    assert "cannot read secret file" in said["reload answer (text)"]
    assert "cannot read secret file" in said["bad config"]
    assert "FAILED" in said["poll srv-v2"]
    for where, text in said.items():
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into {where}"
