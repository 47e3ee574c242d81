"""The Grafana 10 dashboard JSON model (schemaVersion 38), reduced to the panel and variable
shapes the monitord dashboards use.

Every panel and query names its data source through the `${datasource}` variable, so one
import works against whichever Prometheus a province points it at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

SCHEMA_VERSION = 38
GRID_WIDTH = 24
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

# Target state as one number (promql.state_code), for colours and maps.
STATE_MAPPINGS: list[Json] = [{"type": "value", "options": {
    "-1": {"text": "unknown", "color": "text", "index": 0},
    "0": {"text": "up", "color": "green", "index": 1},
    "1": {"text": "degraded", "color": "yellow", "index": 2},
    "2": {"text": "unreachable", "color": "purple", "index": 3},
    "3": {"text": "down", "color": "red", "index": 4},
}}]
UP_DOWN_MAPPINGS: list[Json] = [{"type": "value", "options": {
    "0": {"text": "DOWN", "color": "red", "index": 0},
    "1": {"text": "UP", "color": "green", "index": 1},
}}]
IF_STATUS_MAPPINGS: list[Json] = [{"type": "value", "options": {
    "1": {"text": "up", "color": "green", "index": 0},
    "2": {"text": "down", "color": "red", "index": 1},
    "3": {"text": "testing", "color": "blue", "index": 2},
    "4": {"text": "unknown", "color": "text", "index": 3},
    "5": {"text": "dormant", "color": "blue", "index": 4},
    "6": {"text": "notPresent", "color": "text", "index": 5},
    "7": {"text": "lowerLayerDown", "color": "orange", "index": 6},
}}]


def steps(*points: tuple[str, float | None]) -> Json:
    """Absolute thresholds: the first point's value must be None (the base colour)."""
    return {"mode": "absolute",
            "steps": [{"color": color, "value": value} for color, value in points]}


STATE_THRESHOLDS = steps(("text", None), ("green", 0), ("yellow", 1), ("purple", 2), ("red", 3))


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False,
           heatmap: bool = False) -> Json:
    """One Prometheus query; its refId is set when the panel is built."""
    fmt = "table" if table else "heatmap" if heatmap else "time_series"
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": expr,
            "legendFormat": legend or "__auto", "range": not instant, "instant": instant,
            "format": fmt}


@dataclass
class Panel:
    """A panel before layout: its JSON minus id and gridPos, and the size it wants."""

    body: Json
    width: int
    height: int


def panel(kind: str, title: str, targets: Sequence[Json], *, width: int, height: int,
          description: str = "", unit: str | None = None, decimals: int | None = None,
          minimum: float | None = None, maximum: float | None = None,
          thresholds: Json | None = None, mappings: list[Json] | None = None,
          color: Json | None = None, custom: Json | None = None, options: Json | None = None,
          overrides: list[Json] | None = None, transformations: list[Json] | None = None,
          interval: str | None = None, repeat: str | None = None) -> Panel:
    defaults: Json = {"color": color or {"mode": "palette-classic"}, "custom": custom or {},
                      "mappings": mappings or [],
                      "thresholds": thresholds or steps(("green", None))}
    for key, value in (("unit", unit), ("decimals", decimals), ("min", minimum),
                       ("max", maximum)):
        if value is not None:
            defaults[key] = value
    body: Json = {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "targets": [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if transformations:
        body["transformations"] = transformations
    if interval:
        body["interval"] = interval  # the panel's minimum step (see README: SNMP rates)
    if repeat:
        body.update(repeat=repeat, repeatDirection="h", maxPerRow=4)
    return Panel(body, width, height)


def _legend(placement: str = "bottom", mode: str = "list",
            calcs: Sequence[str] = ()) -> Json:
    return {"showLegend": True, "displayMode": mode, "placement": placement,
            "calcs": list(calcs)}


def stat(title: str, targets: Sequence[Json], *, width: int = 4, height: int = 4,
         text_mode: str = "value_and_name", graph: bool = False, **kw: Any) -> Panel:
    kw.setdefault("color", {"mode": "thresholds"})
    options = {"reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
               "orientation": "auto", "textMode": text_mode, "colorMode": "background",
               "graphMode": "area" if graph else "none", "justifyMode": "auto"}
    return panel("stat", title, targets, width=width, height=height, options=options, **kw)


def timeseries(title: str, targets: Sequence[Json], *, width: int = 12, height: int = 8,
               stack: bool = False, legend_calcs: Sequence[str] = ("mean", "max"),
               **kw: Any) -> Panel:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if stack else 0,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    options = {"legend": _legend("bottom", "table", legend_calcs),
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel("timeseries", title, targets, width=width, height=height, custom=custom,
                 options=options, **kw)


def table(title: str, targets: Sequence[Json], *, width: int = 12, height: int = 8,
          sort_by: str | None = None, descending: bool = True, cell: str = "auto",
          **kw: Any) -> Panel:
    options: Json = {"showHeader": True, "cellHeight": "sm",
                     "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": descending}]
    custom = {"align": "auto", "cellOptions": {"type": cell}, "inspect": False}
    return panel("table", title, targets, width=width, height=height, custom=custom,
                 options=options, **kw)


def bargauge(title: str, targets: Sequence[Json], *, width: int = 12, height: int = 8,
             **kw: Any) -> Panel:
    kw.setdefault("color", {"mode": "thresholds"})
    options = {"reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
               "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
               "valueMode": "color", "minVizWidth": 0, "minVizHeight": 10}
    return panel("bargauge", title, targets, width=width, height=height, options=options, **kw)


def state_timeline(title: str, targets: Sequence[Json], *, width: int = 24, height: int = 8,
                   history: bool = False, **kw: Any) -> Panel:
    """A state-timeline (merged runs of one value) or, with history, a status-history grid."""
    kw.setdefault("color", {"mode": "thresholds"})
    options: Json = {"showValue": "never", "rowHeight": 0.9, "legend": _legend(),
                     "tooltip": {"mode": "single", "sort": "none"}}
    if not history:
        options.update(mergeValues=True, alignValue="left")
    custom = {"lineWidth": 0, "fillOpacity": 80}
    return panel("status-history" if history else "state-timeline", title, targets,
                 width=width, height=height, custom=custom, options=options, **kw)


def heatmap(title: str, targets: Sequence[Json], *, unit: str, calculate: bool = False,
            bucket_size: float | None = None, width: int = 12, height: int = 8,
            **kw: Any) -> Panel:
    """Prometheus histogram buckets (calculate=False, format heatmap) or Grafana's own
    bucketing of many series' values (calculate=True)."""
    options: Json = {
        "calculate": calculate,
        "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
        "rowsFrame": {"layout": "auto"},
        "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange",
                  "scale": "exponential", "exponent": 0.5, "steps": 64, "reverse": False},
        "cellGap": 1, "showValue": "never",
        "tooltip": {"show": True, "yHistogram": True},
        "legend": {"show": True},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
    }
    if calculate:
        options["calculation"] = {"yBuckets": {"mode": "size", "value": str(bucket_size),
                                               "scale": {"type": "linear"}}}
    else:
        options["filterValues"] = {"le": 1e-9}
    custom = {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
              "scaleDistribution": {"type": "linear"}}
    return panel("heatmap", title, targets, width=width, height=height, custom=custom,
                 options=options, **kw)


def geomap(title: str, targets: Sequence[Json], *, width: int = 16, height: int = 14,
           **kw: Any) -> Panel:
    """Markers at the `latitude`/`longitude` labels of a table-format query, coloured by its
    value through the panel's thresholds; the view fits the data (any province)."""
    layer = {
        "type": "markers", "name": "Sites", "tooltip": True,
        "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
        "config": {"showLegend": True, "style": {
            "size": {"fixed": 9}, "opacity": 0.9,
            "color": {"field": "Value", "fixed": "dark-green"},
            "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
            "text": {"mode": "field", "field": "site", "fixed": ""},
            "textConfig": {"fontSize": 10, "offsetX": 0, "offsetY": -12,
                           "textAlign": "center", "textBaseline": "bottom"},
        }},
    }
    options = {"view": {"id": "fit", "lat": 0, "lon": 0, "zoom": 8, "allLayers": True},
               "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
               "basemap": {"type": "default", "name": "Basemap", "config": {}},
               "layers": [layer], "tooltip": {"mode": "details"}}
    # Label values are strings: the markers need the coordinates as numbers.
    convert = {"id": "convertFieldType", "options": {"fields": {}, "conversions": [
        {"targetField": "latitude", "destinationType": "number"},
        {"targetField": "longitude", "destinationType": "number"}]}}
    kw.setdefault("color", {"mode": "thresholds"})
    return panel("geomap", title, targets, width=width, height=height, options=options,
                 transformations=[convert], **kw)


def override(matcher: str, name: str, **properties: Any) -> Json:
    """A field override, e.g. override("byRegexp", "/ out$/", **{"custom.transform": ...})."""
    return {"matcher": {"id": matcher, "options": name},
            "properties": [{"id": key, "value": value} for key, value in properties.items()]}


def merge_tables(rename: dict[str, str], hide: Iterable[str] = ()) -> list[Json]:
    """Table-format instant queries as one table: rows joined on their labels, the `Value #A`...
    columns renamed, and the scrape's own labels and `hide` left out."""
    excluded = dict.fromkeys(("Time", "__name__", "instance", "job", *hide), True)
    return [{"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": excluded, "indexByName": {},
                                           "renameByName": rename}}]


@dataclass
class Layout:
    """Places panels left to right in rows of 24 grid columns; `row()` starts a titled row."""

    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _line_height: int = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y}})
        self._y += 1

    def add(self, *items: Panel) -> None:
        for item in items:
            if self._x + item.width > GRID_WIDTH:
                self._newline()
            self.panels.append({**item.body, "gridPos": {"h": item.height, "w": item.width,
                                                         "x": self._x, "y": self._y}})
            self._x += item.width
            self._line_height = max(self._line_height, item.height)

    def _newline(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def numbered(self) -> list[Json]:
        return [{"id": i, **p} for i, p in enumerate(self.panels, 1)]


def datasource_variable() -> Json:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "regex": "", "current": {}, "options": [], "hide": 0,
            "refresh": 1, "includeAll": False, "multi": False, "skipUrlSync": False}


def query_variable(name: str, label: str, query: str, *, include_all: bool = True) -> Json:
    """A label_values(...) variable, multi-select with an "All" that matches everything."""
    variable: Json = {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "sort": 1, "regex": "", "hide": 0, "current": {}, "options": [],
        "includeAll": include_all, "multi": include_all, "skipUrlSync": False,
    }
    if include_all:
        # `.*` rather than a list of every value: a village list is long, and every query
        # that must stay within one role says so with a fixed matcher of its own.
        variable["allValue"] = ".*"
    return variable


def dashboard(uid: str, title: str, description: str, layout: Layout,
              variables: Sequence[Json], *, time_from: str = "now-6h",
              refresh: str = "1m") -> Json:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["monitord"],
        "id": None, "version": 1, "schemaVersion": SCHEMA_VERSION, "editable": True,
        "graphTooltip": 1, "timezone": "browser", "fiscalYearStartMonth": 0, "liveNow": False,
        "refresh": refresh, "time": {"from": time_from, "to": "now"},
        "timepicker": {}, "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "monitord", "type": "dashboards", "tags": ["monitord"],
                   "asDropdown": True, "includeVars": True, "keepTime": True,
                   "icon": "external link", "targetBlank": False, "tooltip": "", "url": ""}],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": layout.numbered(),
    }
