"""`monitord report` and `monitord maintenance add|list|remove`.

monitord.cli adds these with add_report_parser(sub, DEFAULT_CONFIG) and
add_maintenance_parser(sub, DEFAULT_CONFIG). Both read the history and the maintenance file
read-only, so they are safe while the daemon runs; only `maintenance add|remove` write, and
only to STATE_DIR/maintenance.sqlite3, which the daemon never opens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from monitord.config import load_inventory
from monitord.model import Inventory
from monitord.report.availability import HistoryData, Progress
from monitord.report.build import HistoryReader, build_report, report_settings
from monitord.report.i18n import LANGUAGES
from monitord.report.maintenance import (
    MAINTENANCE_FILE,
    MaintenanceError,
    MaintenanceStore,
    read_windows,
)
from monitord.report.output import FORMATS, render, write_atomically
from monitord.report.pdf import PdfError
from monitord.report.period import Period, PeriodError, parse_day, parse_moment, to_local
from monitord.report.progress import TerminalProgress
from monitord.report.prometheus_source import PrometheusSourceError, read_prometheus
from monitord.report.settings import MaintenanceWindow, ReportSettings, TargetSelector
from monitord.state.history import HistoryError

__all__ = ["add_maintenance_parser", "add_report_parser"]

# As monitord.cli's: 0 done, 1 not found, 2 bad input or unusable files.
EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2

_SUFFIX_FORMATS = {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html",
                   ".pdf": "pdf"}


def add_report_parser(subparsers: Any, default_config: str) -> argparse.ArgumentParser:
    """`report`: availability per device, site, kabupaten, role and province for whole days."""
    help_text = ("availability report from the event history: per device, site, kabupaten, "
                 "role and province, with incidents, root causes and maintenance")
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report", help=help_text, description=help_text)
    _config_option(parser, default_config)
    parser.add_argument("--from", dest="first_day", required=True, metavar="YYYY-MM-DD",
                        help="first day of the period (in report.timezone)")
    parser.add_argument("--to", dest="last_day", required=True, metavar="YYYY-MM-DD",
                        help="last day of the period, included")
    parser.add_argument("--format", choices=FORMATS,
                        help="default: from --output's suffix, else json")
    parser.add_argument("--lang", choices=LANGUAGES, default="id",
                        help="language of the HTML page and PDF: id (Bahasa Indonesia) or en")
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    parser.add_argument("--source", choices=("history", "prometheus"), default="history",
                        help="history: this monitord's event store (exact); prometheus: the "
                             "metrics of every shard, sampled every --prometheus-step")
    parser.add_argument("--prometheus-url", metavar="URL",
                        help="Prometheus (or a compatible query API) for --source prometheus")
    parser.add_argument("--prometheus-step", type=_positive_seconds, default=15.0,
                        metavar="SECONDS", help="sampling step (default 15): each state change "
                        "is timed within step + scrape interval")
    parser.add_argument("--prometheus-selector", default="", metavar="MATCHERS",
                        help='extra label matchers for every query, e.g. province="sulbar"')
    parser.set_defaults(func=run_report)
    return parser


def add_maintenance_parser(subparsers: Any, default_config: str) -> argparse.ArgumentParser:
    """`maintenance add|list|remove`: planned windows, excluded from SLA figures."""
    help_text = "planned maintenance windows: excluded from availability, listed in reports"
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "maintenance", help=help_text, description=help_text)
    actions = parser.add_subparsers(dest="maintenance_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a window (stored in the state directory)")
    _config_option(add, default_config)
    add.add_argument("--target", action="append", default=[], help="a device id (repeatable)")
    add.add_argument("--site", action="append", default=[], help="a site id (repeatable)")
    add.add_argument("--kabupaten", action="append", default=[],
                     help="a kabupaten id (repeatable)")
    add.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    add.add_argument("--from", dest="start", required=True, metavar="'YYYY-MM-DD HH:MM'",
                     help="start, in report.timezone unless it has an offset (+08:00)")
    add.add_argument("--to", dest="end", required=True, metavar="'YYYY-MM-DD HH:MM'")
    add.add_argument("--reason", required=True, help="what the work is, for the report")
    add.set_defaults(func=run_maintenance_add)

    listing = actions.add_parser("list", help="list the windows from the config and the state")
    _config_option(listing, default_config)
    listing.add_argument("--json", action="store_true", help="one JSON object per window")
    listing.set_defaults(func=run_maintenance_list)

    remove = actions.add_parser("remove", help="remove a window added with `maintenance add`")
    _config_option(remove, default_config)
    remove.add_argument("id", type=int, help="its number, as `maintenance list` shows it")
    remove.set_defaults(func=run_maintenance_remove)
    return parser


def _config_option(parser: argparse.ArgumentParser, default_config: str) -> None:
    parser.add_argument("-c", "--config", default=default_config,
                        help=f"inventory file (default: $MONITORD_CONFIG or {default_config})")


# -- report ---------------------------------------------------------------------------------------

def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{text} s: use a step from 0 to 3600 s")
    return seconds


def _reader(args: argparse.Namespace) -> HistoryReader | None:
    if args.source == "history":
        return None
    url = args.prometheus_url

    def read(period: Period, now: float, progress: Progress | None) -> HistoryData:
        return read_prometheus(url, period, now, progress, step=args.prometheus_step,
                               selector=args.prometheus_selector)
    return read


def _usage_problem(args: argparse.Namespace, output_format: str | None) -> str | None:
    if output_format is None:
        return f"cannot tell the format from {args.output!r}: give --format"
    if output_format == "pdf" and args.output is None:
        return "a PDF goes to a file: give -o FILE.pdf"
    if args.source == "prometheus" and not args.prometheus_url:
        return "--source prometheus needs --prometheus-url URL"
    return None


def run_report(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.config)
    settings = report_settings(inventory)
    output_format = _output_format(args.format, args.output)
    problem = _usage_problem(args, output_format)
    if problem is not None:
        return _fail(problem)
    assert output_format is not None
    progress = TerminalProgress()
    try:
        period = Period(parse_day(args.first_day), parse_day(args.last_day), settings.timezone)
        report = build_report(inventory, settings, period, time.time(), progress,
                              _reader(args), args.source)
    except (PeriodError, HistoryError, MaintenanceError, PrometheusSourceError) as error:
        progress.finish()
        return _fail(error)
    progress.finish()
    try:
        content = render(report, output_format, args.lang)
    except PdfError as error:
        return _fail(error)
    if args.output is None:
        sys.stdout.buffer.write(content)
    else:
        try:
            write_atomically(Path(args.output), content)
        except OSError as error:
            return _fail(f"cannot write {args.output}: {error.strerror or error}")
    return EXIT_OK


def _output_format(chosen: str | None, output: str | None) -> str | None:
    """--format, else the output file's suffix, else json; None if the suffix is unknown."""
    if chosen is not None:
        return chosen
    if output is None:
        return "json"
    return _SUFFIX_FORMATS.get(Path(output).suffix.lower())


# -- maintenance ------------------------------------------------------------------------------

def run_maintenance_add(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.config)
    settings = report_settings(inventory)
    unknown = _unknown_selectors(inventory, args)
    if unknown:
        return _fail("not in the config: " + "; ".join(unknown))
    reason = args.reason.strip()
    if not reason:
        return _fail("--reason must say what the work is")
    try:
        selector = TargetSelector(frozenset(args.target), frozenset(args.site),
                                  frozenset(args.kabupaten), frozenset(args.role))
        window = MaintenanceWindow(start=parse_moment(args.start, settings.timezone),
                                   end=parse_moment(args.end, settings.timezone),
                                   selector=selector, reason=reason, source="state")
        # Opened only once the window is known to be good: a mistake leaves no file behind.
        store = MaintenanceStore(Path(inventory.state_dir) / MAINTENANCE_FILE)
        try:
            stored = store.add(window, time.time())
        finally:
            store.close()
    except (ValueError, MaintenanceError) as error:
        return _fail(error)
    print(f"added maintenance window #{stored.id}: {_describe(stored.window, settings)}")
    return EXIT_OK


def _unknown_selectors(inventory: Inventory, args: argparse.Namespace) -> list[str]:
    """A typo in a window would silently cover nothing: every id must be in the config."""
    checks = inventory.by_target().values()
    known = {"target": {c.target for c in checks}, "site": {c.site for c in checks},
             "kabupaten": {c.kabupaten for c in checks}, "role": {c.role for c in checks}}
    problems = []
    for kind, values in (("target", args.target), ("site", args.site),
                         ("kabupaten", args.kabupaten), ("role", args.role)):
        missing = sorted(set(values) - known[kind])
        if missing:
            problems.append(f"{kind} {', '.join(missing)}")
    return problems


def run_maintenance_list(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.config)
    settings = report_settings(inventory)
    try:
        stored = read_windows(Path(inventory.state_dir) / MAINTENANCE_FILE)
    except MaintenanceError as error:
        return _fail(error)
    windows = [(None, w) for w in settings.maintenance] + [(s.id, s.window) for s in stored]
    for window_id, window in sorted(windows, key=lambda item: item[1].start):
        if args.json:
            selector = window.selector
            print(json.dumps({
                "id": window_id, "source": window.source,
                "start": to_local(window.start, settings.timezone).isoformat(),
                "end": to_local(window.end, settings.timezone).isoformat(),
                "targets": sorted(selector.targets), "sites": sorted(selector.sites),
                "kabupaten": sorted(selector.kabupaten), "roles": sorted(selector.roles),
                "reason": window.reason}, ensure_ascii=False))
        else:
            label = "config" if window_id is None else f"#{window_id}"
            print(f"{label:>7}  {_describe(window, settings)}")
    return EXIT_OK


def run_maintenance_remove(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.config)
    path = Path(inventory.state_dir) / MAINTENANCE_FILE
    if not path.exists():
        return _fail(f"no maintenance window #{args.id} (none were added)", EXIT_NOT_FOUND)
    try:
        store = MaintenanceStore(path)
        try:
            removed = store.remove(args.id)
        finally:
            store.close()
    except MaintenanceError as error:
        return _fail(error)
    if not removed:
        return _fail(f"no maintenance window #{args.id}", EXIT_NOT_FOUND)
    print(f"removed maintenance window #{args.id}")
    return EXIT_OK


def _describe(window: MaintenanceWindow, settings: ReportSettings) -> str:
    def moment(seconds: float) -> str:
        return to_local(seconds, settings.timezone).strftime("%Y-%m-%d %H:%M %Z").strip()

    return (f"{moment(window.start)} - {moment(window.end)}  {window.selector.describe()}  "
            f"({window.reason})")


def _fail(error: object, code: int = EXIT_USAGE) -> int:
    print(f"monitord: {error}", file=sys.stderr)
    return code
