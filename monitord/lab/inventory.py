"""The lab inventory: the Topology as a monitord config (see the README's configuration
reference), probing at lab speed so a fault shows within seconds.

Parents follow the physical path: the province's uplink is the core router, each kabupaten's
uplink its link router, so a village behind a cut link is unreachable, not down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitord.lab.topology import SNMP_PORT, DeviceModel, Kind, LabDevice, LabPlan, Topology

# Operator labels as config/sulbar.yaml gives them (the dashboards group by them).
ROLE_LABELS = {"kabupaten-link": {"isp": "telkom", "link_type": "fiber"},
               "village-ap": {"isp": "swakelola", "link_type": "radio"},
               "village-vsat": {"isp": "bakti", "link_type": "vsat"},
               "dc-network": {"link_type": "lan"}}


def topic_prefix(plan: LabPlan) -> str:
    return f"spbe/{plan.province}"


def _icmp_profile(plan: LabPlan, timeout: str, **thresholds: Any) -> dict[str, Any]:
    # config/sulbar.yaml's profiles at lab speed: 3 echoes every few seconds, and two failed
    # probes of the last three make a target down.
    return {"interval": f"{plan.icmp_interval:g}s", "count": 3, "packet_interval": "200ms",
            "timeout": timeout,
            "state": {"down_failures": 2, "down_window": 3, "up_successes": 2, **thresholds}}


def icmp_profiles(plan: LabPlan) -> dict[str, dict[str, Any]]:
    return {
        "lan": _icmp_profile(plan, "500ms", max_rtt="50ms"),
        "kabupaten-link": _icmp_profile(plan, "500ms", max_loss_ratio=0.1, max_rtt="150ms"),
        "village-radio": _icmp_profile(plan, "500ms", max_loss_ratio=0.3, max_rtt="300ms"),
        "vsat": _icmp_profile(plan, "1500ms", max_loss_ratio=0.4, max_rtt="1500ms"),
    }


def snmp_profiles(topology: Topology) -> dict[str, dict[str, Any]]:
    """One profile per recording of a polled device: its community, and the modules that fit
    that device."""
    models: dict[str, DeviceModel] = {d.model.recording: d.model
                                      for d in topology.devices.values() if d.snmp}
    return {name: {"version": "2c", "community": name, "port": SNMP_PORT,
                   "interval": f"{topology.plan.snmp_interval:g}s", "timeout": "2s", "retries": 1,
                   "modules": list(model.modules)}
            for name, model in models.items()}


def _kabupaten_name(kabupaten: str) -> str:
    if kabupaten == "provinsi":
        return "Pusat data provinsi"
    title = kabupaten.replace("-", " ").title()
    return title if kabupaten.startswith("kabupaten-") else f"Kabupaten {title}"


def _device(d: LabDevice) -> dict[str, Any]:
    device: dict[str, Any] = {"id": d.id, "name": d.name, "address": d.address,
                              "role": d.model.role, "profile": d.model.profile}
    if d.snmp:
        device["snmp"] = d.model.recording
    if d.model.role in ROLE_LABELS:
        device["labels"] = ROLE_LABELS[d.model.role]
    return device


def lab_inventory(topology: Topology, *, listen: str, state_dir: Path,
                  mqtt_port: int | None) -> dict[str, Any]:
    """The inventory document; MQTT to 127.0.0.1:`mqtt_port` when given."""
    plan = topology.plan
    kabupaten: dict[str, dict[str, Any]] = {}
    for d in topology.devices.values():
        kab = kabupaten.setdefault(d.kabupaten, {
            "id": d.kabupaten,
            "name": _kabupaten_name(d.kabupaten),
            "sites": []})
        if d.kind is Kind.LINK:
            kab["uplink"] = d.id
        sites = {s["id"]: s for s in kab["sites"]}
        if d.site not in sites:
            site: dict[str, Any] = {"id": d.site, "devices": []}
            if d.coordinates is not None:
                site["coordinates"] = {"latitude": d.coordinates[0], "longitude": d.coordinates[1]}
            kab["sites"].append(site)
            sites[d.site] = site
        sites[d.site]["devices"].append(_device(d))
    doc: dict[str, Any] = {
        "daemon": {"listen": listen, "state_dir": str(state_dir)},
        "profiles": icmp_profiles(plan),
        "snmp": {"profiles": snmp_profiles(topology)},
    }
    if mqtt_port is not None:
        doc["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port, "topic_prefix": topic_prefix(plan),
                       "keepalive": "5s", "max_backoff": "2s"}
    doc["province"] = {"id": plan.province, "name": "Provinsi lab (network namespaces)",
                       "uplink": topology.core_router.id, "kabupaten": list(kabupaten.values())}
    return doc


def write_inventory(path: Path, topology: Topology, *, listen: str, state_dir: Path,
                    mqtt_port: int | None) -> Path:
    doc = lab_inventory(topology, listen=listen, state_dir=state_dir, mqtt_port=mqtt_port)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# The province lab's inventory, written by monitord.lab (monitord lab).\n"
                    + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path
