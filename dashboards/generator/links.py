"""Kabupaten links: the province-to-kabupaten backbone, its state, latency and loss (ICMP) and
its routers' interfaces (SNMP)."""

from __future__ import annotations

from dashboards.generator.grafana import (
    IF_STATUS_MAPPINGS,
    STATE_MAPPINGS,
    STATE_THRESHOLDS,
    UP_DOWN_MAPPINGS,
    Json,
    Layout,
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
from dashboards.generator.promql import (
    FILTER,
    IF_UTILIZATION,
    LINK_ROLES,
    LOSS_5M,
    RTT_P50_5M,
    RTT_P95_5M,
    bits_per_second,
    sel,
    state_code,
)
from dashboards.generator.variables import hierarchy_variables

UID = "monitord-links"
M = (LINK_ROLES, FILTER)
LINK = "{{kabupaten}} · {{target}}"
INTERFACE = "{{target}} {{if_name}}"
# Devices are polled every 60 s by default: a rate needs two polls in its window, so SNMP
# panels step at 2 minutes at least ($__rate_interval = step + scrape interval).
SNMP_STEP = "2m"
NEGATIVE_Y = {"custom.transform": "negative-Y"}


def _state_and_latency(layout: Layout) -> None:
    layout.add(state_timeline("Link state", [target(state_code(*M), LINK)], height=7,
                              mappings=STATE_MAPPINGS, thresholds=STATE_THRESHOLDS,
                              description="State of each kabupaten link over time. When a link "
                                          "is down its villages are unreachable. / Status "
                                          "setiap link kabupaten; saat link mati, desa di "
                                          "belakangnya tidak terjangkau."))
    layout.add(
        timeseries("Packet loss (5 min)", [target(sel(LOSS_5M, *M), LINK)], width=8,
                   unit="percentunit", minimum=0, maximum=1,
                   description="Share of echo requests without a reply. / Persentase echo "
                               "tanpa balasan."),
        timeseries("RTT p50 and p95 (5 min)",
                   [target(sel(RTT_P95_5M, *M), f"{LINK} p95"),
                    target(sel(RTT_P50_5M, *M), f"{LINK} p50")], width=8, unit="s",
                   description="Round-trip time percentiles from the RTT histogram. / "
                               "Persentil RTT dari histogram."),
        timeseries("Jitter (last probe)",
                   [target(sel("monitord_icmp_jitter_seconds", *M), LINK)], width=8, unit="s",
                   description="Mean difference between consecutive RTTs of a probe. / "
                               "Rata-rata selisih RTT berturut-turut dalam satu probe."),
    )


def _traffic(layout: Layout) -> None:
    errors = [
        target(f"sum by (kabupaten, target) (rate({sel(metric, *M)}[$__rate_interval]))",
               f"{{{{target}}}} {label}")
        for metric, label in (("monitord_if_in_errors_total", "in errors"),
                              ("monitord_if_out_errors_total", "out errors"),
                              ("monitord_if_in_discards_total", "in discards"),
                              ("monitord_if_out_discards_total", "out discards"))]
    up = "and on (province, target, if_name) (monitord_if_oper_status == 1)"
    layout.add(
        timeseries("Traffic, interfaces up (in above, out below)",
                   [target(bits_per_second("monitord_if_in_octets_total", *M), f"{INTERFACE} in"),
                    target(bits_per_second("monitord_if_out_octets_total", *M),
                           f"{INTERFACE} out")],
                   unit="bps", interval=SNMP_STEP,
                   overrides=[override("byRegexp", "/ out$/", **NEGATIVE_Y)],
                   description="Bits per second on the link routers' interfaces that are up. / "
                               "Bit per detik pada antarmuka router link yang aktif."),
        timeseries("Utilization (5 min)", [target(f"{sel(IF_UTILIZATION, *M)} {up}", INTERFACE)],
                   unit="percentunit", minimum=0, interval=SNMP_STEP,
                   description="The busier direction's bits per second over the interface "
                               "speed. / Arah tersibuk dibanding kecepatan antarmuka."),
        timeseries("Errors and discards", errors, unit="pps", interval=SNMP_STEP,
                   description="Packets per second with errors or discarded, summed over each "
                               "router's interfaces. / Paket error atau dibuang per detik."),
    )
    rate = "rate({}[$__rate_interval]) * 8"
    layout.add(table(
        "Interfaces now",
        [target(sel("monitord_if_oper_status", *M), instant=True, table=True),
         target(sel("monitord_if_admin_status", *M), instant=True, table=True),
         target(sel("monitord_if_speed_bps", *M), instant=True, table=True),
         target(rate.format(sel("monitord_if_in_octets_total", *M)), instant=True, table=True),
         target(rate.format(sel("monitord_if_out_octets_total", *M)), instant=True,
                table=True)],
        interval=SNMP_STEP, sort_by="In",
        transformations=merge_tables(
            {"Value #A": "Oper", "Value #B": "Admin", "Value #C": "Speed", "Value #D": "In",
             "Value #E": "Out"}, hide=("province", "address", "if_descr")),
        overrides=[override("byName", "Oper", mappings=IF_STATUS_MAPPINGS,
                            **{"custom.cellOptions": {"type": "color-text"}}),
                   override("byName", "Admin", mappings=IF_STATUS_MAPPINGS),
                   *(override("byName", name, unit="bps") for name in ("Speed", "In", "Out"))],
        description="Every interface of the link routers: status, speed and traffic now. / "
                    "Semua antarmuka router link: status, kecepatan, dan trafik saat ini."))


def _routers(layout: Layout) -> None:
    layout.add(
        stat("Router uptime", [target(sel("monitord_device_uptime_seconds", *M), "{{target}}",
                                      instant=True)],
             width=8, height=6, unit="s", thresholds=steps(("orange", None), ("green", 86400)),
             description="Time since the router's SNMP agent started (under a day is orange). "
                         "/ Waktu sejak agen SNMP router mulai."),
        stat("Reboots in range",
             [target(f"round(increase({sel('monitord_device_reboots_total', *M)}[$__range]))",
                     "{{target}}", instant=True)],
             width=8, height=6, decimals=0, thresholds=steps(("green", None), ("red", 1)),
             description="Agent restarts monitord saw in the dashboard's time range. / "
                         "Jumlah restart yang terlihat dalam rentang waktu."),
        state_timeline("SNMP poll", [target(sel("monitord_snmp_up", *M), "{{target}}")],
                       width=8, height=6, history=True, mappings=UP_DOWN_MAPPINGS,
                       thresholds=steps(("red", None), ("green", 1)),
                       description="Whether each SNMP poll of the router completed. / Apakah "
                                   "poll SNMP router berhasil."),
    )


def build() -> Json:
    layout = Layout()
    layout.row("Links / Link kabupaten")
    _state_and_latency(layout)
    layout.row("Traffic / Trafik")
    _traffic(layout)
    layout.row("Routers / Router")
    _routers(layout)
    return dashboard(UID, "monitord / Kabupaten links",
                     "The province-to-kabupaten links: state, loss and latency from monitord's "
                     "probes, traffic, utilization and errors of the link routers over SNMP.",
                     layout, hierarchy_variables(LINK_ROLES), time_from="now-24h")
