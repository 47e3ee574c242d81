"""monitord self-health: is it scraped, is its config loaded, are probes on time, are state
events stored and published, and what does the process cost."""

from __future__ import annotations

from dashboards.generator.grafana import (
    UP_DOWN_MAPPINGS,
    Json,
    Layout,
    dashboard,
    override,
    query_variable,
    stat,
    steps,
    target,
    timeseries,
)
from dashboards.generator.promql import FILTER, sel
from dashboards.generator.variables import hierarchy_variables

UID = "monitord-self"
# The scrape job from exporters/prometheus/prometheus.yml.
SELF = ('job="monitord"', 'instance=~"$instance"')
RELOAD_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "RELOAD FAILED", "color": "red", "index": 0},
    "1": {"text": "loaded", "color": "green", "index": 1}}}]


def _rate(metric: str, by: str, *extra: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, *extra, *SELF)}[$__rate_interval]))"


def _quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, {_rate(metric + '_bucket', 'kind, le')})"


def _status(layout: Layout) -> None:
    layout.add(
        stat("Scrape", [target(sel("up", *SELF), "{{instance}}", instant=True)],
             mappings=UP_DOWN_MAPPINGS,
             description="Whether Prometheus reaches monitord's /metrics. / Apakah Prometheus "
                         "dapat mengambil /metrics monitord."),
        stat("Configuration", [target(sel("monitord_config_last_reload_successful", *SELF),
                                      "{{instance}}", instant=True)],
             mappings=RELOAD_MAPPINGS,
             description="A failed reload keeps the previous config running. / Reload gagal: "
                         "konfigurasi sebelumnya tetap berjalan."),
        stat("Config loaded",
             [target("time() - "
                     f"{sel('monitord_config_last_reload_success_timestamp_seconds', *SELF)}",
                     "{{instance}}", instant=True)],
             unit="s", thresholds=steps(("blue", None)),
             description="Time since the last successful load or reload. / Waktu sejak "
                         "konfigurasi terakhir berhasil dimuat."),
        stat("Version", [target(sel("monitord_build_info", *SELF),
                                "{{version}} (Python {{python}})", instant=True)],
             text_mode="name", thresholds=steps(("blue", None))),
        stat("Checks", [target(sel("monitord_targets", *SELF), "{{kind}}", instant=True)],
             decimals=0, thresholds=steps(("blue", None)),
             description="ICMP and SNMP checks in the running config. / Jumlah pemeriksaan "
                         "ICMP dan SNMP."),
        stat("Process uptime",
             [target(f"time() - {sel('process_start_time_seconds', *SELF)}", "{{instance}}",
                     instant=True)],
             unit="s", thresholds=steps(("orange", None), ("green", 3600))),
    )


def _scheduling(layout: Layout) -> None:
    skipped = (f"{_rate('monitord_probes_skipped_total', 'kind, reason')}\n"
               # Series appear with the first skip: show zero per kind until then.
               f"or on (kind) sum by (kind) ({sel('monitord_targets', *SELF)}) * 0")
    last_probe = f"topk(10, time() - {sel('monitord_probe_last_timestamp_seconds', FILTER)})"
    layout.add(
        timeseries("Scheduler lateness",
                   [target(_quantile(0.5, "monitord_scheduler_lateness_seconds"), "{{kind}} p50"),
                    target(_quantile(0.99, "monitord_scheduler_lateness_seconds"),
                           "{{kind}} p99")],
                   width=8, unit="s",
                   description="How late probes start after their scheduled time; a p99 near "
                               "the interval means monitord cannot keep up. / Keterlambatan "
                               "mulai probe dibanding jadwal."),
        timeseries("Probe duration p95",
                   [target(_quantile(0.95, "monitord_probe_duration_seconds"), "{{kind}}")],
                   width=8, unit="s"),
        timeseries("Probes by outcome",
                   [target(_rate("monitord_probes_total", "kind, outcome"),
                           "{{kind}} {{outcome}}")],
                   width=8, unit="ops",
                   description="Probes finished per second: success, failure (no reply, "
                               "poll error) or deadline_exceeded. / Probe per detik menurut "
                               "hasilnya."),
    )
    layout.add(
        timeseries("Probes in flight",
                   [target(sel("monitord_probes_in_flight", *SELF), "{{kind}}")], width=8,
                   decimals=0),
        timeseries("Skipped probe runs", [target(skipped, "{{kind}} {{reason}}")], width=8,
                   unit="ops",
                   description="Runs not started because the previous one was still going "
                               "(overlap) or the scheduler fell behind (behind). / Probe yang "
                               "dilewati."),
        timeseries("Longest since last probe", [target(last_probe, "{{target}}")], width=8,
                   unit="s",
                   description="Targets whose last probe started longest ago: far above their "
                               "interval means probes are late. / Target dengan probe terakhir "
                               "paling lama."),
    )
    layout.add(
        timeseries("SNMP datagrams", [target(_rate("monitord_snmp_datagrams_total", "kind"),
                                             "{{kind}}")], width=12, unit="pps"),
        timeseries("ICMP socket problems",
                   [target(_rate("monitord_icmp_unmatched_replies_total", "family"),
                           "{{family}} unmatched replies"),
                    target(_rate("monitord_icmp_receive_errors_total", "family"),
                           "{{family}} receive errors")], width=12, unit="pps"),
    )


def _events(layout: Layout) -> None:
    layout.add(
        timeseries("State events stored",
                   [target(_rate("monitord_history_events_written_total", "instance"),
                           "written/s"),
                    target(_rate("monitord_history_write_failures_total", "instance"),
                           "write failures/s"),
                    target(sel("monitord_history_events_unwritten", *SELF), "not yet written")],
                   width=8,
                   description="The state-event history (SQLite). Unwritten events stay in "
                               "memory and are retried. / Riwayat status; event yang belum "
                               "tertulis dicoba lagi."),
        stat("MQTT connected", [target(sel("monitord_mqtt_connected", *SELF), "{{instance}}",
                                       instant=True)],
             height=8, mappings=UP_DOWN_MAPPINGS,
             description="Connection to the NOC's MQTT broker (only when mqtt is "
                         "configured). / Koneksi ke broker MQTT."),
        timeseries("MQTT messages",
                   [target(_rate("monitord_mqtt_messages_published_total", "topic"), "{{topic}}"),
                    target(_rate("monitord_mqtt_publish_failures_total", "instance"),
                           "failures")],
                   width=6, unit="ops"),
        timeseries("MQTT outbox", [target(sel("monitord_mqtt_outbox_events", *SELF),
                                          "{{instance}}")], width=6, decimals=0,
                   description="Stored events the broker has not acknowledged yet. / Event "
                               "yang belum dikonfirmasi broker."),
    )


def _process(layout: Layout) -> None:
    layout.add(
        timeseries("CPU", [target(_rate("process_cpu_seconds_total", "instance"),
                                  "{{instance}}")], width=6, unit="percentunit",
                   description="CPU seconds per second (1 = one core)."),
        timeseries("Resident memory", [target(sel("process_resident_memory_bytes", *SELF),
                                              "{{instance}}")], width=6, unit="bytes"),
        timeseries("Open file descriptors",
                   [target(sel("process_open_fds", *SELF), "{{instance}} open"),
                    target(sel("process_max_fds", *SELF), "{{instance}} limit")], width=6),
        timeseries("Scrape",
                   [target(sel("scrape_duration_seconds", *SELF), "{{instance}} duration"),
                    target(sel("scrape_samples_scraped", *SELF), "{{instance}} samples")],
                   width=6, unit="s",
                   description="Prometheus's own view of the scrape: its duration and the "
                               "samples it returned.",
                   overrides=[override("byRegexp", "/samples$/", unit="short",
                                       **{"custom.axisPlacement": "right"})]),
    )


def build() -> Json:
    layout = Layout()
    layout.row("Status")
    _status(layout)
    layout.row("Probes / Probe")
    _scheduling(layout)
    layout.row("State events / Event status")
    _events(layout)
    layout.row("Process / Proses")
    _process(layout)
    instance = query_variable("instance", "monitord", 'label_values(up{job="monitord"}, instance)')
    return dashboard(UID, "monitord / Self-health",
                     "monitord itself: scrape and config status, scheduler lateness, probe "
                     "outcomes, state-event history and MQTT publishing, process resources.",
                     layout, [instance, *hierarchy_variables()], time_from="now-6h",
                     refresh="30s")
