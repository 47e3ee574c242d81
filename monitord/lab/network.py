"""The province lab's namespaces, veth pairs, addresses and routes (monitord.lab.topology),
made with iproute2 and always deleted again.

The NOC end is in the namespace the lab is built from (the caller's: where monitord runs), so
building adds one veth and two routes there (to 198.18.128.0/17 and 198.19.128.0/17, through
the core); deleting the veth removes both. Everything else lives in the lab's own namespaces.
Addresses are added in `ip -batch` runs, one per namespace, so a big lab builds in seconds.

Each kabupaten router gets a permanent neighbour (ARP) entry for every village and VSAT
terminal behind it: the kernel's neighbour table is shared by all namespaces and holds ~1,024
learnt entries (gc_thresh3, settable only in the host's namespace), so ~2,000 villages would
overflow it ("neighbor table overflow!") and the routers drop packets at random. Permanent
entries do not count against that limit. (Data-center devices sit on the core's lo: no ARP.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence

from monitord.lab.errors import LabSetupError
from monitord.lab.topology import LAB_PREFIXES, NOC_PREFIX_LEN, LinkLayout, Topology

_TIMEOUT = 30.0


def _ip(args: Sequence[str], netns: str | None = None, batch: Sequence[str] = ()) -> None:
    """`ip [-n NETNS] ARGS`, or with `batch` lines fed to `ip [-n NETNS] -batch -`."""
    command = ["ip", *(["-n", netns] if netns else []), *args]
    if batch:
        command += ["-batch", "-"]
    done = subprocess.run(command, input="\n".join(batch) + "\n" if batch else None,
                          capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if done.returncode != 0:
        raise LabSetupError(f"{' '.join(command)} failed: {done.stderr.strip()}")


def _mac_of(netns: str, dev: str) -> str:
    command = ["ip", "-n", netns, "-j", "link", "show", dev]
    done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if done.returncode != 0:
        raise LabSetupError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    [link] = json.loads(done.stdout)
    return str(link["address"])


def _sysctl(netns: str, *settings: str) -> None:
    command = ["ip", "netns", "exec", netns, "sysctl", "-qw", *settings]
    done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if done.returncode != 0:
        raise LabSetupError(f"{' '.join(command)} failed: {done.stderr.strip()}")


def routes_in_use(prefixes: Sequence[str] = LAB_PREFIXES) -> list[str]:
    """Routes of this namespace inside the lab's prefixes: another lab is running here."""
    found: list[str] = []
    for prefix in prefixes:
        done = subprocess.run(["ip", "-4", "-o", "route", "list", "root", prefix],
                              capture_output=True, text=True, timeout=_TIMEOUT, check=True)
        found += [line for line in done.stdout.splitlines() if line.strip()]
    return found


# The names monitord.lab.province gives: namespaces PREFIX-..., the NOC's veth mdl<pid>x<n>.
_LAB_NETNS = re.compile(r"mdlab(\d+)x\d+-\S+")
_LAB_VETH = re.compile(r"mdl(\d+)x\d+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_labs() -> list[str]:
    """Delete what labs whose process is gone (SIGKILLed: no teardown ran) left: their
    namespaces, and their NOC veth in this namespace, whose routes would block a new lab.
    Only names the lab gives, carrying a process id that no longer exists; what was deleted."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          timeout=_TIMEOUT, check=True)
    netns = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    done = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=_TIMEOUT,
                          check=True)
    veths = [line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines()]
    stale = [("link", name) for name in veths
             if (m := _LAB_VETH.fullmatch(name)) and not _alive(int(m.group(1)))]
    stale += [("netns", name) for name in netns
              if (m := _LAB_NETNS.fullmatch(name)) and not _alive(int(m.group(1)))]
    for kind, name in stale:
        subprocess.run(["ip", kind, "del", name], capture_output=True, timeout=_TIMEOUT,
                       check=False)
    return [name for _, name in stale]


class LabNetwork:
    """Builds a Topology's network (build()) and deletes it (teardown(), safe to repeat)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._made: list[str] = []  # namespaces made so far, for teardown
        self.pinned_neighbours = 0  # permanent ARP entries made on the kabupaten routers

    def build(self) -> None:
        """Everything, or (after a failure, which is raised) nothing."""
        in_use = routes_in_use()
        if in_use:
            raise LabSetupError("this network namespace already routes the lab's addresses "
                                f"(another province lab running here?): {'; '.join(in_use)}")
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise

    def _build(self) -> None:
        t = self.topology
        for ns in t.namespaces():
            _ip(["netns", "add", ns])
            self._made.append(ns)
            _ip(["link", "set", "lo", "up"], ns)
        _ip(["link", "add", t.noc_dev, "type", "veth", "peer", "name", "noc0", "netns", t.core_ns])
        _ip([], batch=[f"addr add {t.noc_address}/{NOC_PREFIX_LEN} dev {t.noc_dev}",
                       f"link set {t.noc_dev} up"])
        core = [f"addr add {t.core_address}/{NOC_PREFIX_LEN} dev noc0", "link set noc0 up"]
        core += [f"addr add {d.address}/32 dev lo" for d in t.devices_in(t.core_ns)
                 if d.address != t.core_address]
        _ip([], t.core_ns, core)
        _sysctl(t.core_ns, "net.ipv4.ip_forward=1")
        for link in t.links.values():
            self._build_link(link)
        _ip([], batch=[f"route add {prefix} via {t.core_address}" for prefix in LAB_PREFIXES])

    def _build_link(self, link: LinkLayout) -> None:
        t = self.topology
        _ip(["link", "add", link.core_dev, "type", "veth", "peer", "name", link.uplink_dev,
             "netns", link.namespace], t.core_ns)
        _ip([], t.core_ns, [f"addr add {link.core_address}/24 dev {link.core_dev}",
                            f"link set {link.core_dev} up",
                            *(f"route add {net} via {link.address}" for net in link.routed_nets)])
        router = [f"addr add {link.address}/24 dev {link.uplink_dev}",
                  f"link set {link.uplink_dev} up", f"route add default via {link.core_address}"]
        _sysctl(link.namespace, "net.ipv4.ip_forward=1")
        downstream = [(link.desa_ns, "desa0", link.village_net)]
        if link.vsat_ns is not None and link.vsat_net is not None:
            downstream.append((link.vsat_ns, "vsat0", link.vsat_net))
        villages: list[tuple[str, list[str]]] = []
        for ns, dev, net in downstream:
            gateway = net.rsplit(".", 1)[0] + ".1"
            _ip(["link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns],
                link.namespace)
            behind, mac = t.devices_in(ns), _mac_of(ns, "eth0")
            router += [f"addr add {gateway}/24 dev {dev}", f"link set {dev} up",
                       *(f"neigh replace {d.address} lladdr {mac} dev {dev} nud permanent"
                         for d in behind)]
            self.pinned_neighbours += len(behind)
            villages.append((ns, [*(f"addr add {d.address}/24 dev eth0" for d in behind),
                                  "link set eth0 up", f"route add default via {gateway}"]))
        _ip([], link.namespace, router)
        for ns, commands in villages:
            # Each village's address is on eth0; deleting the first must not take the others
            # with it (a village "powered off" by removing its address).
            _sysctl(ns, "net.ipv4.conf.all.promote_secondaries=1")
            _ip([], ns, commands)

    def teardown(self) -> None:
        """Delete the NOC's veth (its routes go with it) and every namespace made. Processes
        inside must be stopped first, or a namespace outlives its name."""
        subprocess.run(["ip", "link", "del", self.topology.noc_dev], capture_output=True,
                       timeout=_TIMEOUT, check=False)
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=_TIMEOUT,
                           check=False)
        self._made.clear()
        self.pinned_neighbours = 0
