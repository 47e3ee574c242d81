"""The SPBE report looked at as a person would: its HTML opened in headless Chromium and its
PDF printed, rendered to PNG and read back. The charts must be there, sized and in colour, the
PDF must carry the Indonesian headings, and nothing may run off an A4 page.

The PNGs are kept in pytest's tmp dir and their paths printed (`pytest -s`), to look at."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from monitord.report.availability import Level, Report
from monitord.report.charts import BAD_COLOUR, GOOD_COLOUR
from monitord.report.html_format import render_html
from monitord.report.i18n import Language, Texts
from monitord.report.pdf import html_to_pdf
from monitord.report.period import Period
from monitord.report.settings import ReportSettings
from monitord.report.timeline import IntervalSet
from monitord.state.model import Placement, State
from tests.integration.page_view import (
    PageView,
    PdfPage,
    count_colour,
    look_at_html,
    look_at_pdf,
    mm_to_css_px,
)
from tests.unit.test_report_availability import (
    CORE,
    DESA_A,
    DESA_B,
    LINK,
    SETTINGS,
    T0,
    HistoryBuilder,
    make_report,
    window,
)

H = 3600.0
WEEK = Period(date(2025, 1, 6), date(2025, 1, 12), "UTC")
MAJENE_LINK = Placement(target="majene-link", province="sulbar", kabupaten="majene",
                        site="diskominfo-majene", role="kabupaten-link", address="10.76.4.1",
                        name="Link Majene", parent="prov-core")
DESA_C = Placement(target="desa-c", province="sulbar", kabupaten="majene", site="desa-c",
                   role="village-ap", address="10.76.4.11", name="Desa C",
                   parent="majene-link")
CHARTS = ("availability-kabupaten", "incidents-per-day")
# A4 landscape less the 12 mm margins the print CSS sets: the width a printed line has.
A4_LANDSCAPE_CONTENT_PX = mm_to_css_px(297 - 2 * 12)
A4_LANDSCAPE_PT = (841.9, 595.3)
MIN_CHART_PX = (300, 100)  # (width, height): readable, not collapsed
MIN_COLOUR_PX = 150  # a bar's interior, not a stray antialiased edge


def week_story() -> HistoryBuilder:
    """A week in two kabupaten. Mamasa: its link down on Monday and Saturday, villages
    unreachable behind it and once down themselves. Majene: its link down 10 h on Tuesday,
    which puts the kabupaten below its target, and its village down on Thursday."""
    return (HistoryBuilder().up(-48, CORE, LINK, DESA_A, DESA_B, MAJENE_LINK, DESA_C)
            .at(10, LINK, State.DOWN)
            .at(10, DESA_A, State.UNREACHABLE, root="mamasa-link")
            .at(10, DESA_B, State.UNREACHABLE, root="mamasa-link")
            .up(12, LINK).up(12 + 5 / 60, DESA_A, DESA_B)
            .at(30, MAJENE_LINK, State.DOWN)
            .at(30, DESA_C, State.UNREACHABLE, root="majene-link")
            .up(40, MAJENE_LINK, DESA_C)
            .at(80, DESA_C, State.DOWN).up(81.5, DESA_C)
            .at(100, DESA_A, State.DOWN).up(100.5, DESA_A)
            .at(130, LINK, State.DOWN).up(130.5, LINK))


def week_report() -> Report:
    settings = ReportSettings(slo=SETTINGS.slo, default_slo=SETTINGS.default_slo,
                              maintenance=(window(50, 53, kabupaten=frozenset({"mamasa"})),))
    # monitord stopped for two hours on Saturday night
    watched = IntervalSet([(T0 - 30 * 24 * H, T0 + 140 * H), (T0 + 142 * H, T0 + 30 * 24 * H)])
    return make_report(week_story(), settings=settings, watched=watched, period=WEEK)


@dataclass(frozen=True, slots=True)
class Rendered:
    language: Language
    html: Path
    pdf: bytes
    print_seconds: float


@pytest.fixture(scope="module")
def report() -> Report:
    return week_report()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-pngs")


@pytest.fixture(scope="module", params=["id", "en"])
def rendered(request: pytest.FixtureRequest, report: Report, out_dir: Path) -> Rendered:
    language: Language = request.param
    html = render_html(report, language)
    html_file = out_dir / f"report-{language}.html"
    html_file.write_text(html, encoding="utf-8")
    started = time.monotonic()
    pdf = html_to_pdf(html)
    seconds = time.monotonic() - started
    (out_dir / f"report-{language}.pdf").write_bytes(pdf)
    print(f"\n{html_file.with_suffix('.pdf')}: printed in {seconds:.1f} s")
    return Rendered(language, html_file, pdf, seconds)


def test_the_story_has_incidents_in_two_kabupaten_on_both_sides_of_their_targets(
        report: Report) -> None:
    """The charts below are only a check if the figures have both colours to draw."""
    kabupaten = {group.key: group for group in report.level(Level.KABUPATEN)}
    assert kabupaten["majene"].below_slo
    assert not kabupaten["mamasa"].below_slo
    assert {i.placement.kabupaten for i in report.incidents} == {"mamasa", "majene"}
    assert len([n for _, n in report.incidents_per_day if n]) >= 4


def assert_charts_drawn(view: PageView) -> None:
    assert set(view.charts) == set(CHARTS), view.charts
    for chart in view.charts.values():
        print(f"{chart.png}: {chart.box.width:.0f} x {chart.box.height:.0f} px")
        assert chart.box.width >= MIN_CHART_PX[0], chart
        assert chart.box.height >= MIN_CHART_PX[1], chart
        assert chart.box.x >= 0
        assert chart.box.x + chart.box.width <= view.viewport_width + 0.5, chart
    kabupaten = view.charts["availability-kabupaten"].png
    assert count_colour(kabupaten, GOOD_COLOUR) >= MIN_COLOUR_PX  # met their targets
    assert count_colour(kabupaten, BAD_COLOUR) >= MIN_COLOUR_PX  # majene, below
    assert count_colour(view.charts["incidents-per-day"].png, BAD_COLOUR) >= MIN_COLOUR_PX


def test_charts_are_visible_sized_and_coloured_on_screen(rendered: Rendered,
                                                          out_dir: Path) -> None:
    html = rendered.html.read_text(encoding="utf-8")
    assert html.count("<svg") == html.count("data-chart=") == len(CHARTS)  # none unchecked
    view = look_at_html(rendered.html, out_dir, width=1280)
    print(f"\n{view.png}")
    assert_charts_drawn(view)


def test_nothing_runs_off_an_a4_landscape_line_in_print(rendered: Rendered,
                                                        out_dir: Path) -> None:
    view = look_at_html(rendered.html, out_dir, width=A4_LANDSCAPE_CONTENT_PX, media="print")
    print(f"\n{view.png}")
    assert view.scroll_width <= view.viewport_width, view.too_wide
    assert view.too_wide == []
    assert_charts_drawn(view)


def test_the_pdf_is_a4_landscape_with_the_charts_headings_and_kabupaten(
        rendered: Rendered, out_dir: Path) -> None:
    pages = look_at_pdf(rendered.pdf, out_dir, f"report-{rendered.language}")
    for page in pages:
        print(f"\n{page.png}")
    assert rendered.pdf.startswith(b"%PDF-")
    assert len(pages) >= 1
    for page in pages:
        assert (page.width_pt, page.height_pt) == pytest.approx(A4_LANDSCAPE_PT, abs=1)
    assert_pdf_in_colour(pages)
    text = normalise("\n".join(page.text for page in pages))
    t = Texts(rendered.language, "UTC")
    for key in ("title", "summary", "chart_kabupaten", "chart_days", "section_kabupaten",
                "section_longest", "section_targets", "section_definitions", "caused"):
        assert normalise(t(key)) in text, key
    for name in ("mamasa", "majene", "Link Majene"):
        assert name in text


def assert_pdf_in_colour(pages: list[PdfPage]) -> None:
    good = sum(count_colour(page.png, GOOD_COLOUR) for page in pages)
    bad = sum(count_colour(page.png, BAD_COLOUR) for page in pages)
    assert good >= MIN_COLOUR_PX, "no green bar in the PDF"
    assert bad >= MIN_COLOUR_PX, "no red bar in the PDF"


def normalise(text: str) -> str:
    """PDF text breaks lines where the layout did: compare words only."""
    return " ".join(text.split())


def test_a_page_without_its_own_page_size_prints_on_a4_portrait(tmp_path: Path) -> None:
    pages = look_at_pdf(html_to_pdf("<!DOCTYPE html><p>Halo</p>"), tmp_path, "plain")
    assert [(p.width_pt, p.height_pt) for p in pages] == [
        pytest.approx(tuple(reversed(A4_LANDSCAPE_PT)), abs=1)]
    assert "Halo" in pages[0].text
