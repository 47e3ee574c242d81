"""NOC overview: how many targets are in each state, where they are, and what is worst now."""

from __future__ import annotations

from dashboards.generator.grafana import (
    STATE_MAPPINGS,
    STATE_THRESHOLDS,
    Json,
    Layout,
    bargauge,
    dashboard,
    geomap,
    merge_tables,
    override,
    stat,
    steps,
    table,
    target,
    timeseries,
)
from dashboards.generator.promql import FILTER, LINK_ROLES, LOSS_5M, RTT_P95_5M, sel, state_code
from dashboards.generator.variables import hierarchy_variables

UID = "monitord-noc"

# (state, colour once any target is in it, description)
_STATES = (
    ("up", "green", "Targets answering normally. / Target yang menjawab normal."),
    ("degraded", "yellow", "Answering, but with loss or RTT above the profile's thresholds. / "
     "Menjawab, tetapi loss atau RTT di atas ambang profilnya."),
    ("down", "red", "Not answering while their parent answers: their own failure. / "
     "Tidak menjawab sementara induknya menjawab: gangguan pada target itu sendiri."),
    ("unreachable", "purple", "Behind a failed parent (e.g. a kabupaten link): not their own "
     "fault. / Di belakang induk yang gagal (mis. link kabupaten): bukan gangguannya sendiri."),
    ("unknown", "blue", "Not probed enough yet to have a state. / "
     "Belum cukup diprobe untuk memiliki status."),
)


def _state_counts(layout: Layout) -> None:
    layout.add(stat("Targets", [target(f"count({sel('monitord_target_info', FILTER)})",
                                       "targets", instant=True)],
                    width=3, thresholds=steps(("blue", None)),
                    description="Targets monitord probes. / Target yang diprobe monitord."))
    for state, colour, description in _STATES:
        expr = "sum({})".format(sel("monitord_target_state", f'state="{state}"', FILTER))
        base = "green" if state == "up" else "text"
        layout.add(stat(state.capitalize(), [target(expr, state, instant=True)], width=3,
                        thresholds=steps((base, None), (colour, 1)), description=description))
    layout.add(
        stat("Flapping", [target(f"sum({sel('monitord_target_flapping', FILTER)})", "flapping",
                                 instant=True)],
             width=3, thresholds=steps(("text", None), ("orange", 1)),
             description="Changing state too often (profile's flap_changes in flap_window). / "
                         "Terlalu sering berganti status."),
        stat("Kabupaten links down",
             [target("sum({})".format(sel("monitord_target_state", 'state="down"', LINK_ROLES,
                                          FILTER)), "links down", instant=True)],
             width=3, thresholds=steps(("green", None), ("red", 1)),
             description="Kabupaten links that are down: every village behind them is "
                         "unreachable. / Link kabupaten yang mati: semua desa di belakangnya "
                         "tidak terjangkau."),
    )


def _map_and_list(layout: Layout) -> None:
    # Worst state of each site's targets, placed at the site's coordinates.
    located = sel("monitord_target_info", 'latitude!=""')
    sites = (f"max by (province, kabupaten, site, latitude, longitude) (\n"
             f"  {state_code(FILTER)}\n"
             f"  * on (province, target) group_left (latitude, longitude)\n"
             f"  {located}\n)")
    since = f"time() - {sel('monitord_target_state_since_timestamp_seconds', FILTER)}"
    layout.add(
        geomap("Sites by worst state", [target(sites, instant=True, table=True)],
               width=14, height=16, thresholds=STATE_THRESHOLDS, mappings=STATE_MAPPINGS,
               description="Each site with coordinates in the inventory, coloured by the worst "
                           "state among its targets (red down, purple unreachable, yellow "
                           "degraded). / Setiap lokasi yang berkoordinat, diwarnai menurut "
                           "status terburuk targetnya."),
        table("Targets, worst first",
              [target(state_code(FILTER), instant=True, table=True),
               target(since, instant=True, table=True)],
              width=10, height=16, sort_by="State",
              transformations=merge_tables({"Value #A": "State", "Value #B": "For"},
                                           hide=("province",)),
              overrides=[
                  override("byName", "State", mappings=STATE_MAPPINGS,
                           **{"custom.cellOptions": {"type": "color-background"}},
                           thresholds=STATE_THRESHOLDS, color={"mode": "thresholds"}),
                  override("byName", "For", unit="s", decimals=0)],
              description="Every target with its state and how long it has been in it. / "
                          "Semua target dengan statusnya dan sudah berapa lama."),
    )


def _worst_now(layout: Layout) -> None:
    loss_thresholds = steps(("green", None), ("yellow", 0.05), ("orange", 0.2), ("red", 0.5))
    layout.add(
        table("Highest packet loss (5 min)",
              [target(f"topk(15, {sel(LOSS_5M, FILTER)})", instant=True, table=True)],
              sort_by="Loss", transformations=merge_tables({"Value": "Loss"},
                                                          hide=("province",)),
              overrides=[override("byName", "Loss", unit="percentunit", decimals=1,
                                  thresholds=loss_thresholds, color={"mode": "thresholds"},
                                  **{"custom.cellOptions": {"type": "color-background"}})],
              description="Echo requests without a reply over the last 5 minutes. Targets "
                          "behind a failed link show 100% here; their state says why. / "
                          "Persentase echo tanpa balasan selama 5 menit terakhir."),
        table("Highest RTT p95 (5 min)",
              [target(f"topk(15, {sel(RTT_P95_5M, FILTER)})", instant=True, table=True)],
              sort_by="RTT p95", transformations=merge_tables({"Value": "RTT p95"},
                                                             hide=("province",)),
              overrides=[override("byName", "RTT p95", unit="s",
                                  thresholds=steps(("green", None), ("yellow", 0.15),
                                                   ("red", 1.5)),
                                  color={"mode": "thresholds"},
                                  **{"custom.cellOptions": {"type": "color-background"}})],
              description="95th percentile round-trip time over 5 minutes. VSAT sites sit "
                          "near 0.6 s by nature. / Persentil ke-95 RTT selama 5 menit; VSAT "
                          "wajar sekitar 0,6 detik."),
    )


def _over_time(layout: Layout) -> None:
    not_up = sel("monitord_target_state", 'state=~"degraded|down|unreachable"', FILTER)
    cut_off = sel("monitord_target_state", 'state=~"down|unreachable"', FILTER)
    layout.add(
        timeseries("Targets not up, by state", [target(f"sum by (state) ({not_up})", "{{state}}")],
                   stack=True, decimals=0, minimum=0, legend_calcs=("max",),
                   overrides=[override("byName", s, color={"mode": "fixed", "fixedColor": c})
                              for s, c, _ in _STATES],
                   description="Degraded, down and unreachable targets over time. / Jumlah "
                               "target menurun, mati, dan tidak terjangkau dari waktu ke waktu."),
        bargauge("Down or unreachable, by kabupaten",
                 [target(f"sum by (kabupaten) ({cut_off})", "{{kabupaten}}", instant=True)],
                 decimals=0, minimum=0, thresholds=steps(("green", None), ("red", 1)),
                 description="Targets not answering now, per kabupaten. / Target yang tidak "
                             "menjawab saat ini, per kabupaten."),
    )


def build() -> Json:
    layout = Layout()
    layout.row("State now / Status saat ini")
    _state_counts(layout)
    layout.row("Where / Di mana")
    _map_and_list(layout)
    layout.row("Worst now / Terburuk saat ini")
    _worst_now(layout)
    layout.row("Over time / Dari waktu ke waktu")
    _over_time(layout)
    return dashboard(UID, "monitord / NOC overview",
                     "Province-wide state of every target monitord probes: counts by state, a "
                     "map of sites, the worst loss and latency now.",
                     layout, hierarchy_variables(), time_from="now-6h", refresh="30s")
