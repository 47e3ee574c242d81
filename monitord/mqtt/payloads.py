"""MQTT topics and payloads: compact UTF-8 JSON, versioned by the `schema` field.

The JSON Schema of every payload is in exporters/mqtt/schema/ and the topics are documented in
exporters/mqtt/README.md. A payload gains optional fields without a version change; anything a
consumer could trip over (a field removed, renamed or retyped) bumps the version.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import monitord
from monitord.state.model import Placement, StateEvent, TargetStatus

EVENT_SCHEMA = "monitord.event/1"
STATUS_SCHEMA = "monitord.status/1"
DAEMON_SCHEMA = "monitord.daemon/1"

DaemonStatus = Literal["online", "offline"]

# MQTT wildcards and the level separator: a target id containing one would name other topics.
_TOPIC_UNSAFE = frozenset("/+#\0")


def events_topic(prefix: str) -> str:
    return f"{prefix}/events"


def target_topic(prefix: str, target: str) -> str:
    if not target or _TOPIC_UNSAFE.intersection(target):
        raise ValueError(f"target id {target!r} cannot be an MQTT topic level")
    return f"{prefix}/targets/{target}"


def daemon_topic(prefix: str) -> str:
    return f"{prefix}/daemon"


def rfc3339(timestamp: float) -> str:
    """UTC with milliseconds: 2026-11-22T03:04:05.123Z."""
    # Round once, in integer milliseconds, so .9996 s becomes the next second, never ".1000".
    seconds, millis = divmod(round(timestamp * 1000), 1000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def event_payload(event: StateEvent) -> bytes:
    if event.seq is None:
        raise ValueError(f"event {event.id} has no seq: only stored events are published")
    return _encode({
        "schema": EVENT_SCHEMA,
        "id": event.id,
        "seq": event.seq,
        "time": rfc3339(event.time),
        "timestamp": event.time,
        "kind": event.kind.value,
        **_placement(event.placement),
        "from": event.from_state.value,
        "to": event.to_state.value,
        "reason": event.reason,
        "reason_code": event.reason_code.value,
        "root_cause": event.root_cause,
        "flapping": event.flapping,
    })


def status_payload(status: TargetStatus) -> bytes:
    return _encode({
        "schema": STATUS_SCHEMA,
        **_placement(status.placement),
        "state": status.state.value,
        "since": rfc3339(status.since),
        "since_timestamp": status.since,
        "reason": status.reason,
        "reason_code": status.reason_code.value,
        "root_cause": status.root_cause,
        "flapping": status.flapping,
    })


def daemon_payload(status: DaemonStatus, client_id: str, *, since: float | None = None,
                   reason: str | None = None) -> bytes:
    """`since` (when it came online) goes with "online", `reason` with "offline"."""
    doc: dict[str, Any] = {"schema": DAEMON_SCHEMA, "status": status, "client_id": client_id}
    if status == "online":
        if since is None:
            raise ValueError("an online daemon payload needs `since`")
        doc["since"] = rfc3339(since)
    else:
        if reason is None:
            raise ValueError("an offline daemon payload needs `reason`")
        doc["reason"] = reason
    doc["version"] = getattr(monitord, "__version__", "unknown")
    return _encode(doc)


def _placement(placement: Placement) -> dict[str, Any]:
    return {
        "target": placement.target,
        "name": placement.name,
        "province": placement.province,
        "kabupaten": placement.kabupaten,
        "site": placement.site,
        "role": placement.role,
        "address": placement.address,
        "parent": placement.parent,
    }


def _encode(doc: dict[str, Any]) -> bytes:
    # ensure_ascii=False: a name like "Desa Bonéhau" stays readable to anyone reading the raw
    # payload (mosquitto_sub, logs); the wire is UTF-8 either way.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
