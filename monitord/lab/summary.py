"""The demo's terminal picture, made from monitord's /metrics (and its MQTT events): per
kabupaten how many targets are up, degraded, down, unreachable; what is down and what it takes
with it; the latest state changes; probes per second. Pure functions: text in, text out."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from monitord.lab.scrape import Sample

STATES = ("up", "degraded", "down", "unreachable", "unknown")
MAX_PROBLEMS = 12
MAX_CHANGES = 8


@dataclass(frozen=True)
class TargetView:
    target: str
    kabupaten: str
    role: str
    address: str
    state: str = "unknown"
    root_cause: str | None = None
    since: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What one scrape says, taken at wall-clock time `taken`."""

    taken: float
    targets: dict[str, TargetView]
    probes: dict[str, float]  # completed probes so far, by kind
    snmp_ok: int  # devices whose last SNMP poll completed
    snmp_devices: int
    mqtt_connected: bool | None  # None: monitord has no MQTT


@dataclass(frozen=True)
class Change:
    """One state change: from an MQTT event, or seen between two snapshots."""

    time: float
    target: str
    from_state: str
    to_state: str
    reason_code: str | None = None
    root_cause: str | None = None


def snapshot(samples: Sequence[Sample], taken: float) -> Snapshot:
    targets: dict[str, TargetView] = {}
    causes: dict[str, str] = {}
    since: dict[str, float] = {}
    probes: dict[str, float] = {}
    snmp: dict[str, bool] = {}
    mqtt: bool | None = None
    for name, labels, value in samples:
        if name == "monitord_target_state" and value == 1.0:
            targets[labels["target"]] = TargetView(labels["target"], labels["kabupaten"],
                                                   labels["role"], labels["address"],
                                                   labels["state"])
        elif name == "monitord_target_root_cause" and value == 1.0:
            causes[labels["target"]] = labels["root_cause"]
        elif name == "monitord_target_state_since_timestamp_seconds":
            since[labels["target"]] = value
        elif name == "monitord_probes_total":
            probes[labels["kind"]] = probes.get(labels["kind"], 0.0) + value
        elif name == "monitord_snmp_up":
            snmp[labels["target"]] = value == 1.0
        elif name == "monitord_mqtt_connected":
            mqtt = value == 1.0
    for target, view in targets.items():
        targets[target] = TargetView(view.target, view.kabupaten, view.role, view.address,
                                     view.state, causes.get(target), since.get(target))
    return Snapshot(taken, targets, probes, sum(snmp.values()), len(snmp), mqtt)


def changes_between(before: Snapshot, after: Snapshot) -> list[Change]:
    """The state changes a pair of snapshots shows (without MQTT: changes in between that
    were undone again are not seen)."""
    out = []
    for target, view in after.targets.items():
        old = before.targets.get(target)
        if old is not None and old.state != view.state:
            out.append(Change(view.since or after.taken, target, old.state, view.state,
                              root_cause=view.root_cause))
    return sorted(out, key=lambda c: c.time)


def change_from_event(payload: bytes) -> Change | None:
    """A monitord.event/1 MQTT payload as a Change (None if it is not a state change)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("kind") != "state":
        return None
    try:
        return Change(float(doc["timestamp"]), str(doc["target"]), str(doc["from"]),
                      str(doc["to"]), doc.get("reason_code"), doc.get("root_cause"))
    except (KeyError, TypeError, ValueError):
        return None


def _clock(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%H:%M:%S", time.localtime(timestamp))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class Frame:
    """What render() needs besides the snapshot."""

    started: float  # wall-clock time the lab's monitord started
    previous: Snapshot | None = None
    changes: Sequence[Change] = ()
    notes: Sequence[str] = field(default_factory=list)  # e.g. faults started or ended


def _rate_line(now: Snapshot, previous: Snapshot | None) -> str:
    if previous is None or now.taken <= previous.taken:
        return "probes/s: (next frame)"
    elapsed = now.taken - previous.taken
    rates = {kind: (count - previous.probes.get(kind, 0.0)) / elapsed
             for kind, count in sorted(now.probes.items())}
    total = sum(rates.values())
    return f"{total:.1f} probes/s (" + ", ".join(f"{k} {r:.1f}" for k, r in rates.items()) + ")"


def _kabupaten_table(now: Snapshot) -> list[str]:
    counts: dict[str, dict[str, int]] = {}
    for view in now.targets.values():
        row = counts.setdefault(view.kabupaten, dict.fromkeys(STATES, 0))
        row[view.state if view.state in row else "unknown"] += 1
    width = max([len("KABUPATEN"), *(len(k) for k in counts)])
    lines = ["  " + "KABUPATEN".ljust(width) + "".join(f"{s.upper():>13}" for s in STATES)]
    for kab, row in counts.items():
        lines.append("  " + kab.ljust(width) + "".join(f"{row[s]:>13}" for s in STATES))
    return lines


def _problems(now: Snapshot) -> list[str]:
    """Each root cause with what it takes with it, worst first; then the degraded."""
    behind: dict[str, list[str]] = {}
    for view in now.targets.values():
        if view.state == "unreachable" and view.root_cause:
            behind.setdefault(view.root_cause, []).append(view.target)
    lines = []
    for view in sorted(now.targets.values(), key=lambda v: (v.state != "down", v.target)):
        if view.state not in ("down", "degraded"):
            continue
        taken = behind.pop(view.target, [])
        tail = f"; {len(taken)} unreachable behind it: {', '.join(taken)}" if taken else ""
        lines.append(f"  {view.state.upper():<9} {view.target} ({view.role}, {view.kabupaten}, "
                     f"{view.address}) since {_clock(view.since)}{tail}")
    for cause, taken in behind.items():  # the root cause itself is not a target here
        lines.append(f"  UNREACHABLE {len(taken)} behind {cause}: {', '.join(taken)}")
    if len(lines) > MAX_PROBLEMS:
        lines = [*lines[:MAX_PROBLEMS], f"  ... and {len(lines) - MAX_PROBLEMS} more"]
    return lines or ["  nothing: every target is up"]


def _change_lines(changes: Sequence[Change]) -> list[str]:
    recent = list(changes)[-MAX_CHANGES:]
    if not recent:
        return ["  none yet"]
    width = max(len(c.target) for c in recent)
    out = []
    for c in recent:
        why = f"  root cause {c.root_cause}" if c.to_state == "unreachable" and c.root_cause else ""
        code = f"  ({c.reason_code})" if c.reason_code else ""
        out.append(f"  {_clock(c.time)}  {c.target.ljust(width)}  "
                   f"{c.from_state} -> {c.to_state}{code}{why}")
    return out


def render(now: Snapshot, frame: Frame) -> str:
    mqtt = {None: "no MQTT", True: "MQTT connected", False: "MQTT NOT connected"}[now.mqtt_connected]
    lines = [
        f"== monitord lab  {_clock(now.taken)}  running {_duration(now.taken - frame.started)}  "
        f"{len(now.targets)} targets  {_rate_line(now, frame.previous)}",
        f"   SNMP: {now.snmp_ok}/{now.snmp_devices} devices' last poll complete   {mqtt}",
        *(f"   {note}" for note in frame.notes),
        *_kabupaten_table(now),
        "Not up (root causes first):",
        *_problems(now),
        "Recent state changes:",
        *_change_lines(frame.changes),
    ]
    return "\n".join(lines)
