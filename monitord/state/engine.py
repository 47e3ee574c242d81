"""The target state engine: ICMP probe results in, per-target states and StateEvents out.

Pure and synchronous: no I/O and no clock reads (every call is given `now`). Each target runs
its *own* state machine on its probes, with hysteresis (N failed of the last M probes -> down,
K good in a row -> back). Its *published* state also weighs its parent: behind a down or
unreachable parent it is UNREACHABLE, and its own DOWN is only published once the parent is
known to have been reachable at the moment of the failure, so one outage yields one DOWN (at
the failed link) whatever order the results of the link and the devices behind it arrive in.

The engine runs in the event loop's thread; the HTTP scrape reads `statuses()` from another.
Published TargetStatus objects are immutable and replaced by a single dict assignment, and the
dict itself is replaced (not resized) when targets come or go, so reading it is always safe.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from itertools import islice
from typing import NamedTuple

from monitord.model import Check, IcmpProfile, ProbeResult, StateParams
from monitord.state.model import (
    BLOCKING_STATES,
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)

__all__ = ["StateEngine"]

# Published changes among these count towards flapping; entering or leaving UNKNOWN or
# UNREACHABLE does not (those follow monitoring start and the parent, not the target).
_FLAP_STATES = frozenset({State.UP, State.DEGRADED, State.DOWN})
_REACHABLE_STATES = frozenset({State.UP, State.DEGRADED})
_OWN_STATES = frozenset({State.UNKNOWN, State.UP, State.DEGRADED, State.DOWN})


class Verdict(Enum):
    GOOD = "good"
    POOR = "poor"  # answered, but loss or median RTT over the profile's thresholds
    BAD = "bad"  # no reply at all


class _Probe(NamedTuple):
    started: float
    verdict: Verdict
    detail: str  # what made it POOR, for the DEGRADED reason; "" otherwise


def _judge(result: ProbeResult, params: StateParams) -> _Probe:
    if result.received == 0:
        return _Probe(result.started, Verdict.BAD, "")
    problems: list[str] = []
    loss = result.loss_ratio
    if loss > params.max_loss_ratio:
        problems.append(f"{loss:.0%} packet loss (threshold {params.max_loss_ratio:.0%})")
    if params.max_rtt is not None and result.rtts:
        # The median, so one slow echo in a burst (a radio retransmit) does not count.
        median = statistics.median(result.rtts)
        if median > params.max_rtt:
            problems.append(f"median RTT {median * 1000:.0f} ms "
                            f"(threshold {params.max_rtt * 1000:.0f} ms)")
    if problems:
        return _Probe(result.started, Verdict.POOR, "; ".join(problems))
    return _Probe(result.started, Verdict.GOOD, "")


def _duration(seconds: float) -> str:
    """30m, 2h, 90s: how operators write durations."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(slots=True, eq=False)
class _Target:
    """The engine's mutable bookkeeping for one target; `status` is what is published."""

    check: Check
    profile: IcmpProfile
    placement: Placement
    status: TargetStatus
    own: State  # what its own probes say: UNKNOWN, UP, DEGRADED or DOWN
    flapping: bool
    window: deque[_Probe]
    parent: _Target | None = None
    children: list[_Target] = field(default_factory=list)
    down_evidence: float | None = None  # started of the failure that made its own state DOWN
    last_ok_started: float | None = None  # started of its latest answered probe
    floor: float | None = None  # probes started before this are stale: ignored
    awaiting: bool = False  # unreachable, re-judging itself from probes started after `floor`
    pending_since: float | None = None  # own DOWN waiting for the parent's verdict since then
    reachable_since: float | None = None  # started of the probe that ended its DOWN/UNREACHABLE
    poor_detail: str = ""  # what the latest POOR probe measured
    flap_times: deque[float] = field(default_factory=deque)  # times of counted state changes
    flap_hold_until: float = 0.0  # a restored flapping flag is kept at least until then

    @property
    def id(self) -> str:
        return self.check.target

    @property
    def params(self) -> StateParams:
        return self.profile.state

    @classmethod
    def start(cls, check: Check, profile: IcmpProfile, restored: TargetStatus | None,
              now: float) -> _Target:
        placement = Placement.of(check)
        if restored is None:
            status = TargetStatus(placement=placement, state=State.UNKNOWN, since=now,
                                  reason="not yet probed", reason_code=ReasonCode.AWAITING_PROBE,
                                  root_cause=None, own_state=State.UNKNOWN)
        else:
            own = restored.own_state if restored.own_state in _OWN_STATES else State.UNKNOWN
            status = replace(restored, placement=placement, own_state=own)
        target = cls(check=check, profile=profile, placement=placement, status=status,
                     own=status.own_state, flapping=status.flapping,
                     window=deque(maxlen=_window_size(profile.state)))
        if status.flapping:
            # The times of the changes that made it flap were not stored: hold the flag for a
            # window rather than announce on the first probe after a restart that it stopped.
            target.flap_hold_until = now + profile.state.flap_window
        return target

    def retarget(self, check: Check, profile: IcmpProfile) -> None:
        """Take a reloaded Check: new parameters and placement, same state and probes."""
        if check.parent != self.check.parent:
            self.awaiting = False  # a new path: fresh evidence is counted from now on
        self.check = check
        self.profile = profile
        size = _window_size(profile.state)
        if self.window.maxlen != size:
            self.window = deque(self.window, maxlen=size)
        placement = Placement.of(check)
        if placement != self.placement:
            self.placement = placement
            self.status = replace(self.status, placement=placement)


def _window_size(params: StateParams) -> int:
    # Room for the failure window and for a recovery run longer than it.
    return max(params.down_window, params.up_successes)


def _advance_own(t: _Target, probe: _Probe) -> None:
    """Feed one probe to the target's own state machine (parents play no part here)."""
    params = t.params
    t.window.append(probe)
    if probe.verdict is Verdict.POOR:
        t.poor_detail = probe.detail
    k = params.up_successes
    last_k = list(islice(reversed(t.window), k))
    recovered = len(last_k) == k and all(p.verdict is not Verdict.BAD for p in last_k)
    if t.own is State.DOWN:
        # Checked before the failure count: K answered probes in a row end an outage even while
        # its failures are still inside the window (they are dropped below, so they cannot
        # bring it straight back down).
        if recovered:
            poor = any(p.verdict is Verdict.POOR for p in last_k)
            t.own = State.DEGRADED if poor else State.UP
            _keep_last(t.window, k)
        return
    recent = list(islice(reversed(t.window), params.down_window))  # newest first
    failed = [p for p in recent if p.verdict is Verdict.BAD]
    if len(failed) >= params.down_failures:
        # The evidence is the failure that decided it; later ones do not move it, or a parent
        # whose probes start just before the target's might never catch up with it.
        t.own = State.DOWN
        t.down_evidence = failed[0].started
        return
    if t.own is State.DEGRADED:
        if recovered and all(p.verdict is Verdict.GOOD for p in last_k):
            t.own = State.UP
            _keep_last(t.window, k)
        return
    if sum(p.verdict is not Verdict.GOOD for p in recent) >= params.down_failures:
        t.own = State.DEGRADED
    elif t.own is State.UNKNOWN:
        if probe.verdict is Verdict.GOOD:
            t.own = State.UP
        elif probe.verdict is Verdict.POOR:
            t.own = State.DEGRADED
    else:
        t.own = State.UP


def _keep_last(window: deque[_Probe], count: int) -> None:
    while len(window) > count:
        window.popleft()


def _restart_own(t: _Target, floor: float) -> None:
    """Forget what the target's probes said before `floor` and judge it afresh from the rest."""
    t.floor = floor
    kept = [p for p in t.window if p.started >= floor]
    t.window.clear()
    t.own = State.UNKNOWN
    t.down_evidence = None
    t.poor_detail = ""
    for probe in kept:
        _advance_own(t, probe)


def _recovery_run_start(t: _Target, now: float) -> float:
    """Started of the first probe of the answered run that ends its window."""
    start = now
    for probe in reversed(t.window):
        if probe.verdict is Verdict.BAD:
            break
        start = probe.started
    return start


def _parent_wait(parent: _Target) -> float:
    """How long a child's DOWN may wait for its parent's verdict: time for the parent to fill
    its failure window, finish its last probe, and one interval of slack."""
    profile = parent.profile
    return profile.interval * profile.state.down_window + profile.deadline + profile.interval


class StateEngine:
    """Turns ICMP ProbeResults into per-target states with hysteresis and topology awareness.
    Every call returns the StateEvents of the changes it caused, parents' before children's."""

    def __init__(self) -> None:
        self._targets: dict[str, _Target] = {}
        self._published: dict[str, TargetStatus] = {}
        # Targets whose published status changed since take_changed(): retained MQTT statuses
        # follow every change (a root cause moving while a target stays unreachable, too),
        # not only the ones that come with an event.
        self._changed: set[str] = set()

    # -- public API --------------------------------------------------------------------------

    def set_checks(self, checks: Iterable[Check], now: float,
                   restored: Mapping[str, TargetStatus] | None = None) -> list[StateEvent]:
        """Take the (new) set of checks; ICMP ones drive state. New targets start from
        `restored` if it has them, else UNKNOWN; changed ones keep state and probes."""
        restored = restored or {}
        previous = self._targets
        targets: dict[str, _Target] = {}
        for check in checks:
            if check.kind != "icmp" or not isinstance(check.profile, IcmpProfile):
                continue
            target = targets.get(check.target) or previous.get(check.target)
            if target is None:
                target = _Target.start(check, check.profile, restored.get(check.target), now)
            elif target.check != check:
                target.retarget(check, check.profile)
            targets[check.target] = target
        order = _link(targets)
        self._targets = targets
        self._published = {target_id: t.status for target_id, t in targets.items()}
        self._changed.update(t for t in targets if t not in previous)
        events: list[StateEvent] = []
        for target in order:  # parents first, so each sees its parent's final state
            # Only meaningful in the pass where the parent itself recovered (observe): here a
            # target newly unblocked by a topology change counts fresh evidence from now.
            target.reachable_since = None
            self._evaluate(target, now, events)
        return events

    def observe(self, result: ProbeResult, now: float) -> list[StateEvent]:
        """Take one ICMP probe result; results of replaced or unknown checks are ignored."""
        check = result.check
        target = self._targets.get(check.target)
        if target is None or check.kind != "icmp" or (check is not target.check
                                                      and check != target.check):
            return []
        # A probe started before the floor ran while the path to it was still down.
        if target.floor is None or result.started >= target.floor:
            probe = _judge(result, target.params)
            _advance_own(target, probe)
            if probe.verdict is not Verdict.BAD and (target.last_ok_started is None
                                                     or probe.started > target.last_ok_started):
                target.last_ok_started = probe.started
        events: list[StateEvent] = []
        self._settle(target, now, events)
        return events

    def statuses(self) -> Mapping[str, TargetStatus]:
        """Current status of every target; safe to read from another thread."""
        return self._published

    def status(self, target: str) -> TargetStatus | None:
        return self._published.get(target)

    def take_changed(self) -> set[str]:
        """Targets whose status changed (or that were added) since the last call."""
        changed, self._changed = self._changed, set()
        return changed

    def pending(self, target: str) -> bool:
        """Its own probes say DOWN, but it waits for its parent's verdict on that moment."""
        found = self._targets.get(target)
        return found is not None and found.pending_since is not None

    # -- evaluation --------------------------------------------------------------------------

    def _settle(self, probed: _Target, now: float, events: list[StateEvent]) -> None:
        """Re-evaluate the probed target, then (breadth first) whoever depends on it."""
        queue = deque([probed])
        while queue:  # bounded: the parent links form a forest (see _link)
            target = queue.popleft()
            affects_children = self._evaluate(target, now, events)
            if target is probed:
                self._check_flapping_stopped(target, now, events)
            if affects_children:
                queue.extend(target.children)
            elif target is probed:
                # Its new probe may be the evidence a pending child waits for.
                queue.extend(c for c in target.children if c.pending_since is not None)

    def _evaluate(self, t: _Target, now: float, events: list[StateEvent]) -> bool:
        """Publish the target's state from its own state and its parent's. Returns whether its
        children may need re-evaluation (its state or root cause changed)."""
        parent = t.parent
        current = t.status
        if parent is not None and parent.status.state in BLOCKING_STATES:
            t.awaiting = False
            t.pending_since = None
            if parent.status.state is State.DOWN:
                root = parent.id
                reason = f"parent {parent.id} is down"
            else:
                root = parent.status.root_cause or parent.id
                reason = f"parent {parent.id} is unreachable (root cause {root})"
            return self._publish(t, State.UNREACHABLE, reason, ReasonCode.PARENT_DOWN, root,
                                 now, events)
        if current.state is State.UNREACHABLE:
            if not t.awaiting:
                # The path is clear again, but what its probes said while it was not can't be
                # trusted either way: judge it only from probes started after the recovery.
                t.awaiting = True
                floor = now
                if parent is not None and parent.reachable_since is not None:
                    floor = parent.reachable_since
                _restart_own(t, floor)
            if t.own is State.UNKNOWN:
                t.pending_since = None
                reason = ("no parent blocks it any more" if parent is None
                          else f"parent {parent.id} recovered") + "; waiting for own probe"
                return self._publish(t, State.UNREACHABLE, reason, ReasonCode.AWAITING_PROBE,
                                     current.root_cause, now, events)
        if t.own is State.DOWN:
            return self._judge_down(t, parent, now, events)
        t.pending_since = None
        return self._judge_reachable(t, parent, now, events)

    def _judge_down(self, t: _Target, parent: _Target | None, now: float,
                    events: list[StateEvent]) -> bool:
        current = t.status
        if current.state is State.DOWN:
            t.pending_since = None
            return self._publish(t, State.DOWN, current.reason, current.reason_code, t.id, now,
                                 events)
        recent = list(islice(reversed(t.window), t.params.down_window))
        failed = sum(p.verdict is Verdict.BAD for p in recent)
        reason = (f"{failed} of the last {len(recent)} probes failed" if recent
                  else "its probes failed")
        if parent is None:
            code = ReasonCode.NO_PARENT
        elif self._parent_confirms(t, parent):
            code = ReasonCode.PROBES_FAILED
        else:
            if t.pending_since is None:
                t.pending_since = now
            waited = now - t.pending_since
            if waited < _parent_wait(parent):
                # Keep what is published until the parent's probes of that moment are in.
                return self._publish(t, current.state, current.reason, current.reason_code,
                                     current.root_cause, now, events)
            code = ReasonCode.PARENT_STATE_TIMEOUT
            reason += f"; parent {parent.id}'s state stayed unknown for {waited:.0f} s"
        t.pending_since = None
        return self._publish(t, State.DOWN, reason, code, t.id, now, events)

    @staticmethod
    def _parent_confirms(t: _Target, parent: _Target) -> bool:
        """The parent is reachable and answered a probe started no earlier than the target's
        latest failure: so the failure is the target's own, not the path's."""
        if parent.status.state not in _REACHABLE_STATES or parent.last_ok_started is None:
            return False
        return t.down_evidence is None or parent.last_ok_started >= t.down_evidence

    def _judge_reachable(self, t: _Target, parent: _Target | None, now: float,
                         events: list[StateEvent]) -> bool:
        current = t.status
        if t.own is State.UNKNOWN or t.own is current.state:
            # Never probed yet, or no change: keep the reason; only a root cause may move.
            root = self._degraded_root(t, parent) if t.own is State.DEGRADED \
                else current.root_cause
            return self._publish(t, current.state, current.reason, current.reason_code, root,
                                 now, events)
        if t.own is State.DEGRADED:
            return self._publish(t, State.DEGRADED, t.poor_detail or "probes degraded",
                                 ReasonCode.PROBES_DEGRADED, self._degraded_root(t, parent),
                                 now, events)
        if current.state is State.UNKNOWN:
            reason, code = "first probe answered", ReasonCode.FIRST_PROBE
        elif current.state is State.UNREACHABLE:
            via = "no parent blocks it any more" if parent is None \
                else f"parent {parent.id} recovered"
            reason, code = f"own probe answered after {via}", ReasonCode.PROBES_GOOD
        else:
            reason = f"{t.params.up_successes} good probes in a row"
            code = ReasonCode.PROBES_GOOD
        return self._publish(t, State.UP, reason, code, None, now, events)

    @staticmethod
    def _degraded_root(t: _Target, parent: _Target | None) -> str:
        # Loss on a link shows on everything behind it: blame the link's root cause.
        if parent is not None and parent.status.state is State.DEGRADED:
            return parent.status.root_cause or parent.id
        return t.id

    # -- publishing --------------------------------------------------------------------------

    def _publish(self, t: _Target, state: State, reason: str, code: ReasonCode,
                 root_cause: str | None, now: float, events: list[StateEvent]) -> bool:
        """Replace the target's published status if anything in it changed, and emit the event
        of a state change. Returns whether its state or root cause changed."""
        old = t.status
        changed = state is not old.state
        if not changed and (reason, code, root_cause, t.own, t.flapping) == (
                old.reason, old.reason_code, old.root_cause, old.own_state, old.flapping):
            return False
        flapping_started = False
        if changed:
            if old.state in _FLAP_STATES and state in _FLAP_STATES:
                flapping_started = self._count_change(t, now)
            if old.state in BLOCKING_STATES and state not in BLOCKING_STATES:
                t.reachable_since = _recovery_run_start(t, now)
            elif state in BLOCKING_STATES:
                t.reachable_since = None
            if state is not State.UNREACHABLE:
                t.awaiting = False
        status = TargetStatus(placement=t.placement, state=state,
                              since=now if changed else old.since, reason=reason,
                              reason_code=code, root_cause=root_cause, own_state=t.own,
                              flapping=t.flapping)
        self._replace_status(t, status)
        if changed:
            events.append(self._event(t, old.state, now))
        if flapping_started:
            events.append(self._flapping_event(t, now, started=True))
        return changed or root_cause != old.root_cause

    def _replace_status(self, t: _Target, status: TargetStatus) -> None:
        t.status = status
        self._changed.add(t.id)
        self._published[t.id] = status  # one assignment: a reader sees the old or the new

    def _event(self, t: _Target, from_state: State, now: float) -> StateEvent:
        status = t.status
        return StateEvent(id=new_event_id(now), time=now, kind=EventKind.STATE,
                          placement=t.placement,
                          from_state=from_state, to_state=status.state, reason=status.reason,
                          reason_code=status.reason_code, root_cause=status.root_cause,
                          flapping=status.flapping)

    # -- flapping ----------------------------------------------------------------------------

    def _count_change(self, t: _Target, now: float) -> bool:
        """Record a counted state change; returns whether it made the target start flapping."""
        t.flap_times.append(now)
        self._forget_old_changes(t, now)
        if t.flapping or len(t.flap_times) < t.params.flap_changes:
            return False
        t.flapping = True
        return True

    def _forget_old_changes(self, t: _Target, now: float) -> None:
        horizon = now - t.params.flap_window
        while t.flap_times and t.flap_times[0] < horizon:
            t.flap_times.popleft()

    def _check_flapping_stopped(self, t: _Target, now: float, events: list[StateEvent]) -> None:
        self._forget_old_changes(t, now)
        if not t.flapping or now < t.flap_hold_until:
            return
        # Hysteresis on the flag itself: it stops well below the count that started it.
        if len(t.flap_times) > t.params.flap_changes // 2:
            return
        t.flapping = False
        current = t.status
        self._replace_status(t, replace(current, flapping=False, own_state=t.own))
        events.append(self._flapping_event(t, now, started=False))

    def _flapping_event(self, t: _Target, now: float, *, started: bool) -> StateEvent:
        status = t.status
        code = ReasonCode.FLAPPING_STARTED if started else ReasonCode.FLAPPING_STOPPED
        reason = (f"{len(t.flap_times)} state changes within "
                  f"{_duration(t.params.flap_window)}")
        return StateEvent(id=new_event_id(now), time=now, kind=EventKind.FLAPPING,
                          placement=t.placement, from_state=status.state, to_state=status.state,
                          reason=reason, reason_code=code, root_cause=status.root_cause,
                          flapping=started)


def _link(targets: Mapping[str, _Target]) -> list[_Target]:
    """Resolve parents and children; returns the targets parents first. A parent that is not
    a monitored target counts as none."""
    for target in targets.values():
        target.children = []
    for target in targets.values():
        parent_id = target.check.parent
        parent = targets.get(parent_id) if parent_id is not None else None
        target.parent = parent if parent is not target else None
        if target.parent is not None:
            target.parent.children.append(target)
    order = _parents_first(targets.values())
    if len(order) < len(targets):
        _cut_cycles(targets.values(), {t.id for t in order})
        order = _parents_first(targets.values())
    return order


def _cut_cycles(targets: Iterable[_Target], reached: set[str]) -> None:
    """A parent cycle (the config loader refuses them) would leave its targets unevaluated and
    propagation going round forever: make one target of each cycle a root."""
    for start in targets:
        walked: set[str] = set()
        node: _Target | None = start
        while node is not None and node.id not in reached and node.id not in walked:
            walked.add(node.id)
            node = node.parent
        if node is not None and node.id in walked and node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        reached |= walked  # reachable from that root now, or from a root already


def _parents_first(targets: Iterable[_Target]) -> list[_Target]:
    order = [t for t in targets if t.parent is None]
    index = 0
    while index < len(order):  # breadth first from the roots; ends: each target once
        order.extend(order[index].children)
        index += 1
    return order
