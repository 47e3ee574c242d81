"""The lab for the alerting and dashboard tests: one small province that monitord probes, a real
Prometheus scraping it with the shipped rules, a real Alertmanager with the shipped routing
tree, and a webhook receiver standing in for the on-call relay.

    province sulbar (uplink: the core router)
      provinsi / pusat-data-mamuju   core router 127.0.0.1 (ICMP), a switch, a firewall, two
                                     servers and a UPS on 127.0.0.2-6 (ICMP + SNMP: snmpsim
                                     serving the recordings of tests/data/snmprec), and a
                                     backup server that is powered off (a TestHost address
                                     nobody answers): down for the whole session
      majene                         majene-link (KabupatenLink namespace, SNMP: EdgeRouter
                                     recording, snmpsim inside the link namespace) and five
                                     villages behind it (radio APs and a VSAT terminal, SNMP:
                                     their recordings, snmpsim inside the desa namespace)
      mamuju                         mamuju-link and two villages, ICMP only: stays up while
                                     majene's link is failed
    and a mosquitto broker for monitord's state events (the self-health dashboard shows MQTT).

Only loopback and namespaces made here are probed. Every probe runs every second, SNMP every
3-5 s, and the state needs two failures out of three to change, so a failure shows within
seconds. The `lab` fixture is module-scoped: it is torn down when the module that uses it ends,
so its namespaces, veths and agents on 127.0.0.x never leak into other tests (they did when it
lived for the session). A test module that uses it lists this module in `pytest_plugins` and
must not import this module itself, which would come before pytest's plugin import
(an error under the suite's warnings-as-errors); it reads the lab's layout from the Lab
(lab.link_target, lab.villages ...) and imports Lab for typing only. A test that fails the
link must restore it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from monitord.lab.agents import Snmpsim
from monitord.lab.scrape import states_of
from tests.integration.harness import MonitordProcess, free_port, wait_for
from tests.integration.mosquitto import Mosquitto
from tests.integration.netns import KabupatenLink, TestHost
from tests.integration.prometheus_stack import (
    ALERTMANAGER_CONFIG,
    Alertmanager,
    Prometheus,
    WebhookReceiver,
    alertmanager_config_for_test,
    example_scrape_job,
    rules_for_test,
    shipped_rule_files,
)
from tests.integration.snmp_agents import RECORDINGS, SnmpAgents

PROVINCE = "sulbar"
CORE = "prov-core-rtr-01"
LINK_KABUPATEN, LINK = "majene", "majene-link"
OTHER_KABUPATEN, OTHER_LINK = "mamuju", "mamuju-link"
POWERED_OFF = "prov-backup-01"
SNMP_PORT = 1161


@dataclass(frozen=True)
class Device:
    """A device of the lab; `where` says which address it gets once the namespaces exist:
    a loopback address, "link" (a KabupatenLink's own), "village" (one behind a link) or
    "absent" (an address nobody answers)."""

    id: str
    kabupaten: str
    site: str
    role: str
    profile: str
    where: str
    recording: str | None = None  # SNMP: the recording (= community) it is served from
    modules: tuple[str, ...] = ()


BASE = ("system", "if_mib")
DATA_CENTER = [
    Device(CORE, "provinsi", "pusat-data-mamuju", "dc-network", "lan", "127.0.0.1"),
    Device("prov-core-sw-01", "provinsi", "pusat-data-mamuju", "dc-network", "lan", "127.0.0.2",
           "dc-switch-cisco-catalyst-ios", BASE),
    Device("prov-fw-01", "provinsi", "pusat-data-mamuju", "dc-firewall", "lan", "127.0.0.3",
           "dc-firewall-fortinet-fortigate501e", BASE),
    Device("prov-nas-01", "provinsi", "pusat-data-mamuju", "dc-server", "lan", "127.0.0.4",
           "dc-server-synology-rs2212rp", (*BASE, "host_resources", "ucd")),
    Device("prov-hv-01", "provinsi", "pusat-data-mamuju", "dc-server", "lan", "127.0.0.5",
           "dc-server-vmware-esxi7-proliant-dl380p", (*BASE, "host_resources")),
    Device("prov-ups-01", "provinsi", "pusat-data-mamuju", "dc-ups", "lan", "127.0.0.6",
           "dc-ups-apc-smartups-rt3000xl", (*BASE, "apc_ups")),
    Device(POWERED_OFF, "provinsi", "pusat-data-mamuju", "dc-server", "lan", "absent"),
]
MAJENE = [
    Device(LINK, LINK_KABUPATEN, "kominfo-majene", "kabupaten-link", "kabupaten-link", "link",
           "kabupaten-router-ubiquiti-edgerouter-pro8", (*BASE, "ucd")),
    Device("ap-adolang", LINK_KABUPATEN, "desa-adolang", "village-ap", "village-radio", "village",
           "village-ap-ubiquiti-litebeam5acgen2", (*BASE, "radio_airmax")),
    Device("ap-tammerodo", LINK_KABUPATEN, "desa-tammerodo", "village-ap", "village-radio", "village",
           "village-ap-mikrotik-rb952ui-5ac2nd", (*BASE, "radio_mikrotik")),
    Device("ap-tubo", LINK_KABUPATEN, "desa-tubo", "village-ap", "village-radio", "village",
           "village-ap-cambium-epmp", (*BASE, "radio_cambium")),
    Device("ap-lamba-lamba", LINK_KABUPATEN, "desa-lamba-lamba", "village-ap", "village-radio",
           "village", "village-ap-ubiquiti-airfiber5xhd", (*BASE, "radio_airfiber")),
    Device("ap-ulumanda", LINK_KABUPATEN, "desa-ulumanda", "village-vsat", "vsat", "village",
           "village-vsat-uhp-vsat-terminal", BASE),
]
MAMUJU = [
    Device(OTHER_LINK, OTHER_KABUPATEN, "kominfo-mamuju", "kabupaten-link", "kabupaten-link", "link"),
    Device("ap-belang-belang", OTHER_KABUPATEN, "desa-belang-belang", "village-ap", "village-radio",
           "village"),
    Device("ap-kalumpang", OTHER_KABUPATEN, "desa-kalumpang", "village-vsat", "vsat", "village"),
]
DEVICES = [*DATA_CENTER, *MAJENE, *MAMUJU]
VILLAGES = [d.id for d in DEVICES if d.role.startswith("village-")]
VILLAGES_BEHIND_LINK = [d.id for d in MAJENE if d.role.startswith("village-")]

COORDINATES = {  # from config/sulbar.yaml, so the geomap has real places
    "pusat-data-mamuju": (-2.6772, 118.8869), "kominfo-majene": (-3.5400, 118.9700),
    "desa-adolang": (-3.481, 118.928), "desa-tammerodo": (-3.302, 118.904),
    "desa-tubo": (-3.358, 118.962), "desa-lamba-lamba": (-3.041, 118.857),
    "desa-ulumanda": (-3.198, 119.048), "kominfo-mamuju": (-2.6745, 118.8920),
    "desa-belang-belang": (-2.515, 118.935), "desa-kalumpang": (-2.452, 119.548),
}
SITE_LABELS = {"pusat-data-mamuju": {"link_type": "lan"}}
# Values the recordings lack but the dashboards show, added to the lab's copy of the recording
# (OID|snmpsim type|value): the APC card's recording has no upsBasicBatteryStatus and no output
# load, which every Smart-UPS card answers (PowerNet-MIB). 2 = batteryNormal; 415 = 41.5 %.
RECORDING_EXTRAS = {
    "dc-ups-apc-smartups-rt3000xl": ["1.3.6.1.4.1.318.1.1.1.2.1.1.0|2|2",
                                     "1.3.6.1.4.1.318.1.1.1.4.3.3.0|66|415"],
}
ROLE_LABELS = {"kabupaten-link": {"isp": "telkom", "link_type": "fiber"},
               "village-ap": {"isp": "swakelola", "link_type": "radio"},
               "village-vsat": {"isp": "bakti", "link_type": "vsat"}}


def _icmp_profile(timeout: str, **thresholds: Any) -> dict[str, Any]:
    # The sulbar.yaml profiles at lab speed: every second, two failures of three for down.
    return {"interval": "1s", "count": 2, "packet_interval": "100ms", "timeout": timeout,
            "state": {"down_failures": 2, "down_window": 3, "up_successes": 2,
                      "flap_changes": 100, **thresholds}}


ICMP_PROFILES = {
    "lan": _icmp_profile("300ms", max_rtt="50ms"),
    "kabupaten-link": _icmp_profile("300ms", max_loss_ratio=0.1, max_rtt="150ms"),
    "village-radio": _icmp_profile("300ms", max_loss_ratio=0.3, max_rtt="300ms"),
    "vsat": _icmp_profile("800ms", max_loss_ratio=0.4, max_rtt="1500ms"),
}


def _snmp_profile(device: Device) -> dict[str, Any]:
    # snmpsim answers every poll quickly, but one process serves the five data-center devices
    # (61 Cisco interfaces among them): give those more time between polls.
    timing = ({"interval": "5s", "timeout": "2s"} if device.kabupaten == "provinsi"
              else {"interval": "3s", "timeout": "1s"})
    return {"version": "2c", "community": device.recording, "port": SNMP_PORT, "retries": 1,
            "modules": list(device.modules), **timing}


def _oid_key(line: str) -> tuple[int, ...]:
    return tuple(int(arc) for arc in line.split("|", 1)[0].split("."))


def write_recordings(directory: Path) -> Path:
    """The lab's recordings: copies of those in use, with RECORDING_EXTRAS added in OID order."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in sorted({d.recording for d in DEVICES if d.recording}):
        source = RECORDINGS / f"{name}.snmprec"
        if name not in RECORDING_EXTRAS:
            shutil.copyfile(source, directory / source.name)
            continue
        lines = source.read_text().splitlines()
        extras = RECORDING_EXTRAS[name]
        recorded = {line.split("|", 1)[0] for line in lines}
        assert not recorded & {line.split("|", 1)[0] for line in extras}, f"{name} has them now"
        text = "\n".join(sorted([*lines, *extras], key=_oid_key)) + "\n"
        (directory / source.name).write_text(text)
    return directory


def write_lab_config(path: Path, port: int, addresses: dict[str, str], broker: Mosquitto) -> Path:
    """The lab inventory: kabupaten and sites in DEVICES order, each kabupaten's link its
    uplink (so its villages are unreachable, not down, when it fails)."""
    kabupaten: dict[str, dict[str, Any]] = {}
    for d in DEVICES:
        kab = kabupaten.setdefault(d.kabupaten, {"id": d.kabupaten, "sites": []})
        if d.role == "kabupaten-link":
            kab["uplink"] = d.id
        sites = {s["id"]: s for s in kab["sites"]}
        if d.site not in sites:
            site: dict[str, Any] = {"id": d.site, "devices": []}
            if d.site in COORDINATES:
                latitude, longitude = COORDINATES[d.site]
                site["coordinates"] = {"latitude": latitude, "longitude": longitude}
            if d.site in SITE_LABELS:
                site["defaults"] = {"labels": SITE_LABELS[d.site]}
            kab["sites"].append(site)
            sites[d.site] = site
        device: dict[str, Any] = {"id": d.id, "address": addresses[d.id], "role": d.role,
                                  "profile": d.profile}
        if d.role in ROLE_LABELS:
            device["labels"] = ROLE_LABELS[d.role]
        if d.recording:
            device["snmp"] = d.id
        sites[d.site]["devices"].append(device)
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state")},
        "profiles": ICMP_PROFILES,
        "snmp": {"profiles": {d.id: _snmp_profile(d) for d in DEVICES if d.recording}},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": f"spbe/{PROVINCE}",
                 "keepalive": "5s", "max_backoff": "1s"},
        "province": {"id": PROVINCE, "name": "Provinsi Sulawesi Barat (lab)", "uplink": CORE,
                     "kabupaten": list(kabupaten.values())},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Lab:
    # The layout, for tests (which do not import this module's constants: see above).
    province: ClassVar[str] = PROVINCE
    link_target: ClassVar[str] = LINK
    link_kabupaten: ClassVar[str] = LINK_KABUPATEN
    powered_off: ClassVar[str] = POWERED_OFF
    villages: ClassVar[list[str]] = VILLAGES
    villages_behind_link: ClassVar[list[str]] = VILLAGES_BEHIND_LINK

    daemon: MonitordProcess
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: WebhookReceiver
    link: KabupatenLink  # majene's
    alertmanager_config: Path  # the copy Alertmanager runs
    rule_files: list[Path]  # the copies Prometheus runs
    started: float  # time.time() when monitord was ready

    def states(self) -> dict[str, str]:
        """{target: state} from monitord's own /metrics."""
        return states_of(self.daemon.samples())

    def wait_states(self, want: dict[str, str], timeout: float = 30) -> None:
        def reached() -> bool:
            states = self.states()
            return all(states.get(t) == s for t, s in want.items())
        wait_for(f"monitord states {want}", reached, timeout=timeout)

    def settled_states(self) -> dict[str, str]:
        """Everything up except the powered-off server, and every SNMP device polled."""
        return {**{d.id: "up" for d in DEVICES if d.id != POWERED_OFF}, POWERED_OFF: "down"}

    def wait_snmp_up(self, timeout: float = 60) -> None:
        want = {d.id for d in DEVICES if d.recording}

        def polled() -> bool:
            samples = self.daemon.samples()
            return want <= {labels["target"] for name, labels, v in samples
                            if name == "monitord_snmp_up" and v == 1.0}
        wait_for("every SNMP device polled", polled, timeout=timeout)

    def wait_running_for(self, seconds: float) -> None:
        """Until the lab has run `seconds` since monitord started (rate() and the recording
        rules need a few scrapes)."""
        time.sleep(max(0.0, self.started + seconds - time.time()))


def _addresses(majene: KabupatenLink, mamuju: KabupatenLink, absent: TestHost) -> dict[str, str]:
    out: dict[str, str] = {}
    for link, devices in ((majene, MAJENE), (mamuju, MAMUJU)):
        villages = iter(link.villages)
        for d in devices:
            out[d.id] = link.address if d.where == "link" else next(villages)
    for d in DATA_CENTER:
        out[d.id] = absent.absent_address if d.where == "absent" else d.where
    return out


def _snmp_agents(workdir: Path, majene: KabupatenLink, addresses: dict[str, str]) -> list[Snmpsim]:
    """snmpsim for the data center (loopback), in majene's link namespace and in its desa
    namespace: each device's agent answers from the device's own address."""
    data = write_recordings(workdir / "recordings")
    loopback = [d for d in DATA_CENTER if d.recording]
    in_dc = SnmpAgents([(addresses[d.id], SNMP_PORT) for d in loopback], workdir / "snmpsim-dc",
                       data_dir=data, recordings=sorted({d.recording for d in loopback if d.recording}))
    link = [d for d in MAJENE if d.recording and d.role == "kabupaten-link"]
    desa = [d for d in MAJENE if d.recording and d.role != "kabupaten-link"]
    namespaced = [
        Snmpsim([(addresses[d.id], SNMP_PORT) for d in link], workdir / "snmpsim-link",
                recordings=[d.recording for d in link if d.recording], data_dir=data,
                netns=majene.name),
        Snmpsim([(addresses[d.id], SNMP_PORT) for d in desa], workdir / "snmpsim-desa",
                recordings=[d.recording for d in desa if d.recording], data_dir=data,
                netns=majene.desa_ns),
    ]
    return [in_dc, *namespaced]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    assert ALERTMANAGER_CONFIG.is_file(), f"{ALERTMANAGER_CONFIG} is missing"
    with ExitStack() as stack:
        majene = stack.enter_context(KabupatenLink(villages=len(MAJENE) - 1))
        mamuju = stack.enter_context(KabupatenLink(villages=len(MAMUJU) - 1))
        absent = stack.enter_context(TestHost())
        addresses = _addresses(majene, mamuju, absent)

        agents = _snmp_agents(tmp, majene, addresses)
        for agent in agents:  # started together: their indexing overlaps
            stack.callback(agent.stop)
            agent.launch()

        broker = stack.enter_context(Mosquitto(tmp / "mosquitto"))
        webhook = stack.enter_context(WebhookReceiver())
        am_config = alertmanager_config_for_test(ALERTMANAGER_CONFIG, webhook.url,
                                                 tmp / "alertmanager" / "alertmanager.yml")
        alertmanager = Alertmanager(tmp / "alertmanager", am_config)
        stack.callback(alertmanager.stop)
        rules = [rules_for_test(p, tmp / "rules" / p.name) for p in shipped_rule_files()]

        for agent in agents:
            agent.wait_ready()
        port = free_port()
        daemon = MonitordProcess(write_lab_config(tmp / "monitord.yaml", port, addresses, broker), port,
                                 tmp / "monitord.log")
        stack.callback(daemon.stop)
        started = time.time()
        # Prometheus after monitord, so it never scrapes a monitord that is not there yet.
        prom = Prometheus(tmp / "prometheus", f"127.0.0.1:{port}", rules, alertmanager.address,
                          example_scrape_job())
        stack.callback(prom.stop)
        lab = Lab(daemon, prom, alertmanager, webhook, majene, am_config, rules, started)
        lab.wait_states(lab.settled_states(), timeout=60)
        lab.wait_snmp_up()
        yield lab
