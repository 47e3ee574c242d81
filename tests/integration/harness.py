"""Running a real monitord process and reading its /metrics, for integration tests.

The process and /metrics plumbing moved to monitord.lab (the province lab runs monitord the
same way); it is re-exported here for the tests that import it from this module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from monitord.lab.process import MonitordProcess, free_port, stop_process, wait_for
from monitord.lab.scrape import Sample, by_target, parse_samples, value

__all__ = ["MonitordProcess", "Sample", "by_target", "free_port", "monitord_cli", "parse_samples",
           "report_json", "stop_process", "target_row", "value", "wait_for", "write_config"]


def write_config(path: Path, devices: Iterable[dict[str, Any]], port: int,
                 profile: dict[str, Any] | None = None, **daemon: Any) -> Path:
    """A one-kabupaten, one-site inventory of `devices` with one profile named `test`."""
    doc = {
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(path.parent / "state"), **daemon},
        "profiles": {"test": profile or {"interval": "2s", "count": 3, "packet_interval": "50ms",
                                         "timeout": "500ms"}},
        "province": {
            "id": "testprov",
            "defaults": {"profile": "test", "role": "dc-server"},
            "kabupaten": [{"id": "kab", "sites": [{"id": "site", "devices": list(devices)}]}],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def monitord_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`monitord ARGS...` as a child process, its output captured."""
    return subprocess.run([sys.executable, "-m", "monitord", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def report_json(config: Path, first_day: str, last_day: str, out_dir: Path,
                *extra: str) -> dict[str, Any]:
    """`monitord report` of whole days as JSON, written to a new file in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"report{len(list(out_dir.iterdir()))}.json"
    done = monitord_cli("report", "-c", str(config), "--from", first_day, "--to", last_day,
                        "-o", str(out), *extra)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def target_row(document: dict[str, Any], target: str) -> dict[str, Any]:
    """A report's figure row of one device."""
    found: dict[str, Any] = next(r for r in document["figures"]["target"]
                                 if r["target"] == target)
    return found
