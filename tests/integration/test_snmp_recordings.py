"""monitord polling every recorded device, served by snmpsim: what it exports must be exactly
what the recordings hold.

One snmpsim serves all recordings (community = file name), with one endpoint per device
address, and one monitord polls them all with every shipped module (so a vendor module added
to default_modules.yaml is checked here without touching this file). The same daemon also
polls three recordings over SNMPv1 and one address where no agent listens. The expected
samples are computed from the .snmprec files by tests.snmprec, a reader that shares no code
with monitord; the module definitions are used only to know which OIDs feed which metric and
how (scale, unless, multiply_by, fallback order, index and label columns).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitord.config.snmp_schema import IndexSpec, LabelSpec, MetricSpec, ModuleSpec, SourceSpec
from monitord.model import HIERARCHY_LABELS
from monitord.snmp.modules import load_default_module_specs
from tests.integration.harness import MonitordProcess, Sample, free_port, value, wait_for
from tests.integration.snmp_agents import RECORDINGS, SnmpAgents, recording_names, running
from tests.snmprec import COUNTER64, Oid, Record, Recording, parse_oid

SNMP_PORT = 1161
BASE_MODULES = ("system", "if_mib")
# Recordings polled a second time, over SNMPv1: Cisco has HC and 32-bit ifXTable counters
# that differ, the LiteBeam only the 32-bit ifTable, the Synology HC-only interface counters
# next to 32-bit UCD and HOST-RESOURCES values.
V1_RECORDINGS = ("dc-switch-cisco-catalyst-ios", "village-ap-ubiquiti-litebeam5acgen2",
                 "dc-server-synology-rs2212rp")
DEAD = "dead"
DEAD_ADDRESS = "127.0.0.50"  # loopback, but no agent listens there

# A sample reduced to what identifies it on one device: name and its own labels (the
# hierarchy labels dropped; an empty label is the same as no label in Prometheus).
Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Device:
    id: str
    address: str
    recording: str
    version: str


def fleet_devices(names: list[str]) -> list[Device]:
    v2 = [Device(name, f"127.0.0.{2 + i}", name, "2c") for i, name in enumerate(names)]
    v1 = [Device(f"v1-{name}", f"127.0.0.{2 + len(names) + i}", name, "1")
          for i, name in enumerate(V1_RECORDINGS)]
    return [*v2, *v1, Device(DEAD, DEAD_ADDRESS, names[0], "2c")]


def profile_name(device: Device) -> str:
    # A community selects the recording, and communities live in profiles: one profile per
    # recording and version, alike otherwise.
    return f"v{device.version}-{device.recording}"


def snmp_profile(device: Device, modules: list[str]) -> dict[str, Any]:
    profile: dict[str, Any] = {"version": device.version, "community": device.recording,
                               "port": SNMP_PORT, "max_repetitions": 25,
                               "max_oids_per_request": 10, "modules": modules}
    if device.version == "1":
        # snmpsim answers a v1 GETNEXT that lands on Counter64 instances by skipping them one
        # lookup at a time, which costs it ~3 s of CPU for one 10-column ifXTable request on
        # the Cisco recording (a real v1 agent has nothing to skip). Three columns a request
        # keep that well under a second; each v1 device has its own snmpsim so the skipping
        # never holds up another agent, and a patient schedule, since only values are tested.
        return {**profile, "max_oids_per_request": 3, "interval": "15s", "timeout": "6s",
                "retries": 0}
    # Every module on every device keeps one snmpsim busy: leave room for a loaded CI machine,
    # since a single deadline overrun would be an error the tests rightly refuse.
    return {**profile, "interval": "5s", "timeout": "2s", "retries": 1}


def write_fleet_config(path: Path, port: int, devices: list[Device], modules: list[str]) -> Path:
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state")},
        "profiles": {"ping": {"interval": "30s", "count": 1, "timeout": "500ms"}},
        "snmp": {"profiles": {profile_name(d): snmp_profile(d, modules) for d in devices}},
        "province": {
            "id": "testprov",
            "defaults": {"profile": "ping", "role": "dc-server"},
            "kabupaten": [{"id": "kab", "sites": [{"id": "site", "devices": [
                {"id": d.id, "address": d.address, "snmp": profile_name(d)} for d in devices]}]}],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Fleet:
    daemon: MonitordProcess
    devices: list[Device]
    modules: dict[str, ModuleSpec]
    recordings: dict[str, Recording]

    def polled(self, version: str) -> list[Device]:
        """The devices that have an agent, polled with this SNMP version."""
        return [d for d in self.devices if d.id != DEAD and d.version == version]

    def device(self, device_id: str) -> Device:
        return next(d for d in self.devices if d.id == device_id)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    names = recording_names()
    assert len(names) == 11, f"expected the 11 device recordings in {RECORDINGS}, found {names}"
    specs = load_default_module_specs()
    modules = [*BASE_MODULES, *(m for m in specs if m not in BASE_MODULES)]
    devices = fleet_devices(names)
    tmp = tmp_path_factory.mktemp("snmp-recordings")
    recordings = {name: Recording.load(RECORDINGS / f"{name}.snmprec") for name in names}

    fleet_agent = SnmpAgents([(d.address, SNMP_PORT) for d in devices
                              if d.id != DEAD and d.version == "2c"], tmp / "snmpsim-v2c")
    v1_agents = [SnmpAgents([(d.address, SNMP_PORT)], tmp / f"snmpsim-{d.id}",
                            recordings=[d.recording]) for d in devices if d.version == "1"]
    with running(fleet_agent, *v1_agents):
        port = free_port()
        daemon = MonitordProcess(write_fleet_config(tmp / "monitord.yaml", port, devices, modules),
                                 port, tmp / "monitord.log")
        try:
            yield Fleet(daemon, devices, {m: specs[m] for m in modules}, recordings)
        finally:
            daemon.stop()


# --- what the recordings say monitord should export ---------------------------------------

def _number(record: Record | None, from_string: bool) -> int | float | None:
    """A cell as a number: the integer SNMP types as they are; an OCTET STRING only for a
    from_string source, holding a decimal number as text."""
    if record is None or not record.valid:
        return None
    if isinstance(record.value, int) and record.is_integer:
        return record.value
    if from_string and isinstance(record.value, bytes):
        try:
            return float(record.value.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def _source_value(source: SourceSpec, cell: Record | None, factor: Record | None) -> float | None:
    number = _number(cell, source.from_string)
    if number is None or number in source.unless:
        return None
    if source.multiply_by is not None:
        multiplier = _number(factor, source.from_string)
        if multiplier is None:
            return None
        number = number * multiplier
    return float(number * source.scale)


def _first_value(metric: MetricSpec, rec: Recording, row: Oid) -> float | None:
    """The metric's value for one row (`()` for a scalar): the first source that has one."""
    for source in metric.resolved_sources():
        factor = None
        if source.multiply_by is not None:
            factor = rec.get(parse_oid(source.multiply_by) + row)
        found = _source_value(source, rec.get(parse_oid(source.oid) + row), factor)
        if found is not None:
            return found
    return None


def _label_text(record: Record | None, spec: LabelSpec) -> str:
    """A label's text: strings decoded as UTF-8 with whitespace runs (and NULs) collapsed and
    trimmed, numbers, OIDs and IP addresses in their usual text form; then the module's map."""
    if record is None or not record.valid:
        return ""
    raw = record.value
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", "replace").replace("\x00", " ")
    else:
        text = "" if raw is None else str(raw)
    text = " ".join(text.split())
    return spec.map.get(text, text) if spec.map is not None else text


def _index_labels(parts: list[IndexSpec], row: Oid) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    for part in parts:
        taken = row[pos:] if part.arcs is None else row[pos:pos + part.arcs]
        pos += len(taken)
        if part.format == "mac":
            text = ":".join(f"{arc:02x}" for arc in taken)
        else:  # number, ip: the sub-identifiers, dotted
            text = ".".join(str(arc) for arc in taken)
        out[part.name] = part.map.get(text, text) if part.map is not None else text
    return out


def _key(name: str, labels: Mapping[str, str]) -> Key:
    return name, frozenset((k, v) for k, v in labels.items() if v != "")


def expected_samples(rec: Recording, modules: Mapping[str, ModuleSpec]) -> dict[Key, float]:
    """Every module sample the recording should produce. A table row exists for a metric
    wherever any of its source columns has an instance, so a row that is only in a fallback
    column (or only in a later column) must not be dropped."""
    out: dict[Key, float] = {}

    def put(key: Key, number: float) -> None:
        assert key not in out, f"{rec.name}: two modules define the same series {key}"
        out[key] = number

    for module in modules.values():
        for metric in module.scalars:
            if metric.type == "info":
                present = {spec.name: _label_text(rec.get(spec.oid), spec)
                           for spec in metric.labels if rec.get(spec.oid) is not None}
                if present:
                    put(_key(metric.name, present), 1.0)
                continue
            found = _first_value(metric, rec, ())
            if found is not None:
                put(_key(metric.name, {}), found)
        for table in module.tables:
            for metric in table.metrics:
                rows: dict[Oid, None] = {}
                for source in metric.resolved_sources():
                    rows.update(dict.fromkeys(rec.column(source.oid)))
                for row in rows:
                    found = _first_value(metric, rec, row)
                    if found is None:
                        continue
                    labels = _index_labels(table.index, row)
                    for spec in table.labels:
                        labels[spec.name] = _label_text(rec.get(parse_oid(spec.oid) + row), spec)
                    put(_key(metric.name, labels), found)
    return out


def module_metric_names(modules: Mapping[str, ModuleSpec]) -> set[str]:
    return {m.name for spec in modules.values()
            for m in [*spec.scalars, *(m for t in spec.tables for m in t.metrics)]}


def exported_samples(samples: list[Sample], target: str, names: set[str]) -> dict[Key, float]:
    out: dict[Key, float] = {}
    for name, labels, number in samples:
        if name in names and labels.get("target") == target:
            key = _key(name, {k: v for k, v in labels.items() if k not in HIERARCHY_LABELS})
            assert key not in out, f"{target}: series {key} exported twice"
            out[key] = number
    return out


def _same(a: float, b: float) -> bool:
    # Scaled values go through float arithmetic: allow for the last bit, nothing more.
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _show(key: Key) -> str:
    return key[0] + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(key[1])) + "}"


def sample_diff(expected: dict[Key, float], got: dict[Key, float]) -> list[str]:
    problems = [f"missing {_show(k)} (recorded {expected[k]!r})" for k in expected.keys() - got.keys()]
    problems += [f"not in the recording: {_show(k)} {got[k]!r}" for k in got.keys() - expected.keys()]
    problems += [f"{_show(k)}: recorded {expected[k]!r}, exported {got[k]!r}"
                 for k in expected.keys() & got.keys() if not _same(expected[k], got[k])]
    return sorted(problems)


def by_device(samples: list[Sample], name: str) -> dict[str, float]:
    return {labels["target"]: v for n, labels, v in samples if n == name}


def errors_of(samples: list[Sample], target: str) -> dict[str, float]:
    return {labels["reason"]: v for name, labels, v in samples
            if name == "monitord_snmp_errors_total" and labels["target"] == target}


def polled_ok(fleet: Fleet, devices: list[Device]) -> Callable[[], list[Sample] | None]:
    """A wait_for probe: the scrape once every one of `devices` has had a complete poll."""
    def probe() -> list[Sample] | None:
        samples = fleet.daemon.samples()
        up = by_device(samples, "monitord_snmp_up")
        return samples if all(up.get(d.id) == 1.0 for d in devices) else None
    return probe


def polled_again(fleet: Fleet, devices: list[Device], since: dict[str, float],
                 more: int) -> Callable[[], list[Sample] | None]:
    """A wait_for probe: the scrape once each of `devices` has finished `more` polls since."""
    def probe() -> list[Sample] | None:
        samples = fleet.daemon.samples()
        done = by_device(samples, "monitord_snmp_polls_total")
        return samples if all(done.get(d.id, 0) >= since[d.id] + more for d in devices) else None
    return probe


def wait_polls(fleet: Fleet, what: str, probe: Callable[[], list[Sample] | None],
               timeout: float = 30.0) -> list[Sample]:
    """wait_for, saying on failure where each device stands and what monitord logged."""
    try:
        return wait_for(what, probe, timeout=timeout)
    except AssertionError as exc:
        samples = fleet.daemon.samples()
        state = [f"{d.id}: up={value(samples, 'monitord_snmp_up', target=d.id)} "
                 f"polls={value(samples, 'monitord_snmp_polls_total', target=d.id)} "
                 f"errors={errors_of(samples, d.id)}" for d in fleet.devices]
        warnings = [line for line in fleet.daemon.log().splitlines() if "WARNING" in line]
        raise AssertionError("\n".join([str(exc), *state, *warnings[-20:]])) from None


def check_device(fleet: Fleet, samples: list[Sample], device: Device) -> list[str]:
    """What is wrong with one device's export, compared with its recording."""
    rec = fleet.recordings[device.recording]
    if device.version == "1":
        rec = rec.without(COUNTER64)  # SNMPv1 cannot carry Counter64: the agent skips it
    expected = expected_samples(rec, fleet.modules)
    # Not a vacuous comparison: every recording has its identity and an interface table.
    names = {name for name, _ in expected}
    assert "monitord_device_info" in names, device.id
    assert "monitord_if_in_errors_total" in names, device.id
    got = exported_samples(samples, device.id, module_metric_names(fleet.modules))
    problems = []
    if value(samples, "monitord_snmp_up", target=device.id) != 1.0:
        problems.append("monitord_snmp_up is not 1")
    if errors_of(samples, device.id):
        problems.append(f"monitord_snmp_errors_total: {errors_of(samples, device.id)}")
    diff = sample_diff(expected, got)
    return problems + diff[:25] + ([f"... and {len(diff) - 25} more"] if len(diff) > 25 else [])


def assert_matches_recordings(fleet: Fleet, samples: list[Sample], devices: list[Device]) -> None:
    report = [f"{d.id}: {problem}" for d in devices for problem in check_device(fleet, samples, d)]
    assert report == [], "\n".join(["exported samples differ from the recordings:", *report])


# --- 1. every recording, every module, every sample ---------------------------------------

def test_every_recorded_value_is_exported_exactly(fleet: Fleet) -> None:
    v2 = fleet.polled("2c")
    assert len(v2) == 11
    samples = wait_polls(fleet, "a complete poll of every device", polled_ok(fleet, v2))
    assert_matches_recordings(fleet, samples, v2)

    # Later polls skip the label walk and walk fallback columns only where some row needed
    # them: the steady state (any poll after the first) must export the very same samples.
    since = by_device(samples, "monitord_snmp_polls_total")
    samples = wait_polls(fleet, "another poll of every device", polled_again(fleet, v2, since, 1))
    assert_matches_recordings(fleet, samples, v2)


# --- 2. hand-read values, per recording -----------------------------------------------------

FORTIGATE = "dc-firewall-fortinet-fortigate501e"
SYNOLOGY = "dc-server-synology-rs2212rp"
ESXI = "dc-server-vmware-esxi7-proliant-dl380p"
CISCO = "dc-switch-cisco-catalyst-ios"
APC = "dc-ups-apc-smartups-rt3000xl"
EDGEROUTER = "kabupaten-router-ubiquiti-edgerouter-pro8"
EPMP = "village-ap-cambium-epmp"
MIKROTIK = "village-ap-mikrotik-rb952ui-5ac2nd"
AIRFIBER = "village-ap-ubiquiti-airfiber5xhd"
LITEBEAM = "village-ap-ubiquiti-litebeam5acgen2"
UHP = "village-vsat-uhp-vsat-terminal"

CISCO_DESCR = ("Cisco Internetwork Operating System Software IOS (tm) C2950 Software "
               "(C2950-I6K2L2Q4-M), Version 12.1(22)EA14, RELEASE SOFTWARE (fc1) Technical "
               "Support: http://www.cisco.com/techsupport Copyright (c) 1986-2010 by cisco "
               "Systems, Inc. Compiled Tue 26-O")  # cut short in the recording itself


@dataclass(frozen=True)
class Spot:
    """One sample of one device, read from the .snmprec by hand. `where` picks the sample by
    its own labels; `labels` are label values it must carry ("" = absent or empty);
    expected None = no such sample. Applies when `module` is shipped (None: always)."""

    device: str
    metric: str
    where: dict[str, str]
    expected: float | None
    labels: dict[str, str] = field(default_factory=dict)
    module: str | None = "if_mib"


def _uptime(device: str, seconds: float | None) -> Spot:
    return Spot(device, "monitord_device_uptime_seconds", {}, seconds, module=None)


def _info(device: str, **labels: str) -> Spot:
    return Spot(device, "monitord_device_info", {}, 1.0, labels, module="system")


def _if(device: str, metric: str, if_index: int, expected: float | None, **labels: str) -> Spot:
    return Spot(device, f"monitord_if_{metric}", {"if_index": str(if_index)}, expected, labels)


SPOTS = [
    # sysUpTime (TimeTicks, 1/100 s); the APC card has none: no series, and no error either.
    _uptime(FORTIGATE, 787071.67), _uptime(SYNOLOGY, 42157224.85), _uptime(ESXI, 920959.0),
    _uptime(CISCO, 29722311.63), _uptime(APC, None), _uptime(EDGEROUTER, 164369.42),
    _uptime(EPMP, 1920143.68), _uptime(MIKROTIK, 20204.0), _uptime(AIRFIBER, 98200.47),
    _uptime(LITEBEAM, 9644501.0), _uptime(UHP, 600158.9),
    Spot(SYNOLOGY, "monitord_device_reboots_total", {}, 0.0, module=None),
    Spot(APC, "monitord_device_reboots_total", {}, None, module=None),
    # The system group: hex (4x) sysDescr with CR LF decoded and folded onto one line, an
    # empty one, one padded with spaces, and an APC card that has no sysName at all.
    _info(CISCO, sys_descr=CISCO_DESCR, sys_object_id="1.3.6.1.4.1.9.1.359", sys_name="<private>"),
    _info(FORTIGATE, sys_descr="", sys_object_id="1.3.6.1.4.1.12356.15"),
    _info(UHP, sys_descr="UHP VSAT Terminal Software", sys_object_id="1.3.6.1.4.1.8000"),
    _info(MIKROTIK, sys_descr="router"),
    _info(APC, sys_name="", sys_object_id="1.3.6.1.4.1.318.1.3.2.17"),
    # 64-bit octet counters where ifXTable has them.
    _if(CISCO, "in_octets_total", 10101, 453361420426, if_name="Gi0/1",
        if_descr="GigabitEthernet0/1", if_alias="<description>"),
    _if(CISCO, "out_octets_total", 10101, 3336918220290),
    _if(CISCO, "in_multicast_packets_total", 10101, 685394540),  # HC; the 32-bit one says ...539
    _if(CISCO, "out_multicast_packets_total", 10104, 184431441552),  # 32-bit: 4042815120
    # Cisco has ifXTable rows for all 61 interfaces, but 20 (the VLAN SVIs, Loopback50) lack
    # the multicast/broadcast columns in both widths: no such series, the rest is there.
    _if(CISCO, "in_multicast_packets_total", 10, None),
    _if(CISCO, "in_octets_total", 10, 11355725484, if_name="Vl10", if_descr="Vlan10"),
    _if(EDGEROUTER, "in_octets_total", 5, 214425147473, if_name="eth7", if_alias="link-ines"),
    _if(EDGEROUTER, "out_octets_total", 5, 141693718792),
    _if(SYNOLOGY, "in_octets_total", 3, 35692338631034, if_descr="eth0"),
    _if(SYNOLOGY, "in_errors_total", 3, 635),
    _if(ESXI, "in_octets_total", 1, 233481089086071, if_name="vmnic4", if_alias="07:00.0"),
    # 32-bit only devices (no ifXTable): ifInOctets/ifOutOctets, no if_name.
    _if(LITEBEAM, "in_octets_total", 2, 2055946673, if_descr="eth0", if_name=""),
    _if(LITEBEAM, "out_octets_total", 2, 3352696952),
    _if(APC, "in_octets_total", 2, 13642358, if_descr="lance", if_name=""),
    _if(APC, "out_octets_total", 2, 8944457),
    _if(UHP, "in_octets_total", 3, 1570794184, if_descr="Demodulator-1"),
    _if(UHP, "in_errors_total", 3, 949),
    # Speed: ifSpeed where recorded, else ifHighSpeed x 10^6.
    _if(LITEBEAM, "speed_bps", 2, 100_000_000),
    _if(APC, "speed_bps", 2, 10_000_000),
    _if(UHP, "speed_bps", 3, 6666),
    _if(CISCO, "speed_bps", 10101, 1_000_000_000),
    _if(AIRFIBER, "speed_bps", 10, 0),
    # ePMP: LibreNMS trimmed ifSpeed from this recording, so ifHighSpeed is used, and the ePMP
    # puts bits per second there (1000000000 for a gigabit port): read as Mbps, as IF-MIB
    # defines it, that is 10^15 bps. A real ePMP also answers ifSpeed, which comes first.
    _if(EPMP, "speed_bps", 1, 1_000_000_000 * 10**6),
    _if(EPMP, "speed_bps", 2, 220_000_000 * 10**6),
    # FortiGate: no ifSpeed recorded; down ports report ifHighSpeed 4294901759 (0xFFFEFFFF),
    # which the module refuses (`unless`): no speed sample rather than 4.3 Pbps.
    _if(FORTIGATE, "speed_bps", 3, None, if_name="port1"),
    _if(FORTIGATE, "oper_status", 3, 2),
    _if(FORTIGATE, "speed_bps", 1, 1_000_000_000, if_name="ha"),
    _if(FORTIGATE, "in_errors_total", 10, 1, if_name="port8"),
    # MikroTik pppoe-out1 has an empty ifPhysAddress (`4|`): irrelevant, the row is there.
    _if(MIKROTIK, "in_octets_total", 11, 6300311612, if_descr="pppoe-out1"),
    # Vendor modules.
    *(Spot(LITEBEAM, f"monitord_{m}", {"radio": "1"}, v, module="radio_airmax") for m, v in (
        ("radio_signal_dbm", -70), ("radio_noise_floor_dbm", -91),
        ("radio_frequency_hertz", 5780e6), ("radio_tx_power_dbm", 24),
        ("radio_distance_meters", 1200), ("radio_ccq_ratio", 0.33),
        ("radio_tx_rate_bps", 39_000_000), ("radio_rx_rate_bps", 52_000_000),
        ("radio_stations", 1), ("airmax_capacity_ratio", 0.0), ("airmax_airtime_ratio", 0.699),
        ("airmax_quality_ratio", None))),  # not in this airOS 8 recording
    *(Spot(APC, f"monitord_ups_{m}", {}, v, module="apc_ups") for m, v in (
        ("battery_capacity_ratio", 1.0), ("battery_runtime_seconds", 19526.0),
        ("battery_temperature_celsius", 21.0), ("battery_voltage_volts", 218.0),
        ("battery_replace_needed", 1), ("battery_status", None),
        ("input_voltage_volts", 223.0), ("input_frequency_hertz", 50.0),
        ("input_fail_cause", 9), ("output_status", 2), ("output_voltage_volts", 230.0),
        ("output_frequency_hertz", 50.0), ("output_load_ratio", None),
        ("output_current_amperes", 4.0))),
    Spot(APC, "monitord_ups_info", {}, 1.0, {"model": "Smart-UPS RT 3000 XL",
                                             "firmware_version": "4.1",
                                             "serial_number": "NS083300xxxx"}, "apc_ups"),
    *(Spot(SYNOLOGY, f"monitord_ucd_{m}", {}, v, module="ucd") for m, v in (
        ("memory_total_bytes", 1012408 * 1024), ("memory_free_bytes", 117032 * 1024),
        ("swap_total_bytes", 2705332 * 1024), ("cpus", 4),
        ("cpu_user_ticks_total", 305270133), ("cpu_steal_ticks_total", 0))),
    *(Spot(SYNOLOGY, "monitord_ucd_load_average", {"period": p}, v, module="ucd")
      for p, v in (("1m", 1.61), ("5m", 1.10), ("15m", 0.97))),
    Spot(SYNOLOGY, "monitord_hr_processes", {}, 233, module="host_resources"),
    Spot(SYNOLOGY, "monitord_hr_storage_size_bytes", {"storage_index": "51"},
         1437056540 * 65536, {"storage_descr": "/volume1", "storage_type": "fixed_disk"},
         "host_resources"),
    Spot(SYNOLOGY, "monitord_hr_storage_used_bytes", {"storage_index": "1"}, 896328 * 1024,
         {"storage_descr": "Physical memory", "storage_type": "ram"}, "host_resources"),
    Spot(AIRFIBER, "monitord_airfiber_info", {}, 1.0,
         {"model": "airFiber 5XHD", "firmware_version": ".v1.1.1-BETA2.00015.180314.0503"},
         "radio_airfiber"),
    *(Spot(MIKROTIK, f"monitord_radio_{m}", {"if_index": i}, v, labels, "radio_mikrotik")
      for m, i, v, labels in (
          ("stations", "1", 7, {"ssid": "WARKOP-KOPIBOSS-B", "band": "2412/20-Ce/gn"}),
          ("frequency_hertz", "1", 2412e6, {}), ("noise_floor_dbm", "1", -117, {}),
          ("ccq_ratio", "2", 0.75, {"ssid": "WARKOP-KOPIBOSS-A"}),
          ("frequency_hertz", "8", None, {}),  # 0: not running
          ("noise_floor_dbm", "9", None, {}))),
    Spot(MIKROTIK, "monitord_radio_signal_dbm", {"station_mac": "a4:e4:b8:4a:d5:ca",
                                                 "if_index": "1"}, -43, module="radio_mikrotik"),
    Spot(MIKROTIK, "monitord_radio_signal_dbm", {"station_mac": "08:8c:2c:15:6e:b9",
                                                 "if_index": "9"}, -49, module="radio_mikrotik"),
    Spot(EPMP, "monitord_cambium_info", {}, 1.0,
         {"firmware_version": "4.5.6", "sub_mode": "eptp_master"}, "radio_cambium"),
    *(Spot(EPMP, f"monitord_{m}", {}, v, module="radio_cambium") for m, v in (
        ("radio_frequency_hertz", 5210e6), ("radio_snr_db", 34), ("radio_stations", 1),
        ("radio_signal_dbm", None), ("cambium_cpu_usage_ratio", 0.42),
        ("cambium_network_entry_attempts_total", 1))),
]


def check_spot(samples: list[Sample], target: str, spot: Spot) -> str | None:
    """Why the spot check fails, or None."""
    found = [(labels, v) for name, labels, v in samples
             if name == spot.metric and labels.get("target") == target
             and all(labels.get(k) == want for k, want in spot.where.items())]
    if spot.expected is None:
        return f"expected no sample, got {found}" if found else None
    if len(found) != 1:
        return f"expected one sample, got {found}"
    labels, got = found[0]
    if not _same(got, float(spot.expected)):
        return f"expected {spot.expected!r}, got {got!r}"
    wrong = {k: labels.get(k, "") for k, want in spot.labels.items() if labels.get(k, "") != want}
    return f"labels {wrong}, expected {spot.labels}" if wrong else None


def test_hand_read_values_per_recording(fleet: Fleet) -> None:
    samples = wait_polls(fleet, "a complete poll of every device",
                         polled_ok(fleet, fleet.polled("2c")))
    applicable = [s for s in SPOTS if s.module is None or s.module in fleet.modules]
    # The system and IF-MIB checks always apply; vendor ones while their module ships.
    assert len(applicable) >= len([s for s in SPOTS if s.module in (None, *BASE_MODULES)])
    assert {s.device for s in applicable} == set(fleet.recordings)  # every recording checked
    failures = [f"{s.device} {s.metric}{s.where}: {problem}" for s in applicable
                if (problem := check_spot(samples, s.device, s)) is not None]
    assert failures == [], "\n".join(failures)
    for device in fleet.polled("2c"):
        assert errors_of(samples, device.id) == {}, device.id


# --- 3. SNMPv1 ------------------------------------------------------------------------------

def test_snmpv1_gives_the_same_values_with_32_bit_fallbacks(fleet: Fleet) -> None:
    v1 = fleet.polled("1")
    assert {d.recording for d in v1} == set(V1_RECORDINGS)
    samples = wait_polls(fleet, "a complete SNMPv1 poll of each v1 device",
                         polled_ok(fleet, v1), timeout=45)
    # Exactly the recording minus its Counter64 instances, and no error of any kind.
    assert_matches_recordings(fleet, samples, v1)

    names = module_metric_names(fleet.modules)
    over_v1 = {d.recording: exported_samples(samples, d.id, names) for d in v1}
    over_v2 = {d.recording: exported_samples(samples, d.recording, names) for d in v1}
    for recording in V1_RECORDINGS:
        # v1 can only lose series (Counter64-only ones), never invent any.
        assert over_v1[recording].keys() <= over_v2[recording].keys(), recording
    # No Counter64 in the LiteBeam recording: v1 and v2c give identical samples.
    assert over_v1[LITEBEAM] == over_v2[LITEBEAM]
    # Cisco: the HC octets are gone (no 32-bit octets recorded); multicast counts fall back
    # to the 32-bit ifIn/OutMulticastPkts, which read less than the HC ones (Gi0/4 out: HC
    # 184431441552, the 32-bit counter has wrapped to 4042815120).
    cisco = f"v1-{CISCO}"
    for spot in (_if(CISCO, "in_octets_total", 10101, None),
                 _if(CISCO, "in_multicast_packets_total", 10101, 685394539),
                 _if(CISCO, "out_multicast_packets_total", 10104, 4042815120),
                 _if(CISCO, "in_errors_total", 10101, 0, if_name="Gi0/1"),
                 _if(CISCO, "speed_bps", 10101, 1_000_000_000),
                 _uptime(CISCO, 29722311.63)):
        assert check_spot(samples, cisco, spot) is None, (spot, check_spot(samples, cisco, spot))
    # Synology: HC-only interfaces lose their octets; UCD and HOST-RESOURCES are 32-bit.
    synology = f"v1-{SYNOLOGY}"
    assert check_spot(samples, synology, _if(SYNOLOGY, "in_octets_total", 3, None)) is None
    assert check_spot(samples, synology, _if(SYNOLOGY, "in_errors_total", 3, 635)) is None
    lost = over_v2[SYNOLOGY].keys() - over_v1[SYNOLOGY].keys()
    assert lost
    assert all(name.startswith("monitord_if_") for name, _ in lost), sorted(lost)


# --- 4. a device that does not answer -------------------------------------------------------

def test_dead_device_times_out_and_holds_up_nobody(fleet: Fleet) -> None:
    live = fleet.polled("2c")
    samples = wait_for("the dead device's first timeout",
                       lambda: (s if errors_of(s := fleet.daemon.samples(), DEAD) else None))
    since = by_device(samples, "monitord_snmp_polls_total")
    # While the dead device keeps timing out, every other device keeps being polled on its
    # own schedule: each finishes polls as often as the dead one fails.
    samples = wait_polls(fleet, "two more polls of every device, dead or alive",
                         polled_again(fleet, [*live, fleet.device(DEAD)], since, 2))
    errors = errors_of(samples, DEAD)
    assert set(errors) == {"timeout"}
    assert errors["timeout"] >= 3
    assert value(samples, "monitord_snmp_up", target=DEAD) == 0.0
    # One GET per poll, tried twice (retries: 1), then the poll gives up.
    assert value(samples, "monitord_snmp_timeouts_total", target=DEAD) == errors["timeout"]
    assert value(samples, "monitord_snmp_retries_total", target=DEAD) == errors["timeout"]
    assert value(samples, "monitord_snmp_polls_total", target=DEAD) == errors["timeout"]
    # A failed poll exports nothing from the device: no identity, no uptime.
    assert value(samples, "monitord_device_info", target=DEAD) is None
    assert value(samples, "monitord_device_uptime_seconds", target=DEAD) is None
    for device in live:
        assert value(samples, "monitord_snmp_up", target=device.id) == 1.0, device.id
        assert errors_of(samples, device.id) == {}, device.id


# --- 5. the exposition format ---------------------------------------------------------------

def test_exposition_passes_promtool(fleet: Fleet) -> None:
    wait_polls(fleet, "a complete poll of every device", polled_ok(fleet, fleet.polled("2c")))
    text = fleet.daemon.metrics_text()
    assert "monitord_device_info{" in text
    assert "monitord_if_in_octets_total{" in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/test.sh (Debian package prometheus)"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""
