"""A private mosquitto broker (Debian's 2.0) on 127.0.0.1, for the lab and the tests.

The broker runs in the foreground on a config file of its own in its work directory, on
127.0.0.1 only, and is stopped by its PID. It runs as root (`user root`): the lab and the tests
run as root, and the default would drop to the `mosquitto` user, who cannot read the password
file, certificates or persistence directory made here.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from monitord.lab.errors import LabSetupError
from monitord.lab.process import free_port, set_parent_death_signal, stop_process

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"  # noqa: S105 - a program, not a password
HOST = "127.0.0.1"


def require_mosquitto() -> str:
    """The mosquitto binary, or a LabSetupError saying how to install it."""
    found = MOSQUITTO if Path(MOSQUITTO).is_file() else shutil.which("mosquitto")
    if found is None:
        raise LabSetupError("mosquitto is not installed: apt-get install mosquitto "
                            "mosquitto-clients (scripts/setup.sh --lab installs both)")
    return found


@dataclass(frozen=True)
class BrokerTls:
    """The broker's TLS files (PEM): the CA it trusts for client certificates, its own."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class Mosquitto:
    """mosquitto on 127.0.0.1:`port`. Options: password `users` (anonymous refused then),
    `tls` files, client certificates required (`require_certificate`), `persistence`
    (retained messages and persistent sessions survive a restart), an `acl_file`."""

    def __init__(self, workdir: Path, *, users: Mapping[str, str] | None = None,
                 tls: BrokerTls | None = None, require_certificate: bool = False,
                 persistence: bool = False, acl_file: Path | None = None,
                 die_with_parent: bool = False) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.users = dict(users or {})
        self.tls = tls
        self.persistence = persistence
        self.acl_file = acl_file
        self.require_certificate = require_certificate
        self.die_with_parent = die_with_parent
        self.config = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config_text(self) -> str:
        lines = [
            "user root",
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if self.users else 'true'}",
            f"log_dest file {self.log_path}",  # flushed per line, unlike its stdout
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.persistence:
            lines.append(f"persistence_location {self.workdir / 'persist'}/")
        if self.users:
            lines.append(f"password_file {self.workdir / 'passwd'}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca_file}", f"certfile {self.tls.cert_file}",
                      f"keyfile {self.tls.key_file}"]
            if self.require_certificate:
                lines.append("require_certificate true")
        return "\n".join(lines) + "\n"

    def _write_passwords(self) -> None:
        path = self.workdir / "passwd"
        path.unlink(missing_ok=True)
        for index, (user, password) in enumerate(self.users.items()):
            create = ["-c"] if index == 0 else []
            subprocess.run([MOSQUITTO_PASSWD, *create, "-b", str(path), user, password],
                           check=True, capture_output=True, timeout=30)

    def start(self) -> Self:
        """Starts it (again, on the same port after stop() or kill())."""
        assert self.proc is None or self.proc.poll() is not None, "mosquitto is already running"
        binary = require_mosquitto()
        if self.persistence:
            (self.workdir / "persist").mkdir(exist_ok=True)
        if self.users:
            self._write_passwords()
        self.config.write_text(self._config_text())
        self.log_path.touch()
        started_at = self.log_path.stat().st_size
        # Its stdout and stderr only say that it runs as root.
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.config)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=set_parent_death_signal if self.die_with_parent else None)  # noqa: PLW1509
        self._wait_running(started_at)
        return self

    def _wait_running(self, log_offset: int, timeout: float = 10.0) -> None:
        """Until this run logged "running", which it does once its listener is open."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()}")
            with self.log_path.open("rb") as log:
                log.seek(log_offset)
                if b" running" in log.read():
                    return
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"mosquitto did not start within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file then) and wait."""
        stop_process(self.proc)

    def save(self, timeout: float = 10.0) -> None:
        """SIGUSR1: write the persistence file now, so a kill() afterwards loses no session."""
        assert self.proc is not None
        assert self.persistence, "this broker was made without persistence"
        saved = self.log().count("Saving in-memory database")
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while self.log().count("Saving in-memory database") <= saved:
            if time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not save within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def pause(self) -> None:
        """SIGSTOP: a hung broker. The kernel still accepts bytes for it; nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
