"""Appends state events to a history database as fast as it can, for the crash test in
test_history.py, which SIGKILLs it mid-way.

Usage: history_writer.py PATH MAX_EVENTS. Prints the number of events committed so far after
every commit. Stops by itself after MAX_EVENTS events or 20 seconds, whichever comes first.
"""

from __future__ import annotations

import sys
import time

from monitord.state.history import HistoryStore
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)

TARGETS = tuple(f"desa-{i}" for i in range(7))
CYCLE = (State.UP, State.DEGRADED, State.DOWN, State.UNREACHABLE)
TIME_LIMIT = 20.0


def main(path: str, max_events: int) -> None:
    store = HistoryStore(path)
    states = dict.fromkeys(TARGETS, State.UNKNOWN)
    written = 0
    deadline = time.monotonic() + TIME_LIMIT
    batch_number = 0
    while written < max_events and time.monotonic() < deadline:
        events: list[StateEvent] = []
        statuses: list[TargetStatus] = []
        # 1 to 3 targets per batch, some batches with two changes of the same target.
        for offset in range(batch_number % 3 + 1):
            target = TARGETS[(batch_number + offset * 3) % len(TARGETS)]
            placement = Placement(target=target, province="Jawa Tengah", kabupaten="Kab. Demak",
                                  site=target, role="access", address="192.0.2.1")
            now = time.time()
            new_state = CYCLE[(CYCLE.index(states[target]) + 1) % len(CYCLE)
                              if states[target] in CYCLE else 0]
            events.append(StateEvent(
                id=new_event_id(now), time=now, kind=EventKind.STATE, placement=placement,
                from_state=states[target], to_state=new_state, reason="test",
                reason_code=ReasonCode.PROBES_GOOD, root_cause=None, flapping=False))
            statuses.append(TargetStatus(
                placement=placement, state=new_state, since=now, reason="test",
                reason_code=ReasonCode.PROBES_GOOD, root_cause=None, own_state=new_state))
            states[target] = new_state
        store.append(events, statuses, outbox=True)
        written += len(events)
        batch_number += 1
        print(written, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
