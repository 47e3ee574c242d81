"""The province lab's layout, computed from a LabPlan without touching anything: its network
namespaces and how they are joined, the address plan, and every device with its address, role,
ICMP profile and SNMP recording.

    NOC: the namespace the lab is built from, where monitord runs
     └─ veth ── core: the provincial core router (forwards) and the data-center devices
          ├─ veth ── link ns of kabupaten 1: its router (forwards)
          │     ├─ veth ── desa ns: one address per village access point (radio)
          │     └─ veth ── vsat ns: one address per VSAT terminal (echo replies delayed)
          └─ ... one link ns (with its desa and vsat ns) per kabupaten

so the inventory's parents are the physical path: village -> kabupaten link -> core router.
Addresses, all in 198.18.0.0/15 (RFC 2544), third octets from 128 up, clear of the
198.18.n / 198.19.n (small n) that monitord.lab.netns.TestHost and KabupatenLink use:

    198.18.128.0/24       NOC .1, core router .2
    198.18.129.0/24       data-center devices .10, .11, ... (on the core namespace's lo)
    198.18.(130+k).0/24   core .1, kabupaten k's router .2
    198.19.(128+k).0/24   kabupaten k's router .1, its villages .10, .11, ...
    198.19.(192+k).0/24   kabupaten k's router .1, its VSAT villages .10, .11, ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MAX_KABUPATEN = 60  # 130 + k and 192 + k stay within an octet
MAX_PER_NET = 200  # hosts .10 to .209 of a /24
SNMP_PORT = 161
# Routed from the NOC to the core: everything of the lab beyond the NOC's own /24.
LAB_PREFIXES = ("198.18.128.0/17", "198.19.128.0/17")
NOC_ADDRESS, CORE_ADDRESS, NOC_PREFIX_LEN = "198.18.128.1", "198.18.128.2", 24
FIRST_HOST = 10

# Sulawesi Barat's six kabupaten, with their seats' coordinates (for Grafana's map); more
# kabupaten than that are numbered and left off the map.
KABUPATEN = (
    ("majene", -3.540, 118.970), ("mamuju", -2.675, 118.892), ("pasangkayu", -1.170, 119.370),
    ("polewali-mandar", -3.410, 119.320), ("mamasa", -2.940, 119.370),
    ("mamuju-tengah", -2.050, 119.290),
)
DATA_CENTER_COORDINATES = (-2.6772, 118.8869)  # pusat data, Mamuju


class Kind(StrEnum):
    CORE = "core-router"
    DATA_CENTER = "data-center"
    LINK = "kabupaten-link"
    VILLAGE = "village-ap"
    VSAT = "village-vsat"


@dataclass(frozen=True)
class DeviceModel:
    """What a device is: its role, ICMP profile, and the recording (= community) snmpsim
    serves for it with the SNMP modules that fit that recording."""

    stem: str  # device ids are STEM-NN
    name: str
    role: str
    profile: str
    recording: str
    modules: tuple[str, ...]


BASE = ("system", "if_mib")
CORE_MODEL = DeviceModel("prov-core-rtr", "Router inti provinsi", "dc-network", "lan",
                         "kabupaten-router-ubiquiti-edgerouter-pro8", (*BASE, "ucd"))
DATA_CENTER_MODELS = (
    DeviceModel("dc-sw", "Switch pusat data", "dc-network", "lan",
                "dc-switch-cisco-catalyst-ios", BASE),
    DeviceModel("dc-fw", "Firewall", "dc-firewall", "lan",
                "dc-firewall-fortinet-fortigate501e", BASE),
    DeviceModel("dc-nas", "NAS", "dc-server", "lan",
                "dc-server-synology-rs2212rp", (*BASE, "host_resources", "ucd")),
    DeviceModel("dc-hv", "Hypervisor", "dc-server", "lan",
                "dc-server-vmware-esxi7-proliant-dl380p", (*BASE, "host_resources")),
    DeviceModel("dc-ups", "UPS", "dc-ups", "lan",
                "dc-ups-apc-smartups-rt3000xl", (*BASE, "apc_ups")),
)
LINK_MODEL = DeviceModel("link", "Router kabupaten", "kabupaten-link", "kabupaten-link",
                         "kabupaten-router-ubiquiti-edgerouter-pro8", (*BASE, "ucd"))
VILLAGE_MODELS = (
    DeviceModel("ap", "AP desa", "village-ap", "village-radio",
                "village-ap-ubiquiti-litebeam5acgen2", (*BASE, "radio_airmax")),
    DeviceModel("ap", "AP desa", "village-ap", "village-radio",
                "village-ap-mikrotik-rb952ui-5ac2nd", (*BASE, "radio_mikrotik")),
    DeviceModel("ap", "AP desa", "village-ap", "village-radio",
                "village-ap-cambium-epmp", (*BASE, "radio_cambium")),
    DeviceModel("ap", "AP desa", "village-ap", "village-radio",
                "village-ap-ubiquiti-airfiber5xhd", (*BASE, "radio_airfiber")),
)
VSAT_MODEL = DeviceModel("vsat", "Terminal VSAT desa", "village-vsat", "vsat",
                         "village-vsat-uhp-vsat-terminal", BASE)


@dataclass(frozen=True)
class LabPlan:
    """How big the lab is and how fast monitord looks at it."""

    kabupaten: int = 3
    villages: int = 4  # radio village access points per kabupaten
    vsat_villages: int = 1  # VSAT villages per kabupaten
    # Villages per kabupaten polled over SNMP (the first ones, radio before VSAT); the rest are
    # probed over ICMP only. None: all. A big lab needs it: snmpsim spends ~0.24 ms of CPU per
    # varbind, so thousands of devices polled every few seconds would swamp it.
    snmp_villages: int | None = None
    dc_devices: int = 5  # data-center devices besides the core router
    icmp_interval: float = 3.0  # seconds between probes of each target (3 echoes each)
    snmp_interval: float = 10.0  # seconds between SNMP polls of each device
    # VSAT echo replies come from monitord.lab.echo_responder after this delay (kernel echo
    # replies off in the VSAT namespaces); 0: the kernel answers, without delay.
    vsat_delay_ms: int = 600
    vsat_jitter_ms: int = 50
    province: str = "lab"

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.kabupaten <= MAX_KABUPATEN:
            problems.append(f"kabupaten must be 1-{MAX_KABUPATEN}")
        for name in ("villages", "vsat_villages", "dc_devices"):
            if not 0 <= getattr(self, name) <= MAX_PER_NET:
                problems.append(f"{name} must be 0-{MAX_PER_NET}")
        if self.snmp_villages is not None and self.snmp_villages < 0:
            problems.append("snmp_villages cannot be negative")
        if self.icmp_interval < 2:
            problems.append("icmp_interval must be at least 2 s (the VSAT profile's probe takes 1.9 s)")
        if self.snmp_interval < 2:
            problems.append("snmp_interval must be at least 2 s")
        if self.vsat_delay_ms < 0 or self.vsat_jitter_ms < 0:
            problems.append("vsat_delay_ms and vsat_jitter_ms cannot be negative")
        if self.vsat_delay_ms + self.vsat_jitter_ms > 1200:
            problems.append("vsat_delay_ms + vsat_jitter_ms must stay under the VSAT timeout (1.5 s)")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class LabDevice:
    id: str
    kind: Kind
    model: DeviceModel
    address: str
    namespace: str  # where its address lives and its SNMP agent runs
    kabupaten: str
    site: str
    name: str
    coordinates: tuple[float, float] | None = None
    snmp: bool = True  # polled over SNMP (LabPlan.snmp_villages), else ICMP only


@dataclass(frozen=True)
class LinkLayout:
    """One kabupaten's link: its router's namespace and the veth pair to the core."""

    kabupaten: str
    device: str  # the kabupaten router's device id (the kabupaten's uplink)
    namespace: str  # the router's namespace; it forwards
    uplink_dev: str  # the router's veth towards the core, in `namespace`
    core_dev: str  # the other end, in the core namespace: down = the link is cut
    core_address: str  # the core's end of the link
    address: str  # the router's end (its device address)
    desa_ns: str
    village_net: str
    vsat_ns: str | None  # None without VSAT villages
    vsat_net: str | None
    villages: tuple[str, ...]  # radio access points' device ids
    vsat_villages: tuple[str, ...]

    @property
    def routed_nets(self) -> tuple[str, ...]:
        """What the core routes through this link (the kernel drops these routes when the
        link's core end goes down: restoring the link must put them back)."""
        return (self.village_net,) + ((self.vsat_net,) if self.vsat_net else ())


@dataclass(frozen=True)
class Topology:
    plan: LabPlan
    core_ns: str
    noc_dev: str  # the NOC's veth towards the core, in the namespace the lab is built from
    devices: Mapping[str, LabDevice]  # by id, in inventory order
    links: Mapping[str, LinkLayout]  # by kabupaten
    noc_address: str = NOC_ADDRESS
    core_address: str = CORE_ADDRESS

    @property
    def core_router(self) -> LabDevice:
        return next(d for d in self.devices.values() if d.kind is Kind.CORE)

    def namespaces(self) -> list[str]:
        """Every namespace of the lab, the core first, each link before those behind it."""
        names = [self.core_ns]
        for link in self.links.values():
            names += [link.namespace, link.desa_ns] + ([link.vsat_ns] if link.vsat_ns else [])
        return names

    @property
    def snmp_devices(self) -> list[str]:
        """The ids of the devices monitord polls over SNMP, in inventory order."""
        return [d.id for d in self.devices.values() if d.snmp]

    def devices_in(self, namespace: str) -> list[LabDevice]:
        return [d for d in self.devices.values() if d.namespace == namespace]

    def behind(self, kabupaten: str) -> list[str]:
        """The villages (radio and VSAT) reached through `kabupaten`'s link."""
        link = self.links[kabupaten]
        return [*link.villages, *link.vsat_villages]


def kabupaten_names(count: int) -> list[str]:
    return [KABUPATEN[k][0] if k < len(KABUPATEN) else f"kabupaten-{k + 1:02d}"
            for k in range(count)]


def _around(centre: tuple[float, float] | None, index: int, count: int,
            radius: float = 0.08) -> tuple[float, float] | None:
    """Villages on a small circle round their kabupaten's seat, so the map shows them apart."""
    if centre is None:
        return None
    angle = 2 * math.pi * index / max(count, 1)
    return (round(centre[0] + radius * math.sin(angle), 4),
            round(centre[1] + radius * math.cos(angle), 4))


def plan_topology(plan: LabPlan, prefix: str, noc_dev: str) -> Topology:
    """The layout of `plan`, its namespaces named `PREFIX-...` (unique per process: see
    monitord.lab.province) and the NOC's veth `noc_dev`."""
    core_ns = f"{prefix}-core"
    devices: list[LabDevice] = []
    dc_site = "pusat-data"
    devices.append(LabDevice(f"{CORE_MODEL.stem}-01", Kind.CORE, CORE_MODEL, CORE_ADDRESS, core_ns,
                             "provinsi", dc_site, CORE_MODEL.name, DATA_CENTER_COORDINATES))
    seen: dict[str, int] = {}
    for i in range(plan.dc_devices):
        model = DATA_CENTER_MODELS[i % len(DATA_CENTER_MODELS)]
        seen[model.stem] = seen.get(model.stem, 0) + 1
        number = seen[model.stem]
        devices.append(LabDevice(f"{model.stem}-{number:02d}", Kind.DATA_CENTER, model,
                                 f"198.18.129.{FIRST_HOST + i}", core_ns, "provinsi", dc_site,
                                 f"{model.name} {number}", DATA_CENTER_COORDINATES))
    links: dict[str, LinkLayout] = {}
    for k, kab in enumerate(kabupaten_names(plan.kabupaten), start=1):
        centre = (KABUPATEN[k - 1][1], KABUPATEN[k - 1][2]) if k <= len(KABUPATEN) else None
        link_ns = f"{prefix}-{kab}"
        desa_ns, vsat_ns = f"{link_ns}-desa", f"{link_ns}-vsat"
        link_id = f"{kab}-link"
        router = f"198.18.{130 + k}.2"
        devices.append(LabDevice(link_id, Kind.LINK, LINK_MODEL, router, link_ns, kab,
                                 f"kominfo-{kab}", f"{LINK_MODEL.name} {kab}", centre))
        total = plan.villages + plan.vsat_villages
        polled = total if plan.snmp_villages is None else plan.snmp_villages
        villages: list[str] = []
        vsats: list[str] = []
        for i in range(total):
            vsat = i >= plan.villages
            model = VSAT_MODEL if vsat else VILLAGE_MODELS[i % len(VILLAGE_MODELS)]
            host = FIRST_HOST + (i - plan.villages if vsat else i)
            device = LabDevice(
                f"{model.stem}-{kab}-{i + 1:02d}", Kind.VSAT if vsat else Kind.VILLAGE, model,
                f"198.19.{(192 if vsat else 128) + k}.{host}", vsat_ns if vsat else desa_ns, kab,
                f"desa-{kab}-{i + 1:02d}", f"{model.name} {kab} {i + 1}", _around(centre, i, total),
                snmp=i < polled)
            devices.append(device)
            (vsats if vsat else villages).append(device.id)
        links[kab] = LinkLayout(
            kabupaten=kab, device=link_id, namespace=link_ns, uplink_dev="up0", core_dev=f"kab{k}",
            core_address=f"198.18.{130 + k}.1", address=router, desa_ns=desa_ns,
            village_net=f"198.19.{128 + k}.0/24", vsat_ns=vsat_ns if vsats else None,
            vsat_net=f"198.19.{192 + k}.0/24" if vsats else None,
            villages=tuple(villages), vsat_villages=tuple(vsats))
    return Topology(plan, core_ns, noc_dev, {d.id: d for d in devices}, links)
