"""A report from a resolved inventory: the one path the CLI and the scheduled job take from
config, history (or Prometheus) and maintenance windows to figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from monitord.model import Inventory
from monitord.report.availability import HistoryData, Progress, Report, compute_report
from monitord.report.history_source import read_history
from monitord.report.maintenance import MAINTENANCE_FILE, read_windows
from monitord.report.period import Period
from monitord.report.settings import ReportSettings
from monitord.state.history import HISTORY_FILE
from monitord.state.model import Placement

__all__ = ["HistoryReader", "build_report", "report_settings"]

# Where the events come from: (period, now, progress) -> what the report is computed from.
HistoryReader = Callable[[Period, float, Progress | None], HistoryData]


def report_settings(inventory: Inventory) -> ReportSettings:
    """The inventory's resolved `report` section."""
    return inventory.report


def build_report(inventory: Inventory, settings: ReportSettings, period: Period, now: float,
                 progress: Progress | None = None, reader: HistoryReader | None = None,
                 source: str = "history") -> Report:
    """Figures of the period from STATE_DIR's history (or `reader`, named `source`), with the
    config's maintenance windows and those added with `monitord maintenance add`. Raises
    HistoryError, MaintenanceError, and what `reader` raises."""
    state_dir = Path(inventory.state_dir)
    stored = read_windows(state_dir / MAINTENANCE_FILE)
    settings = replace(settings, maintenance=settings.maintenance
                       + tuple(s.window for s in stored))
    if reader is None:
        history = read_history(state_dir / HISTORY_FILE, period, now, progress)
    else:
        history = reader(period, now, progress)
    configured = {target: Placement.of(check) for target, check in inventory.by_target().items()}
    report = compute_report(history, period, settings, now, configured, progress)
    return replace(report, source=source)
