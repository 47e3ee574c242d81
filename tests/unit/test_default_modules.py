"""The shipped SNMP modules (monitord/snmp/default_modules.yaml) against the device recordings
they were written for (tests/data/snmprec/*.snmprec, LibreNMS test data).

For every health, UPS and radio module the test lists exactly which of the OIDs it fetches the
recording carries and which come from the MIB alone, so a typo in an OID, a column the
recording does not have or a new object without a recording all show up here. A few values are
then worked out from the recording lines with the module's scale, multiplier and `unless`
rules and compared with what the device shows (e.g. the LiteBeam's -70 dBm signal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from monitord.config.snmp_schema import MetricSpec, ModuleSpec, TableSpec
from monitord.snmp.modules import compile_module, load_default_module_specs, metric_conflicts
from tests.snmprec import DEFAULT_RECORDINGS

DEVICES = DEFAULT_RECORDINGS

SYNOLOGY = "dc-server-synology-rs2212rp"
APC = "dc-ups-apc-smartups-rt3000xl"
LITEBEAM = "village-ap-ubiquiti-litebeam5acgen2"
AIRFIBER = "village-ap-ubiquiti-airfiber5xhd"
MIKROTIK = "village-ap-mikrotik-rb952ui-5ac2nd"
EPMP = "village-ap-cambium-epmp"

NUMERIC_TYPES = {"2", "65", "66", "67", "70"}  # Integer32, Counter32, Gauge32, TimeTicks, Counter64


@dataclass(frozen=True)
class Line:
    type: str
    value: str


Recording = dict[tuple[int, ...], Line]


def arcs(oid: str) -> tuple[int, ...]:
    return tuple(int(a) for a in oid.strip(".").split("."))


def parse_snmprec(path: Path) -> Recording:
    """`OID|TYPE|VALUE` lines; the value may itself contain `|`."""
    out: Recording = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text:
            continue
        oid, tag, value = text.split("|", 2)
        assert oid, f"{path.name}:{number}: no OID"
        assert tag, f"{path.name}:{number}: no type"
        out[arcs(oid)] = Line(tag, value)
    return out


_recordings: dict[str, Recording] = {}


def recording(name: str) -> Recording:
    if name not in _recordings:
        _recordings[name] = parse_snmprec(DEVICES / f"{name}.snmprec")
    return _recordings[name]


@pytest.fixture(scope="module")
def specs() -> dict[str, ModuleSpec]:
    return load_default_module_specs()


# --- what a module fetches ---------------------------------------------------------------------


def _metric_oids(metric: MetricSpec) -> list[str]:
    oids = [label.oid for label in metric.labels]
    for source in metric.resolved_sources():
        oids.append(source.oid)
        if source.multiply_by is not None:
            oids.append(source.multiply_by)
    return oids


def fetched(spec: ModuleSpec) -> tuple[set[str], set[str]]:
    """(scalar instances GET, table columns walked)."""
    scalars = {oid for metric in spec.scalars for oid in _metric_oids(metric)}
    columns: set[str] = set()
    for table in spec.tables:
        columns.update(label.oid for label in table.labels)
        for metric in table.metrics:
            columns.update(_metric_oids(metric))
    return scalars, columns


def covered(spec: ModuleSpec, rec: Recording) -> set[str]:
    """The fetched OIDs the recording has a line for (a scalar's instance, a column's rows)."""
    scalars, columns = fetched(spec)
    found = {oid for oid in scalars if arcs(oid) in rec}
    for column in columns:
        prefix = arcs(column)
        if any(key[:len(prefix)] == prefix and len(key) > len(prefix) for key in rec):
            found.add(column)
    return found


# Module -> (the recording it was written for, the OIDs it fetches that the recording does not
# carry: objects taken from the MIB alone, or fallbacks behind an object the device has).
EXPECTED_GAPS: dict[str, tuple[str, set[str]]] = {
    "host_resources": (SYNOLOGY, {
        "1.3.6.1.2.1.25.2.3.1.7",  # hrStorageAllocationFailures: ESXi and RouterOS have it
    }),
    "ucd": (SYNOLOGY, set()),
    "apc_ups": (APC, {
        "1.3.6.1.4.1.318.1.1.1.2.1.1.0",  # upsBasicBatteryStatus
        "1.3.6.1.4.1.318.1.1.1.4.3.3.0",  # upsHighPrecOutputLoad
        "1.3.6.1.4.1.318.1.1.1.4.2.3.0",  # upsAdvOutputLoad
        # integer fallbacks behind the high-precision objects the recording has
        "1.3.6.1.4.1.318.1.1.1.2.2.1.0",  # upsAdvBatteryCapacity
        "1.3.6.1.4.1.318.1.1.1.2.2.2.0",  # upsAdvBatteryTemperature
        "1.3.6.1.4.1.318.1.1.1.2.2.8.0",  # upsAdvBatteryActualVoltage
        "1.3.6.1.4.1.318.1.1.1.3.2.1.0",  # upsAdvInputLineVoltage
        "1.3.6.1.4.1.318.1.1.1.3.2.4.0",  # upsAdvInputFrequency
        "1.3.6.1.4.1.318.1.1.1.4.2.1.0",  # upsAdvOutputVoltage
        "1.3.6.1.4.1.318.1.1.1.4.2.2.0",  # upsAdvOutputFrequency
        "1.3.6.1.4.1.318.1.1.1.4.2.4.0",  # upsAdvOutputCurrent
    }),
    "radio_airmax": (LITEBEAM, {
        "1.3.6.1.4.1.41112.1.4.5.1.2",  # ubntWlStatSsid
        "1.3.6.1.4.1.41112.1.4.6.1.3",  # ubntAirMaxQuality (gone in airOS 8)
    }),
    "radio_airfiber": (AIRFIBER, {
        "1.3.6.1.4.1.41112.1.10.1.2.2.0",  # afLTUFrequency
    }),
    "radio_mikrotik": (MIKROTIK, set()),
    "radio_cambium": (EPMP, {
        "1.3.6.1.4.1.17713.21.1.2.3.0",  # cambiumSTADLRSSI (subscriber modules only)
    }),
}


def test_default_modules_compile_without_conflicts(specs: dict[str, ModuleSpec]) -> None:
    compiled = {name: compile_module(name, spec) for name, spec in specs.items()}
    assert metric_conflicts(compiled) == []
    assert set(EXPECTED_GAPS) | {"system", "if_mib"} == set(compiled)


def test_recordings_parse() -> None:
    names = sorted(p.stem for p in DEVICES.glob("*.snmprec"))
    assert len(names) == 11
    for name in names:
        rec = recording(name)
        assert arcs("1.3.6.1.2.1.1.1.0") in rec, name  # every file has sysDescr


@pytest.mark.parametrize("module", sorted(EXPECTED_GAPS))
def test_module_oids_cover_its_recording(specs: dict[str, ModuleSpec], module: str) -> None:
    name, gaps = EXPECTED_GAPS[module]
    spec = specs[module]
    scalars, columns = fetched(spec)
    everything = scalars | columns
    assert gaps <= everything, f"{module}: gap list names OIDs the module does not fetch"
    have = covered(spec, recording(name))
    assert have == everything - gaps, (
        f"{module} on {name}: missing {sorted(everything - gaps - have)}, "
        f"unexpectedly present {sorted(have & gaps)}")
    assert have, f"{module}: nothing it fetches is in {name}"


# --- values worked out from the recording lines -------------------------------------------------


def _table(spec: ModuleSpec, metric_name: str) -> TableSpec | None:
    for table in spec.tables:
        if any(m.name == metric_name for m in table.metrics):
            return table
    return None


def _number(line: Line | None) -> int | None:
    if line is None or line.type not in NUMERIC_TYPES:
        return None
    return int(line.value)


def samples(spec: ModuleSpec, metric_name: str, rec: Recording) -> dict[tuple[int, ...], float]:
    """What the module makes of the recording for one metric: row index -> value ((), scalars).
    The first source with a usable value wins, as in the poller."""
    table = _table(spec, metric_name)
    metrics = table.metrics if table is not None else spec.scalars
    metric = next(m for m in metrics if m.name == metric_name)
    sources = metric.resolved_sources()
    if table is None:
        rows: set[tuple[int, ...]] = {()}
    else:
        first = arcs(sources[0].oid)
        rows = {key[len(first):] for key in rec if key[:len(first)] == first and len(key) > len(first)}
    out: dict[tuple[int, ...], float] = {}
    for row in rows:
        for source in sources:
            value = _number(rec.get(arcs(source.oid) + row))
            if value is None or value in source.unless:
                continue
            result: float = value
            if source.multiply_by is not None:
                factor = _number(rec.get(arcs(source.multiply_by) + row))
                if factor is None:
                    continue
                result *= factor
            out[row] = result * source.scale
            break
    return out


# (module, recording, metric, row index, expected value in base units)
VALUES = [
    ("radio_airmax", LITEBEAM, "monitord_radio_signal_dbm", (1,), -70),
    ("radio_airmax", LITEBEAM, "monitord_radio_noise_floor_dbm", (1,), -91),
    ("radio_airmax", LITEBEAM, "monitord_radio_ccq_ratio", (1,), 0.33),
    ("radio_airmax", LITEBEAM, "monitord_radio_frequency_hertz", (1,), 5.78e9),
    ("radio_airmax", LITEBEAM, "monitord_radio_tx_rate_bps", (1,), 39e6),
    ("radio_airmax", LITEBEAM, "monitord_radio_stations", (1,), 1),
    ("radio_airmax", LITEBEAM, "monitord_airmax_airtime_ratio", (1,), 0.699),
    ("radio_mikrotik", MIKROTIK, "monitord_radio_signal_dbm", (0, 39, 16, 50, 237, 96, 9), -63),
    ("radio_mikrotik", MIKROTIK, "monitord_radio_stations", (1,), 7),
    ("radio_mikrotik", MIKROTIK, "monitord_radio_frequency_hertz", (2,), 5.805e9),
    ("radio_mikrotik", MIKROTIK, "monitord_radio_noise_floor_dbm", (1,), -117),
    ("radio_mikrotik", MIKROTIK, "monitord_radio_ccq_ratio", (2,), 0.75),
    ("radio_cambium", EPMP, "monitord_radio_frequency_hertz", (), 5.21e9),
    ("radio_cambium", EPMP, "monitord_radio_snr_db", (), 34),
    ("radio_cambium", EPMP, "monitord_radio_stations", (), 1),
    ("radio_cambium", EPMP, "monitord_cambium_cpu_usage_ratio", (), 0.42),
    ("apc_ups", APC, "monitord_ups_battery_capacity_ratio", (), 1.0),
    ("apc_ups", APC, "monitord_ups_battery_runtime_seconds", (), 19526),
    ("apc_ups", APC, "monitord_ups_battery_temperature_celsius", (), 21.0),
    ("apc_ups", APC, "monitord_ups_input_voltage_volts", (), 223.0),
    ("apc_ups", APC, "monitord_ups_output_current_amperes", (), 4.0),
    ("host_resources", SYNOLOGY, "monitord_hr_storage_size_bytes", (51,), 1437056540 * 65536),
    ("host_resources", SYNOLOGY, "monitord_hr_storage_used_bytes", (1,), 896328 * 1024),
    ("host_resources", SYNOLOGY, "monitord_hr_processor_load_ratio", (196611,), 0.10),
    ("ucd", SYNOLOGY, "monitord_ucd_load_average", (1,), 1.61),
    ("ucd", SYNOLOGY, "monitord_ucd_memory_total_bytes", (), 1012408 * 1024),
    ("ucd", AIRFIBER, "monitord_ucd_memory_free_bytes", (), 57700 * 1024),
]


@pytest.mark.parametrize(("module", "name", "metric", "row", "expected"), VALUES)
def test_values_from_recording(specs: dict[str, ModuleSpec], module: str, name: str, metric: str,
                               row: tuple[int, ...], expected: float) -> None:
    got = samples(specs[module], metric, recording(name))
    assert got[row] == pytest.approx(expected)


def test_unless_drops_placeholder_values(specs: dict[str, ModuleSpec]) -> None:
    """MikroTik reports frequency and noise floor 0 on interfaces that are not running."""
    rec = recording(MIKROTIK)
    spec = specs["radio_mikrotik"]
    assert set(samples(spec, "monitord_radio_frequency_hertz", rec)) == {(1,), (2,)}
    assert set(samples(spec, "monitord_radio_noise_floor_dbm", rec)) == {(1,), (2,)}
    assert set(samples(spec, "monitord_radio_stations", rec)) == {(1,), (2,), (8,), (9,)}
    assert len(samples(spec, "monitord_radio_signal_dbm", rec)) == 11


def test_storage_type_map_covers_host_resources_types(specs: dict[str, ModuleSpec]) -> None:
    table = _table(specs["host_resources"], "monitord_hr_storage_size_bytes")
    assert table is not None
    type_map = next(label.map for label in table.labels if label.name == "storage_type")
    assert type_map is not None
    assert set(type_map) == {f"1.3.6.1.2.1.25.2.1.{n}" for n in range(1, 11)}
    seen = {line.value for key, line in recording(SYNOLOGY).items()
            if key[:11] == arcs("1.3.6.1.2.1.25.2.3.1.2")}
    assert seen <= set(type_map)
