"""The running daemon: load, probe on schedule, serve metrics, reload safely, stop cleanly.

Reload (SIGHUP or POST /-/reload) validates the new file completely before anything changes;
a bad file leaves the running config untouched and sets
monitord_config_last_reload_successful to 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from monitord.config import ConfigError, load_inventory
from monitord.http import Endpoints, HttpCollector, HttpServer
from monitord.icmp.pinger import Pinger
from monitord.logformat import hide_secrets, secrets_in
from monitord.metrics.host_metrics import HostCollector
from monitord.metrics.loop_lag import LoopLagMonitor
from monitord.metrics.mqtt_metrics import MqttCollector
from monitord.metrics.selfmetrics import (
    HistoryCollector,
    IcmpSocketCollector,
    SelfMetrics,
    SnmpTransportCollector,
)
from monitord.metrics.snmp_series import SnmpSeries
from monitord.metrics.state_series import StateSeries
from monitord.metrics.targets import TargetSeries
from monitord.model import Inventory, Outcome, ProbeResult
from monitord.probers import ProbeContext
from monitord.report.cron import cron_trigger
from monitord.report.maintenance import MaintenanceError
from monitord.report.pdf import PdfError
from monitord.report.period import zone
from monitord.report.scheduled import report_is_missing, write_scheduled_report
from monitord.scheduler import Scheduler
from monitord.sdnotify import Notifier, feed_watchdog
from monitord.shard import Shard, select
from monitord.snmp.context import SnmpContext
from monitord.state.history import HistoryError
from monitord.state.model import TargetStatus
from monitord.state.tracker import StateTracker

log = logging.getLogger(__name__)

RELOAD_TIMEOUT = 60.0
RELOAD_SWITCH_INTERVAL = 0.0005  # seconds; see _load_and_apply
# The earliest due check this late (seconds): the schedule has stopped advancing, and the
# systemd watchdog is no longer fed (WatchdogSec=30s in systemd/monitord.service).
SCHEDULER_STALL_LIMIT = 10.0
REPORT_JOB = "scheduled-report"


class Daemon:
    def __init__(self, config_path: str | Path, shard: Shard | None = None) -> None:
        self.config_path = str(config_path)
        self.shard = shard  # from --shard; else daemon.shard of the first load; else 1/1
        self.registry = CollectorRegistry(auto_describe=True)
        self.metrics = SelfMetrics(self.registry)
        self._shard_info = Gauge("monitord_shard_info", "This instance's shard: it owns the "
                                 "targets that rendezvous hashing gives shard of shards.",
                                 ["shard", "shards"], registry=self.registry)
        self._borrowed = Gauge("monitord_targets_borrowed", "Other shards' targets probed here "
                               "only because an owned target sits behind them (not exported).",
                               registry=self.registry)
        self.loop_lag = LoopLagMonitor()
        self.registry.register(self.loop_lag)
        self.series = TargetSeries()
        self.snmp_series = SnmpSeries()
        self._snmp: SnmpContext | None = None
        self._tracker: StateTracker | None = None
        self.state_series = StateSeries(self._statuses)
        self.inventory: Inventory | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = False
        self._reload_lock: asyncio.Lock | None = None
        self._scheduler: Scheduler | None = None
        self._background: set[asyncio.Task[tuple[bool, str]]] = set()
        self._housekeeping: AsyncIOScheduler | None = None
        self._notifier = Notifier(None)  # run() takes systemd's from the environment
        self._http: HttpServer | None = None

    def render_metrics(self) -> list[bytes]:
        """Called from HTTP threads: target series first (their pieces, pre-rendered when the
        results came in), then monitord's own metrics (small: prometheus-client renders them)."""
        return [*self.series.render_chunks(), *self.state_series.render_chunks(),
                *self.snmp_series.render_chunks(), generate_latest(self.registry)]

    def _statuses(self) -> Mapping[str, TargetStatus]:
        return self._tracker.statuses() if self._tracker is not None else {}

    def _observe(self, outcome: Outcome) -> None:
        if isinstance(outcome, ProbeResult):
            self.series.observe(outcome)
            assert self._tracker is not None
            self._tracker.observe(outcome)
        else:
            self.snmp_series.observe(outcome)

    async def reload(self) -> tuple[bool, str]:
        assert self._reload_lock is not None
        async with self._reload_lock:
            self._notifier.reloading()
            ok, message = False, "reload failed"
            try:
                ok, message = await self._load_and_apply()
            finally:
                # READY=1 ends RELOADING=1 whatever happened: either config is being served.
                self._notifier.ready(message.splitlines()[0])
            return ok, message

    async def _load_and_apply(self) -> tuple[bool, str]:
        """Load the file in a worker thread; apply it only if it is valid."""
        # While the worker thread parses, every socket call of the event loop gives up the GIL
        # and waits up to the switch interval to get it back (the GIL convoy): with the default
        # 5 ms, a 2,000-target reload stalled the loop by up to ~1 s in the soak. 0.5 ms while
        # the parse runs: largest loop gap 244 -> 106 ms at 2,000 targets with UDP traffic
        # (the rest is one long GIL hold inside validation).
        interval = sys.getswitchinterval()
        sys.setswitchinterval(RELOAD_SWITCH_INTERVAL)
        try:
            inventory = await asyncio.to_thread(load_inventory, self.config_path)
        except ConfigError as exc:
            self.metrics.reload_successful.set(0)
            self.metrics.reloads.labels("failure").inc()
            log.error("reload failed; still running the previous config: %s", exc)
            return False, f"reload failed; still running the previous config:\n{exc}"
        finally:
            sys.setswitchinterval(interval)
        hide_secrets(secrets_in(inventory))  # the new secrets, before anything can log one
        self._apply(inventory)
        self.metrics.reloads.labels("success").inc()
        message = f"reloaded {self.config_path}: {len(inventory.checks)} checks"
        log.info("%s", message)
        return True, message

    def _apply(self, inventory: Inventory) -> None:
        old = self.inventory
        if old is not None:
            for name in ("listen", "icmp_socket", "max_concurrent_probes", "scheduler_tick",
                         "snmp_max_in_flight", "state_dir", "mqtt"):
                if getattr(old, name) != getattr(inventory, name):
                    log.warning("daemon.%s changed; it takes effect after a restart", name)
        if old is None:  # the shard is fixed for the process: --shard, else daemon.shard
            self.shard = self.shard or inventory.shard or Shard()
            self._shard_info.labels(str(self.shard.index), str(self.shard.count)).set(1)
            if self.shard.count > 1:
                log.info("shard %s: probing only the targets this shard owns", self.shard)
        elif inventory.shard != old.shard:
            log.warning("daemon.shard changed; it takes effect after a restart")
        self.inventory = inventory
        if self._http is not None:  # new TLS files and users apply without a restart
            self._http.apply(inventory.web)
        # Borrowed checks are probed and judged for topology only: no series, SNMP or events.
        assert self.shard is not None
        checks = select(inventory.checks, self.shard)
        self._borrowed.set(len(checks.borrowed))
        self.series.set_checks(checks.owned)
        assert self._tracker is not None
        self._tracker.set_checks(checks.owned, checks.borrowed)
        self.snmp_series.set_checks(checks.owned, inventory.snmp_modules)
        assert self._scheduler is not None
        assert self._snmp is not None
        self._snmp.set_checks(checks.owned, inventory.snmp_modules)
        self._scheduler.set_checks(checks.probed)
        self._schedule_reports(inventory)
        self.metrics.reload_successful.set(1)
        self.metrics.reload_timestamp.set(time.time())
        # The inventory lives until the next reload: keep the cyclic GC from re-walking it on
        # every full collection (those pauses showed up as probe lateness). Province-size
        # (bench/scrape_bench.py): a full collection takes 46 ms unfrozen, 8 ms frozen. A higher
        # gen-0 threshold was measured too and not kept: fewer, longer pauses, same total.
        gc.collect()
        gc.freeze()

    def _reload_from_thread(self) -> tuple[bool, str]:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.reload(), self._loop)
        return future.result(timeout=RELOAD_TIMEOUT)

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT (or request_stop). Raises ConfigError on a bad first load."""
        self._loop = asyncio.get_running_loop()
        self._notifier = notifier = Notifier.from_environment()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        inventory = load_inventory(self.config_path)
        hide_secrets(secrets_in(inventory))
        log.info("loaded %s: %d checks", self.config_path, len(inventory.checks))
        pinger = Pinger(inventory.icmp_socket)
        pinger.open()
        self.registry.register(IcmpSocketCollector(pinger.describe, pinger.counters))
        self._snmp = SnmpContext(inventory.snmp_max_in_flight, inventory.snmp_modules)
        self.registry.register(SnmpTransportCollector(self._snmp.transport.counter_values))
        self._scheduler = Scheduler(ProbeContext(pinger, self._snmp), self._observe, self.metrics,
                                   inventory.max_concurrent_probes, inventory.scheduler_tick)
        self._tracker = await StateTracker.open(inventory.state_dir, inventory.mqtt)
        await self._tracker.start()  # _apply's set_checks restores the stored states
        self.registry.register(HistoryCollector(self._tracker.history_counts))
        self.registry.register(HostCollector(inventory.state_dir))
        if self._tracker.publisher is not None:
            publisher = self._tracker.publisher
            self.registry.register(MqttCollector(lambda: publisher.stats))
        # Calendar work goes to APScheduler (DESIGN.md); probes never do.
        self._housekeeping = housekeeping = AsyncIOScheduler()
        self._apply(inventory)
        await self._start_housekeeping(inventory)
        self._http = http = HttpServer(
            inventory.listen,
            Endpoints(self.render_metrics, lambda: self._ready, self._reload_from_thread),
            inventory.web)
        self.registry.register(HttpCollector(http.stats))
        http.start()
        log.info("serving metrics on %s://%s/metrics", http.scheme, inventory.listen)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stop.set)
        self._loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        running = [asyncio.create_task(self._scheduler.run(), name="scheduler"),
                   asyncio.create_task(self.loop_lag.run(), name="loop-lag"),
                   asyncio.create_task(feed_watchdog(notifier, self._schedule_advancing),
                                       name="watchdog")]
        self._ready = True
        notifier.ready(f"probing {len(inventory.checks)} checks")
        try:
            await self._stop.wait()
            log.info("stopping")
        finally:
            notifier.stopping()
            self._ready = False
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self._loop.remove_signal_handler(sig)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            housekeeping.shutdown(wait=False)
            http.stop()
            pinger.close()
            await self._snmp.close()
            await self._tracker.close()
            notifier.close()
        log.info("stopped")

    def _schedule_advancing(self) -> bool:
        """The watchdog's health check; the event loop turning shows in the check running."""
        return self._scheduler is not None and self._scheduler.lag() < SCHEDULER_STALL_LIMIT

    async def _start_housekeeping(self, inventory: Inventory) -> None:
        """The daily history purge (also once now), and a missed scheduled report now."""
        assert self._housekeeping is not None
        self._housekeeping.add_job(self._purge_history, CronTrigger(hour=3, minute=17),
                                   next_run_time=datetime.now(), coalesce=True, max_instances=1)
        if await asyncio.to_thread(report_is_missing, inventory, time.time()):
            log.info("the last scheduled report is missing: writing it now")
            self._housekeeping.add_job(self._scheduled_report, next_run_time=datetime.now())
        self._housekeeping.start()

    def _schedule_reports(self, inventory: Inventory) -> None:
        """(Re)place the report job on every load: a reload may change or remove the schedule."""
        assert self._housekeeping is not None
        if self._housekeeping.get_job(REPORT_JOB) is not None:
            self._housekeeping.remove_job(REPORT_JOB)
        schedule = inventory.report.schedule
        if schedule is not None:
            trigger = cron_trigger(schedule.cron, zone(inventory.report.timezone))
            # A run missed by up to a day (a busy or suspended machine) still happens, once.
            self._housekeeping.add_job(self._scheduled_report, trigger, id=REPORT_JOB,
                                       coalesce=True, max_instances=1,
                                       misfire_grace_time=86400)

    async def _scheduled_report(self) -> None:
        """Reading the history and printing a PDF block: a worker thread does it."""
        assert self.inventory is not None
        started = time.monotonic()
        try:
            await asyncio.to_thread(write_scheduled_report, self.inventory)
        except (HistoryError, MaintenanceError, PdfError, OSError) as error:
            self.metrics.report_runs.labels("failure").inc()
            log.error("scheduled report failed: %s", error)
            return
        finally:
            self.metrics.report_duration.set(time.monotonic() - started)
        self.metrics.report_runs.labels("success").inc()
        self.metrics.report_last_success.set(time.time())

    async def _purge_history(self) -> None:
        """Retention: drop state events older than history.retention (undelivered ones stay)."""
        assert self._tracker is not None
        assert self.inventory is not None
        cutoff = time.time() - self.inventory.history_retention
        removed = await self._tracker.history.purge(cutoff)
        if removed:
            log.info("history: removed %d events older than %s", removed,
                     datetime.fromtimestamp(cutoff).isoformat(timespec="seconds"))

    def _on_sighup(self) -> None:
        log.info("SIGHUP: reloading %s", self.config_path)
        task = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._background.discard)
