"""configure_logging: JSON lines with their fields, levels, and secrets kept out of every line
(messages, extras, tracebacks, uncaught exceptions), with secrets found in a real inventory."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import pytest

from monitord.config import load_inventory
from monitord.logformat import REDACTED, configure_logging, hide_secrets, secrets_in
from monitord.model import Secret
from monitord.state.model import EventKind, Placement, ReasonCode, State, StateEvent, new_event_id
from monitord.state.tracker import log_state_event

COMMUNITY = "komunitas-rahasia"
QUOTED = "it's\\odd-value"  # repr() escapes the backslash: masked in that form too
log = logging.getLogger("monitord.test")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure_logging changes process-wide state: put all of it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    hide_secrets([])


def throw(exc: Exception) -> NoReturn:
    raise exc


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    lines = stream.getvalue().splitlines()
    return [json.loads(line) for line in lines]


def configured(fmt: str = "json", level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, "json" if fmt == "json" else "text", stream)
    return stream


def test_json_line_has_time_level_logger_message_and_extras() -> None:
    stream = configured()
    before = datetime.now().astimezone()
    log.info("%s: %s -> %s", "ap-1", "up", "down",
             extra={"target": "ap-1", "from": State.UP, "to": State.DOWN, "root_cause": None,
                    "level": "clash"})
    [line] = json_lines(stream)
    when = datetime.fromisoformat(str(line["time"]))
    assert when.tzinfo is not None
    assert abs((when - before).total_seconds()) < 5
    assert line["level"] == "info"
    assert line["logger"] == "monitord.test"
    assert line["message"] == "ap-1: up -> down"
    assert (line["target"], line["from"], line["to"], line["root_cause"]) == (
        "ap-1", "up", "down", None)
    assert line["extra_level"] == "clash"  # an extra never overwrites a core field


def test_level_filters_and_every_record_is_one_line() -> None:
    stream = configured(level="warning")
    log.info("not shown")
    log.warning("first\nsecond line of the same record")
    try:
        throw(RuntimeError("with a traceback"))
    except RuntimeError:
        log.exception("failed")
    lines = json_lines(stream)
    assert [line["level"] for line in lines] == ["warning", "error"]
    assert lines[0]["message"] == "first\nsecond line of the same record"
    exception = str(lines[1]["exception"])
    assert exception.startswith("Traceback (most recent call last):")
    assert "test_level_filters_and_every_record_is_one_line" in exception  # our frames stay
    assert exception.endswith("RuntimeError: with a traceback")


def test_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("verbose", "json")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml")  # type: ignore[arg-type]


def test_configuring_again_replaces_the_first_setup() -> None:
    first = configured("json")
    second = configured("text")
    log.info("only once")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip("\n").endswith("INFO monitord.test: only once")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_masked_in_messages_extras_and_tracebacks(fmt: str) -> None:
    stream = configured(fmt)
    hide_secrets([Secret(COMMUNITY, "inline"), Secret(QUOTED, "env:ODD")])
    log.warning("sent community %s", COMMUNITY, extra={"detail": {"community": COMMUNITY}})
    try:
        # A library quoting the bytes it was given, as a traceback then prints them.
        throw(ValueError(f"bad PDU for {COMMUNITY.encode()!r}, also {QUOTED!r}"))
    except ValueError:
        log.exception("poll failed")
    output = stream.getvalue()
    assert COMMUNITY not in output
    assert "odd-value" not in output
    assert output.count(REDACTED) >= 3
    if fmt == "json":  # text lines do not show extras
        assert json.loads(output.splitlines()[0])["detail"] == {"community": REDACTED}
    assert "Traceback (most recent call last)" in output
    assert "ValueError: bad PDU for b'<redacted>'" in output


def test_url_passwords_are_masked() -> None:
    stream = configured()
    log.error("cannot reach mqtts://monitord:hunter22@broker:8883/ (refused)")
    [line] = json_lines(stream)
    assert line["message"] == f"cannot reach mqtts://monitord:{REDACTED}@broker:8883/ (refused)"


def test_new_secrets_replace_the_old_and_tiny_ones_are_kept() -> None:
    stream = configured()
    hide_secrets([Secret("old-password", "inline")])
    hide_secrets([Secret("new-password", "inline"), Secret("abc", "inline")])
    log.info("old-password new-password abc")
    [line] = json_lines(stream)
    assert line["message"] == f"old-password {REDACTED} abc"


SNMP_AND_MQTT = """
daemon: {{listen: 127.0.0.1:9521, state_dir: {state_dir}}}
mqtt: {{host: 127.0.0.1, topic_prefix: t, username: m, password: mqtt-sandi-rahasia}}
snmp:
  profiles:
    v2: {{community: {{env: MONITORD_TEST_COMMUNITY}}, interval: 30s, modules: [system]}}
    v3:
      version: 3
      username: noc
      auth_protocol: SHA256
      auth_password: kata-sandi-auth
      priv_protocol: AES256
      priv_password: rahasia-privasi
province:
  id: p
  defaults: {{role: village-ap, snmp: v2}}
  kabupaten:
    - id: k
      sites:
        - id: s
          devices:
            - {{id: ap-1, address: 10.0.0.1}}
            - {{id: rtr-1, address: 10.0.0.2, snmp: {{profile: v3}}}}
"""


def test_secrets_in_finds_every_secret_of_an_inventory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "monitord.yaml"
    config.write_text(SNMP_AND_MQTT.format(state_dir=tmp_path), encoding="utf-8")
    monkeypatch.setenv("MONITORD_TEST_COMMUNITY", COMMUNITY)
    inventory = load_inventory(config)
    found = {secret.reveal() for secret in secrets_in(inventory)}
    assert found == {COMMUNITY, "mqtt-sandi-rahasia", "kata-sandi-auth", "rahasia-privasi"}


def test_uncaught_exceptions_are_logged_redacted() -> None:
    stream = configured()
    hide_secrets([Secret(COMMUNITY, "inline")])

    def fail() -> None:
        raise RuntimeError(f"thread saw {COMMUNITY}")

    thread = threading.Thread(target=fail, name="http-7")
    thread.start()
    thread.join(timeout=10)
    try:
        throw(KeyError(COMMUNITY))
    except KeyError:
        sys.excepthook(*sys.exc_info())  # what the interpreter calls before exiting
    in_thread, in_main = json_lines(stream)
    assert (in_thread["level"], in_thread["message"]) == ("error", "uncaught exception in thread http-7")
    assert f"RuntimeError: thread saw {REDACTED}" in str(in_thread["exception"])
    assert in_main["level"] == "critical"
    assert f"KeyError: '{REDACTED}'" in str(in_main["exception"])
    assert COMMUNITY not in stream.getvalue()


def test_warnings_become_log_lines() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        stream = configured()
        warnings.warn("an old option", DeprecationWarning, stacklevel=1)
    [line] = json_lines(stream)
    assert line["logger"] == "py.warnings"
    assert "DeprecationWarning: an old option" in str(line["message"])


def test_a_state_change_is_one_line_with_its_fields() -> None:
    stream = configured("json")
    village = Placement(target="desa-a", province="sulbar", kabupaten="majene", site="desa-a",
                        role="village-ap", address="10.76.4.11", parent="majene-link")
    log_state_event(StateEvent(id=new_event_id(1.0), time=1.0, kind=EventKind.STATE,
                          placement=village, from_state=State.UP, to_state=State.UNREACHABLE,
                          reason="parent majene-link is down", reason_code=ReasonCode.PARENT_DOWN,
                          root_cause="majene-link", flapping=False))
    [line] = json_lines(stream)
    assert line["message"] == ("desa-a: up -> unreachable (parent majene-link is down, "
                               "root cause majene-link)")
    assert (line["target"], line["from_state"], line["to_state"], line["root_cause"]) == (
        "desa-a", "up", "unreachable", "majene-link")
