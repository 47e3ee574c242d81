"""Every fault of monitord.lab.faults against a real monitord watching a small province
(tests/integration/fault_lab.py): majene's link and villages take the fault, mamuju and the core
are the control. Each test asserts the fault's own effect, and what every fault must leave
intact (tests/integration/fault_checks.py): the daemon alive and probing, no counter going
backwards, no event on the control, the history and MQTT in agreement.

What the older tests already prove is not repeated: test_state_events covers a link cut with
a broker outage and a SIGKILL one fault at a time, test_reload a bad reload over HTTP, and
test_snmp_snmpd a device reboot that also resets the kernel's counters (seen by Prometheus).
Here the same faults come with a control kabupaten, on top of a flapping link, or by SIGHUP.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitord.lab.bad_agent import Mode
from monitord.lab.faults import (
    BAD_CONFIG_LINE,
    DelayedEchoes,
    Flapper,
    MisbehavingAgent,
    StateDisk,
    broken_config,
    broker_outage,
    link_cut,
    packet_loss,
    packet_loss_every,
    reboot_device,
    reload_by_http,
    reload_by_signal,
    sigkill,
)
from monitord.state.history import HISTORY_FILE, read_snapshot
from monitord.state.model import EventKind, ReasonCode, State
from tests.integration.conftest import DaemonFactory
from tests.integration.fault_checks import (
    assert_alive,
    assert_counters_never_fall,
    assert_history_consistent,
    assert_quiet,
    history,
    probes_of,
    state_events,
    states_of,
    sum_of,
    wait_delivered,
    wait_states,
)
from tests.integration.fault_lab import (
    ALL,
    CONTROL,
    CONTROL_VILLAGE,
    EVENTS,
    LINK,
    VILLAGES,
    Province,
    profile,
    write_config,
)
from tests.integration.harness import MonitordProcess, Sample, free_port, value, wait_for
from tests.integration.mosquitto import Mosquitto, MqttRecorder
from tests.integration.netns import KabupatenLink
from tests.integration.snmpd_agent import Snmpd

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ALL_UP = dict.fromkeys(ALL, "up")
ECHO_REQUEST = ("-p", "icmp", "--icmp-type", "echo-request")


@pytest.fixture
def province() -> Iterator[Province]:
    with KabupatenLink(villages=len(VILLAGES)) as faulted, KabupatenLink(villages=1) as control:
        yield Province(faulted, control)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    # Persistent: the recorder's session (and what is queued for it) survives a broker outage.
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[MqttRecorder]:
    with MqttRecorder(broker, EVENTS) as recorder:
        yield recorder


def start(tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
          broker: Mosquitto | None, **config: Any) -> tuple[MonitordProcess, Path]:
    """monitord on the province, every target up; (daemon, config file)."""
    path = write_config(tmp_path / "monitord.yaml", province, port, broker, **config)
    daemon = daemons.start(path, port)
    wait_states(daemon, ALL_UP)
    return daemon, path


def rtts(samples: list[Sample], target: str) -> tuple[float, float]:
    """(sum, count) of a target's RTT histogram."""
    return (value(samples, "monitord_icmp_rtt_seconds_sum", target=target) or 0.0,
            value(samples, "monitord_icmp_rtt_seconds_count", target=target) or 0.0)


# -- 1. a link cut -------------------------------------------------------------------------

def test_link_cut_downs_the_link_only_and_the_control_kabupaten_never_notices(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    daemon, _ = start(tmp_path, daemons, port, province, broker)
    before = daemon.samples()

    with link_cut(province.link):
        cut = wait_states(daemon, {LINK: "down", **dict.fromkeys(VILLAGES, "unreachable")})
        for village in VILLAGES:
            assert value(cut, "monitord_target_root_cause", target=village, root_cause=LINK) == 1
        assert {t: states_of(cut)[t] for t in CONTROL} == dict.fromkeys(CONTROL, "up")
        during = assert_alive(daemon, cut, ALL, rounds=3)  # the cut link's probes go on too
        assert {t: states_of(during)[t] for t in CONTROL} == dict.fromkeys(CONTROL, "up")
    after = wait_states(daemon, ALL_UP)
    assert_counters_never_fall(before, after)

    stored, delivery = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_history_consistent(stored)
    assert_quiet(stored, CONTROL)
    assert state_events(stored, LINK) == [("unknown", "up"), ("up", "down"), ("down", "up")]
    for village in VILLAGES:
        assert state_events(stored, village) == [
            ("unknown", "up"), ("up", "unreachable"), ("unreachable", "up")]
        [unreachable] = [e for e in stored if e.target == village and e.to_state is State.UNREACHABLE]
        assert (unreachable.root_cause, unreachable.reason_code) == (LINK, ReasonCode.PARENT_DOWN)
    assert delivery.stored == len(ALL) + 2 + 2 * len(VILLAGES)


# -- 2. packet loss ------------------------------------------------------------------------

def test_random_loss_on_the_link_degrades_it_but_never_downs_it(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """30 % of the echoes to the link are dropped (INPUT of its namespace: the villages'
    echoes are routed through it, not to it, and keep all theirs). Twenty echoes a probe: a
    probe loses them all with probability 0.3^20, so the link must never be called down; a
    probe losing more than 20 % is poor, so it must become degraded."""
    link_profile = profile(count=20, packet_interval="10ms", state={"max_loss_ratio": 0.2})
    daemon, _ = start(tmp_path, daemons, port, province, broker, link_profile=link_profile)
    before = daemon.samples()

    with packet_loss(province.faulted.name, 0.3, match=ECHO_REQUEST) as [rule]:
        wait_for("a probe under loss", lambda: probes_of(daemon.samples(), LINK)
                 >= probes_of(before, LINK) + 2)
        start_samples = daemon.samples()
        lossy = assert_alive(daemon, start_samples, ALL, rounds=15)
        dropped = rule.dropped()
    sent = sum_of(lossy, "monitord_icmp_requests_total", target=LINK) - sum_of(
        start_samples, "monitord_icmp_requests_total", target=LINK)
    answered = sum_of(lossy, "monitord_icmp_responses_total", target=LINK) - sum_of(
        start_samples, "monitord_icmp_responses_total", target=LINK)
    loss = 1 - answered / sent
    print(f"random loss: {sent:.0f} echoes, {sent - answered:.0f} lost ({loss:.1%}); "
          f"rule dropped {dropped} since it was added")
    assert sent >= 300
    assert 0.1 < loss < 0.5
    after = wait_states(daemon, ALL_UP)
    assert_counters_never_fall(before, after)

    stored, _ = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_history_consistent(stored)
    assert_quiet(stored, [*CONTROL, *VILLAGES])
    link = state_events(stored, LINK)
    assert ("up", "degraded") in link
    assert {to for _, to in link} <= {"up", "degraded"}, link  # never down
    degraded = [e for e in stored if e.target == LINK and e.to_state is State.DEGRADED]
    assert all(e.reason_code is ReasonCode.PROBES_DEGRADED and "packet loss" in e.reason
               and e.root_cause == LINK for e in degraded)


def quiet_moment(daemon: MonitordProcess, target: str, deadline: float) -> list[Sample]:
    """Samples taken while no probe of `target` has echoes on the wire: its last probe has
    finished (started more than its deadline ago) and the next is not due for a while, so a
    packet counter read right after matches the samples exactly."""
    def between_probes() -> list[Sample] | None:
        samples = daemon.samples()
        started = value(samples, "monitord_probe_last_timestamp_seconds", target=target)
        age = time.time() - (started or 0)
        return samples if deadline + 0.1 < age < 0.8 else None
    return wait_for(f"a moment between two probes of {target}", between_probes, every=0.05)


def test_every_fourth_echo_lost_is_exactly_one_echo_a_probe(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """Deterministic loss: one echo of every four to the link is dropped, and a probe sends
    four, so every probe loses exactly one (25 % > the 20 % threshold): the link is degraded,
    monitord's counters and the rule's own packet counter agree to the packet."""
    link_profile = profile(count=4, packet_interval="20ms", state={"max_loss_ratio": 0.2})
    daemon, _ = start(tmp_path, daemons, port, province, broker, link_profile=link_profile)
    deadline = 3 * 0.02 + 0.3
    before = daemon.samples()

    with packet_loss_every(province.faulted.name, 4, match=(
            *ECHO_REQUEST, "-d", province.faulted.address)) as [rule]:
        wait_for("two probes under loss", lambda: probes_of(daemon.samples(), LINK)
                 >= probes_of(before, LINK) + 2)
        first = quiet_moment(daemon, LINK, deadline)
        dropped_first = rule.dropped()
        degraded = wait_states(daemon, {LINK: "degraded"})
        assert value(degraded, "monitord_icmp_loss_ratio", target=LINK) == 0.25
        wait_for("eight more probes", lambda: probes_of(daemon.samples(), LINK)
                 >= probes_of(first, LINK) + 8)
        last = quiet_moment(daemon, LINK, deadline)
        dropped_last = rule.dropped()
        assert value(last, "monitord_icmp_loss_ratio", target=LINK) == 0.25
    probes = probes_of(last, LINK) - probes_of(first, LINK)
    sent = sum_of(last, "monitord_icmp_requests_total", target=LINK) - sum_of(
        first, "monitord_icmp_requests_total", target=LINK)
    answered = sum_of(last, "monitord_icmp_responses_total", target=LINK) - sum_of(
        first, "monitord_icmp_responses_total", target=LINK)
    print(f"nth loss: {probes:.0f} probes, {sent:.0f} echoes, {sent - answered:.0f} lost; "
          f"the rule dropped {dropped_last - dropped_first}")
    assert (sent, answered) == (4 * probes, 3 * probes)
    assert dropped_last - dropped_first == probes
    wait_states(daemon, ALL_UP)

    stored, _ = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_history_consistent(stored)
    assert_quiet(stored, [*CONTROL, *VILLAGES])
    assert state_events(stored, LINK) == [("unknown", "up"), ("up", "degraded"), ("degraded", "up")]
    [event] = [e for e in stored if e.target == LINK and e.to_state is State.DEGRADED]
    assert event.reason == "25% packet loss (threshold 20%)"


# -- 3. delay (a VSAT hop) -----------------------------------------------------------------

def test_vsat_delay_is_measured_and_a_delay_beyond_the_timeout_is_down(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """The villages' echoes are answered in user space after 600 ± 50 ms (their namespace's
    kernel replies turned off): within the 1 s timeout, so they stay up with RTTs in
    [0.55, 0.7] s. Then the delay grows to 1.3 s, past the timeout: the villages are down
    (their own fault: the link still answers), and up again when it shrinks back."""
    village_profile = profile(timeout="1s")
    daemon, _ = start(tmp_path, daemons, port, province, broker, village_profile=village_profile)
    before = daemon.samples()

    with DelayedEchoes(province.faulted.desa_ns, tmp_path / "echo", 600, 50) as echoes:
        def delayed() -> list[Sample] | None:
            samples = daemon.samples()
            slow = [value(samples, "monitord_icmp_rtt_last_seconds", target=v, stat="avg") or 0
                    for v in VILLAGES]
            return samples if min(slow) > 0.5 else None
        first = wait_for("the villages' RTTs to show the delay", delayed)
        last = assert_alive(daemon, first, VILLAGES, rounds=8)
        measured: dict[str, float] = {}
        for village in VILLAGES:
            (sum0, n0), (sum1, n1) = rtts(first, village), rtts(last, village)
            measured[village] = (sum1 - sum0) / (n1 - n0)
            assert 0.55 <= measured[village] <= 0.7, (village, measured[village])
            assert 0.55 <= (value(last, "monitord_icmp_rtt_last_seconds", target=village,
                                  stat="avg") or 0) <= 0.7
            in_bucket = [(value(s, "monitord_icmp_rtt_seconds_bucket", target=village, le=le)
                          or 0) for s in (first, last) for le in ("0.5", "0.75")]
            assert in_bucket[2] == in_bucket[0], "an RTT under 0.5 s while delayed"
            assert in_bucket[3] - in_bucket[1] == n1 - n0, "an RTT over 0.75 s while delayed"
        print(f"delay 600 ± 50 ms: mean RTT per village {measured}")
        assert {states_of(last)[t] for t in ALL} == {"up"}

        echoes.set_delay(1300)
        too_slow = wait_states(daemon, dict.fromkeys(VILLAGES, "down"))
        assert {t: states_of(too_slow)[t] for t in (*CONTROL, LINK)} == dict.fromkeys(
            (*CONTROL, LINK), "up")
        echoes.set_delay(600, 50)
        wait_states(daemon, ALL_UP)
    after = wait_states(daemon, ALL_UP)  # the kernel answers again
    assert_counters_never_fall(before, after)

    stored, _ = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_history_consistent(stored)
    assert_quiet(stored, [*CONTROL, LINK])
    for village in VILLAGES:
        assert state_events(stored, village) == [("unknown", "up"), ("up", "down"), ("down", "up")]
        [down] = [e for e in stored if e.target == village and e.to_state is State.DOWN]
        assert (down.reason_code, down.root_cause) == (ReasonCode.PROBES_FAILED, village)


# -- 4. a flapping link --------------------------------------------------------------------

FLAPPY = profile(state={"flap_changes": 4, "flap_window": "60s"})


def test_a_flapping_link_is_flagged_and_its_events_stay_bounded(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """The link goes down and up every 3 s, three times: six changes, each seen (two failed
    probes of three take ~2 s). The fourth change within 60 s flags it flapping, once; a
    change of the link is at most one event for it and for each village, and the villages
    (unreachable <-> up follows the parent) never count as flapping themselves."""
    daemon, _ = start(tmp_path, daemons, port, province, broker, link_profile=FLAPPY)
    before = daemon.samples()
    with Flapper(province.link, period=3.0, times=3) as flapper:
        pass  # runs to its end: 18 s
    assert [state for _, state in flapper.changes] == ["down", "up"] * 3
    samples = wait_states(daemon, ALL_UP)
    assert value(samples, "monitord_target_flapping", target=LINK) == 1
    for target in (*VILLAGES, *CONTROL):
        assert value(samples, "monitord_target_flapping", target=target) == 0
    after = assert_alive(daemon, samples, ALL)
    assert_counters_never_fall(before, after)

    stored, delivery = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_history_consistent(stored)
    assert_quiet(stored, CONTROL)
    link = state_events(stored, LINK)
    flaps = [e for e in stored if e.kind is EventKind.FLAPPING]
    print(f"flapping: {len(flapper.changes)} link changes -> {len(link) - 1} link state events, "
          f"{len(stored)} events in all, flapping events {[(e.target, e.flapping) for e in flaps]}")
    assert link == [("unknown", "up"), *[("up", "down"), ("down", "up")] * 3]
    assert [(e.target, e.flapping, e.reason_code) for e in flaps] == [
        (LINK, True, ReasonCode.FLAPPING_STARTED)]
    # The flag rides on every later event of the link: the fourth change started it.
    assert [e.flapping for e in stored if e.target == LINK and e.kind is EventKind.STATE] == [
        False] * 4 + [True] * 3
    for village in VILLAGES:
        assert len(state_events(stored, village)) <= 1 + len(flapper.changes)
        assert "down" not in {to for _, to in state_events(stored, village)}
    assert delivery.stored == len(stored)


# -- 5. a device reboot --------------------------------------------------------------------

SNMP_V2 = {"version": "2c", "community": "public", "interval": "1s", "timeout": "300ms",
           "retries": 1}


def snmp_polls(samples: list[Sample], target: str) -> float:
    return value(samples, "monitord_snmp_polls_total", target=target) or 0.0


def test_a_device_reboot_is_counted_once_and_nothing_else_moves(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """desa-1's agent restarts (a reboot as SNMP sees it: sysUpTime from 0): one reboot
    counted, uptime and boot time reset, polls complete again; the control village's agent
    and every ICMP state are untouched. (Counters that restart with the device, seen through
    Prometheus, are test_snmp_snmpd's reboot test.)"""
    device = VILLAGES[0]
    agents = [Snmpd(tmp_path / "snmpd-desa", [province.address(device)], 161,
                    netns=province.faulted.desa_ns, sys_name=device),
              Snmpd(tmp_path / "snmpd-kontrol", [province.address(CONTROL_VILLAGE)], 161,
                    netns=province.control.desa_ns, sys_name=CONTROL_VILLAGE)]
    agent = agents[0]
    try:
        for each in agents:
            each.start()
        daemon, _ = start(tmp_path, daemons, port, province, broker, snmp_profiles={"v2": SNMP_V2},
                          snmp={device: "v2", CONTROL_VILLAGE: "v2"})

        def both_polled() -> list[Sample] | None:
            samples = daemon.samples()
            up = [value(samples, "monitord_snmp_up", target=t) for t in (device, CONTROL_VILLAGE)]
            ok = up == [1, 1] and value(samples, "monitord_device_uptime_seconds",
                                        target=device) is not None
            return samples if ok else None
        wait_for("both agents polled", both_polled)
        time.sleep(1.5)  # an uptime of more than a second, so that its reset shows
        before = wait_for("both agents polled again", both_polled)
        uptime = value(before, "monitord_device_uptime_seconds", target=device)
        boot = value(before, "monitord_device_boot_time_seconds", target=device)
        assert uptime is not None
        assert uptime > 1
        assert boot is not None

        reboot_device(agent)
        rebooted = wait_for("the reboot counted and desa-1 polled again", lambda: (
            s if value(s := daemon.samples(), "monitord_device_reboots_total", target=device) == 1
            and value(s, "monitord_snmp_up", target=device) == 1 else None))
        after = assert_alive(daemon, rebooted, ALL)
        wait_for("two more polls of both", lambda: all(
            snmp_polls(daemon.samples(), t) >= snmp_polls(after, t) + 2
            for t in (device, CONTROL_VILLAGE)))
        final = daemon.samples()
    finally:
        for each in agents:
            each.stop()

    new_uptime = value(rebooted, "monitord_device_uptime_seconds", target=device)
    new_boot = value(rebooted, "monitord_device_boot_time_seconds", target=device)
    print(f"reboot: uptime {uptime:.2f} s -> {new_uptime} s, boot time +{(new_boot or 0) - boot:.2f} s")
    assert new_uptime is not None
    assert new_uptime < uptime
    assert new_boot is not None
    assert new_boot > boot
    assert value(final, "monitord_device_reboots_total", target=device) == 1
    assert value(final, "monitord_device_reboots_total", target=CONTROL_VILLAGE) == 0
    assert value(final, "monitord_snmp_up", target=CONTROL_VILLAGE) == 1
    control_errors = [(labels.get("reason"), v) for n, labels, v in final
                      if n == "monitord_snmp_errors_total" and labels["target"] == CONTROL_VILLAGE]
    assert control_errors == [], control_errors
    assert f"{device}: agent restarted (sysUpTime" in daemon.log()
    assert_counters_never_fall(before, final)  # snmpd restarted, the kernel's counters did not

    stored, _ = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_history_consistent(stored)
    assert_quiet(stored, ALL)  # a reboot of the agent is no ICMP state change


# -- 6. a misbehaving agent ----------------------------------------------------------------

BAD_DEVICE, GOOD_DEVICE = "agent-rusak", "agent-baik"
BAD_ADDRESS, GOOD_ADDRESS, UPSTREAM_ADDRESS = "127.0.9.1", "127.0.9.2", "127.0.9.3"
BAD_PORT = 1161


class AgentLab:
    """snmpd on two loopback addresses: one polled directly (the control device), one behind
    the misbehaving agent, which monitord polls (the faulted device)."""

    def __init__(self, daemon: MonitordProcess, agent: MisbehavingAgent, state_dir: Path) -> None:
        self.daemon = daemon
        self.agent = agent
        self.state_dir = state_dir

    def both_up(self) -> list[Sample] | None:
        samples = self.daemon.samples()
        up = [value(samples, "monitord_snmp_up", target=t) for t in (BAD_DEVICE, GOOD_DEVICE)]
        return samples if up == [1, 1] else None


@pytest.fixture(scope="module")
def agent_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentLab]:
    workdir = tmp_path_factory.mktemp("bad-agent")
    port = free_port()
    snmp_profile = {"version": "2c", "community": "public", "interval": "1s",
                    "timeout": "300ms", "retries": 1}
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(workdir / "state")},
        "profiles": {"fast": profile()},
        "snmp": {"profiles": {"good": snmp_profile, "bad": {**snmp_profile, "port": BAD_PORT}}},
        "province": {"id": "sulbar", "defaults": {"profile": "fast", "role": "dc-server"},
                     "kabupaten": [{"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                         {"id": BAD_DEVICE, "address": BAD_ADDRESS, "snmp": "bad"},
                         {"id": GOOD_DEVICE, "address": GOOD_ADDRESS, "snmp": "good"}]}]}]},
    }
    config = workdir / "monitord.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    with Snmpd(workdir / "snmpd", [GOOD_ADDRESS, UPSTREAM_ADDRESS], 161), \
            MisbehavingAgent((BAD_ADDRESS, BAD_PORT), workdir / "agent",
                             upstream=(UPSTREAM_ADDRESS, 161)) as agent:
        daemon = MonitordProcess(config, port, workdir / "monitord.log")
        try:
            lab = AgentLab(daemon, agent, workdir / "state")
            wait_for("both devices polled", lab.both_up)
            yield lab
        finally:
            daemon.stop()


# (mode, the reason monitord must give, the transport's count of what it dropped)
AGENT_FAULTS = [
    ("silent", "timeout", None),
    ("garbage", "timeout", "unmatched"),
    ("wrong_request_id", "timeout", "unmatched"),
    ("wrong_source_port", "timeout", "unmatched"),
    ("bad_length", "malformed", "malformed"),
    ("wrong_tag", "malformed", "malformed"),
    ("truncated", "malformed", "malformed"),  # matched by its request-id, then refused
]


@pytest.mark.parametrize(("mode", "reason", "dropped_as"), AGENT_FAULTS)
def test_a_misbehaving_agent_fails_its_polls_with_the_right_reason(
        agent_lab: AgentLab, mode: Mode, reason: str, dropped_as: str | None) -> None:
    daemon = agent_lab.daemon
    before = wait_for("both devices polled", agent_lab.both_up)

    def failures(samples: list[Sample]) -> float:
        return value(samples, "monitord_snmp_errors_total", target=BAD_DEVICE, reason=reason) or 0

    agent_lab.agent.set_mode(mode)
    try:
        failing = wait_for(f"two polls failing with {reason}", lambda: (
            s if failures(s := daemon.samples()) >= failures(before) + 2
            and value(s, "monitord_snmp_up", target=BAD_DEVICE) == 0 else None), timeout=10)
        after = assert_alive(daemon, failing, [BAD_DEVICE, GOOD_DEVICE])
        # Only the reason of this mode grew.
        errors = {labels["reason"]: v - (value(before, n, **labels) or 0)
                  for n, labels, v in after
                  if n == "monitord_snmp_errors_total" and labels["target"] == BAD_DEVICE}
        assert {r for r, grown in errors.items() if grown} == {reason}, errors
        if dropped_as is not None:
            assert sum_of(after, "monitord_snmp_datagrams_total", kind=dropped_as) > sum_of(
                before, "monitord_snmp_datagrams_total", kind=dropped_as)
        # The other device: every poll complete, not one error.
        assert value(after, "monitord_snmp_up", target=GOOD_DEVICE) == 1
        assert snmp_polls(after, GOOD_DEVICE) >= snmp_polls(before, GOOD_DEVICE) + 2
        assert [v for n, labels, v in after if n == "monitord_snmp_errors_total"
                and labels["target"] == GOOD_DEVICE] == []
        if mode == "wrong_source_port":
            assert f"dropped an SNMP response from {BAD_ADDRESS}:" in daemon.log()
        assert_counters_never_fall(before, after)
    finally:
        agent_lab.agent.set_mode("pass")
    recovered = wait_for("the agent's polls complete again", agent_lab.both_up)
    assert_counters_never_fall(before, recovered)
    assert daemon.log().count(f"{BAD_DEVICE}: SNMP poll complete again") >= 1
    assert_quiet(history(agent_lab.state_dir), [BAD_DEVICE, GOOD_DEVICE])


# -- 7. the broker away while a link flaps ---------------------------------------------------

def test_every_event_of_a_flapping_link_made_while_the_broker_is_away_arrives_in_order(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """test_state_events shows one link failure surviving a broker outage; here the link flaps
    (four changes and the flapping flag: many events of several kinds) while the broker is
    stopped. Probing goes on, the outbox holds every event, and once the broker is back they
    all arrive, each in the history's order."""
    daemon, _ = start(tmp_path, daemons, port, province, broker, link_profile=FLAPPY)
    before = daemon.samples()
    with broker_outage(broker):
        with Flapper(province.link, period=3.0, times=2):
            pass
        away = wait_states(daemon, ALL_UP)
        away = assert_alive(daemon, away, ALL)
        waiting = value(away, "monitord_mqtt_outbox_events") or 0
        assert value(away, "monitord_mqtt_connected") == 0
        assert value(away, "monitord_target_flapping", target=LINK) == 1
        stored_while_away = history(tmp_path / "state")
        assert waiting == len(stored_while_away) - len(ALL)  # all but the first events
    stored, delivery = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    print(f"broker outage: {waiting:.0f} events waited in the outbox; {delivery}")
    assert stored == stored_while_away  # nothing new: the outage itself is no state change
    assert waiting == 4 * (1 + len(VILLAGES)) + 1  # 4 changes of the link and villages, 1 flap
    assert_history_consistent(stored)
    assert_quiet(stored, CONTROL)
    assert [e.kind for e in stored if e.target == LINK].count(EventKind.FLAPPING) == 1
    assert_counters_never_fall(before, daemon.samples())


# -- 8. SIGKILL and restart, twice, while a link flaps --------------------------------------

def test_sigkills_right_after_state_changes_lose_and_duplicate_nothing(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """test_state_events kills monitord once with the broker away; here the broker is up and
    monitord is killed the moment /metrics shows the flapping link down, and again the moment
    it shows it up: while that change's events are being stored and published. Restarted at
    once on the same state_dir each time, it must leave a history without gap or duplicate
    across the three runs, deliver every stored event over MQTT in the history's order, and
    recover every state."""
    daemon, config = start(tmp_path, daemons, port, province, broker)
    kills: list[tuple[int, int]] = []  # (events stored, events received) at each kill
    with Flapper(province.link, period=4.0, times=2):
        for state in ("down", "up"):
            wait_states(daemon, {LINK: state}, timeout=10)
            assert sigkill(daemon.proc) == -signal.SIGKILL
            kills.append((len(history(tmp_path / "state")),
                          len([m for m in recorder.messages if m.topic == EVENTS])))
            daemon = daemons.start(config, port)
    final = wait_states(daemon, ALL_UP)
    assert_alive(daemon, final, ALL)  # (its counters restarted with it: a new process)
    stored, delivery = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    print(f"sigkill: (stored, received) at each kill {kills}; {delivery}")
    daemon.stop()

    assert_history_consistent(stored)  # the restored states continue each target's history
    assert_quiet(stored, CONTROL)
    assert state_events(stored, LINK) == [("unknown", "up"), *[("up", "down"), ("down", "up")] * 2]
    for village in VILLAGES:
        assert state_events(stored, village) == [
            ("unknown", "up"), *[("up", "unreachable"), ("unreachable", "up")] * 2]
    with read_snapshot(tmp_path / "state" / HISTORY_FILE) as snapshot:
        runs = snapshot.runs()
    assert [run.stopped is None for run in runs] == [True, True, False]
    assert history(tmp_path / "state") == stored  # the clean stop added nothing


# -- 9. the state disk full ----------------------------------------------------------------

def test_a_full_state_disk_delays_the_history_but_loses_nothing(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """The state_dir is a 4 MiB tmpfs, filled to the last byte while everything is up; then
    the link fails and recovers. monitord must go on probing and exporting the true states,
    count and log its failed writes, keep the events in memory, and once space returns write
    them (in order) and deliver them. (The suite runs under `unshare --mount`, so the tmpfs is
    private to it; it is unmounted on the way out in any case.)"""
    with StateDisk(tmp_path / "state", 4 * 1024 * 1024) as disk:
        daemon, _ = start(tmp_path, daemons, port, province, broker)
        stored_before = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")[0]
        before = daemon.samples()
        filled = disk.fill()
        assert disk.available() == 0
        with link_cut(province.link):
            wait_states(daemon, {LINK: "down", **dict.fromkeys(VILLAGES, "unreachable")})
            full = wait_for("a failed history write", lambda: (
                s if (value(s := daemon.samples(), "monitord_history_write_failures_total")
                      or 0) >= 1 else None))
            # The truth is exported even though it cannot be stored.
            assert value(full, "monitord_target_state", target=LINK, state="down") == 1
            assert (value(full, "monitord_history_events_unwritten") or 0) >= 1
        recovered = wait_states(daemon, ALL_UP)
        recovered = assert_alive(daemon, recovered, ALL, rounds=3)
        unwritten = value(recovered, "monitord_history_events_unwritten")
        failures = value(recovered, "monitord_history_write_failures_total")
        print(f"disk full: filler took {filled} bytes; {failures} failed writes, "
              f"{unwritten} events waiting in memory")
        assert unwritten == 2 + 2 * len(VILLAGES)
        assert value(recovered, "monitord_state_dir_filesystem_avail_bytes") == 0
        assert history(tmp_path / "state") == stored_before  # nothing written, nothing torn
        assert "cannot store" in daemon.log()

        disk.free()
        wait_for("the waiting events written", lambda: value(
            daemon.samples(), "monitord_history_events_unwritten") == 0, timeout=20)
        stored, delivery = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
        after = assert_alive(daemon, daemon.samples(), ALL)
        assert_counters_never_fall(before, after)
        daemon.stop()
    print(f"disk full: {delivery}")
    assert_history_consistent(stored)
    assert_quiet(stored, CONTROL)
    assert state_events(stored, LINK) == [("unknown", "up"), ("up", "down"), ("down", "up")]
    assert len(stored) == len(stored_before) + 2 + 2 * len(VILLAGES)


# -- 10. a bad config reload ---------------------------------------------------------------

def test_a_bad_reload_by_sighup_or_http_keeps_the_province_watched(
        tmp_path: Path, daemons: DaemonFactory, port: int, province: Province,
        broker: Mosquitto, recorder: MqttRecorder) -> None:
    """test_reload shows a bad value refused over HTTP; here a file that is not even YAML
    arrives by SIGHUP (no one to answer: the log and the metrics must say it) and then over
    HTTP, while the province is watched. The old config keeps probing every target, the
    error names the file and the line, the failures are counted, no state changes, and a
    good file reloads again."""
    daemon, config = start(tmp_path, daemons, port, province, broker)
    before = daemon.samples()
    where = f"{config}: line {BAD_CONFIG_LINE}"

    def reloads(samples: list[Sample], result: str) -> float:
        return value(samples, "monitord_config_reloads_total", result=result) or 0

    with broken_config(config):
        reload_by_signal(daemon.proc.pid)
        failed = wait_for("the failed reload counted", lambda: (
            s if reloads(s := daemon.samples(), "failure") == 1 else None))
        assert value(failed, "monitord_config_last_reload_successful") == 0
        assert f"reload failed; still running the previous config: {where}" in daemon.log()

        status, body = reload_by_http(daemon.url)
        assert status == 500
        assert where in body
        assert "still running the previous config" in body
        failed = daemon.samples()
        assert reloads(failed, "failure") == 2
        still = assert_alive(daemon, failed, ALL)
        assert {states_of(still)[t] for t in ALL} == {"up"}
        assert value(still, "monitord_targets", kind="icmp") == len(ALL)
    status, body = reload_by_http(daemon.url)
    assert status == 200, body
    reloaded = daemon.samples()
    assert value(reloaded, "monitord_config_last_reload_successful") == 1
    assert reloads(reloaded, "success") == 1
    assert_counters_never_fall(before, assert_alive(daemon, reloaded, ALL))

    stored, _ = wait_delivered(daemon, recorder, EVENTS, tmp_path / "state")
    assert_quiet(stored, ALL)
