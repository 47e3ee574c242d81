"""What every fault test asserts besides its own effect: the daemon is alive and still probing,
its counters never went backwards, the untouched part of the province saw nothing, and the
event history and the MQTT events agree (everything stored arrived, in order, duplicated at
most as the outbox's at-least-once delivery allows)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitord.lab.mqtt_recorder import Received
from monitord.state.history import HISTORY_FILE, read_snapshot
from monitord.state.model import EventKind, ReasonCode, State, StateEvent
from tests.integration.harness import MonitordProcess, Sample, value, wait_for
from tests.integration.mosquitto import MqttRecorder


def sum_of(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of every sample named `name` with these labels (0 if none)."""
    return sum(v for n, sample_labels, v in samples
               if n == name and all(sample_labels.get(k) == want for k, want in labels.items()))


def probes_of(samples: list[Sample], target: str) -> float:
    return value(samples, "monitord_probes_per_target_total", target=target) or 0.0


def states_of(samples: list[Sample]) -> dict[str, str]:
    """{target: state} from monitord_target_state."""
    return {labels["target"]: labels["state"] for name, labels, v in samples
            if name == "monitord_target_state" and v == 1.0}


def wait_states(daemon: MonitordProcess, want: dict[str, str],
                timeout: float = 30.0) -> list[Sample]:
    """Until /metrics shows every target of `want` in its wanted state; the samples then."""
    def check() -> list[Sample] | None:
        samples = daemon.samples()
        states = states_of(samples)
        return samples if all(states.get(t) == s for t, s in want.items()) else None
    return wait_for(f"states {want}", check, timeout=timeout)


def assert_alive(daemon: MonitordProcess, before: list[Sample], targets: Iterable[str],
                 rounds: int = 2) -> list[Sample]:
    """The process runs, /metrics answers, and each of `targets` completed at least `rounds`
    more probes than in `before` (waiting for them). Returns the samples that showed it."""
    assert daemon.proc.poll() is None, f"monitord exited:\n{daemon.log()}"
    wanted = {t: probes_of(before, t) + rounds for t in targets}

    def advanced() -> list[Sample] | None:
        samples = daemon.samples()
        return samples if all(probes_of(samples, t) >= n for t, n in wanted.items()) else None
    samples = wait_for(f"{rounds} more probes of {sorted(wanted)}", advanced, timeout=30)
    assert sum_of(samples, "monitord_probes_total") > sum_of(before, "monitord_probes_total")
    assert daemon.proc.poll() is None
    return samples


def _counters(samples: list[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(name, tuple(sorted(labels.items()))): v for name, labels, v in samples
            if name.endswith(("_total", "_count", "_sum", "_bucket")) and not math.isnan(v)}


def assert_counters_never_fall(before: list[Sample], after: list[Sample]) -> None:
    """No counter of a series present in both scrapes went down: a fault must never make a
    rate() negative (a device's own counters restarting after a reboot are the agent's, and
    only expected where a test reboots one)."""
    old, new = _counters(before), _counters(after)
    fallen = {key: (old[key], new[key]) for key in old.keys() & new.keys() if new[key] < old[key]}
    assert not fallen, f"counters went backwards: {fallen}"


def history(state_dir: Path) -> list[StateEvent]:
    """Every stored event, oldest first, read through a read-only connection (the daemon may
    be running)."""
    with read_snapshot(state_dir / HISTORY_FILE) as snapshot:
        return snapshot.events_between(0.0, math.inf)


def events_of(recorder: MqttRecorder, topic: str) -> list[dict[str, Any]]:
    return [m.json() for m in recorder.messages if m.topic == topic]


def assert_quiet(events: list[StateEvent], targets: Iterable[str]) -> None:
    """Each of `targets` had exactly one event: its first probe answered (unknown -> up)."""
    for target in targets:
        own = [(e.from_state, e.to_state, e.reason_code) for e in events if e.target == target]
        assert own == [(State.UNKNOWN, State.UP, ReasonCode.FIRST_PROBE)], (target, own)


@dataclass(frozen=True)
class Delivery:
    """How the MQTT events compare with the history."""

    stored: int
    received: int  # messages, duplicates included
    duplicates: int


def assert_delivered_in_order(stored: list[StateEvent], received: list[dict[str, Any]]) -> Delivery:
    """Every stored event arrived with its stored content; the first arrivals of the ids are
    the history's order; nothing arrived that is not stored; a repeat is an exact copy."""
    by_id = {e.id: e for e in stored}
    first: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    for message in received:
        event = by_id.get(message["id"])
        assert event is not None, f"an event that is not in the history arrived: {message}"
        assert (message["seq"], message["target"], message["kind"], message["from"],
                message["to"], message["reason_code"], message["root_cause"],
                message["flapping"]) == (
            event.seq, event.target, event.kind.value, event.from_state.value,
            event.to_state.value, event.reason_code.value, event.root_cause, event.flapping)
        if message["id"] in seen:
            assert message == seen[message["id"]], "a repeated event differs from the first copy"
        else:
            seen[message["id"]] = message
            first.append(message["id"])
    assert first == [e.id for e in stored], "MQTT's first arrivals are not the history's order"
    copies = Counter(m["id"] for m in received)
    return Delivery(len(stored), len(received), sum(n - 1 for n in copies.values()))


def wait_delivered(daemon: MonitordProcess, recorder: MqttRecorder, topic: str,
                   state_dir: Path, timeout: float = 30.0) -> tuple[list[StateEvent], Delivery]:
    """Until the outbox is empty and every stored event was received; then the comparison."""
    wait_for("the outbox to drain", lambda: value(
        daemon.samples(), "monitord_mqtt_outbox_events") == 0, timeout=timeout)
    stored = history(state_dir)
    ids = {e.id for e in stored}

    def all_received(messages: list[Received]) -> bool:
        return ids <= {m.json()["id"] for m in messages if m.topic == topic}
    recorder.wait_for("every stored event over MQTT", all_received, timeout=timeout)
    return stored, assert_delivered_in_order(stored, events_of(recorder, topic))


def state_events(events: list[StateEvent], target: str) -> list[tuple[str, str]]:
    """(from, to) of a target's state events, in order."""
    return [(e.from_state.value, e.to_state.value) for e in events
            if e.target == target and e.kind is EventKind.STATE]


def assert_history_consistent(events: list[StateEvent]) -> None:
    """No duplicate, no gap: per target, each change starts where the previous one ended, and
    monitoring began (unknown -> ...) once."""
    assert len({e.id for e in events}) == len(events), "duplicate event ids in the history"
    seqs = [e.seq for e in events]
    assert seqs == sorted(s for s in seqs if s is not None)
    last: dict[str, State] = {}
    for e in events:
        if e.kind is not EventKind.STATE:
            continue
        if e.target in last:
            assert e.from_state is last[e.target], f"gap in {e.target}'s history at {e}"
        else:
            assert e.from_state is State.UNKNOWN, f"{e.target}'s first event is {e}"
        last[e.target] = e.to_state
