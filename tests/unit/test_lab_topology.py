"""The province lab's layout and inventory (monitord.lab.topology, .inventory): computed
without touching the network, so checked here without root."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from monitord.config import load_inventory
from monitord.lab.inventory import write_inventory
from monitord.lab.province import ProvinceLab
from monitord.lab.topology import MAX_KABUPATEN, Kind, LabPlan, Topology, plan_topology
from monitord.model import IcmpProfile, SnmpProfile

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
BIG = LabPlan(kabupaten=8, villages=7, vsat_villages=3, dc_devices=12)


def topology(plan: LabPlan = BIG) -> Topology:
    return plan_topology(plan, "mdlab1x1", "mdl1x1")


def test_sizes_follow_the_plan() -> None:
    t = topology()
    kinds = [d.kind for d in t.devices.values()]
    assert kinds.count(Kind.CORE) == 1
    assert kinds.count(Kind.DATA_CENTER) == 12
    assert kinds.count(Kind.LINK) == 8
    assert kinds.count(Kind.VILLAGE) == 8 * 7
    assert kinds.count(Kind.VSAT) == 8 * 3
    assert list(t.links)[:6] == ["majene", "mamuju", "pasangkayu", "polewali-mandar", "mamasa",
                                 "mamuju-tengah"]
    assert list(t.links)[6:] == ["kabupaten-07", "kabupaten-08"]
    for kab, link in t.links.items():
        assert len(link.villages) == 7
        assert len(link.vsat_villages) == 3
        assert t.behind(kab) == [*link.villages, *link.vsat_villages]


def test_addresses_are_unique_in_the_benchmark_range_clear_of_the_test_hosts() -> None:
    t = topology(LabPlan(kabupaten=MAX_KABUPATEN, villages=3, vsat_villages=2, dc_devices=200))
    addresses = [ipaddress.ip_address(d.address) for d in t.devices.values()]
    assert len(set(addresses)) == len(addresses)
    for address in [*addresses, ipaddress.ip_address(t.noc_address)]:
        assert address in LAB_RANGE
        # netns.TestHost n and KabupatenLink n use 198.18.n / 198.19.n counting from 1
        assert address.packed[2] >= 128, address
    for link in t.links.values():
        for net in link.routed_nets:
            assert ipaddress.IPv4Network(net).subnet_of(ipaddress.IPv4Network("198.19.128.0/17"))


def test_devices_live_where_the_cables_say() -> None:
    t = topology()
    assert t.core_router.namespace == t.core_ns
    for d in t.devices.values():
        if d.kind in (Kind.CORE, Kind.DATA_CENTER):
            assert d.namespace == t.core_ns
            continue
        link = t.links[d.kabupaten]
        expected = {Kind.LINK: link.namespace, Kind.VILLAGE: link.desa_ns, Kind.VSAT: link.vsat_ns}
        assert d.namespace == expected[d.kind], d.id
        net = {Kind.LINK: f"{link.address}/32", Kind.VILLAGE: link.village_net,
               Kind.VSAT: link.vsat_net}[d.kind]
        assert net is not None
        assert ipaddress.ip_address(d.address) in ipaddress.ip_network(net), d.id
    names = t.namespaces()
    assert len(set(names)) == len(names) == 1 + 3 * 8
    assert all(name.startswith("mdlab1x1-") for name in names)


def test_without_vsat_villages_there_is_no_vsat_namespace() -> None:
    t = topology(LabPlan(kabupaten=2, villages=2, vsat_villages=0))
    assert all(link.vsat_ns is None and link.vsat_net is None for link in t.links.values())
    assert len(t.namespaces()) == 1 + 2 * 2


def test_names_are_unique_per_process_and_lab_and_fit_the_kernel(tmp_path: Path) -> None:
    first, second = ProvinceLab(tmp_path / "a"), ProvinceLab(tmp_path / "b")
    assert first.prefix != second.prefix
    assert re.fullmatch(r"mdlab\d+x\d+", first.prefix)
    assert not set(first.topology.namespaces()) & set(second.topology.namespaces())
    # an interface name has at most 15 characters; the worst case is pid_max (4194304)
    assert len(first.topology.noc_dev) <= 15
    assert len("mdl4194304x9999") <= 15


@pytest.mark.parametrize(("plan", "problem"), [
    ({"kabupaten": 0}, "kabupaten must be"),
    ({"kabupaten": MAX_KABUPATEN + 1}, "kabupaten must be"),
    ({"villages": 201}, "villages must be"),
    ({"icmp_interval": 1.0}, "icmp_interval"),
    ({"vsat_delay_ms": 1300}, "VSAT timeout"),
    ({"vsat_jitter_ms": -1}, "cannot be negative"),
    ({"snmp_villages": -1}, "snmp_villages cannot be negative"),
])
def test_a_plan_that_cannot_be_built_is_refused(plan: dict[str, int | float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LabPlan(**plan)  # type: ignore[arg-type]


def test_the_inventory_loads_with_topology_parents_and_snmp_per_device(tmp_path: Path) -> None:
    t = topology()
    path = write_inventory(tmp_path / "lab.yaml", t, listen="127.0.0.1:9599",
                           state_dir=tmp_path / "state", mqtt_port=18830)
    inv = load_inventory(path)
    icmp = {c.target: c for c in inv.checks if c.kind == "icmp"}
    snmp = {c.target: c for c in inv.checks if c.kind == "snmp"}
    assert set(icmp) == set(snmp) == set(t.devices)
    core = t.core_router.id
    for d in t.devices.values():
        check = icmp[d.id]
        assert str(check.address) == d.address
        assert check.role == d.model.role
        assert check.kabupaten == d.kabupaten
        if d.kind in (Kind.VILLAGE, Kind.VSAT):
            assert check.parent == t.links[d.kabupaten].device, d.id
        else:
            assert check.parent == (None if d.kind is Kind.CORE else core), d.id
        profile = snmp[d.id].profile
        assert isinstance(profile, SnmpProfile)
        assert profile.credentials.community is not None
        assert profile.credentials.community.reveal() == d.model.recording
        assert profile.modules == d.model.modules
        assert profile.port == 161
    vsat = icmp[t.links["majene"].vsat_villages[0]].profile
    assert isinstance(vsat, IcmpProfile)
    assert vsat.timeout > 0.6 + 0.05  # the satellite delay and jitter fit in it
    assert vsat.state.max_rtt is not None
    assert vsat.state.max_rtt > 0.65
    assert inv.mqtt is not None
    assert inv.mqtt.port == 18830
    assert inv.mqtt.topic_prefix == "spbe/lab"
    assert inv.state_dir == str(tmp_path / "state")


def test_without_a_broker_the_inventory_has_no_mqtt(tmp_path: Path) -> None:
    path = write_inventory(tmp_path / "lab.yaml", topology(LabPlan(kabupaten=1)),
                           listen="127.0.0.1:9599", state_dir=tmp_path / "state", mqtt_port=None)
    assert load_inventory(path).mqtt is None


def test_snmp_villages_polls_the_first_villages_of_each_kabupaten_and_pings_the_rest(
        tmp_path: Path) -> None:
    """LabPlan.snmp_villages: the core, data center and links are always polled; per
    kabupaten only its first villages (radio before VSAT), the rest have no SNMP check."""
    plan = LabPlan(kabupaten=3, villages=4, vsat_villages=2, dc_devices=5, snmp_villages=5)
    t = topology(plan)
    for link in t.links.values():
        villages = [*link.villages, *link.vsat_villages]
        assert [t.devices[v].snmp for v in villages] == [True] * 5 + [False]
    infrastructure = [d.id for d in t.devices.values() if d.kind in (Kind.CORE, Kind.DATA_CENTER,
                                                                         Kind.LINK)]
    assert all(t.devices[d].snmp for d in infrastructure)
    assert len(t.snmp_devices) == 1 + 5 + 3 + 3 * 5
    path = write_inventory(tmp_path / "lab.yaml", t, listen="127.0.0.1:9599",
                           state_dir=tmp_path / "state", mqtt_port=None)
    inv = load_inventory(path)
    assert {c.target for c in inv.checks if c.kind == "icmp"} == set(t.devices)
    assert [c.target for c in inv.checks if c.kind == "snmp"] == t.snmp_devices


@pytest.mark.parametrize("snmp_villages", [None, 0])
def test_snmp_villages_none_polls_every_device_and_zero_only_the_infrastructure(
        tmp_path: Path, snmp_villages: int | None) -> None:
    t = topology(LabPlan(kabupaten=2, villages=3, vsat_villages=1, snmp_villages=snmp_villages))
    villages = {d.id for d in t.devices.values() if d.kind in (Kind.VILLAGE, Kind.VSAT)}
    polled = set(t.snmp_devices)
    assert polled & villages == (villages if snmp_villages is None else set())
    assert polled - villages == set(t.devices) - villages
    # Only the recordings of polled devices get an SNMP profile.
    path = write_inventory(tmp_path / "lab.yaml", t, listen="127.0.0.1:9599",
                           state_dir=tmp_path / "state", mqtt_port=None)
    profiles = set(yaml.safe_load(path.read_text())["snmp"]["profiles"])
    assert profiles == {t.devices[d].model.recording for d in polled}
    assert ("village-vsat-uhp-vsat-terminal" in profiles) is (snmp_villages is None)
