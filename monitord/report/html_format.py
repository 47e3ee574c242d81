"""The report as one self-contained HTML page: inline CSS and SVG, no script, print-friendly
(the PDF is this page printed). Every value from the history or config is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from monitord.report.availability import Incident, Level, Report, Totals
from monitord.report.charts import AvailabilityBar, DayCount, availability_chart, daily_chart
from monitord.report.i18n import MISSING, Language, Texts

__all__ = ["render_html"]

_BELOW_MARK = "\u25bc"  # a down-pointing triangle
_CSS = """
body { font-family: "Segoe UI", "DejaVu Sans", Arial, sans-serif; font-size: 13px; color: #222;
       max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 2px solid #444; padding-bottom: 2px;
     break-after: avoid; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 8px 0; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 1px solid #bbb; border-radius: 4px; padding: 6px 10px; min-width: 130px; }
.card .label { font-size: 11px; color: #555; }
.card .value { font-size: 18px; font-weight: bold; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; vertical-align: bottom; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }  /* headers wrap instead: "Perangkat di bawah target" on one
                                    line made the device table too wide for A4 */
tr.below td { color: #b71c1c; }
tr.below td.flag { font-weight: bold; }
p.note { font-size: 11px; color: #555; margin: 2px 0; }
.chart { margin: 8px 0 4px; break-inside: avoid; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  /* What runs past the page's width makes Chromium shrink the whole page to fit. */
  body { max-width: none; margin: 0; padding: 0; font-size: 10px; }
  /* Red rows, grey headers and the bars carry meaning: print them even without backgrounds. */
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  tr, .chart, svg { break-inside: avoid; }
  thead { display: table-header-group; }
  section.small { break-inside: avoid; }
}
"""


def render_html(report: Report, language: Language) -> str:
    return _Page(report, Texts(language, report.period.timezone)).render()


class _Page:
    def __init__(self, report: Report, texts: Texts) -> None:
        self.report = report
        self.t = texts

    def render(self) -> str:
        t = self.t
        parts = [
            f'<!DOCTYPE html>\n<html lang="{t.language}">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(self._title())}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
            self._header(),
            self._summary(),
            self._charts(),
            self._section("section_kabupaten", self._group_table(Level.KABUPATEN, "kabupaten")),
            self._section("section_sites_below", self._sites_below()),
            self._section("section_longest", self._incidents(self.report.longest_incidents)),
            self._section("section_root_causes", self._root_causes()),
            self._section("section_roles", self._group_table(Level.ROLE, "role")),
            self._section("section_maintenance", self._maintenance()),
            self._section("section_gaps", self._gaps()),
            self._section("section_targets", self._targets()),
            self._section("section_definitions", "".join(
                f"<p>{escape(t(key))}</p>" for key in (
                    "def_availability", "def_own", "def_no_data", "def_incidents",
                    "def_groups"))),
            "</body>\n</html>\n",
        ]
        return "".join(parts)

    # -- pieces ------------------------------------------------------------------------------

    def _title(self) -> str:
        period = self.report.period
        return (f"{self.t('title')}: {self.t.long_day(period.first_day)} - "
                f"{self.t.long_day(period.last_day)}")

    def _header(self) -> str:
        t, report = self.t, self.report
        provinces = ", ".join(g.province for g in report.level(Level.PROVINCE)) or MISSING
        rows = [("province", provinces),
                ("period", f"{t.long_day(report.period.first_day)} - "
                           f"{t.long_day(report.period.last_day)}"),
                ("timezone", report.period.zone_label),
                ("generated", t.moment(report.generated)),
                ("source", t(f"source_{report.source}"))]
        items = "".join(f"<dt>{escape(t(key))}</dt><dd>{escape(value)}</dd>"
                        for key, value in rows)
        return f"<h1>{escape(t('title'))}</h1>\n<dl class=\"meta\">{items}</dl>\n"

    def _summary(self) -> str:
        t = self.t
        cards = []
        for province in self.report.level(Level.PROVINCE):
            totals = province.totals
            values = [
                ("availability", t.percent(totals.availability)),
                ("own_availability", t.percent(totals.own_availability)),
                ("slo", t.percent(province.slo)),
                ("targets_below_slo", f"{province.targets_below_slo} / {province.targets}"),
                ("incidents", str(totals.incidents)),
                ("mttr", t.duration(totals.mttr)),
                ("mtbf", t.duration(totals.mtbf)),
                ("own_down", t.duration(totals.own_down)),
                ("parent_down", t.duration(totals.parent_down)),
                ("maintenance", t.duration(totals.maintenance)),
                ("no_data", t.duration(totals.no_data)),
            ]
            heading = f"<h3>{escape(province.province)}</h3>" \
                if len(self.report.level(Level.PROVINCE)) > 1 else ""
            cards.append(heading + '<div class="cards">' + "".join(
                f'<div class="card"><div class="label">{escape(t(key))}</div>'
                f'<div class="value">{escape(value)}</div></div>' for key, value in values)
                + "</div>")
        return self._section("summary", "".join(cards) or self._none())

    def _charts(self) -> str:
        t = self.t
        bars = [AvailabilityBar(label=g.kabupaten, value=g.totals.own_availability,
                                target=g.slo, below=g.below_slo,
                                value_text=t.percent(g.totals.own_availability)
                                if g.totals.own_availability is not None else t("no_data_value"))
                for g in self.report.level(Level.KABUPATEN)]
        days = self.report.period.days
        many = len(days) > 31
        counts = [DayCount(label=(t.short_day(day.day) if day.day.day == 1 else "") if many
                           else str(day.day.day),
                           count=count,
                           tooltip=f"{t.long_day(day.day)}: {count} {t('incidents').lower()}")
                  for day, (_, count) in zip(days, self.report.incidents_per_day, strict=True)]
        return (
            '<section class="small"><div class="chart" data-chart="availability-kabupaten">'
            + availability_chart(bars, t("chart_kabupaten"),
                                 lambda value: t.percent(value, decimals=1))
            + f'</div><p class="note">{escape(t("chart_kabupaten_note"))}</p></section>\n'
            '<section class="small"><div class="chart" data-chart="incidents-per-day">'
            + daily_chart(counts, t("chart_days")) + "</div></section>\n")

    def _totals_cells(self, totals: Totals, below: bool) -> list[str]:
        t = self.t
        own = t.percent(totals.own_availability)
        # A mark that survives printing in black and white, besides the row's colour.
        own_cell = f'<td class="num flag">{_BELOW_MARK} {escape(own)}</td>' if below \
            else _num(own)
        return [_num(t.percent(totals.availability)), own_cell]

    def _time_cells(self, totals: Totals) -> list[str]:
        t = self.t
        return [_num(t.duration(totals.own_down)), _num(t.duration(totals.parent_down)),
                _num(t.duration(totals.maintenance)), _num(t.duration(totals.no_data)),
                _num(str(totals.incidents)), _num(t.duration(totals.mttr)),
                _num(t.duration(totals.mtbf))]

    def _group_table(self, level: Level, key_heading: str) -> str:
        t = self.t
        headers = [t(key_heading), t("targets"), t("availability"), t("own_availability"),
                   t("slo"), t("targets_below_slo"), t("own_down"), t("parent_down"),
                   t("maintenance"), t("no_data"), t("incidents"), t("mttr"), t("mtbf")]
        rows = [(_below_class(group.below_slo),
                 [_text(group.key), _num(str(group.targets)),
                  *self._totals_cells(group.totals, group.below_slo),
                  _num(t.percent(group.slo)),
                  _num(str(group.targets_below_slo)), *self._time_cells(group.totals)])
                for group in self.report.level(level)]
        return _table(headers, rows, numeric_from=1) if rows else self._none()

    def _sites_below(self) -> str:
        t = self.t
        below = self.report.below_slo_sites
        if not below:
            return f"<p>{escape(t('none_below'))}</p>"
        rows = []
        for site in below:
            failing = [f.target for f in self.report.targets if f.below_slo
                       and (f.placement.kabupaten, f.placement.site) == (site.kabupaten,
                                                                        site.site)]
            rows.append(("below", [_text(site.kabupaten), _text(site.site),
                                   _num(t.percent(site.totals.own_availability)),
                                   _num(t.percent(site.slo)), _text(", ".join(failing))]))
        return _table([t("kabupaten"), t("site"), t("own_availability"), t("slo"),
                       t("targets_below_slo")], rows)

    def _incidents(self, incidents: Sequence[Incident]) -> str:
        t = self.t
        rows = []
        for incident in incidents:
            p = incident.placement
            start = t.moment(incident.start)
            if incident.start < self.report.period.start:
                start += f" ({t('before_period')})"
            end = t("ongoing") if incident.end is None else t.moment(incident.end)
            rows.append(("", [_text(_device(p.target, p.name)),
                              _text(f"{p.kabupaten} / {p.site}"), _text(start), _text(end),
                              _num(t.duration(incident.seconds)),
                              _num(str(incident.affected_targets))]))
        headers = [t("target"), f"{t('kabupaten')} / {t('site')}", t("start"), t("end"),
                   t("duration"), t("affected")]
        return _table(headers, rows) if rows else self._none()

    def _root_causes(self) -> str:
        t = self.t
        rows = [("", [_text(_device(c.target, c.placement.name if c.placement else "")),
                      _text(c.placement.kabupaten if c.placement else MISSING),
                      _num(str(c.incidents)), _num(t.duration(c.own_down)),
                      _num(str(c.affected_targets)), _num(t.duration(c.caused))])
                for c in self.report.root_causes]
        headers = [t("target"), t("kabupaten"), t("incidents"), t("own_down"), t("affected"),
                   t("caused")]
        return _table(headers, rows) if rows else self._none()

    def _maintenance(self) -> str:
        t = self.t
        rows = [("", [_text(t.moment(use.window.start)), _text(t.moment(use.window.end)),
                      _text(use.window.selector.describe()), _text(use.window.reason),
                      _text(use.window.source), _num(str(use.targets))])
                for use in self.report.maintenance]
        headers = [t("start"), t("end"), t("applies_to"), t("reason"), t("source_of"),
                   t("targets")]
        return _table(headers, rows) if rows else self._none()

    def _gaps(self) -> str:
        t = self.t
        rows = [("", [_text(t.moment(start)), _text(t.moment(end)),
                      _num(t.duration(end - start))])
                for start, end in self.report.monitord_gaps]
        return _table([t("start"), t("end"), t("duration")], rows) if rows else self._none()

    def _targets(self) -> str:
        t = self.t
        rows = []
        for figures in self.report.targets:
            p = figures.placement
            name = _device(p.target, p.name)
            if not figures.configured:
                name += f" ({t('not_configured')})"
            rows.append((_below_class(figures.below_slo),
                         [_text(name), _text(p.kabupaten), _text(p.site), _text(p.role),
                          *self._totals_cells(figures.totals, figures.below_slo),
                          _num(t.percent(figures.slo)),
                          *self._time_cells(figures.totals)[:5],
                          _num(t.duration(figures.caused))]))
        headers = [t("target"), t("kabupaten"), t("site"), t("role"), t("availability"),
                   t("own_availability"), t("slo"), t("own_down"), t("parent_down"),
                   t("maintenance"), t("no_data"), t("incidents"), t("caused")]
        return _table(headers, rows, numeric_from=4) if rows else self._none()

    def _section(self, key: str, body: str) -> str:
        return f"<section>\n<h2>{escape(self.t(key))}</h2>\n{body}\n</section>\n"

    def _none(self) -> str:
        return f"<p>{escape(self.t('none'))}</p>"


def _device(target: str, name: str) -> str:
    return f"{target} ({name})" if name else target


def _below_class(below: bool) -> str:
    return "below" if below else ""


def _text(value: str) -> str:
    return f"<td>{escape(value)}</td>"


def _num(value: str) -> str:
    return f'<td class="num">{escape(value)}</td>'


def _table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]],
           numeric_from: int | None = None) -> str:
    """rows: (tr class, cells already rendered as <td>)."""
    numeric = '<th class="num">'
    head = "".join(
        f"{numeric if numeric_from is not None and i >= numeric_from else '<th>'}"
        f"{escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join(f'<tr class="{css}">' + "".join(cells) + "</tr>\n" if css
                   else "<tr>" + "".join(cells) + "</tr>\n" for css, cells in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
