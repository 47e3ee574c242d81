"""SPBE availability: the share of time targets were reachable, per kabupaten, role and target,
over the dashboard's time range (for reports) and as rolling 1-day / 30-day figures."""

from __future__ import annotations

from typing import Any

from dashboards.generator.grafana import (
    Json,
    Layout,
    bargauge,
    dashboard,
    merge_tables,
    override,
    stat,
    steps,
    table,
    target,
    timeseries,
)
from dashboards.generator.promql import (
    AVAILABILITY_1D,
    AVAILABILITY_30D,
    FILTER,
    TARGET,
    availability,
    own_availability,
    sel,
)
from dashboards.generator.variables import hierarchy_variables

UID = "monitord-spbe"
AVAILABILITY_THRESHOLDS = steps(("red", None), ("orange", 0.95), ("yellow", 0.98),
                                ("green", 0.99))
PERCENT: dict[str, Any] = {"unit": "percentunit", "decimals": 2, "thresholds": AVAILABILITY_THRESHOLDS}
RANGE_NOTE = ("Time unknown to monitord (not yet probed, monitord not running) is left out. / "
              "Waktu tanpa data monitord tidak dihitung.")


def _range_totals(layout: Layout) -> None:
    below = f"count(({availability(TARGET, FILTER)}) < 0.99) or vector(0)"
    layout.add(
        stat("Availability in range", [target(availability("province", FILTER), "{{province}}",
                                              instant=True)], width=6, height=5, **PERCENT,
             description="Share of the selected range the targets were reachable (up or "
                         "degraded), averaged over targets. " + RANGE_NOTE),
        stat("Own availability in range",
             [target(own_availability("province", FILTER), "{{province}}", instant=True)],
             width=6, height=5, **PERCENT,
             description="As availability, but time unreachable behind a failed parent link "
                         "is not held against the target. / Waktu tidak terjangkau karena "
                         "link induk gagal tidak dihitung sebagai gangguan target."),
        stat("Targets below 99% in range", [target(below, "targets", instant=True)],
             width=6, height=5, decimals=0,
             thresholds=steps(("green", None), ("orange", 1)),
             description="Targets whose availability in the range is under 99%. / Target "
                         "dengan ketersediaan di bawah 99%."),
        stat("Rolling 30 days", [target(f"avg({sel(AVAILABILITY_30D, FILTER)})", "30 days",
                                        instant=True)], width=6, height=5, **PERCENT,
             description="Mean of the targets' recorded 30-day availability, whatever range "
                         "is selected. / Rata-rata ketersediaan 30 hari terakhir."),
    )


def _breakdown(layout: Layout) -> None:
    layout.add(
        bargauge("By kabupaten", [target(availability("kabupaten", FILTER), "{{kabupaten}}",
                                         instant=True)], minimum=0.9, maximum=1, **PERCENT),
        bargauge("By role", [target(availability("role", FILTER), "{{role}}", instant=True)],
                 minimum=0.9, maximum=1, **PERCENT),
    )
    matrix = {"id": "groupingToMatrix", "options": {"columnField": "role",
                                                    "rowField": "kabupaten",
                                                    "valueField": "Value"}}
    layout.add(table("Kabupaten by role",
                     [target(availability("kabupaten, role", FILTER), instant=True, table=True)],
                     width=24, height=8, cell="color-background", transformations=[matrix],
                     description="Availability in the range for each kabupaten (rows) and role "
                                 "(columns). " + RANGE_NOTE, **PERCENT))


def _per_target(layout: Layout) -> None:
    layout.add(table(
        "Per target",
        [target(availability(TARGET, FILTER), instant=True, table=True),
         target(own_availability(TARGET, FILTER), instant=True, table=True)],
        width=24, height=12, sort_by="Availability", descending=False,
        transformations=merge_tables({"Value #A": "Availability", "Value #B": "Own availability"},
                                     hide=("province",)),
        overrides=[override("byName", name, **{"custom.cellOptions": {"type": "color-text"}})
                   for name in ("Availability", "Own availability")],
        description="Every target, least available first. " + RANGE_NOTE, **PERCENT))


def _trend(layout: Layout) -> None:
    layout.add(
        timeseries("Rolling 1 day, by kabupaten",
                   [target(f"avg by (kabupaten) ({sel(AVAILABILITY_1D, FILTER)})",
                           "{{kabupaten}}")], legend_calcs=("min", "mean"), maximum=1, **PERCENT,
                   description="Mean of the targets' availability over the previous day. / "
                               "Ketersediaan sehari terakhir, rata-rata per kabupaten."),
        timeseries("Rolling 30 days, by kabupaten",
                   [target(f"avg by (kabupaten) ({sel(AVAILABILITY_30D, FILTER)})",
                           "{{kabupaten}}")], legend_calcs=("min", "mean"), maximum=1, **PERCENT,
                   description="Mean of the targets' availability over the previous 30 days. / "
                               "Ketersediaan 30 hari terakhir, rata-rata per kabupaten."),
    )


def build() -> Json:
    layout = Layout()
    layout.row("Selected range / Rentang waktu terpilih")
    _range_totals(layout)
    _breakdown(layout)
    layout.row("Per target / Per target")
    _per_target(layout)
    layout.row("Trend / Tren")
    _trend(layout)
    return dashboard(UID, "monitord / SPBE availability",
                     "Availability (share of time reachable) per kabupaten, role and target "
                     "over the selected range, for SPBE reporting, and rolling 1-day and "
                     "30-day figures from the recording rules.",
                     layout, hierarchy_variables(), time_from="now-7d", refresh="5m")
