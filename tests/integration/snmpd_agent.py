"""A private net-snmp agent (Debian's snmpd 5.9) for integration tests, and the net-snmp
command-line tools to read it independently of monitord.

The agent runs in the foreground (-f) on a config file of its own (-C -c: no system config,
no persistent config read back), logs to a file (-Lf), and keeps its persistent state
(engine boots, localized USM keys) in a directory of the test (SNMP_PERSISTENT_DIR), never in
/var/lib/snmp. It is stopped by its PID. Inside a TestHost it runs under `ip netns exec`,
which execs snmpd itself, so the PID is still the agent's.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.integration.harness import stop_process

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


@dataclass(frozen=True)
class V3User:
    """A USM user as `createUser` takes it; protocol names are net-snmp's (SHA-256, AES-256)."""

    name: str
    auth: str | None = None
    auth_password: str | None = None
    priv: str | None = None
    priv_password: str | None = None

    @property
    def level(self) -> str:
        """The minimum security level `rouser` grants this user."""
        return "priv" if self.priv else "auth" if self.auth else "noauth"

    def create_line(self) -> str:
        words = ["createUser", self.name]
        if self.auth:
            words += [self.auth, self.auth_password or ""]
            if self.priv:
                words += [self.priv, self.priv_password or ""]
        return " ".join(words)

    def cli_args(self) -> list[str]:
        """snmpget/snmpbulkwalk options that authenticate as this user."""
        args = ["-v3", "-u", self.name, "-l", {"noauth": "noAuthNoPriv", "auth": "authNoPriv",
                                                  "priv": "authPriv"}[self.level]]
        if self.auth:
            args += ["-a", self.auth, "-A", self.auth_password or ""]
        if self.priv:
            args += ["-x", self.priv, "-X", self.priv_password or ""]
        return args


class Snmpd:
    """snmpd answering on `addresses` (each a udp agentAddress), in `netns` if given."""

    def __init__(self, workdir: Path, addresses: Sequence[str], port: int, *,
                 community: str = "public", users: Sequence[V3User] = (),
                 netns: str | None = None, sys_name: str = "snmpd-under-test") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.addresses = list(addresses)
        self.port = port
        self.community = community
        self.users = list(users)
        self.netns = netns
        self.sys_name = sys_name
        self.config = workdir / "snmpd.conf"
        self.log_path = workdir / "snmpd.log"
        self.persistent_dir = workdir / "persist"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config_text(self) -> str:
        lines = [
            "agentAddress " + ",".join(f"udp:{a}:{self.port}" for a in self.addresses),
            f"rocommunity {self.community}",
            f"sysName {self.sys_name}",
            "sysLocation integration test",
        ]
        lines += [u.create_line() for u in self.users]
        lines += [f"rouser {u.name} {u.level}" for u in self.users]
        return "\n".join(lines) + "\n"

    def start(self) -> Snmpd:
        assert self.proc is None or self.proc.poll() is not None, "snmpd is already running"
        self.persistent_dir.mkdir(exist_ok=True)
        self.config.write_text(self._config_text())
        command = ["snmpd", "-f", "-C", "-c", str(self.config), "-Lf", str(self.log_path),
                   "-M", str(self.workdir)]  # -M: no MIB files to parse (numeric OIDs only)
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.persistent_dir), "MIBS": ""}
        self.proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_answering()
        return self

    def _wait_until_answering(self, timeout: float = 10.0) -> None:
        """Until every address answers a v2c GET of sysUpTime (bounded by `timeout`)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        waiting = list(self.addresses)
        while waiting and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"snmpd exited with {self.proc.returncode}:\n{self.log()}")
            if self._answers(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.05)
        if waiting:
            self.stop()
            raise AssertionError(f"snmpd did not answer on {waiting} within {timeout}s:\n{self.log()}")

    def _answers(self, address: str) -> bool:
        result = subprocess.run(
            ["snmpget", "-v2c", "-c", self.community, "-t", "0.2", "-r", "0", "-On",
             f"{address}:{self.port}", SYS_UPTIME],
            capture_output=True, text=True, check=False, timeout=10)
        return result.returncode == 0

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Snmpd:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# Reading the agent with net-snmp's own tools: -On numeric OIDs, -Oq no type names, -Ot raw
# TimeTicks, -Oe enum numbers, -OU no units; values come out as plain text.
_OUTPUT = ["-On", "-Oq", "-Ot", "-Oe", "-OU"]


def _cli(tool: str, target: str, auth: Sequence[str], *oids: str) -> list[tuple[str, str]]:
    result = subprocess.run([tool, *auth, *_OUTPUT, "-t", "2", "-r", "1", target, *oids],
                            capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, f"{tool} {target} {oids}: {result.stderr}"
    rows = []
    for line in result.stdout.splitlines():
        oid, _, text = line.partition(" ")
        text = text.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        rows.append((oid.lstrip("."), text))
    return rows


def snmpget(target: str, auth: Sequence[str], *oids: str) -> dict[str, str]:
    """{oid: value text} from `snmpget` (auth: e.g. ["-v2c", "-c", "public"])."""
    return dict(_cli("snmpget", target, auth, *oids))


def snmpbulkwalk(target: str, auth: Sequence[str], oid: str) -> dict[str, str]:
    """{oid: value text} of the subtree under `oid` from `snmpbulkwalk`."""
    return dict(_cli("snmpbulkwalk", target, auth, oid))
