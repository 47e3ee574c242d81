"""The report's formats: JSON keys (stable, documented), the CSV table, the HTML page and its
SVG charts in both languages, number and date formats, and the terminal progress line."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

import pytest

from monitord.report.availability import Report
from monitord.report.charts import AvailabilityBar, DayCount, availability_chart, daily_chart
from monitord.report.html_format import render_html
from monitord.report.i18n import Texts
from monitord.report.machine_formats import render_csv, render_json
from monitord.report.progress import TerminalProgress
from monitord.report.records import FIGURE_COLUMNS
from monitord.report.settings import ReportSettings
from tests.unit.test_report_availability import (
    SETTINGS,
    T0,
    links_down_story,
    make_report,
    window,
)

H = 3600.0


def story_report() -> Report:
    settings = ReportSettings(slo=SETTINGS.slo, default_slo=SETTINGS.default_slo,
                              maintenance=(window(14, 15, roles=frozenset({"village-ap"})),))
    return make_report(links_down_story(), settings=settings)


# -- JSON ---------------------------------------------------------------------------------------

def test_json_has_every_documented_section_and_the_same_columns_as_the_csv() -> None:
    report = make_report(links_down_story())
    document = json.loads(render_json(report))
    assert list(document) == [
        "format", "generated", "source", "period", "slo", "figures", "sites_below_slo",
        "incidents", "longest_incidents", "root_causes", "maintenance", "monitord_not_running",
        "incidents_per_day"]
    assert list(document["figures"]) == ["province", "kabupaten", "site", "role", "target"]
    for level, rows in document["figures"].items():
        for row in rows:
            extra = ["parent_down_by_root_minutes"] if level == "target" else []
            assert list(row) == [*FIGURE_COLUMNS, *extra]
            assert row["level"] == level
    assert list(document["incidents"][0]) == [
        "target", "name", "kabupaten", "site", "role", "start", "end", "started_before_period",
        "minutes", "affected_targets", "caused_down_minutes"]
    assert document["slo"] == {"default_percent": 97.0, "roles": {
        "dc-network": 99.5, "kabupaten-link": 98.0, "village-ap": 95.0}}
    assert document["incidents_per_day"] == [{"day": "2025-01-06", "incidents": 2}]
    [cause] = document["root_causes"]
    assert (cause["target"], cause["caused_down_minutes"], cause["affected_targets"]) == (
        "mamasa-link", 250.0, 2)


def test_json_numbers_are_rounded_and_missing_values_are_null() -> None:
    document = json.loads(render_json(make_report(links_down_story())))
    core = next(r for r in document["figures"]["target"] if r["target"] == "prov-core")
    assert core["mttr_minutes"] is None  # no incidents
    assert core["mtbf_minutes"] is None
    desa_b = next(r for r in document["figures"]["target"] if r["target"] == "desa-b")
    assert desa_b["availability_percent"] == round(100 * (24 - 2 - 5 / 60) / 24, 4)


# -- CSV ----------------------------------------------------------------------------------------

def test_csv_is_one_table_coarse_to_fine() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(make_report(links_down_story())))))
    assert tuple(rows[0]) == FIGURE_COLUMNS
    levels = [row[0] for row in rows[1:]]
    assert levels == sorted(levels, key=["province", "kabupaten", "site", "role",
                                         "target"].index)
    assert levels.count("target") == 4


# -- HTML ---------------------------------------------------------------------------------------

def test_html_in_bahasa_indonesia_by_default_strings_and_number_format() -> None:
    page = render_html(make_report(links_down_story()), "id")
    assert '<html lang="id">' in page
    for text in ("Ketersediaan per kabupaten dibanding target", "Insiden per hari",
                 "Lokasi di bawah target", "Insiden terlama", "Akar masalah",
                 "Saat monitord tidak berjalan", "Definisi", "6 Januari 2025"):
        assert text in page
    assert "91,66%" in page  # the link: 22/24, truncated, decimal comma
    assert "Availability" not in page


def test_html_in_english() -> None:
    page = render_html(make_report(links_down_story()), "en")
    assert '<html lang="en">' in page
    for text in ("Availability per kabupaten against target", "Incidents per day",
                 "Sites below target", "Longest incidents", "Root causes", "Definitions",
                 "6 January 2025", "91.66%"):
        assert text in page
    assert "Ketersediaan" not in page


def test_html_marks_what_is_below_target_and_lists_maintenance() -> None:
    page = render_html(story_report(), "en")
    below = re.findall(r'<tr class="below">.*?</tr>', page)
    assert any("mamasa-link" in row for row in below)
    assert not any("desa-b" in row for row in below)
    assert "\u25bc" in page  # a mark that survives black-and-white printing
    assert "role=village-ap" in page
    assert "ganti radio" in page
    assert "@media print" in page


def test_html_is_self_contained() -> None:
    page = render_html(make_report(links_down_story()), "id")
    assert not re.search(r"<script|<link |src=|@import|https?://(?!www\.w3\.org/2000/svg)", page)


# -- charts -------------------------------------------------------------------------------------

def test_availability_chart_colours_bars_against_their_targets() -> None:
    svg = availability_chart([
        AvailabilityBar("mamasa", 96.0, 98.0, "96%", below=True),
        AvailabilityBar("majene", 99.9, 98.0, "99.9%", below=False),
        AvailabilityBar("<baru>", None, 95.0, "no data", below=False),
    ], "Availability", lambda value: f"{value:g}%")
    bars = re.findall(r'<rect class="bar"[^>]*fill="(#[0-9a-f]+)"', svg)
    assert bars == ["#c62828", "#2e7d32"]  # red below, green above; none without data
    assert svg.count('<line class="target"') == 3
    assert "&lt;baru&gt;" in svg
    assert ">90%<" in svg  # the scale starts at a round value below the lowest one
    widths = [float(w) for w in re.findall(r'<rect class="bar"[^>]*width="([0-9.]+)"', svg)]
    assert widths[0] < widths[1]


def test_daily_chart_draws_a_bar_per_day_with_incidents() -> None:
    days = [DayCount(str(n), count, f"day {n}") for n, count in enumerate([0, 3, 1, 0], 1)]
    svg = daily_chart(days, "Incidents per day")
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 2
    assert heights[0] == pytest.approx(3 * heights[1])
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")


# -- language formats ----------------------------------------------------------------------------

def test_numbers_durations_and_dates_per_language() -> None:
    indonesian, english = Texts("id", "Asia/Jakarta"), Texts("en", "Asia/Jakarta")
    assert indonesian.number(1234.5, 2) == "1.234,50"
    assert english.number(1234.5, 2) == "1,234.50"
    assert indonesian.percent(99.996) == "99,99%"  # truncated: never rounded up to 100%
    assert english.percent(100 * 0.95) == "95.00%"  # float noise does not make it 94.99%
    assert english.percent(None) == "\u2013"
    assert indonesian.duration(3 * 86400 + 4 * 3600 + 5 * 60) == "3 hari 4 jam"
    assert english.duration(2 * 3600 + 15 * 60) == "2 h 15 min"
    assert english.duration(0) == "0 min"
    assert indonesian.duration(19.74) == "20 detik"
    assert english.duration(0.2) == "1 s"
    assert english.duration(59.7) == "1 min"
    assert indonesian.long_day(date(2025, 8, 17)) == "17 Agustus 2025"
    assert indonesian.moment(T0 + 14.5 * H) == "6 Januari 2025 21.30"  # WIB, UTC+7
    assert english.moment(T0 + 14.5 * H) == "6 January 2025 21:30"


# -- progress -----------------------------------------------------------------------------------

class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_draws_on_a_terminal_only_and_clears_its_line() -> None:
    now = [0.0]
    terminal = FakeTerminal(tty=True)
    progress = TerminalProgress(terminal, interval=1.0, clock=lambda: now[0])
    progress("timelines", 1, 4)
    progress("timelines", 2, 4)  # too soon: skipped
    now[0] = 2.0
    progress("timelines", 3, 4)
    progress("timelines", 4, 4)  # the last step always shows
    progress.finish()
    drawn = terminal.getvalue()
    assert re.findall(r"timelines (\d)/4", drawn) == ["1", "3", "4"]
    assert "(75%)" in drawn
    assert drawn.endswith("\r\x1b[K")

    piped = FakeTerminal(tty=False)
    quiet = TerminalProgress(piped)
    quiet("timelines", 1, 1)
    quiet.finish()
    assert piped.getvalue() == ""
