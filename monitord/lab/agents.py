"""snmpsim serving device recordings (.snmprec), on loopback or inside a lab namespace.

One Snmpsim is one snmpsim-command-responder process listening on every endpoint given (one
per device address: monitord only accepts a response from the address it polled) and serving
its recordings on all of them; a recording is chosen by the community, which is its file name
without `.snmprec`. Inside a namespace it runs under `ip netns exec`, which execs it, so the
PID is snmpsim's own and it is stopped by that PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import monitord
from monitord.lab.errors import LabSetupError
from monitord.lab.process import set_parent_death_signal, stop_process, wait_for

# The recordings are test fixtures kept in the repository (GPL-3.0 data from LibreNMS, see
# tests/data/snmprec/README.md), not in the package: MONITORD_SNMP_RECORDINGS points at
# them when monitord is not run from a clone.
REPO_RECORDINGS = Path(monitord.__file__).resolve().parent.parent / "tests" / "data" / "snmprec"
RECORDINGS = Path(os.environ.get("MONITORD_SNMP_RECORDINGS", REPO_RECORDINGS))
RESPONDER = Path(sys.executable).parent / "snmpsim-command-responder"

Endpoint = tuple[str, int]


def require_recordings(data_dir: Path = RECORDINGS) -> Path:
    """`data_dir` if it holds recordings, else a LabSetupError saying where to point."""
    if not data_dir.is_dir() or not any(data_dir.glob("*.snmprec")):
        raise LabSetupError(
            f"no SNMP recordings (*.snmprec) in {data_dir}: run from a clone of the repository "
            "(tests/data/snmprec) or set MONITORD_SNMP_RECORDINGS to a directory of them")
    return data_dir


def require_snmpsim() -> Path:
    if not RESPONDER.is_file():
        raise LabSetupError(f"snmpsim is not installed ({RESPONDER} is missing): install the "
                            "lab extra (scripts/setup.sh --lab, or pip install -e '.[lab]')")
    return RESPONDER


def recording_names(data_dir: Path = RECORDINGS) -> list[str]:
    """The communities snmpsim serves: every recording's file name without .snmprec."""
    return sorted(p.stem for p in data_dir.glob("*.snmprec"))


def _tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 128  # the short length form is enough for the one request built here
    return bytes((tag, len(content))) + content


def v2c_get_sysobjectid(community: str, request_id: int = 1) -> bytes:
    """A hand-built SNMPv2c GET of sysObjectID.0 (in every recording): enough to know that
    snmpsim answers, without borrowing monitord's encoder to test monitord."""
    oid = bytes((0x2B, 6, 1, 2, 1, 1, 2, 0))  # 1.3.6.1.2.1.1.2.0
    varbinds = _tlv(0x30, _tlv(0x30, _tlv(0x06, oid) + b"\x05\x00"))
    pdu = _tlv(0xA0, _tlv(0x02, bytes((request_id,))) + b"\x02\x01\x00\x02\x01\x00" + varbinds)
    return _tlv(0x30, b"\x02\x01\x01" + _tlv(0x04, community.encode()) + pdu)


def answers(endpoint: Endpoint, community: str, timeout: float = 0.5) -> bool:
    """Whether a GET sent to `endpoint` gets a response from that very address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(v2c_get_sysobjectid(community), endpoint)
        try:
            data, peer = sock.recvfrom(65535)
        except (TimeoutError, ConnectionRefusedError):
            return False
        return peer == endpoint and data[:1] == b"\x30"


class Snmpsim:
    """snmpsim-command-responder as a child process, in `netns` if given, stopped by its PID.

    `recordings` limits what it serves (copies in its work directory: snmpsim names a
    symlinked recording after its target), which keeps its start-up indexing short; by
    default it serves every recording in `data_dir`."""

    def __init__(self, endpoints: Sequence[Endpoint], workdir: Path, *,
                 recordings: Sequence[str] | None = None, data_dir: Path = RECORDINGS,
                 netns: str | None = None, startup_timeout: float = 60.0,
                 die_with_parent: bool = False) -> None:
        assert endpoints
        self.endpoints = list(endpoints)
        self.workdir = workdir
        self.communities = list(recordings) if recordings is not None else recording_names(data_dir)
        assert self.communities, f"no .snmprec recordings in {data_dir}"
        self.source_dir = data_dir
        self.netns = netns
        self.startup_timeout = startup_timeout
        self.die_with_parent = die_with_parent
        self.log_path = workdir / "snmpsim.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _data_dir(self) -> Path:
        if self.communities == recording_names(self.source_dir):
            return self.source_dir
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        for name in self.communities:
            source = self.source_dir / f"{name}.snmprec"
            assert source.is_file(), source
            shutil.copyfile(source, data / source.name)
        return data

    def launch(self) -> None:
        """Start snmpsim; wait_ready() then waits until it answers."""
        assert self.proc is None
        self.workdir.mkdir(parents=True, exist_ok=True)
        cache = self.workdir / "snmpsim-cache"  # snmpsim's index of each recording
        cache.mkdir(exist_ok=True)
        args = [str(RESPONDER), f"--data-dir={self._data_dir()}", f"--cache-dir={cache}",
                "--logging-method=stderr", "--log-level=error",
                *(f"--agent-udpv4-endpoint={host}:{port}" for host, port in self.endpoints)]
        if self.netns is not None:
            args = ["ip", "netns", "exec", self.netns, *args]
        # snmpsim refuses to run as root unless told to drop privileges or allowed explicitly;
        # the lab and the tests run as root, in namespaces of their own.
        env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=set_parent_death_signal if self.die_with_parent else None)  # noqa: PLW1509

    def wait_ready(self) -> None:
        # snmpsim indexes its recordings before it listens: wait for each endpoint in turn.
        where = f" in {self.netns}" if self.netns else ""
        for endpoint in self.endpoints:
            wait_for(f"snmpsim{where} to answer on {endpoint[0]}:{endpoint[1]}",
                     self._answering(endpoint, self.communities[0]),
                     timeout=self.startup_timeout, every=0.1)

    def _answering(self, endpoint: Endpoint, community: str) -> Callable[[], bool]:
        def probe() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"snmpsim exited with {self.proc.returncode}:\n{self.log()}")
            return answers(endpoint, community)
        return probe

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc)

    def start(self) -> Snmpsim:
        """launch() and wait_ready(). After a stop() this is no reboot monitord can see: the
        recordings' sysUpTime is fixed (a reboot needs snmpd: tests/integration/test_faults.py)."""
        self.launch()
        self.wait_ready()
        return self
