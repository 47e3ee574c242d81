"""Inline SVG charts for the HTML report: no script, no external file, prints as drawn.
Every label goes through html.escape; every number is formatted by the caller's language."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["BAD_COLOUR", "GOOD_COLOUR", "AvailabilityBar", "DayCount", "availability_chart",
           "daily_chart"]

GOOD_COLOUR = "#2e7d32"  # bars that meet their target (the tests look for these colours)
BAD_COLOUR = "#c62828"
_GRID = "#d0d0d0"
_INK = "#222"


@dataclass(frozen=True, slots=True)
class AvailabilityBar:
    label: str
    value: float | None  # %, None: no data
    target: float | None  # SLO %
    value_text: str  # how the value reads, in the report's language
    below: bool


@dataclass(frozen=True, slots=True)
class DayCount:
    label: str  # under the bar; "" to leave it out when days are many
    count: int
    tooltip: str


def availability_chart(bars: Sequence[AvailabilityBar], title: str,
                       tick_text: Callable[[float], str]) -> str:
    """Horizontal bars, one per row, on a scale from a round lower bound to 100% (99.2% and
    99.8% would look the same from 0), with each row's target as a black line."""
    label_width, plot_width, value_width, row, top = 180, 440, 90, 24, 34
    width = label_width + plot_width + value_width
    height = top + row * max(len(bars), 1) + 24
    known = [v for bar in bars for v in (bar.value, bar.target) if v is not None]
    low = max(0.0, math.floor((min(known, default=95.0) - 0.5) / 5) * 5)
    low = min(low, 95.0)

    def x(percent: float) -> float:
        return label_width + (percent - low) / (100.0 - low) * plot_width

    parts = [_svg_open(width, height, title),
             f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    for step in range(6):
        tick = low + (100.0 - low) * step / 5
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top - 6}" x2="{x(tick):.1f}" '
                     f'y2="{height - 20}" stroke="{_GRID}"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" '
                     f'font-size="10">{escape(tick_text(tick))}</text>')
    for index, bar in enumerate(bars):
        y = top + index * row
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">'
                     f'{escape(bar.label)}</text>')
        if bar.value is not None:
            colour = BAD_COLOUR if bar.below else GOOD_COLOUR
            parts.append(f'<rect class="bar" x="{label_width}" y="{y + 4}" '
                         f'width="{max(x(bar.value) - label_width, 1.0):.1f}" height="{row - 8}" '
                         f'fill="{colour}"><title>{escape(bar.label)}: '
                         f'{escape(bar.value_text)}</title></rect>')
        if bar.target is not None:
            parts.append(f'<line class="target" x1="{x(bar.target):.1f}" y1="{y + 1}" '
                         f'x2="{x(bar.target):.1f}" y2="{y + row - 1}" stroke="{_INK}" '
                         'stroke-width="2.5"/>')
        parts.append(f'<text x="{label_width + plot_width + 6}" y="{y + 15}">'
                     f'{escape(bar.value_text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def daily_chart(days: Sequence[DayCount], title: str) -> str:
    """Vertical bars: incidents per day, on whole-number ticks."""
    left, plot_width, plot_height, top, bottom = 36, 680, 150, 30, 36
    width, height = left + plot_width + 8, top + plot_height + bottom
    peak = max((day.count for day in days), default=0)
    step = max(1, math.ceil(peak / 5))
    ceiling = max(step * math.ceil(peak / step), 1)
    slot = plot_width / max(len(days), 1)
    bar_width = min(max(slot * 0.7, 1.0), 36.0)  # a week's bars must not be a wall

    def y(count: float) -> float:
        return top + plot_height - count / ceiling * plot_height

    parts = [_svg_open(width, height, title),
             f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    for tick in range(0, ceiling + 1, step):
        parts.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{left + plot_width}" '
                     f'y2="{y(tick):.1f}" stroke="{_GRID}"/>'
                     f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'font-size="10">{tick}</text>')
    for index, day in enumerate(days):
        x = left + index * slot
        if day.count:
            parts.append(f'<rect class="bar" x="{x + (slot - bar_width) / 2:.1f}" '
                         f'y="{y(day.count):.1f}" width="{bar_width:.1f}" '
                         f'height="{top + plot_height - y(day.count):.1f}" fill="{BAD_COLOUR}">'
                         f'<title>{escape(day.tooltip)}</title></rect>')
        if day.label:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{top + plot_height + 14}" '
                         f'text-anchor="middle" font-size="10">{escape(day.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    # viewBox + width 100%: scales to the page on screen and on paper.
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
            f'font-family="sans-serif" font-size="12" fill="{_INK}">')
