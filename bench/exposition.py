"""Prometheus text parsing shared by the bench helpers (icmp_summary.py, snmp_summary.py).

A small line parser, no client library: enough for the `name{labels} value` lines that
monitord, smokeping_prober and snmp_exporter write.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = dict[str, str]


def samples(path: Path, wanted: tuple[str, ...]) -> Iterator[tuple[str, Labels, float]]:
    """(name, labels, value) of every sample whose name starts with one of `wanted`."""
    with path.open() as f:
        for line in f:
            if not line.startswith(wanted):
                continue
            m = _SAMPLE.match(line.rstrip("\n"))
            if m is None:
                continue
            # float() reads "+Inf", "-Inf" and "NaN" as Prometheus writes them.
            yield m.group(1), dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))


def exposition_stats(path: Path) -> tuple[int, int]:
    """(bytes, series) of a scrape: series = non-comment, non-blank lines."""
    data = path.read_bytes()
    return len(data), sum(1 for line in data.splitlines() if line and not line.startswith(b"#"))


def number(text: str) -> float:
    """A TSV cell as a float, NaN if it is not a number ("-", "", "FAILED")."""
    try:
        return float(text)
    except ValueError:
        return math.nan
