"""The state engine: hysteresis, topology (parents before children, whatever order results
arrive in), fresh evidence after a recovery, flapping, restore and reloads.

Probes are given as ProbeResults built here; time is plain numbers. Unless a test says
otherwise a profile probes every 10 s: 3 failed of the last 5 probes -> down, 2 answered in a
row -> back, over 20 % loss or a median RTT over 500 ms -> degraded, 4 changes within 10 min ->
flapping. A parent's verdict may be waited for 10*5 + 1.8 + 10 = 61.8 s.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import FrozenInstanceError, replace

import pytest

from monitord.model import (
    Check,
    IcmpProfile,
    ProbeResult,
    SnmpCredentials,
    SnmpProfile,
    StateParams,
)
from monitord.state.engine import StateEngine
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
)

UP, DOWN, DEGRADED = State.UP, State.DOWN, State.DEGRADED
UNKNOWN, UNREACHABLE = State.UNKNOWN, State.UNREACHABLE

PARAMS = StateParams(down_failures=3, down_window=5, up_successes=2, max_loss_ratio=0.2,
                     max_rtt=0.5, flap_changes=4, flap_window=600.0)
PROFILE = IcmpProfile(name="radio", interval=10.0, count=5, packet_interval=0.2, timeout=1.0,
                      size=56, state=PARAMS)
PARENT_WAIT = 10.0 * 5 + PROFILE.deadline + 10.0
LINK = "kab-link"
FAST = (0.02,) * 5


def make_check(target: str, parent: str | None = None, *, profile: IcmpProfile = PROFILE,
               province: str = "sulbar") -> Check:
    return Check(target=target, kind="icmp", address=ipaddress.ip_address("127.0.0.1"),
                 province=province, kabupaten="mamuju", site=f"site-{target}", role="village",
                 profile=profile, parent=parent, name=target.upper())


def reply(check: Check, started: float, received: int = 5,
          rtts: tuple[float, ...] | None = None) -> ProbeResult:
    return ProbeResult(check=check, started=started, duration=1.0, sent=5, received=received,
                       rtts=FAST[:received] if rtts is None else rtts)


def transitions(events: Iterable[StateEvent]) -> list[tuple[str, State, State]]:
    return [(e.target, e.from_state, e.to_state) for e in events if e.kind is EventKind.STATE]


class Net:
    """A topology under test: the engine, its checks by target, and every event it emitted."""

    def __init__(self, *checks: Check, now: float = 0.0,
                 restored: Mapping[str, TargetStatus] | None = None) -> None:
        self.engine = StateEngine()
        self.checks = {c.target: c for c in checks}
        self.events = self.engine.set_checks(checks, now, restored)

    def probe(self, target: str, started: float, received: int = 5,
              rtts: tuple[float, ...] | None = None, now: float | None = None) -> list[StateEvent]:
        """One result; it arrives 2 s after the probe started unless `now` says otherwise."""
        result = reply(self.checks[target], started, received, rtts)
        events = self.engine.observe(result, started + 2.0 if now is None else now)
        self.events.extend(events)
        return events

    def ok(self, target: str, started: float, now: float | None = None) -> list[StateEvent]:
        return self.probe(target, started, now=now)

    def fail(self, target: str, started: float, now: float | None = None) -> list[StateEvent]:
        return self.probe(target, started, received=0, now=now)

    def reconfigure(self, *checks: Check, now: float) -> list[StateEvent]:
        self.checks = {c.target: c for c in checks}
        events = self.engine.set_checks(checks, now)
        self.events.extend(events)
        return events

    def status(self, target: str) -> TargetStatus:
        status = self.engine.status(target)
        assert status is not None, target
        return status

    def state(self, target: str) -> State:
        return self.status(target).state


# -- one target: verdicts and hysteresis -------------------------------------------------------

def test_a_new_target_is_unknown_and_its_first_answered_probe_makes_it_up() -> None:
    net = Net(make_check("desa"))
    assert net.events == []
    assert net.engine.take_changed() == {"desa"}  # added: its status is new
    status = net.status("desa")
    assert (status.state, status.reason_code, status.root_cause) == (
        UNKNOWN, ReasonCode.AWAITING_PROBE, None)

    [event] = net.ok("desa", 10.0)
    assert (event.from_state, event.to_state, event.reason_code) == (
        UNKNOWN, UP, ReasonCode.FIRST_PROBE)
    assert event.reason == "first probe answered"
    assert event.time == 12.0
    assert event.placement == Placement.of(net.checks["desa"])
    assert uuid.UUID(event.id).version == 7
    assert net.status("desa").since == 12.0


def test_unanswered_probes_keep_a_new_target_unknown_until_enough_fail() -> None:
    net = Net(make_check("desa"))
    assert net.fail("desa", 10.0) == []
    assert net.fail("desa", 20.0) == []
    assert net.state("desa") is UNKNOWN

    [event] = net.fail("desa", 30.0)
    assert (event.from_state, event.to_state) == (UNKNOWN, DOWN)
    # No parent to ask: its own probes are the whole story.
    assert event.reason_code is ReasonCode.NO_PARENT
    assert event.reason == "3 of the last 3 probes failed"
    assert event.root_cause == "desa"


def test_isolated_lost_probes_never_change_the_state() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    for i in range(1, 31):  # every third probe lost: at most 2 of any 5
        events = net.probe("desa", 10.0 * i, received=0 if i % 3 == 0 else 5)
        assert events == [], i
    assert net.status("desa").own_state is UP
    assert net.state("desa") is UP


def test_n_failed_of_the_last_m_probes_make_it_down() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    net.ok("desa", 10.0)
    assert net.fail("desa", 20.0) == []
    assert net.ok("desa", 30.0) == []
    assert net.fail("desa", 40.0) == []
    assert net.ok("desa", 50.0) == []
    [event] = net.fail("desa", 60.0)
    assert (event.from_state, event.to_state) == (UP, DOWN)
    assert event.reason == "3 of the last 5 probes failed"


def test_k_answered_probes_in_a_row_bring_it_back_and_the_outage_is_then_forgotten() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    for started in (10.0, 20.0, 30.0):
        net.fail("desa", started)
    assert net.state("desa") is DOWN

    assert net.ok("desa", 40.0) == []
    assert net.state("desa") is DOWN
    [event] = net.ok("desa", 50.0)
    assert (event.from_state, event.to_state, event.reason_code) == (
        DOWN, UP, ReasonCode.PROBES_GOOD)
    assert event.reason == "2 good probes in a row"
    assert event.root_cause is None
    # The outage's failures are still among the last 5 probes but count no more: one more
    # lost probe is a single failure, not the third of five.
    assert net.fail("desa", 60.0) == []
    assert net.state("desa") is UP


def test_a_failure_during_recovery_restarts_the_count_of_answered_probes() -> None:
    net = Net(make_check("desa"))
    for started in (0.0, 10.0, 20.0):
        net.fail("desa", started)
    net.ok("desa", 30.0)
    net.fail("desa", 40.0)
    assert net.ok("desa", 50.0) == []
    assert net.state("desa") is DOWN
    assert transitions(net.ok("desa", 60.0)) == [("desa", DOWN, UP)]


def test_loss_over_the_threshold_makes_it_degraded_and_k_good_probes_recover_it() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    for i in range(1, 6):  # 20 % loss is at the threshold, not over it
        assert net.probe("desa", 10.0 * i, received=4) == []
    assert net.probe("desa", 60.0, received=3) == []
    assert net.probe("desa", 70.0, received=3) == []
    [event] = net.probe("desa", 80.0, received=3)
    assert (event.from_state, event.to_state, event.reason_code) == (
        UP, DEGRADED, ReasonCode.PROBES_DEGRADED)
    assert event.reason == "40% packet loss (threshold 20%)"
    assert event.root_cause == "desa"

    assert net.ok("desa", 90.0) == []
    assert net.state("desa") is DEGRADED
    [event] = net.ok("desa", 100.0)
    assert (event.from_state, event.to_state, event.reason) == (
        DEGRADED, UP, "2 good probes in a row")
    assert net.probe("desa", 110.0, received=3) == []  # the episode's poor probes are forgotten


def test_a_high_median_rtt_makes_it_degraded_but_a_few_slow_echoes_do_not() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    two_slow = (0.02, 0.02, 0.02, 2.0, 2.0)  # mean 0.81 s, median 0.02 s
    for i in range(1, 6):
        assert net.probe("desa", 10.0 * i, rtts=two_slow) == []
    three_slow = (0.9, 0.02, 0.9, 0.02, 0.9)  # median 0.9 s
    net.probe("desa", 60.0, rtts=three_slow)
    net.probe("desa", 70.0, rtts=three_slow)
    [event] = net.probe("desa", 80.0, rtts=three_slow)
    assert (event.from_state, event.to_state) == (UP, DEGRADED)
    assert event.reason == "median RTT 900 ms (threshold 500 ms)"


def test_a_poor_first_probe_makes_an_unknown_target_degraded() -> None:
    net = Net(make_check("desa"))
    [event] = net.probe("desa", 0.0, received=2)
    assert (event.from_state, event.to_state, event.reason_code) == (
        UNKNOWN, DEGRADED, ReasonCode.PROBES_DEGRADED)
    assert event.reason == "60% packet loss (threshold 20%)"


def test_a_target_recovering_with_poor_probes_comes_back_degraded() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    for started in (10.0, 20.0, 30.0):
        net.fail("desa", started)
    net.probe("desa", 40.0, received=3)
    [event] = net.ok("desa", 50.0)
    assert (event.from_state, event.to_state) == (DOWN, DEGRADED)
    assert event.reason == "40% packet loss (threshold 20%)"


def test_enough_poor_and_failed_probes_together_make_it_degraded_not_down() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    net.fail("desa", 10.0)
    net.probe("desa", 20.0, received=3)
    [event] = net.fail("desa", 30.0)  # 2 failed + 1 lossy of the last 5
    assert (event.from_state, event.to_state) == (UP, DEGRADED)


# -- flapping ----------------------------------------------------------------------------------

def _bounce(net: Net, target: str, start: float) -> float:
    """Down (3 failures) and back up (2 answers), one probe every 10 s; returns the next start."""
    for i in range(3):
        net.fail(target, start + 10.0 * i)
    for i in range(3, 5):
        net.ok(target, start + 10.0 * i)
    return start + 50.0


def test_flapping_starts_at_n_changes_in_the_window_and_stops_when_half_remain() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    after = _bounce(net, "desa", 10.0)  # changes at 32 (down) and 52 (up)
    after = _bounce(net, "desa", after)  # 82 (down), 102 (up): the 4th change
    start_events = net.events[-2:]
    assert [(e.kind, e.from_state, e.to_state, e.flapping) for e in start_events] == [
        (EventKind.STATE, DOWN, UP, True),
        (EventKind.FLAPPING, UP, UP, True),
    ]
    assert start_events[1].reason_code is ReasonCode.FLAPPING_STARTED
    assert start_events[1].reason == "4 state changes within 10m"
    assert not any(e.flapping for e in net.events[:-2])
    assert net.status("desa").flapping

    after = _bounce(net, "desa", after)  # 132 (down), 152 (up): while flapping
    assert [(e.to_state, e.flapping) for e in net.events[-2:]] == [(DOWN, True), (UP, True)]

    # Steady from now on. It stops once the changes within 600 s are down to 2 (4 // 2): when
    # the one at 102 leaves the window, i.e. at the first result after 702.
    started = after
    while net.events[-1].kind is not EventKind.FLAPPING and started < 2000.0:
        net.ok("desa", started)
        started += 10.0
    stop = net.events[-1]
    assert stop.kind is EventKind.FLAPPING
    assert (stop.time, stop.from_state, stop.to_state, stop.flapping) == (712.0, UP, UP, False)
    assert stop.reason_code is ReasonCode.FLAPPING_STOPPED
    assert stop.reason == "2 state changes within 10m"
    assert not net.status("desa").flapping


def test_changes_into_and_out_of_unreachable_do_not_count_as_flapping() -> None:
    net = Net(make_check(LINK), make_check("desa", LINK))
    net.ok(LINK, 0.0)
    net.ok("desa", 4.0)
    started = 10.0
    for _ in range(3):  # the link bounces three times: 6 changes of the village
        started = _bounce(net, LINK, started)
        net.ok("desa", started + 4.0)
    assert net.status(LINK).flapping
    village = transitions(e for e in net.events if e.target == "desa")
    assert village.count(("desa", UP, UNREACHABLE)) == 3
    assert not net.status("desa").flapping


# -- a link and the villages behind it ---------------------------------------------------------

VILLAGES = ("desa-1", "desa-2", "desa-3")
ARRIVAL_ORDERS = ("link_first", "villages_first", "link_between", "shuffled")


def _round(net: Net, number: int, failing: set[str], order: str, phase: float,
           rng: random.Random) -> None:
    """One probing round: the link's probe starts at 10*number, the villages' `phase` later
    (or earlier); the results arrive in `order`, one after another, after all have started."""
    starts = {LINK: 10.0 * number, **dict.fromkeys(VILLAGES, 10.0 * number + phase)}
    if order == "link_first":
        arrival = [LINK, *VILLAGES]
    elif order == "villages_first":
        arrival = [*VILLAGES, LINK]
    elif order == "link_between":
        arrival = [VILLAGES[0], LINK, *VILLAGES[1:]]
    else:
        arrival = [LINK, *VILLAGES]
        rng.shuffle(arrival)
    now = max(starts.values()) + 2.0
    for i, target in enumerate(arrival):
        net.probe(target, starts[target], received=0 if target in failing else 5,
                  now=now + 0.01 * i)


def _link_with_villages() -> Net:
    return Net(make_check(LINK), *(make_check(v, LINK) for v in VILLAGES))


@pytest.mark.parametrize("phase", [4.0, -4.0])
@pytest.mark.parametrize("order", ARRIVAL_ORDERS)
def test_a_failed_link_is_one_down_and_its_villages_unreachable_in_any_arrival_order(
        order: str, phase: float) -> None:
    net = _link_with_villages()
    rng = random.Random(f"{order}{phase}")  # noqa: S311 (an arrival order)
    for number in (1, 2):
        _round(net, number, set(), order, phase, rng)
    before = len(net.events)
    for number in range(3, 12):  # the link and everything behind it stop answering at once
        _round(net, number, {LINK, *VILLAGES}, order, phase, rng)

    outage = net.events[before:]
    assert transitions(outage) == [(LINK, UP, DOWN)] + [(v, UP, UNREACHABLE) for v in VILLAGES]
    assert outage[0].reason_code is ReasonCode.NO_PARENT
    for village in VILLAGES:
        status = net.status(village)
        assert (status.state, status.root_cause, status.reason_code, status.reason) == (
            UNREACHABLE, LINK, ReasonCode.PARENT_DOWN, f"parent {LINK} is down")
        assert status.own_state is DOWN  # its own machine kept running meanwhile
        assert not net.engine.pending(village)


def test_a_village_down_behind_a_healthy_link_waits_for_the_links_next_answer() -> None:
    net = _link_with_villages()
    net.ok(LINK, 0.0)
    net.ok("desa-1", 4.0)
    for number in (1, 2, 3):
        net.ok(LINK, 10.0 * number)
        assert net.fail("desa-1", 10.0 * number + 4.0) == []
    # Its own probes say down, but the link's latest answer (started 30) is older than the
    # village's last failure (started 34): the link may have failed in between.
    assert net.status("desa-1").own_state is DOWN
    assert net.engine.pending("desa-1")
    assert net.state("desa-1") is UP
    events = net.ok(LINK, 40.0)
    # The link's answer started at 40 >= 34: the path worked when the village failed.
    assert transitions(events) == [("desa-1", UP, DOWN)]
    assert (events[0].reason_code, events[0].root_cause, events[0].reason) == (
        ReasonCode.PROBES_FAILED, "desa-1", "3 of the last 4 probes failed")
    assert not net.engine.pending("desa-1")


def test_an_answer_of_the_link_started_before_the_villages_failure_does_not_confirm_it() -> None:
    net = _link_with_villages()
    net.ok(LINK, 0.0)
    net.ok("desa-1", 4.0)
    for started in (14.0, 24.0, 34.0):
        net.fail("desa-1", started)
    assert net.ok(LINK, 30.0, now=37.0) == []  # in flight when the village failed at 34
    assert net.engine.pending("desa-1")
    assert transitions(net.ok(LINK, 40.0)) == [("desa-1", UP, DOWN)]


def test_a_pending_down_is_published_when_the_parent_stays_silent_too_long() -> None:
    net = _link_with_villages()
    net.ok(LINK, 0.0)
    net.ok("desa-1", 4.0)
    for started in (14.0, 24.0):
        net.fail("desa-1", started)
    assert net.fail("desa-1", 34.0) == []  # own DOWN at 36; the link sends nothing more
    assert net.engine.pending("desa-1")
    started = 44.0
    while started + 2.0 < 36.0 + PARENT_WAIT:
        assert net.fail("desa-1", started) == [], started
        started += 10.0
    [event] = net.fail("desa-1", started)
    assert event.time == 106.0
    assert (event.to_state, event.reason_code, event.root_cause) == (
        DOWN, ReasonCode.PARENT_STATE_TIMEOUT, "desa-1")
    assert event.reason == f"5 of the last 5 probes failed; parent {LINK}'s state stayed " \
                           "unknown for 70 s"
    assert not net.engine.pending("desa-1")


def test_a_parent_never_probed_cannot_confirm_a_down_but_its_first_answer_does() -> None:
    net = _link_with_villages()
    for started in (4.0, 14.0, 24.0):
        net.fail("desa-1", started)
    assert net.state("desa-1") is UNKNOWN
    assert net.engine.pending("desa-1")
    events = net.ok(LINK, 30.0)
    assert transitions(events) == [(LINK, UNKNOWN, UP), ("desa-1", UNKNOWN, DOWN)]


def test_villages_behind_a_recovered_link_are_judged_only_by_fresh_probes() -> None:
    net = _link_with_villages()
    rng = random.Random(1)  # noqa: S311 (an arrival order)
    for number in (0, 1):
        _round(net, number, set(), "link_first", 4.0, rng)
    for number in range(2, 7):
        _round(net, number, {LINK, *VILLAGES}, "link_first", 4.0, rng)
    assert {net.state(v) for v in VILLAGES} == {UNREACHABLE}
    before = len(net.events)

    # The link answers again from 70. desa-1 answers a probe started after that before the
    # link is back up; desa-2 is dead itself; desa-3 is still to be probed afresh.
    net.ok(LINK, 70.0, now=72.0)
    net.ok("desa-1", 74.0, now=76.0)
    net.fail("desa-2", 74.0, now=76.0)
    assert net.events[before:] == []

    recovery = net.ok(LINK, 80.0, now=82.0)
    assert transitions(recovery) == [(LINK, DOWN, UP), ("desa-1", UNREACHABLE, UP)]
    assert recovery[1].reason == f"own probe answered after parent {LINK} recovered"
    assert recovery[1].reason_code is ReasonCode.PROBES_GOOD
    for village in ("desa-2", "desa-3"):
        status = net.status(village)
        assert (status.state, status.reason_code, status.root_cause) == (
            UNREACHABLE, ReasonCode.AWAITING_PROBE, LINK)
        assert status.reason == f"parent {LINK} recovered; waiting for own probe"
        assert status.since == 46.0  # still the same unreachable episode (since round 4)
        assert status.own_state is UNKNOWN

    # Results of probes started before the link was back (in flight during the outage) are
    # stale either way: neither a failure nor an answer decides anything.
    assert net.fail("desa-3", 66.0, now=83.0) == []
    assert net.ok("desa-3", 69.0, now=84.0) == []
    assert net.status("desa-3").own_state is UNKNOWN
    assert transitions(net.ok("desa-3", 84.0, now=86.0)) == [("desa-3", UNREACHABLE, UP)]

    # desa-2 fails fresh probes: down once the link has answered after its last failure.
    assert net.fail("desa-2", 84.0) == []
    assert net.fail("desa-2", 94.0) == []
    assert net.engine.pending("desa-2")
    assert net.state("desa-2") is UNREACHABLE
    events = net.ok(LINK, 100.0)
    assert transitions(events) == [("desa-2", UNREACHABLE, DOWN)]
    assert (events[0].reason_code, events[0].root_cause) == (ReasonCode.PROBES_FAILED, "desa-2")


def test_a_fresh_answer_arriving_after_the_link_recovered_brings_the_village_back() -> None:
    net = _link_with_villages()
    net.ok(LINK, 0.0)
    net.ok("desa-1", 4.0)
    for started in (10.0, 20.0, 30.0):
        net.fail(LINK, started)
    assert net.state("desa-1") is UNREACHABLE
    net.ok(LINK, 40.0)
    assert transitions(net.ok(LINK, 50.0)) == [(LINK, DOWN, UP)]
    assert net.state("desa-1") is UNREACHABLE
    assert transitions(net.ok("desa-1", 54.0)) == [("desa-1", UNREACHABLE, UP)]


def test_a_village_degraded_behind_a_degraded_link_blames_the_link() -> None:
    net = _link_with_villages()
    for started in (0.0, 10.0, 20.0):
        net.probe(LINK, started, received=3)
        net.probe("desa-1", started + 4.0, received=3)
        net.probe("desa-2", started + 4.0, received=3)
    assert net.state(LINK) is DEGRADED
    assert net.status("desa-1").root_cause == LINK
    # The link recovers; desa-2 keeps losing packets: now that is its own problem.
    net.ok(LINK, 30.0)
    net.ok(LINK, 40.0)
    assert net.state(LINK) is UP
    net.probe("desa-2", 44.0, received=3)
    assert (net.state("desa-2"), net.status("desa-2").root_cause) == (DEGRADED, "desa-2")


# -- chains ------------------------------------------------------------------------------------

CORE = "core"


def _chain() -> Net:
    return Net(make_check(CORE), make_check(LINK, CORE), make_check("desa", LINK))


@pytest.mark.parametrize("arrival",
                         [(CORE, LINK, "desa"), ("desa", LINK, CORE), (LINK, CORE, "desa")])
def test_a_failed_core_makes_everything_behind_it_unreachable_with_the_core_as_root_cause(
        arrival: Sequence[str]) -> None:
    net = _chain()
    for number in range(7):
        for i, target in enumerate(arrival):
            net.probe(target, 10.0 * number + i, received=5 if number < 2 else 0,
                      now=10.0 * number + 5.0 + 0.1 * i)
    before = [e for e in net.events if e.from_state is not UNKNOWN]
    assert transitions(before) == [(CORE, UP, DOWN), (LINK, UP, UNREACHABLE),
                                   ("desa", UP, UNREACHABLE)]
    assert len({e.time for e in before}) == 1  # decided together, by the core's result
    assert [e.root_cause for e in before] == [CORE, CORE, CORE]
    assert net.status("desa").reason == f"parent {LINK} is unreachable (root cause {CORE})"


def test_root_causes_follow_the_chain_without_extra_events() -> None:
    net = _chain()
    for started in (0.0, 10.0):
        net.ok(CORE, started)
        net.ok(LINK, started + 1.0)
        net.ok("desa", started + 2.0)
    for started in (20.0, 30.0, 40.0):  # the link dies first; the core answers
        net.ok(CORE, started)
        net.fail(LINK, started + 1.0)
    assert net.engine.pending(LINK)  # its failure at 41 is newer than the core's answer at 40
    net.ok(CORE, 50.0)
    assert (net.state(LINK), net.status("desa").root_cause) == (DOWN, LINK)
    before = len(net.events)
    for started in (60.0, 70.0, 80.0):  # then the core dies too
        net.fail(CORE, started)
        net.fail(LINK, started + 1.0)
        net.fail("desa", started + 2.0)
    assert transitions(net.events[before:]) == [(CORE, UP, DOWN), (LINK, DOWN, UNREACHABLE)]
    assert net.status("desa").root_cause == CORE  # updated, but it stayed unreachable
    assert net.state("desa") is UNREACHABLE
    # No event for the village, but its retained status must follow: it is reported changed.
    assert "desa" in net.engine.take_changed()
    assert net.engine.take_changed() == set()

    before = len(net.events)
    net.ok(CORE, 90.0)
    net.fail(LINK, 91.0)
    assert transitions(net.ok(CORE, 100.0)) == [(CORE, DOWN, UP)]
    assert net.status(LINK).reason_code is ReasonCode.AWAITING_PROBE
    net.fail(LINK, 101.0)
    net.ok(CORE, 110.0)
    # Its third fresh failure (started 111) is newer than the core's latest answer (110).
    assert net.fail(LINK, 111.0) == []
    assert net.engine.pending(LINK)
    assert transitions(net.ok(CORE, 120.0)) == [(LINK, UNREACHABLE, DOWN)]
    assert transitions(net.events[before:]) == [(CORE, DOWN, UP), (LINK, UNREACHABLE, DOWN)]
    assert (net.state("desa"), net.status("desa").root_cause) == (UNREACHABLE, LINK)


# -- restore after a restart -------------------------------------------------------------------

def _stored(check: Check, state: State, *, own: State | None = None, since: float = 100.0,
            code: ReasonCode = ReasonCode.PROBES_GOOD, root_cause: str | None = None,
            flapping: bool = False, reason: str = "as stored") -> TargetStatus:
    return TargetStatus(placement=Placement.of(check), state=state, since=since,
                        reason=reason, reason_code=code, root_cause=root_cause,
                        own_state=state if own is None else own, flapping=flapping)


def test_a_restored_status_is_kept_as_is_and_one_lost_probe_does_not_change_it() -> None:
    check = make_check("desa")
    stored = _stored(check, UP)
    net = Net(check, now=1000.0, restored={"desa": stored})
    assert net.events == []
    assert net.status("desa") == stored
    assert net.fail("desa", 1010.0) == []
    assert (net.state("desa"), net.status("desa").since) == (UP, 100.0)


def test_a_restored_down_target_needs_k_answered_probes_to_come_back() -> None:
    check = make_check("desa")
    net = Net(check, now=1000.0, restored={
        "desa": _stored(check, DOWN, code=ReasonCode.NO_PARENT, root_cause="desa")})
    assert net.events == []
    assert net.ok("desa", 1010.0) == []
    assert net.state("desa") is DOWN
    assert transitions(net.ok("desa", 1020.0)) == [("desa", DOWN, UP)]


def test_a_restored_outage_is_taken_over_without_inventing_events() -> None:
    link, village = make_check(LINK), make_check("desa-1", LINK)
    stored = {LINK: _stored(link, DOWN, code=ReasonCode.NO_PARENT, root_cause=LINK),
              "desa-1": _stored(village, UNREACHABLE, own=DOWN, code=ReasonCode.PARENT_DOWN,
                                root_cause=LINK, reason=f"parent {LINK} is down")}
    net = Net(link, village, now=1000.0, restored=stored)
    assert net.events == []
    assert dict(net.engine.statuses()) == stored
    assert net.fail("desa-1", 1004.0) == []
    assert net.fail(LINK, 1010.0) == []
    assert net.events == []


def test_a_restored_unreachable_target_whose_parent_is_up_waits_for_a_fresh_probe() -> None:
    link, village = make_check(LINK), make_check("desa-1", LINK)
    stored = {LINK: _stored(link, UP),
              "desa-1": _stored(village, UNREACHABLE, own=DOWN, code=ReasonCode.PARENT_DOWN,
                                root_cause=LINK)}
    net = Net(link, village, now=1000.0, restored=stored)
    assert net.events == []
    status = net.status("desa-1")
    assert (status.state, status.reason_code, status.since, status.root_cause) == (
        UNREACHABLE, ReasonCode.AWAITING_PROBE, 100.0, LINK)
    assert net.ok("desa-1", 998.0, now=1001.0) == []  # started before the restart: stale
    assert transitions(net.ok("desa-1", 1004.0)) == [("desa-1", UNREACHABLE, UP)]


def test_a_restored_flapping_flag_is_held_for_a_window_not_dropped_at_the_first_probe() -> None:
    check = make_check("desa")
    net = Net(check, now=1000.0, restored={"desa": _stored(check, UP, flapping=True)})
    assert net.ok("desa", 1010.0) == []
    assert net.status("desa").flapping
    started = 1020.0
    while not net.events and started < 3000.0:
        net.ok("desa", started)
        started += 10.0
    [stop] = net.events
    assert (stop.kind, stop.flapping, stop.time) == (EventKind.FLAPPING, False, 1602.0)


def test_a_restored_status_takes_the_placement_of_the_current_check() -> None:
    check = make_check("desa", province="sulbar")
    moved = replace(_stored(check, UP), placement=Placement.of(make_check("desa", province="x")))
    net = Net(check, now=1000.0, restored={"desa": moved})
    assert net.status("desa").placement == Placement.of(check)
    assert net.status("desa").state is UP


# -- reloads -----------------------------------------------------------------------------------

def _two_links(village_parent: str) -> list[Check]:
    return [make_check("link-a"), make_check("link-b"), make_check("desa", village_parent)]


def _fail_link_b(net: Net) -> None:
    for started in (0.0, 10.0, 20.0):
        net.ok("link-a", started)
        net.fail("link-b", started)
        net.ok("desa", started + 4.0)
    assert net.state("link-b") is DOWN


def test_moving_a_target_behind_a_down_parent_makes_it_unreachable() -> None:
    net = Net(*_two_links("link-a"))
    _fail_link_b(net)
    assert net.state("desa") is UP
    events = net.reconfigure(*_two_links("link-b"), now=30.0)
    assert transitions(events) == [("desa", UP, UNREACHABLE)]
    assert (events[0].root_cause, events[0].placement.parent) == ("link-b", "link-b")


def test_moving_a_target_away_from_a_down_parent_waits_for_its_own_fresh_probe() -> None:
    net = Net(*_two_links("link-b"))
    _fail_link_b(net)
    assert net.state("desa") is UNREACHABLE
    assert net.reconfigure(*_two_links("link-a"), now=30.0) == []
    assert net.status("desa").reason_code is ReasonCode.AWAITING_PROBE
    assert net.ok("desa", 28.0, now=31.0) == []  # started before the move
    assert transitions(net.ok("desa", 34.0)) == [("desa", UNREACHABLE, UP)]


def test_a_removed_target_is_dropped_and_its_children_lose_their_parent() -> None:
    net = Net(*_two_links("link-b"))
    _fail_link_b(net)
    old_link_b = net.checks["link-b"]
    assert net.reconfigure(make_check("link-a"), make_check("desa", "link-b"), now=30.0) == []
    assert "link-b" not in net.engine.statuses()
    assert net.engine.status("link-b") is None
    assert net.engine.observe(reply(old_link_b, 30.0), 32.0) == []
    # desa names a parent that is no longer monitored: it counts as none.
    assert net.status("desa").reason == "no parent blocks it any more; waiting for own probe"
    assert transitions(net.ok("desa", 34.0)) == [("desa", UNREACHABLE, UP)]


def test_a_changed_check_keeps_its_state_and_probes_and_old_results_are_ignored() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    net.fail("desa", 10.0)
    net.fail("desa", 20.0)
    old_check = net.checks["desa"]
    slower = replace(PROFILE, interval=20.0)
    assert net.reconfigure(make_check("desa", profile=slower), now=25.0) == []
    assert net.state("desa") is UP
    assert net.engine.observe(reply(old_check, 30.0, received=0), 32.0) == []  # not counted
    assert net.state("desa") is UP
    assert transitions(net.fail("desa", 40.0)) == [("desa", UP, DOWN)]  # the window was kept


def test_only_icmp_checks_drive_state() -> None:
    snmp = Check(target="desa", kind="snmp", address=ipaddress.ip_address("127.0.0.1"),
                 province="sulbar", kabupaten="mamuju", site="s", role="village",
                 profile=SnmpProfile(name="if", credentials=SnmpCredentials(version=1),
                                     interval=60.0, timeout=2.0, retries=1, deadline=30.0,
                                     max_repetitions=25, max_oids_per_request=10))
    icmp = make_check("desa")
    engine = StateEngine()
    engine.set_checks([snmp, icmp, replace(snmp, target="switch")], 0.0)
    assert set(engine.statuses()) == {"desa"}
    snmp_result = ProbeResult(check=snmp, started=0.0, duration=0.1, sent=1, received=1)
    assert engine.observe(snmp_result, 1.0) == []
    assert engine.observe(reply(icmp, 0.0), 1.0) != []


def test_unknown_targets_are_neither_pending_nor_known() -> None:
    engine = StateEngine()
    assert engine.status("nope") is None
    assert engine.pending("nope") is False
    assert engine.observe(reply(make_check("nope"), 0.0), 1.0) == []


# -- the published snapshot ----------------------------------------------------------------------

def test_published_statuses_are_replaced_never_changed() -> None:
    net = Net(make_check("desa"))
    net.ok("desa", 0.0)
    snapshot = net.engine.statuses()
    first = snapshot["desa"]
    for started in (10.0, 20.0, 30.0):
        net.fail("desa", started)
    assert first.state is UP  # what a reader already holds stays as it was
    assert snapshot["desa"] is not first
    assert snapshot["desa"].state is DOWN
    with pytest.raises(FrozenInstanceError):
        first.state = DOWN  # type: ignore[misc]

    net.reconfigure(make_check("desa"), make_check("desa-2"), now=40.0)
    assert set(snapshot) == {"desa"}  # a reload replaces the mapping rather than resizing it
    assert set(net.engine.statuses()) == {"desa", "desa-2"}


def test_statuses_can_be_read_from_another_thread_while_the_engine_works() -> None:
    net = Net(make_check(LINK), *(make_check(f"desa-{i}", LINK) for i in range(50)))
    errors: list[BaseException] = []
    done = threading.Event()
    reads = 0

    def read() -> None:
        nonlocal reads
        deadline = time.monotonic() + 10.0
        while not done.is_set() and time.monotonic() < deadline:
            try:
                for target, status in net.engine.statuses().items():
                    assert status.target == target
            except BaseException as error:  # reported by the test below
                errors.append(error)
                return
            reads += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(40):
            for target in list(net.checks):
                net.probe(target, 10.0 * number, received=0 if number % 7 < 3 else 5)
            extra = [make_check(f"extra-{number}")] if number % 2 else []
            net.reconfigure(*net.checks.values(), *extra, now=10.0 * number + 5.0)
    finally:
        done.set()
        reader.join(timeout=15.0)
    assert not reader.is_alive()
    assert errors == []
    assert reads > 0


# -- scale ---------------------------------------------------------------------------------------

def test_one_failed_link_among_fifty_with_five_thousand_villages() -> None:
    checks = [make_check(CORE)]
    links = [f"link-{i:02d}" for i in range(50)]
    checks += [make_check(link, CORE) for link in links]
    villages = {link: [f"desa-{link[5:]}-{j:03d}" for j in range(100)] for link in links}
    checks += [make_check(v, link) for link in links for v in villages[link]]
    net = Net(*checks)
    assert len(net.engine.statuses()) == 5051
    failing = {"link-07", *villages["link-07"]}
    rng = random.Random(5051)  # noqa: S311 (an arrival order)
    offsets = {CORE: 0.0, **dict.fromkeys(links, 1.0)}
    for number in range(6):
        arrival = list(net.checks)
        rng.shuffle(arrival)  # results of a round arrive in any order
        for i, target in enumerate(arrival):
            broken = number >= 2 and target in failing
            net.probe(target, 10.0 * number + offsets.get(target, 2.0),
                      received=0 if broken else 5, now=10.0 * number + 5.0 + i * 1e-4)
        if number == 1:
            assert {s.state for s in net.engine.statuses().values()} == {UP}
            before = len(net.events)

    outage = net.events[before:]
    assert transitions(outage)[0] == ("link-07", UP, DOWN)
    assert sorted(transitions(outage)[1:]) == [(v, UP, UNREACHABLE) for v in villages["link-07"]]
    assert outage[0].reason_code is ReasonCode.PROBES_FAILED
    assert {e.root_cause for e in outage[1:]} == {"link-07"}
    assert not any(net.engine.pending(v) for v in villages["link-07"])
    ids = [e.id for e in net.events]
    assert len(set(ids)) == len(ids) == 5051 + 101


def test_a_parent_probing_just_before_its_child_still_confirms_the_childs_down() -> None:
    net = _link_with_villages()
    net.ok(LINK, 0.0)
    net.ok("desa-1", 4.0)
    for started in (14.0, 24.0, 34.0, 44.0):  # down with the third; the fourth arrives first
        net.fail("desa-1", started)
    assert net.engine.pending("desa-1")
    # Started 40: after the failure that decided it (34), before the village's latest one.
    assert transitions(net.ok(LINK, 40.0, now=47.0)) == [("desa-1", UP, DOWN)]


def test_a_parent_cycle_is_cut_rather_than_followed_forever() -> None:
    net = Net(make_check("a", "b"), make_check("b", "a"), make_check("c", "a"))
    for started in (0.0, 10.0, 20.0):
        net.fail("a", started)
        net.fail("b", started)
    # One of the two became the root: it is down, and the other is behind it.
    assert sorted([net.state("a"), net.state("b")]) == [DOWN, UNREACHABLE]
    assert net.state("c") is UNREACHABLE
