"""The small province the fault tests break, and the monitord that watches it.

    core 127.0.0.1 (the province's uplink)
      majene-link (KabupatenLink: the faulted one)  ── desa-1, desa-2, desa-3 behind it
      mamuju-link (KabupatenLink: the control)      ── desa-kontrol behind it

A fault is injected into majene only; mamuju and the core are the control: they must stay up
with no event but their first. Every probe runs every second with one echo and a 300 ms
timeout, and two failures of three change a state, so each fault shows within seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitord.lab.faults import Link, Route
from tests.integration.mosquitto import Mosquitto
from tests.integration.netns import KabupatenLink

PREFIX = "lab/faults"
EVENTS = f"{PREFIX}/events"
CORE = "core"
LINK = "majene-link"
VILLAGES = ("desa-1", "desa-2", "desa-3")
CONTROL_LINK = "mamuju-link"
CONTROL_VILLAGE = "desa-kontrol"
CONTROL = (CORE, CONTROL_LINK, CONTROL_VILLAGE)
FAULTED = (LINK, *VILLAGES)
ALL = (*CONTROL, *FAULTED)

FAST: dict[str, Any] = {
    "interval": "1s", "count": 1, "packet_interval": "100ms", "timeout": "300ms",
    "state": {"down_failures": 2, "down_window": 3, "up_successes": 2, "flap_changes": 100},
}


def profile(**changes: Any) -> dict[str, Any]:
    """FAST with some settings changed; `state` is merged, not replaced."""
    result = copy.deepcopy(FAST)
    state = changes.pop("state", {})
    result.update(changes)
    result["state"].update(state)
    return result


@dataclass
class Province:
    faulted: KabupatenLink  # majene: what the faults hit
    control: KabupatenLink  # mamuju: must not notice

    @property
    def link(self) -> Link:
        """majene's link as the fault injectors see it: our veth end, and the villages' route
        through it (it goes away with the carrier)."""
        return link_of(self.faulted)

    def address(self, target: str) -> str:
        addresses = {CORE: "127.0.0.1", LINK: self.faulted.address,
                     CONTROL_LINK: self.control.address,
                     CONTROL_VILLAGE: self.control.villages[0],
                     **dict(zip(VILLAGES, self.faulted.villages, strict=True))}
        return addresses[target]


def link_of(kabupaten: KabupatenLink) -> Link:
    villages_net = kabupaten.villages[0].rsplit(".", 1)[0] + ".0/24"
    return Link(dev=kabupaten.local_dev, routes=(Route(villages_net, kabupaten.address),))


def write_config(path: Path, province: Province, port: int, broker: Mosquitto | None, *,
                 link_profile: Mapping[str, Any] | None = None,
                 village_profile: Mapping[str, Any] | None = None,
                 snmp_profiles: Mapping[str, Mapping[str, Any]] | None = None,
                 snmp: Mapping[str, str] | None = None,
                 extra_devices: Sequence[Mapping[str, Any]] = ()) -> Path:
    """The province's inventory: majene's link and villages on their own profiles (FAST by
    default), everything else on FAST. `snmp` maps a target to its SNMP profile; extra devices
    go into the data center, next to the core."""
    snmp = snmp or {}

    def device(target: str, **fields: Any) -> dict[str, Any]:
        found = {"id": target, "address": province.address(target), **fields}
        if target in snmp:
            found["snmp"] = snmp[target]
        return found

    doc: dict[str, Any] = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state")},
        "profiles": {"fast": FAST, "link": dict(link_profile or FAST),
                     "village": dict(village_profile or FAST)},
        "province": {
            "id": "sulbar", "uplink": CORE, "defaults": {"profile": "fast"},
            "kabupaten": [
                {"id": "provinsi", "sites": [{"id": "pusat-data", "devices": [
                    device(CORE, role="dc-network"), *extra_devices]}]},
                {"id": "majene", "uplink": LINK, "sites": [
                    {"id": "kominfo-majene", "devices": [
                        device(LINK, role="kabupaten-link", profile="link")]},
                    {"id": "desa", "defaults": {"role": "village-ap", "profile": "village"},
                     "devices": [device(v) for v in VILLAGES]},
                ]},
                {"id": "mamuju", "uplink": CONTROL_LINK, "sites": [
                    {"id": "kominfo-mamuju", "devices": [
                        device(CONTROL_LINK, role="kabupaten-link")]},
                    {"id": "desa-mamuju", "defaults": {"role": "village-ap"},
                     "devices": [device(CONTROL_VILLAGE)]},
                ]},
            ],
        },
    }
    if broker is not None:
        doc["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX,
                       "keepalive": "5s", "max_backoff": "1s"}
    if snmp_profiles:
        doc["snmp"] = {"profiles": {name: dict(p) for name, p in snmp_profiles.items()}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
