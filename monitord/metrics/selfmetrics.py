"""monitord's own health: scheduling, probe timing, config reloads, sockets.

These live in a CollectorRegistry the daemon owns (never the global default registry), so
tests can build a fresh one and nothing imported by accident leaks into /metrics.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from monitord import __version__
from monitord.metrics.loopmetrics import LoopCounter, LoopHistogram

# `_created` series double the counter and histogram series for a value nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SelfMetrics:
    """The metric objects the scheduler and daemon update."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # Updated on every probe, only by the event loop: lock-free (see loopmetrics).
        self.lateness = LoopHistogram(
            "monitord_scheduler_lateness_seconds",
            "How late probes started relative to their scheduled time.",
            ["kind"], LATENESS_BUCKETS,
        )
        self.duration = LoopHistogram(
            "monitord_probe_duration_seconds",
            "Wall time of probes, from start to result.",
            ["kind"], DURATION_BUCKETS,
        )
        self.probes = LoopCounter("monitord_probes", "Probes completed, by outcome.",
                                  ["kind", "outcome"])
        for collector in (self.lateness, self.duration, self.probes):
            registry.register(collector)
        self.in_flight = Gauge(
            "monitord_probes_in_flight", "Probes running now.", ["kind"], registry=registry
        )
        self.skipped = Counter(
            "monitord_probes_skipped",
            "Scheduled probe runs that did not happen: the previous run was still going "
            "(overlap) or the scheduler fell more than an interval behind (behind).",
            ["kind", "reason"], registry=registry,
        )
        self.reload_successful = Gauge(
            "monitord_config_last_reload_successful",
            "Whether the last configuration load or reload succeeded (1) or failed (0).",
            registry=registry,
        )
        self.reload_timestamp = Gauge(
            "monitord_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration load or reload.",
            registry=registry,
        )
        self.reloads = Counter(
            "monitord_config_reloads", "Configuration reload attempts, by result.", ["result"],
            registry=registry,
        )
        self.targets = Gauge(
            "monitord_targets", "Checks in the running configuration.", ["kind"], registry=registry
        )
        self.report_runs = Counter(
            "monitord_report_runs", "Scheduled report runs (report.schedule), by result.",
            ["result"], registry=registry,
        )
        for result in ("success", "failure"):
            self.report_runs.labels(result)
        self.report_last_success = Gauge(
            "monitord_report_last_success_timestamp_seconds",
            "When the scheduled report was last written completely (0: not since start).",
            registry=registry,
        )
        self.report_duration = Gauge(
            "monitord_report_duration_seconds",
            "How long the last scheduled report run took, all formats and languages.",
            registry=registry,
        )
        Gauge(
            "monitord_build_info", "monitord version and Python runtime.",
            ["version", "python"], registry=registry,
        ).labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=registry)


class IcmpSocketCollector(Collector):
    """Socket kind per family and reply counters, read from the pinger at scrape time."""

    def __init__(self, describe: Callable[[], dict[str, str]],
                 counters: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self._describe = describe
        self._counters = counters

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "monitord_icmp_socket_info",
            "The ICMP socket in use per address family: dgram (ping socket) or raw.",
            labels=["family", "mode"],
        )
        for family, mode in sorted(self._describe().items()):
            info.add_metric([family, mode], 1)
        unmatched = CounterMetricFamily(
            "monitord_icmp_unmatched_replies",
            "Echo replies that matched no probe in flight (arrived after the probe ended).",
            labels=["family"],
        )
        errors = CounterMetricFamily(
            "monitord_icmp_receive_errors", "Errors reading the ICMP socket.", labels=["family"]
        )
        for family, (n_unmatched, n_errors) in sorted(self._counters().items()):
            unmatched.add_metric([family], n_unmatched)
            errors.add_metric([family], n_errors)
        yield info
        yield unmatched
        yield errors


class SnmpTransportCollector(Collector):
    """Datagrams on the shared SNMP socket, read from the transport at scrape time."""

    def __init__(self, counters: Callable[[], dict[str, int]]) -> None:
        self._counters = counters

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "monitord_snmp_datagrams",
            "Datagrams on the shared SNMP v1/v2c socket: sent, received (matched to a request), "
            "unmatched (late, duplicate or from another address), malformed.",
            labels=["kind"],
        )
        for kind, count in sorted(self._counters().items()):
            family.add_metric([kind], count)
        yield family


class HistoryCollector(Collector):
    """State events committed to the history store, and those still waiting to be."""

    def __init__(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        self._counts = counts  # (written, waiting, write failures)

    def collect(self) -> Iterable[Metric]:
        written, waiting, failures = self._counts()
        yield CounterMetricFamily(
            "monitord_history_events_written",
            "State events committed to the history store since start.", value=written)
        yield GaugeMetricFamily(
            "monitord_history_events_unwritten",
            "State events produced but not yet committed to the history store.", value=waiting)
        yield CounterMetricFamily(
            "monitord_history_write_failures",
            "Failed history writes (the events are kept in memory and retried).", value=failures)
