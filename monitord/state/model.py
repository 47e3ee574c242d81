"""The values of monitord's state layer: target states, their parameters, and state events.

A target's *state* is derived from its ICMP probes with hysteresis and from its parent's
state (topology). Every change of state is a StateEvent: appended to the history store, then
published over MQTT from the store's outbox (at least once; the event id identifies
duplicates).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

from monitord.model import Check, StateParams

__all__ = ["BLOCKING_STATES", "EventKind", "Placement", "ReasonCode", "State", "StateEvent",
           "StateParams", "TargetStatus", "new_event_id"]


class State(StrEnum):
    UNKNOWN = "unknown"  # not yet probed (or not since monitoring of it began)
    UP = "up"
    DEGRADED = "degraded"  # reachable, but loss or latency over the profile's thresholds
    DOWN = "down"  # its own probes fail while its parent is known to be reachable
    UNREACHABLE = "unreachable"  # its parent is down or unreachable


# States in which a target's children cannot be reached through it.
BLOCKING_STATES = frozenset({State.DOWN, State.UNREACHABLE})


class EventKind(StrEnum):
    STATE = "state"  # from_state -> to_state
    FLAPPING = "flapping"  # flapping started (flapping=True) or stopped (False); states equal


class ReasonCode(StrEnum):
    """Why a target is in its state: machine-readable, for bots and reports to translate."""

    FIRST_PROBE = "first_probe"  # first probe result after monitoring began
    PROBES_GOOD = "probes_good"  # enough consecutive good probes
    PROBES_DEGRADED = "probes_degraded"  # enough probes over the loss/latency thresholds
    PROBES_FAILED = "probes_failed"  # enough failed probes, parent known reachable
    NO_PARENT = "no_parent"  # enough failed probes, and no parent to blame
    PARENT_DOWN = "parent_down"  # an ancestor is down: this target is unreachable
    PARENT_STATE_TIMEOUT = "parent_state_timeout"  # parent's state stayed unknown too long
    AWAITING_PROBE = "awaiting_probe"  # parent recovered; waiting for this target's own probe
    RESTORED = "restored"  # restored from the history store at start
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_STOPPED = "flapping_stopped"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a target sits: copied into every event, so history outlives config changes."""

    target: str
    province: str
    kabupaten: str
    site: str
    role: str
    address: str
    name: str = ""
    parent: str | None = None

    @classmethod
    def of(cls, check: Check) -> Placement:
        return cls(target=check.target, province=check.province, kabupaten=check.kabupaten,
                   site=check.site, role=check.role, address=str(check.address),
                   name=check.name, parent=check.parent)


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A target's current state, as published (retained) and stored for restore on start."""

    placement: Placement
    state: State
    since: float  # wall-clock time it entered `state`
    reason: str  # human-readable, English
    reason_code: ReasonCode
    root_cause: str | None  # target id: itself when down, the failed ancestor when unreachable
    own_state: State  # what its own probes say, parents aside
    flapping: bool = False

    @property
    def target(self) -> str:
        return self.placement.target


@dataclass(frozen=True, slots=True)
class StateEvent:
    """One change of a target's state (or of its flapping flag)."""

    id: str  # globally unique (UUIDv7 text): consumers drop duplicates by it
    time: float  # wall-clock time the change was decided
    kind: EventKind
    placement: Placement
    from_state: State
    to_state: State
    reason: str
    reason_code: ReasonCode
    root_cause: str | None
    flapping: bool
    seq: int | None = None  # position in the history store, set once stored

    @property
    def target(self) -> str:
        return self.placement.target


def new_event_id(now: float | None = None) -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort roughly by creation, and random enough
    that two daemons (or a restored backup) never collide."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) \
        | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
