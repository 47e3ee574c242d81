"""The province lab: a small province of network namespaces on this machine, with its SNMP
agents, VSAT delay, an MQTT broker, and monitord probing all of it from the caller's namespace.

    with ProvinceLab(workdir, LabPlan(kabupaten=3, villages=4, vsat_villages=1)) as lab:
        lab.start_monitord()
        lab.wait_settled()
        with faults.link_cut(lab.link("majene")):
            lab.wait_states({"majene-link": "down", ...})

Needs root. Namespace and device names carry the process id (and a per-process count), so
labs of different processes never collide; one lab at a time per network namespace, since its
addresses are routed from there. Everything it started or made is stopped and deleted on
exit, after a failure too, and at interpreter exit if the owner never exited the context;
its children also get SIGTERM if the owner dies (monitord.lab.process.set_parent_death_signal).
Files (inventory, logs, state) stay in `workdir`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from monitord.lab.agents import RECORDINGS, Snmpsim, require_recordings, require_snmpsim
from monitord.lab.broker import Mosquitto, require_mosquitto
from monitord.lab.errors import LabSetupError
from monitord.lab.faults import DelayedEchoes, Link, Route
from monitord.lab.inventory import topic_prefix, write_inventory
from monitord.lab.network import LabNetwork
from monitord.lab.process import MonitordProcess, free_port, wait_for
from monitord.lab.scrape import Sample, root_causes_of, states_of
from monitord.lab.topology import SNMP_PORT, LabDevice, LabPlan, LinkLayout, plan_topology

_instances = itertools.count(1)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabSetupError("the province lab needs root: it creates network namespaces "
                            "(run it as root, or with sudo)")
    if shutil.which("ip") is None:
        raise LabSetupError("iproute2's `ip` is not installed: apt-get install iproute2")


class ProvinceLab:
    """The lab as a context manager. After entering: `devices` (id -> LabDevice: address,
    kind, namespace), `links` (kabupaten -> LinkLayout: namespaces and veth names),
    `core_ns`, `agents` (namespace -> its snmpsim), `echoes` (VSAT namespace -> its delaying
    responder), `broker`, `inventory_path`, `state_dir`, `port`; monitord runs once
    start_monitord() is called. `broker_persistence`: the broker keeps retained messages and
    persistent sessions across its restarts (a subscriber misses nothing in a broker outage)."""

    def __init__(self, workdir: Path, plan: LabPlan | None = None, *, mqtt: bool = True,
                 port: int | None = None, recordings: Path = RECORDINGS,
                 broker_persistence: bool = False) -> None:
        number, pid = next(_instances), os.getpid()
        self.plan = plan or LabPlan()
        self.prefix = f"mdlab{pid}x{number}"  # of every namespace name; the NOC veth's is short
        self.topology = plan_topology(self.plan, self.prefix, f"mdl{pid}x{number}")
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.inventory_path = workdir / "monitord.yaml"
        self.port = port or free_port()
        self.recordings = recordings
        self.mqtt = mqtt
        self.broker_persistence = broker_persistence
        self.broker: Mosquitto | None = None
        self.agents: dict[str, Snmpsim] = {}
        self.echoes: dict[str, DelayedEchoes] = {}
        self._monitord: MonitordProcess | None = None
        self._network = LabNetwork(self.topology)
        self._open = False

    # -- layout --------------------------------------------------------------------------

    @property
    def devices(self) -> Mapping[str, LabDevice]:
        return self.topology.devices

    @property
    def links(self) -> Mapping[str, LinkLayout]:
        return self.topology.links

    @property
    def core_ns(self) -> str:
        return self.topology.core_ns

    @property
    def pinned_neighbours(self) -> int:
        """Permanent ARP entries the build made for villages (monitord.lab.network)."""
        return self._network.pinned_neighbours

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def topic_prefix(self) -> str:
        return topic_prefix(self.plan)

    def link(self, kabupaten: str) -> Link:
        """The core's end of `kabupaten`'s link, for monitord.lab.faults (cut_link, link_cut,
        Flapper): down, it cuts the kabupaten off; up again, the core's routes come back."""
        layout = self.links[kabupaten]
        return Link(layout.core_dev, self.core_ns,
                    tuple(Route(net, layout.address) for net in layout.routed_nets))

    def agent_of(self, device: str) -> Snmpsim:
        """The snmpsim answering for `device` (and every other device of its namespace).
        Restarting it (faults.reboot_device) is not a reboot monitord can see: the recordings'
        sysUpTime is fixed, so it only looks like an SNMP outage. A reboot monitord sees needs
        snmpd (tests/integration/test_faults.py runs one)."""
        return self.agents[self.devices[device].namespace]

    # -- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> ProvinceLab:
        require_root()
        require_snmpsim()
        require_recordings(self.recordings)
        if self.mqtt:
            require_mosquitto()
        self._open = True
        atexit.register(self.close)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._network.build()
            self._start_echoes()
            self._start_agents()
            if self.mqtt:
                self.broker = Mosquitto(self.workdir / "mosquitto", die_with_parent=True,
                                        persistence=self.broker_persistence).start()
            write_inventory(self.inventory_path, self.topology, listen=f"127.0.0.1:{self.port}",
                            state_dir=self.state_dir,
                            mqtt_port=self.broker.port if self.broker else None)
        except BaseException:
            self.close()
            raise
        return self

    def _start_echoes(self) -> None:
        if self.plan.vsat_delay_ms <= 0:
            return
        for link in self.links.values():
            if link.vsat_ns is not None:
                self.echoes[link.vsat_ns] = DelayedEchoes(
                    link.vsat_ns, self.workdir / "echoes", self.plan.vsat_delay_ms,
                    self.plan.vsat_jitter_ms)

    def _start_agents(self) -> None:
        for ns in self.topology.namespaces():
            devices = self.topology.devices_in(ns)
            if not devices:
                continue
            self.agents[ns] = Snmpsim(
                [(d.address, SNMP_PORT) for d in devices],
                self.workdir / "agents" / ns.removeprefix(f"{self.prefix}-"),
                recordings=sorted({d.model.recording for d in devices}),
                data_dir=self.recordings, netns=ns, die_with_parent=True)
        for agent in self.agents.values():  # started together: their indexing overlaps
            agent.launch()
        for agent in self.agents.values():
            agent.wait_ready()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process, then delete the network. Safe to call again; every step is
        tried, and the first failure raised at the end."""
        if not self._open:
            return
        self._open = False
        atexit.unregister(self.close)
        steps = [self.stop_monitord, *(agent.stop for agent in self.agents.values()),
                 *(echo.stop for echo in self.echoes.values())]
        if self.broker is not None:
            steps.append(self.broker.stop)
        steps.append(self._network.teardown)
        failures: list[Exception] = []
        for step in steps:
            try:
                step()
            except Exception as failure:  # every step must run
                failures.append(failure)
        if failures:
            raise failures[0]

    # -- monitord --------------------------------------------------------------------------

    @property
    def monitord(self) -> MonitordProcess:
        assert self._monitord is not None, "monitord is not running: call start_monitord()"
        return self._monitord

    def start_monitord(self, ready_timeout: float = 30.0) -> MonitordProcess:
        """`monitord run` on the lab inventory (again, on the same state_dir and port, after
        a stop or kill), once /-/ready answers."""
        assert self._open, "the lab is not built: use it as a context manager"
        assert self._monitord is None or self._monitord.proc.poll() is not None, "already running"
        self._monitord = MonitordProcess(self.inventory_path, self.port,
                                         self.workdir / "monitord.log", log_mode="a",
                                         die_with_parent=True, ready_timeout=ready_timeout)
        return self._monitord

    def kill_monitord(self) -> int:
        """SIGKILL monitord (a crash); its exit status."""
        return self.monitord.kill()

    def stop_monitord(self) -> None:
        if self._monitord is not None:
            self._monitord.stop()

    def samples(self) -> list[Sample]:
        return self.monitord.samples()

    def states(self) -> dict[str, str]:
        """{target: state} from monitord's /metrics."""
        return states_of(self.samples())

    def root_causes(self) -> dict[str, str]:
        """{target: root cause} of the targets not up, from /metrics."""
        return root_causes_of(self.samples())

    def wait_states(self, want: Mapping[str, str], timeout: float = 60) -> dict[str, str]:
        """Until every target in `want` is in its state; all states then."""
        def reached() -> dict[str, str] | None:
            states = self.states()
            return states if all(states.get(t) == s for t, s in want.items()) else None
        return wait_for(f"monitord states {dict(want)}", reached, timeout=timeout, every=0.5)

    def wait_settled(self, timeout: float = 90) -> list[Sample]:
        """Until every device is up and every one polled over SNMP (LabPlan.snmp_villages:
        not every village is) has completed a poll; the samples then."""
        every_device, snmp_devices = set(self.devices), set(self.topology.snmp_devices)

        def settled() -> list[Sample] | None:
            samples = self.samples()
            up = {t for t, s in states_of(samples).items() if s == "up"}
            polled = {labels["target"] for name, labels, v in samples
                      if name == "monitord_snmp_up" and v == 1.0}
            return samples if every_device <= up and snmp_devices <= polled else None
        return wait_for("every lab device up and polled over SNMP", settled, timeout=timeout,
                        every=0.5)
