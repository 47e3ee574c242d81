"""Running a real monitord process and reading its /metrics, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

Sample = tuple[str, dict[str, str], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


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


class MonitordProcess:
    """`monitord run` as a child process; stopped with SIGTERM (then SIGKILL) by its PID only."""

    def __init__(self, config: Path, port: int, log_path: Path,
                 extra_args: Sequence[str] = ()) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitord", "run", "-c", str(config), *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for("monitord to become ready", self._ready, timeout=30)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"monitord exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.get("/-/ready")[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str) -> tuple[int, str]:
        return _request(self.url + path, None)

    def post(self, path: str) -> tuple[int, str]:
        return _request(self.url + path, b"")

    def metrics_text(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body

    def samples(self) -> list[Sample]:
        return parse_samples(self.metrics_text())

    def stop(self) -> int:
        stop_process(self.proc, grace=15)
        self._log.close()
        return self.proc.returncode


def stop_process(proc: subprocess.Popen[Any] | None, grace: float = 10) -> None:
    """SIGTERM a process this test started (by its PID), SIGKILL it after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _request(url: str, data: bytes | None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=30) as resp:  # noqa: S310 - loopback
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def parse_samples(text: str) -> list[Sample]:
    return [(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def by_target(samples: list[Sample], name: str) -> dict[str, float]:
    """{target: value} of the samples named `name`."""
    return {labels["target"]: value for n, labels, value in samples if n == name}


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for n, sample_labels, v in samples:
        if n == name and all(sample_labels.get(k) == want for k, want in labels.items()):
            return v
    return None


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
