"""Child processes of the lab and of the tests: waiting for them, stopping them by their PID
only, and a real `monitord run` whose /metrics can be read."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from monitord.lab.scrape import Sample, http_request, parse_samples

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`.
    The failure is an AssertionError: inside a test, a wait that runs out is a failed check."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def stop_process(proc: subprocess.Popen[Any] | None, grace: float = 10) -> None:
    """SIGTERM a process started here (by its PID), SIGKILL it after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def set_parent_death_signal() -> None:
    """A Popen preexec_fn: the child gets SIGTERM when the process that started it dies, so a
    lab whose owner was SIGKILLed leaves no agent behind (it survives `ip netns exec`'s exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class MonitordProcess:
    """`monitord run` as a child process; stopped with SIGTERM (then SIGKILL) by its PID only.

    It is started at once and waited for until /-/ready answers 200. `log_mode="a"` appends to
    the log (a restart on the same files); `die_with_parent`: see set_parent_death_signal()."""

    def __init__(self, config: Path, port: int, log_path: Path,
                 extra_args: Sequence[str] = (), *, log_mode: str = "w",
                 die_with_parent: bool = False, ready_timeout: float = 30.0) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open(log_mode)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitord", "run", "-c", str(config), *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=set_parent_death_signal if die_with_parent else None,  # noqa: PLW1509 - prctl only
        )
        wait_for("monitord to become ready", self._ready, timeout=ready_timeout)

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
        return http_request(self.url + path)

    def post(self, path: str) -> tuple[int, str]:
        return http_request(self.url + path, b"")

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

    def kill(self) -> int:
        """SIGKILL: no goodbye, no last flush (a crash, or a power cut of the NOC server)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

