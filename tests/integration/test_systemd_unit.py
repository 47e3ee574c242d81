"""systemd/monitord.service, checked with systemd's own tools, and monitord run under the
unit's sandbox.

systemd cannot run in this container (it is not PID 1), so nothing here starts the unit:

- `systemd-analyze verify` and `systemd-analyze security --offline=yes` read the unit file.
  verify insists that ExecStart's binary exists, so both read a temporary copy in which
  /opt/monitord/bin/monitord is this virtualenv's monitord; systemd/ping-sockets.conf goes
  next to it, in monitord.service.d/, where systemd-analyze reads drop-ins.
- The least-privilege runs apply what systemd would, taken from the unit's own lines: setpriv
  for the user (nobody: this machine has no monitord user), the capability sets and
  NoNewPrivileges; libseccomp, the library systemd uses, for SystemCallFilter,
  SystemCallErrorNumber, MemoryDenyWriteExecute, RestrictAddressFamilies and
  RestrictNamespaces, with the rules systemd 252 adds for them. Not reproduced: the mount
  namespace (ProtectSystem=, PrivateTmp=, ...) and SystemCallArchitectures=.
- $NOTIFY_SOCKET is an abstract AF_UNIX datagram socket that the test binds, as systemd does.

net.ipv4.ping_group_range is per network namespace: only the suite's own namespace
(scripts/test.sh) is changed, and restored after each test.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from tests.integration.harness import (
    Sample,
    free_port,
    parse_samples,
    stop_process,
    value,
    wait_for,
    write_config,
)
from tests.unit.test_sdnotify import NotifySocket

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "monitord.service"
PING_SOCKETS_DROP_IN = REPO / "systemd" / "ping-sockets.conf"
SYSUSERS = REPO / "systemd" / "monitord.sysusers"
INSTALLED_BINARY = "/opt/monitord/bin/monitord"
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
MAX_EXPOSURE = 2.0  # systemd-analyze rates up to this "OK"
CAP_NET_RAW = 1 << 13
NOBODY = pwd.getpwnam("nobody")
DEVICES = [{"id": "lo4", "address": "127.0.0.1"}, {"id": "lo6", "address": "::1"}]
# In a confined child: load the filters described by the file argv[1], then exec argv[2:].
CONFINE = "from tests.integration.test_systemd_unit import confine_and_exec; confine_and_exec()"

Settings = dict[str, list[str]]


# -- the unit, read as systemd reads it ---------------------------------------------------------

def service_settings(*files: Path) -> Settings:
    """The [Service] lines of a unit and its drop-ins, in order, per key. An empty assignment
    clears what came before, as it does for systemd's list settings."""
    settings: Settings = {}
    for file in files:
        section = ""
        for line in (raw.strip() for raw in file.read_text().splitlines()):
            if line.startswith("["):
                section = line
            elif section == "[Service]" and line and not line.startswith(("#", ";")):
                key, _, setting = line.partition("=")
                settings[key] = [*settings.get(key, []), setting] if setting else []
    return settings


def installed_copy(directory: Path, *drop_ins: Path) -> Path:
    """The unit with ExecStart pointing at a binary that exists here, and its drop-ins."""
    monitord = Path(sys.executable).parent / "monitord"
    assert monitord.is_file(), "the virtualenv has the monitord entry point (pip install -e .)"
    unit = directory / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(monitord)))
    if drop_ins:
        (directory / f"{UNIT.name}.d").mkdir()
        for drop_in in drop_ins:
            shutil.copy(drop_in, directory / f"{UNIT.name}.d" / drop_in.name)
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "--no-pager", *args], capture_output=True,
                          text=True, check=False, timeout=60)


def exposure(unit: Path) -> tuple[float, str, str]:
    """(exposure level, rating, whole report) of `systemd-analyze security --offline=yes`."""
    result = analyze("security", "--offline=yes", str(unit))
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for monitord\.service: (\d+\.\d+) (\w+)",
                      result.stdout)
    assert found, result.stdout
    return float(found[1]), found[2], result.stdout


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = analyze("verify", str(installed_copy(tmp_path)))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_and_drop_in_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    result = analyze("verify", str(installed_copy(tmp_path, PING_SOCKETS_DROP_IN)))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_catches_a_missing_binary(tmp_path: Path) -> None:
    """The check above can fail: the unit as shipped names a binary this machine lacks."""
    shutil.copy(UNIT, tmp_path / UNIT.name)
    result = analyze("verify", str(tmp_path / UNIT.name))
    assert result.returncode != 0
    assert f"{INSTALLED_BINARY} is not executable" in result.stderr


def test_security_exposure_is_ok(tmp_path: Path) -> None:
    level, rating, report = exposure(installed_copy(tmp_path))
    assert level <= MAX_EXPOSURE, report
    assert rating in {"PERFECT", "SAFE", "OK"}, report
    assert "Service runs under a static non-root user identity" in report


def test_ping_sockets_drop_in_removes_every_capability(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "with-drop-in").mkdir()
    with_raw, _, _ = exposure(installed_copy(tmp_path / "plain"))
    level, _, report = exposure(installed_copy(tmp_path / "with-drop-in", PING_SOCKETS_DROP_IN))
    assert level < with_raw
    assert "Service process does not receive ambient capabilities" in report
    assert "Service has no elevated networking privileges" in report


def test_sysusers_creates_a_system_user_without_login(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    result = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
                            capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    users = {line.split(":")[0]: line.split(":")
             for line in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    name, _, uid, gid, _, home, shell = users["monitord"]
    assert int(uid) < 1000  # a system user
    assert (home, shell) == ("/var/lib/monitord", "/usr/sbin/nologin")
    settings = service_settings(UNIT)
    assert settings["User"] == settings["Group"] == [name]
    assert f"monitord:x:{gid}:" in (tmp_path / "etc" / "group").read_text()


# -- the unit's sandbox, applied without systemd ------------------------------------------------

def syscall_groups() -> dict[str, list[str]]:
    """systemd's named system call sets (@system-service, ...), as this systemd defines them."""
    result = analyze("syscall-filter")
    assert result.returncode == 0, result.stderr
    groups: dict[str, list[str]] = {}
    members: list[str] | None = None
    for line in result.stdout.splitlines():
        if line.startswith("@"):
            members = groups.setdefault(line.strip(), [])
        elif line.startswith("#"):  # the ungrouped ones follow
            members = None
        elif members is not None and line.strip() and not line.strip().startswith("#"):
            members.append(line.strip())
    return groups


def _expand(name: str, groups: dict[str, list[str]]) -> set[str]:
    if not name.startswith("@"):
        return {name}
    return set().union(*(_expand(member, groups) for member in groups[name]))


def allowed_syscalls(lines: list[str]) -> list[str]:
    """An allow list (@default always in it), less the sets of later `~` lines."""
    groups = syscall_groups()
    assert lines, "the unit has a SystemCallFilter"
    assert not lines[0].startswith("~"), "the unit's filter is an allow list"
    allowed = _expand("@default", groups)
    for line in lines:
        names = set().union(*(_expand(n, groups) for n in line.removeprefix("~").split()))
        allowed = allowed - names if line.startswith("~") else allowed | names
    return sorted(allowed)


def sandbox_spec(settings: Settings) -> dict[str, object]:
    def flag(key: str) -> bool:
        return settings.get(key, ["no"])[-1] == "yes"

    return {
        "allow": allowed_syscalls(settings["SystemCallFilter"]),
        "errno": settings.get("SystemCallErrorNumber", ["EPERM"])[-1],
        "memory_deny_write_execute": flag("MemoryDenyWriteExecute"),
        "families": [family for line in settings.get("RestrictAddressFamilies", [])
                     for family in line.split()],
        "restrict_namespaces": flag("RestrictNamespaces"),
    }


def setpriv_command(settings: Settings) -> list[str]:
    """setpriv switching to nobody with the unit's capability sets and NoNewPrivileges."""
    def caps(key: str) -> str:
        names = [c.removeprefix("CAP_").lower() for line in settings.get(key, [])
                 for c in line.split()]
        return ",".join(["-all", *(f"+{name}" for name in names)])

    command = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}",
               "--clear-groups", f"--inh-caps={caps('AmbientCapabilities')}",
               f"--ambient-caps={caps('AmbientCapabilities')}",
               f"--bounding-set={caps('CapabilityBoundingSet')}"]
    if settings.get("NoNewPrivileges", ["no"])[-1] == "yes":
        command.append("--no-new-privs")
    return command


class _ArgCmp(ctypes.Structure):
    """libseccomp's struct scmp_arg_cmp."""

    _fields_ = (("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64))


SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_MASKED_EQ = 4, 5, 7
NAMESPACE_FLAGS = (0x00000080, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
                   0x20000000, 0x40000000)  # CLONE_NEW{TIME,NS,CGROUP,UTS,IPC,USER,PID,NET}
AF_MAX = 46
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
Rule = tuple[int, str, tuple[tuple[int, int, int, int], ...]]  # action, syscall, conditions


def _errno_action(number: int) -> int:
    return 0x00050000 | number


def _load_filter(library: ctypes.CDLL, default_action: int, rules: list[Rule]) -> None:
    """One seccomp filter, as systemd installs one per setting (the kernel applies them all)."""
    context = library.seccomp_init(default_action)
    assert context, "seccomp_init failed"
    try:
        for action, syscall, conditions in rules:
            number = library.seccomp_syscall_resolve_name(syscall.encode())
            if number == -1:  # unknown to this libseccomp: systemd skips it too
                continue
            array = (_ArgCmp * len(conditions))(*(_ArgCmp(*c) for c in conditions))
            result = library.seccomp_rule_add_array(context, action, number, len(conditions),
                                                    array if conditions else None)
            if result < 0:
                raise OSError(-result, f"seccomp rule for {syscall}")
        result = library.seccomp_load(context)
        if result < 0:
            raise OSError(-result, "seccomp_load")
    finally:
        library.seccomp_release(context)


def confine_and_exec() -> NoReturn:
    """Run in the child after setpriv: load the filters sys.argv[1] describes, exec the rest."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    library = ctypes.CDLL("libseccomp.so.2")
    library.seccomp_init.restype = ctypes.c_void_p
    library.seccomp_init.argtypes = (ctypes.c_uint32,)
    library.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    library.seccomp_rule_add_array.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp))
    library.seccomp_load.argtypes = library.seccomp_release.argtypes = (ctypes.c_void_p,)
    if spec["memory_deny_write_execute"]:
        eperm = _errno_action(errno.EPERM)
        write_exec = (2, SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)
        exec_ = (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)
        _load_filter(library, SCMP_ACT_ALLOW, [
            (eperm, "mmap", (write_exec,)), (eperm, "mprotect", (exec_,)),
            (eperm, "pkey_mprotect", (exec_,)),
            (eperm, "shmat", ((2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC),))])
    if spec["families"]:
        allowed = {int(getattr(socket, family)) for family in spec["families"]}
        refuse = _errno_action(errno.EAFNOSUPPORT)
        _load_filter(library, SCMP_ACT_ALLOW, [
            (refuse, "socket", ((0, SCMP_CMP_GE, AF_MAX, 0),)),
            *((refuse, "socket", ((0, SCMP_CMP_EQ, family, 0),))
              for family in range(AF_MAX) if family not in allowed)])
    if spec["restrict_namespaces"]:
        eperm = _errno_action(errno.EPERM)
        _load_filter(library, SCMP_ACT_ALLOW, [
            # clone3's flags cannot be inspected: ENOSYS makes glibc fall back to clone().
            (_errno_action(errno.ENOSYS), "clone3", ()),
            (eperm, "setns", ((1, SCMP_CMP_EQ, 0, 0),)),
            *((eperm, syscall, ((arg, SCMP_CMP_MASKED_EQ, flag, flag),))
              for flag in NAMESPACE_FLAGS
              for syscall, arg in (("unshare", 0), ("clone", 0), ("setns", 1)))])
    # Last, as systemd does it: loading a filter is itself a system call it does not allow.
    deny = _errno_action(getattr(errno, spec["errno"]))
    _load_filter(library, deny, [(SCMP_ACT_ALLOW, name, ()) for name in spec["allow"]])
    command = sys.argv[2:]
    # This machine's interpreter is under /root, which nobody may not search: setpriv could
    # still exec it (it holds its capabilities until its exec), we cannot. /proc/self/exe is
    # the same file, reached without a path walk; argv[0] keeps the virtualenv.
    program = "/proc/self/exe" if command[0] == sys.executable else command[0]
    os.execvp(program, command)  # noqa: S606 - replaces this launcher, as systemd's exec does


def confined_command(settings: Settings, directory: Path, *command: str) -> list[str]:
    spec = directory / "sandbox.json"
    spec.write_text(json.dumps(sandbox_spec(settings)))
    return [*setpriv_command(settings), sys.executable, "-c", CONFINE, str(spec), *command]


@contextmanager
def ping_group_range(setting: str) -> Iterator[None]:
    """Set net.ipv4.ping_group_range in this network namespace; restore it afterwards."""
    previous = PING_GROUP_RANGE.read_text()
    PING_GROUP_RANGE.write_text(setting)
    try:
        yield
    finally:
        PING_GROUP_RANGE.write_text(previous)


@pytest.fixture
def service_dir() -> Iterator[Path]:
    """Config, filter description and state where nobody can reach them (pytest's tmp_path is
    under a root-only directory); state/ is nobody's, as StateDirectory= makes it the user's."""
    directory = Path(tempfile.mkdtemp(prefix="monitord-unit-"))
    directory.chmod(0o755)
    (directory / "state").mkdir()
    os.chown(directory / "state", NOBODY.pw_uid, NOBODY.pw_gid)
    yield directory
    shutil.rmtree(directory)


class ConfinedDaemon:
    """`monitord run` under the unit's sandbox; stopped by its PID only."""

    def __init__(self, settings: Settings, directory: Path, environment: dict[str, str]) -> None:
        self.port = free_port()
        config = write_config(directory / "monitord.yaml", DEVICES, self.port)
        config.chmod(0o644)
        self.log_path = directory / "monitord.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            confined_command(settings, directory, sys.executable, "-m", "monitord", "run",
                             "-c", str(config)),
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **environment})

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"monitord exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                            timeout=5) as response:
                    return int(response.status) == 200
            except (OSError, urllib.error.HTTPError):
                return False

        wait_for("the confined monitord to be ready", ready, timeout=30)

    def samples(self) -> list[Sample]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                    timeout=30) as response:
            return parse_samples(response.read().decode())

    def wait_probed(self) -> list[Sample]:
        def both_answer() -> list[Sample] | None:
            samples = self.samples()
            up = [value(samples, "monitord_probe_success", target=t["id"]) for t in DEVICES]
            return samples if up == [1.0, 1.0] else None

        return wait_for("127.0.0.1 and ::1 probed successfully", both_answer, timeout=30)

    def status(self) -> dict[str, str]:
        """/proc/PID/status: who the process is and what it may do."""
        lines = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        return {key: rest.strip() for key, _, rest in (line.partition(":") for line in lines)}

    def stop(self) -> int:
        stop_process(self.proc, grace=15)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def confined(service_dir: Path) -> Iterator[list[ConfinedDaemon]]:
    started: list[ConfinedDaemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def _capability_sets(status: dict[str, str]) -> dict[str, int]:
    return {key: int(status[key], 16) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def _assert_unprivileged(status: dict[str, str]) -> None:
    assert status["Uid"].split() == [str(NOBODY.pw_uid)] * 4
    assert status["Gid"].split() == [str(NOBODY.pw_gid)] * 4
    assert status["Groups"] == ""
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # filtered


def test_probes_as_nobody_with_only_cap_net_raw(service_dir: Path,
                                               confined: list[ConfinedDaemon]) -> None:
    settings = service_settings(UNIT)
    with ping_group_range("1 0"):  # no ping sockets for anyone: raw sockets it must be
        daemon = ConfinedDaemon(settings, service_dir, {})
        confined.append(daemon)
        daemon.wait_ready()
        samples = daemon.wait_probed()
        assert value(samples, "monitord_icmp_socket_info", family="ipv4", mode="raw") == 1
        assert value(samples, "monitord_icmp_socket_info", family="ipv6", mode="raw") == 1
        status = daemon.status()
        _assert_unprivileged(status)
        assert _capability_sets(status) == dict.fromkeys(
            ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), CAP_NET_RAW)
        assert daemon.stop() == 0


def test_without_capability_or_ping_sockets_every_probe_fails(
        service_dir: Path, confined: list[ConfinedDaemon]) -> None:
    """The control for the test above: CAP_NET_RAW is what makes it work. (monitord keeps
    running without ICMP sockets, so that one family missing does not stop the other.)"""
    settings = service_settings(UNIT, PING_SOCKETS_DROP_IN)
    with ping_group_range("1 0"):
        daemon = ConfinedDaemon(settings, service_dir, {})
        confined.append(daemon)
        daemon.wait_ready()

        def both_failed() -> list[Sample] | None:
            samples = daemon.samples()
            up = [value(samples, "monitord_probe_success", target=t["id"]) for t in DEVICES]
            return samples if up == [0.0, 0.0] else None

        samples = wait_for("both probes failed", both_failed, timeout=30)
        assert [s for s in samples if s[0] == "monitord_icmp_socket_info"] == []
        assert "net.ipv4.ping_group_range" in daemon.log()
        assert "or grant CAP_NET_RAW" in daemon.log()


def test_probes_without_any_capability_where_ping_sockets_are_allowed(
        service_dir: Path, confined: list[ConfinedDaemon]) -> None:
    settings = service_settings(UNIT, PING_SOCKETS_DROP_IN)
    with ping_group_range(f"{NOBODY.pw_gid} {NOBODY.pw_gid}"):  # monitord's group only
        daemon = ConfinedDaemon(settings, service_dir, {})
        confined.append(daemon)
        daemon.wait_ready()
        samples = daemon.wait_probed()
        assert value(samples, "monitord_icmp_socket_info", family="ipv4", mode="dgram") == 1
        assert value(samples, "monitord_icmp_socket_info", family="ipv6", mode="dgram") == 1
        status = daemon.status()
        _assert_unprivileged(status)
        assert set(_capability_sets(status).values()) == {0}
        assert daemon.stop() == 0


def test_notifies_systemd_ready_watchdog_reload_and_stopping(
        service_dir: Path, confined: list[ConfinedDaemon]) -> None:
    """Type=notify as systemd sees it: every message from the main PID (NotifyAccess=main),
    READY=1 once serving, WATCHDOG=1 at half of $WATCHDOG_USEC, RELOADING=1 then READY=1 on
    SIGHUP (ExecReload), STOPPING=1 on SIGTERM."""
    notify = NotifySocket(f"@monitord-unit-{os.getpid()}-{time.monotonic_ns()}")
    try:
        daemon = ConfinedDaemon(service_settings(UNIT), service_dir,
                                {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000"})
        confined.append(daemon)
        ready, pid = notify.next_with("READY", timeout=30)
        assert pid == daemon.proc.pid
        assert ready["STATUS"] == f"probing {len(DEVICES)} checks"
        daemon.wait_ready()
        started = time.monotonic()
        pings = [notify.next_with("WATCHDOG", timeout=5) for _ in range(4)]
        assert {pid for _, pid in pings} == {daemon.proc.pid}
        assert time.monotonic() - started < 3.5  # every 0.5 s, not every 1 s
        daemon.proc.send_signal(signal.SIGHUP)
        reloading, _ = notify.next_with("RELOADING", timeout=10)
        assert int(reloading["MONOTONIC_USEC"]) > 0
        reloaded, _ = notify.next_with("READY", timeout=30)
        assert reloaded["STATUS"].startswith("reloaded ")
        daemon.proc.send_signal(signal.SIGTERM)
        notify.next_with("STOPPING", timeout=10)
        # It is stopping on the first SIGTERM: wait, as systemd does, rather than send another.
        assert daemon.proc.wait(timeout=20) == 0
        assert daemon.stop() == 0
    finally:
        notify.sock.close()


def test_pdf_prints_under_memory_deny_write_execute(service_dir: Path) -> None:
    """MemoryDenyWriteExecute=yes stays on: Chromium runs V8 without its JIT, which needs no
    writable and executable memory (the report has no script). Under the unit's filters."""
    page = service_dir / "page.html"
    page.write_text("<html><body><h1>Ketersediaan</h1><svg width='40' height='10'>"
                    "<rect width='40' height='10'/></svg></body></html>")
    page.chmod(0o644)
    output = service_dir / "state" / "report.pdf"
    script = ("import sys; from pathlib import Path; from monitord.report.pdf import html_to_pdf;"
              " Path(sys.argv[2]).write_bytes(html_to_pdf(Path(sys.argv[1]).read_text(),"
              " timeout=30))")
    result = subprocess.run(
        confined_command(service_settings(UNIT), service_dir, sys.executable, "-c", script,
                         str(page), str(output)),
        cwd=REPO, capture_output=True, text=True, check=False, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.read_bytes().startswith(b"%PDF-")


def test_the_sandbox_really_denies_write_execute_memory(service_dir: Path) -> None:
    """The emulation is not a no-op: W+X memory fails in it, and (a control) works without."""
    script = ("import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE"
              " | mmap.PROT_EXEC); print('mapped')")
    confined_run = subprocess.run(
        confined_command(service_settings(UNIT), service_dir, sys.executable, "-c", script),
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert confined_run.returncode != 0
    assert "PermissionError" in confined_run.stderr
    free_run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=False, timeout=60)
    assert free_run.stdout.strip() == "mapped"
