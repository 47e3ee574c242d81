"""A report from a resolved inventory: the one path the CLI (and the scheduled job, later)
take from config, history and maintenance windows to figures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from monitord.model import Inventory
from monitord.report.availability import Progress, Report, compute_report
from monitord.report.history_source import read_history
from monitord.report.maintenance import MAINTENANCE_FILE, read_windows
from monitord.report.period import Period
from monitord.report.settings import ReportSettings
from monitord.state.history import HISTORY_FILE
from monitord.state.model import Placement

__all__ = ["build_report", "report_settings"]


def report_settings(inventory: Inventory) -> ReportSettings:
    """The inventory's resolved `report` section."""
    return inventory.report


def build_report(inventory: Inventory, settings: ReportSettings, period: Period, now: float,
                 progress: Progress | None = None) -> Report:
    """Figures of the period from STATE_DIR's history, with the config's maintenance windows
    and those added with `monitord maintenance add`. Raises HistoryError, MaintenanceError."""
    state_dir = Path(inventory.state_dir)
    stored = read_windows(state_dir / MAINTENANCE_FILE)
    settings = replace(settings, maintenance=settings.maintenance
                       + tuple(s.window for s in stored))
    history = read_history(state_dir / HISTORY_FILE, period, now, progress)
    configured = {target: Placement.of(check) for target, check in inventory.by_target().items()}
    return compute_report(history, period, settings, now, configured, progress)
