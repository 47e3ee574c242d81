"""Looking at rendered pages as a person would: an HTML file in headless Chromium (Playwright
driving the system's browser, never one of its own), PDF pages as PNG and text (pypdfium2),
and how many pixels of a colour an image region holds (Pillow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pypdfium2  # type: ignore[import-untyped]  # no stubs, no py.typed
from PIL import Image
from playwright.sync_api import sync_playwright

from monitord.report.pdf import QUIET_FLAGS, find_chromium

POINTS_PER_INCH = 72
_CSS_PX_PER_MM = 96 / 25.4
_BROWSER_TIMEOUT_MS = 60_000


def mm_to_css_px(mm: float) -> int:
    return int(mm * _CSS_PX_PER_MM)


@dataclass(frozen=True, slots=True)
class Box:
    """A region in CSS pixels (page screenshots) or image pixels."""

    x: float
    y: float
    width: float
    height: float

    def pixels(self, scale: float = 1.0) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) for Pillow's crop, in pixels at `scale` per unit."""
        return (round(self.x * scale), round(self.y * scale),
                round((self.x + self.width) * scale), round((self.y + self.height) * scale))


@dataclass(frozen=True, slots=True)
class ChartView:
    name: str  # its data-chart attribute
    box: Box  # where it sits on the page (CSS px, page coordinates)
    png: Path  # a screenshot of just the chart


@dataclass(frozen=True, slots=True)
class PageView:
    png: Path  # the whole page
    charts: dict[str, ChartView]
    viewport_width: int
    scroll_width: int  # the document's: more than the viewport means a horizontal scrollbar
    too_wide: list[str]  # elements whose right edge passes the viewport, as "tag.class: px"


def browser_path() -> str:
    found = find_chromium()
    if found is None:
        raise RuntimeError("no Chromium: apt install chromium (scripts/setup.sh --test does)")
    return found


def look_at_html(html_file: Path, out_dir: Path, *, width: int,
                 media: Literal["screen", "print"] = "screen") -> PageView:
    """Opens the page at `width` CSS px, saves a full-page screenshot and one per chart
    (`[data-chart]` elements) into out_dir, and measures how wide the content is."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{html_file.stem}-{media}-{width}px"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path(), args=QUIET_FLAGS,
                                             timeout=_BROWSER_TIMEOUT_MS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_default_timeout(_BROWSER_TIMEOUT_MS)
            page.emulate_media(media=media)
            page.goto(html_file.resolve().as_uri())
            full = out_dir / f"{stem}.png"
            page.screenshot(path=str(full), full_page=True)
            charts: dict[str, ChartView] = {}
            for index, element in enumerate(page.locator("[data-chart]").all()):
                name = element.get_attribute("data-chart") or f"chart-{index}"
                box = element.bounding_box()
                if box is None:  # not rendered at all (display: none)
                    continue
                png = out_dir / f"{stem}-{name}.png"
                element.screenshot(path=str(png))
                charts[name] = ChartView(name, Box(box["x"], box["y"], box["width"],
                                                   box["height"]), png)
            scroll_width = int(page.evaluate("document.documentElement.scrollWidth"))
            too_wide: list[str] = page.evaluate(
                """(limit) => Array.from(document.querySelectorAll('body *'))
                    .map((e) => [e, e.getBoundingClientRect().right])
                    .filter(([e, right]) => right > limit + 0.5)
                    .map(([e, right]) => `${e.tagName.toLowerCase()}.${e.className}: ${right}`)""",
                width)
        finally:
            browser.close()
    return PageView(full, charts, width, scroll_width, too_wide)


@dataclass(frozen=True, slots=True)
class PdfPage:
    width_pt: float
    height_pt: float
    text: str
    png: Path


def look_at_pdf(pdf: bytes, out_dir: Path, stem: str, *, dpi: int = 110) -> list[PdfPage]:
    """Every page rendered to out_dir/STEM-pN.png at `dpi`, with its size and text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(pdf)
    pages = []
    try:
        for number in range(len(document)):
            page = document[number]
            width, height = page.get_size()
            text_page = page.get_textpage()
            text = text_page.get_text_range()
            png = out_dir / f"{stem}-p{number + 1}.png"
            page.render(scale=dpi / POINTS_PER_INCH).to_pil().save(png)
            text_page.close()
            page.close()
            pages.append(PdfPage(width, height, text, png))
    finally:
        document.close()
    return pages


def count_colour(png: Path, colour: str, region: tuple[int, int, int, int] | None = None,
                 tolerance: int = 12) -> int:
    """Pixels within `tolerance` (per channel) of `colour` ("#rrggbb") in the image, or in its
    region (left, top, right, bottom): antialiased edges are off colour, bar interiors are not."""
    wanted = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        if region is not None:
            rgb = rgb.crop(region)
        count = 0
        for (red, green, blue), how_many in _colour_counts(rgb):
            if max(abs(red - wanted[0]), abs(green - wanted[1]),
                   abs(blue - wanted[2])) <= tolerance:
                count += how_many
    return count


def _colour_counts(image: Image.Image) -> list[tuple[tuple[int, int, int], int]]:
    colours = image.getcolors(maxcolors=image.width * image.height)
    assert colours is not None  # maxcolors is the pixel count: never too few
    return [(rgb, count) for count, rgb in colours]  # type: ignore[misc]
