"""Villages: the access points at the end of the network, their loss and latency as heatmaps
and per village, and their radios' signal over SNMP."""

from __future__ import annotations

from dashboards.generator.grafana import (
    STATE_MAPPINGS,
    STATE_THRESHOLDS,
    Json,
    Layout,
    dashboard,
    heatmap,
    stat,
    state_timeline,
    steps,
    target,
    timeseries,
)
from dashboards.generator.promql import FILTER, LOSS_5M, RTT_P95_5M, VILLAGE_ROLES, sel, state_code
from dashboards.generator.variables import hierarchy_variables

UID = "monitord-villages"
M = (VILLAGE_ROLES, FILTER)
VILLAGE = "{{site}} · {{target}}"
RADIO = "{{target}} {{radio}}{{station_mac}}"  # airMAX rows by radio, MikroTik by station
LOSS_THRESHOLDS = steps(("green", None), ("yellow", 0.05), ("orange", 0.2), ("red", 0.5))


def _now(layout: Layout) -> None:
    for state, colour, what in (("up", "green", "answering normally / menjawab normal"),
                                ("degraded", "yellow", "lossy or slow / loss atau lambat"),
                                ("down", "red", "own failure / gangguan sendiri"),
                                ("unreachable", "purple",
                                 "behind a failed link / di belakang link yang gagal")):
        expr = "sum({})".format(sel("monitord_target_state", f'state="{state}"', *M))
        base = "green" if state == "up" else "text"
        layout.add(stat(f"Villages {state}", [target(expr, state, instant=True)], width=6,
                        thresholds=steps((base, None), (colour, 1)),
                        description=f"Village targets {what}."))
    layout.add(state_timeline("Village state", [target(state_code(*M), VILLAGE)], height=10,
                              mappings=STATE_MAPPINGS, thresholds=STATE_THRESHOLDS,
                              description="State of each village target over time; purple "
                                          "is a failed link upstream, not the village. / "
                                          "Ungu berarti link di hulu gagal, bukan desanya."))


def _loss_latency(layout: Layout) -> None:
    buckets = sel("monitord_icmp_rtt_seconds_bucket", *M)
    layout.add(
        heatmap("RTT distribution: $role",
                [target(f"sum by (le) (increase({buckets}[$__rate_interval]))", "{{le}}",
                        heatmap=True)],
                unit="s", repeat="role",
                description="Every echo reply's RTT, from monitord's histogram, one heatmap "
                            "per role (VSAT sits near 0.6 s, radio far lower). / Sebaran RTT "
                            "setiap balasan, satu heatmap per peran."),
        heatmap("Packet-loss distribution (5 min)", [target(sel(LOSS_5M, *M), VILLAGE)],
                unit="percentunit", calculate=True, bucket_size=0.1,
                description="How many villages sit at each loss level, over time. / Jumlah "
                            "desa pada setiap tingkat loss dari waktu ke waktu."),
    )
    layout.add(
        state_timeline("Packet loss per village (5 min)", [target(sel(LOSS_5M, *M), VILLAGE)],
                       height=10, history=True, unit="percentunit", decimals=0,
                       thresholds=LOSS_THRESHOLDS,
                       description="Loss of each village; red is above 50%. / Loss setiap "
                                   "desa; merah di atas 50%."),
        timeseries("RTT p95 (5 min)", [target(sel(RTT_P95_5M, *M), VILLAGE)], unit="s",
                   description="95th percentile RTT per village. / Persentil ke-95 RTT per "
                               "desa."),
        timeseries("Jitter (last probe)",
                   [target(sel("monitord_icmp_jitter_seconds", *M), VILLAGE)], unit="s",
                   description="Mean difference between consecutive RTTs of a probe. / "
                               "Rata-rata selisih RTT berturut-turut."),
    )


def _radio(layout: Layout) -> None:
    layout.add(
        timeseries("Radio signal", [target(sel("monitord_radio_signal_dbm", *M), RADIO)],
                   unit="dBm",
                   description="Received signal of each radio link (MikroTik: per registered "
                               "station). Below about -75 dBm links degrade. / Kuat sinyal "
                               "terima; di bawah sekitar -75 dBm kualitas link menurun."),
        timeseries("Noise floor", [target(sel("monitord_radio_noise_floor_dbm", *M), RADIO)],
                   unit="dBm",
                   description="Noise floor the radio measures; rising noise means "
                               "interference. / Derau latar; naik berarti ada interferensi."),
        timeseries("CCQ", [target(sel("monitord_radio_ccq_ratio", *M), RADIO)],
                   unit="percentunit", minimum=0, maximum=1,
                   description="Client connection quality (transmit), 0-100%. / Kualitas "
                               "koneksi klien (kirim)."),
        timeseries("Associated stations", [target(sel("monitord_radio_stations", *M), RADIO)],
                   decimals=0, minimum=0,
                   description="Clients associated with each access point. / Jumlah klien "
                               "yang terhubung ke setiap access point."),
    )


def build() -> Json:
    layout = Layout()
    layout.row("Villages now / Desa saat ini")
    _now(layout)
    layout.row("Loss and latency / Loss dan latensi")
    _loss_latency(layout)
    layout.row("Radio")
    _radio(layout)
    return dashboard(UID, "monitord / Villages",
                     "Village access points (radio and VSAT): state, loss and RTT heatmaps, "
                     "per-village loss, and radio signal, noise and CCQ.",
                     layout, hierarchy_variables(VILLAGE_ROLES), time_from="now-24h")
