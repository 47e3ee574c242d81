"""Builds the monitord Grafana dashboards (dashboards/*.json) from Python, so that every
panel shares one data source, one set of template variables and one state colour scale.

Run `python -m dashboards.generator` from the repository root after changing a module here;
tests/unit/test_dashboards.py fails while the JSON files and this code disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from dashboards.generator import datacenter, links, noc, selfhealth, spbe, villages
from dashboards.generator.grafana import Json

DASHBOARDS_DIR = Path(__file__).resolve().parent.parent
BUILDERS: tuple[Callable[[], Json], ...] = (noc.build, links.build, villages.build,
                                            datacenter.build, spbe.build, selfhealth.build)


def build_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    out: dict[str, str] = {}
    for build in BUILDERS:
        board = build()
        out[f"{board['uid']}.json"] = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    return out
