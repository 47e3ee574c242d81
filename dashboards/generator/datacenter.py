"""Data center: hosts (CPU, memory, disks over HOST-RESOURCES and UCD), UPS power, and the
uptime, reboots and SNMP health of every data-center device."""

from __future__ import annotations

from dashboards.generator.grafana import (
    STATE_MAPPINGS,
    STATE_THRESHOLDS,
    UP_DOWN_MAPPINGS,
    Json,
    Layout,
    bargauge,
    dashboard,
    merge_tables,
    override,
    stat,
    state_timeline,
    steps,
    table,
    target,
    timeseries,
)
from dashboards.generator.promql import DC_ROLES, FILTER, sel, state_code
from dashboards.generator.variables import hierarchy_variables

UID = "monitord-datacenter"
M = (DC_ROLES, FILTER)
SNMP_STEP = "2m"  # see links.SNMP_STEP
USAGE_THRESHOLDS = steps(("green", None), ("orange", 0.8), ("red", 0.9))

OUTPUT_STATUS = [{"type": "value", "options": {
    "1": {"text": "unknown", "color": "text", "index": 0},
    "2": {"text": "on line", "color": "green", "index": 1},
    "3": {"text": "ON BATTERY", "color": "red", "index": 2},
    "4": {"text": "smart boost", "color": "yellow", "index": 3},
    "5": {"text": "timed sleeping", "color": "orange", "index": 4},
    "6": {"text": "software bypass", "color": "orange", "index": 5},
    "7": {"text": "OFF", "color": "red", "index": 6},
    "8": {"text": "rebooting", "color": "orange", "index": 7},
    "9": {"text": "switched bypass", "color": "orange", "index": 8},
    "10": {"text": "HARDWARE FAILURE BYPASS", "color": "red", "index": 9},
    "11": {"text": "sleeping until power returns", "color": "red", "index": 10},
    "12": {"text": "smart trim", "color": "yellow", "index": 11}}}]
REPLACE_BATTERY = [{"type": "value", "options": {
    "1": {"text": "OK", "color": "green", "index": 0},
    "2": {"text": "REPLACE", "color": "red", "index": 1}}}]


# File systems, without the kernel's memory-backed ones that Linux agents list as fixed disks.
DISKS = ('storage_type=~"fixed_disk|network_disk"',
         'storage_descr!~"/dev|/dev/.*|/run|/run/.*|/sys|/sys/.*|/proc|/proc/.*|/lib/init/rw"')
RAM = ('storage_type="ram"',)


def _storage_ratio(storage: tuple[str, ...], by: str) -> str:
    used = sel("monitord_hr_storage_used_bytes", *storage, *M)
    size = sel("monitord_hr_storage_size_bytes", *storage, *M)
    return f"sum by ({by}) ({used})\n/\nsum by ({by}) ({size} > 0)"


def _hosts(layout: Layout) -> None:
    def ucd(name: str) -> str:
        return sel(f"monitord_ucd_memory_{name}_bytes", *M)
    layout.add(
        timeseries("CPU load", [target("avg by (kabupaten, site, target) "
                                       f"({sel('monitord_hr_processor_load_ratio', *M)})",
                                       "{{target}}")],
                   width=8, unit="percentunit", minimum=0, maximum=1,
                   description="Average over the host's processors (HOST-RESOURCES "
                               "hrProcessorLoad). / Rata-rata beban prosesor."),
        timeseries("Memory used (HOST-RESOURCES)",
                   [target(_storage_ratio(RAM, "kabupaten, site, target"), "{{target}}")],
                   width=8, unit="percentunit", minimum=0, maximum=1,
                   thresholds=USAGE_THRESHOLDS,
                   description="RAM in use as the agent reports it; on Linux this includes "
                               "page cache. / RAM terpakai menurut agen (Linux: termasuk cache)."),
        timeseries("Memory used, without buffers and cache (UCD)",
                   [target(f"1 - ({ucd('free')} + {ucd('buffers')} + {ucd('cached')})"
                           f" / {ucd('total')}", "{{target}}")],
                   width=8, unit="percentunit", minimum=0, maximum=1,
                   thresholds=USAGE_THRESHOLDS,
                   description="What applications hold on net-snmp hosts (UCD-SNMP-MIB). / "
                               "Memori yang dipakai aplikasi (UCD-SNMP-MIB)."),
    )
    layout.add(
        bargauge("Disk use",
                 [target(_storage_ratio(DISKS, "kabupaten, site, target, storage_descr"),
                         "{{target}} {{storage_descr}}", instant=True)],
                 unit="percentunit", minimum=0, maximum=1, thresholds=USAGE_THRESHOLDS,
                 description="Used share of each file system (memory-backed ones left out). / "
                             "Persentase terpakai setiap sistem berkas."),
        timeseries("Load average (5 min)",
                   [target(sel("monitord_ucd_load_average", 'period="5m"', *M), "{{target}}")],
                   minimum=0,
                   description="Run-queue load average (UCD-SNMP-MIB). / Rata-rata beban "
                               "antrean proses."),
    )


def _ups(layout: Layout) -> None:
    def ups(name: str, *extra: str) -> str:
        return sel(f"monitord_ups_{name}", *extra, *M)
    layout.add(
        stat("Output status", [target(ups("output_status"), "{{target}}", instant=True)],
             mappings=OUTPUT_STATUS,
             description="On battery means the utility power failed. / On battery berarti "
                         "listrik PLN padam."),
        stat("Battery capacity", [target(ups("battery_capacity_ratio"), "{{target}}",
                                         instant=True)],
             unit="percentunit", thresholds=steps(("red", None), ("orange", 0.5),
                                                  ("green", 0.9))),
        stat("Runtime on battery", [target(ups("battery_runtime_seconds"), "{{target}}",
                                           instant=True)],
             unit="s", thresholds=steps(("red", None), ("orange", 600), ("green", 1200)),
             description="Estimated runtime at the present load. / Perkiraan waktu bertahan "
                         "pada beban saat ini."),
        stat("Battery replacement", [target(ups("battery_replace_needed"), "{{target}}",
                                            instant=True)], mappings=REPLACE_BATTERY),
        stat("Battery temperature", [target(ups("battery_temperature_celsius"), "{{target}}",
                                            instant=True)],
             unit="celsius", thresholds=steps(("green", None), ("orange", 35), ("red", 40))),
        stat("Input voltage", [target(ups("input_voltage_volts"), "{{target}}", instant=True)],
             unit="volt", thresholds=steps(("red", None), ("green", 198), ("red", 242)),
             description="Utility (PLN) voltage; 220 V +/-10% is normal. / Tegangan PLN; "
                         "normal 220 V +/-10%."),
    )
    layout.add(
        timeseries("UPS input and output voltage",
                   [target(ups("input_voltage_volts"), "{{target}} input"),
                    target(ups("output_voltage_volts"), "{{target}} output")],
                   width=8, unit="volt"),
        timeseries("UPS output current", [target(ups("output_current_amperes"), "{{target}}")],
                   width=8, unit="amp", minimum=0,
                   description="Current drawn by the load. / Arus yang ditarik beban."),
        timeseries("UPS battery capacity", [target(ups("battery_capacity_ratio"), "{{target}}")],
                   width=8, unit="percentunit", minimum=0, maximum=1),
    )


def _devices(layout: Layout) -> None:
    reboots = f"round(increase({sel('monitord_device_reboots_total', *M)}[$__range]))"
    rate = "rate({}[$__rate_interval])"
    traffic = (f"topk(10, ({rate.format(sel('monitord_if_in_octets_total', *M))}"
               f" + {rate.format(sel('monitord_if_out_octets_total', *M))}) * 8)")
    layout.add(
        table("Devices",
              [target(sel("monitord_snmp_up", *M), instant=True, table=True),
               target(sel("monitord_device_uptime_seconds", *M), instant=True, table=True),
               target(reboots, instant=True, table=True)],
              sort_by="Uptime", descending=False,
              transformations=merge_tables({"Value #A": "SNMP", "Value #B": "Uptime",
                                            "Value #C": "Reboots in range"},
                                           hide=("province",)),
              overrides=[override("byName", "SNMP", mappings=UP_DOWN_MAPPINGS,
                                  **{"custom.cellOptions": {"type": "color-text"}}),
                         override("byName", "Uptime", unit="s"),
                         override("byName", "Reboots in range", decimals=0)],
              description="SNMP poll status, uptime since the agent started and reboots in "
                          "the time range. / Status poll SNMP, uptime, dan jumlah reboot."),
        timeseries("Busiest interfaces (in + out)", [target(traffic, "{{target}} {{if_name}}")],
                   unit="bps", interval=SNMP_STEP, legend_calcs=("mean", "max"),
                   description="The ten interfaces of data-center devices moving the most "
                               "bits. / Sepuluh antarmuka tersibuk."),
    )


def build() -> Json:
    layout = Layout()
    layout.row("Targets / Target")
    layout.add(state_timeline("Data-center targets", [target(state_code(*M), "{{target}}")],
                              height=8, mappings=STATE_MAPPINGS, thresholds=STATE_THRESHOLDS))
    layout.row("Hosts / Server")
    _hosts(layout)
    layout.row("Power / Catu daya (UPS)")
    _ups(layout)
    layout.row("Devices / Perangkat")
    _devices(layout)
    return dashboard(UID, "monitord / Data center",
                     "The provincial data center: host CPU, memory and disks, UPS power, "
                     "device uptime and reboots.",
                     layout, hierarchy_variables(DC_ROLES), time_from="now-24h")
