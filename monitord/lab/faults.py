"""Fault injectors for the province lab: the ways a remote network fails, as a small API.

Each one acts on things the lab (or a test) created itself: a link is a veth end in a network
namespace, loss is an iptables rule inside a namespace, delay and misbehaving agents are child
processes started here, a reboot restarts an agent (snmpd's, for one monitord sees: the lab's
snmpsim recordings have a fixed sysUpTime), the state disk is a tmpfs mounted on the
daemon's state directory. Every injector that leaves something behind is a context manager (or
has a stop) that undoes it, also when the body fails; background work (a flapping link) is
bounded in count and time and joinable.

Needs root, and is meant for a private network namespace (and, for the state disk, a private
mount namespace): `unshare --net --mount`.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from monitord.lab.bad_agent import Address, Mode
from monitord.lab.process import set_parent_death_signal, stop_process
from monitord.lab.scrape import http_request

_COMMAND_TIMEOUT = 30.0
_rule_ids = itertools.count(1)


class FaultError(RuntimeError):
    """An injector could not do (or undo) what it was asked; the message says which command."""


def _run(*cmd: str, netns: str | None = None) -> str:
    """Run a command (in `netns` if given); its stdout. Fails with the command's stderr."""
    argv = ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT,
                          check=False)
    if done.returncode != 0:
        raise FaultError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


# -- links ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Route:
    """A route that goes away with the link's carrier: `ip route replace PREFIX via VIA`."""

    prefix: str
    via: str


@dataclass(frozen=True, slots=True)
class Link:
    """One end of a link: interface `dev` in namespace `netns` (None: the caller's own), and
    the routes through it that must come back when it does."""

    dev: str
    netns: str | None = None
    routes: tuple[Route, ...] = ()


def cut_link(link: Link) -> None:
    """The link goes dark: its interface is set down (the kernel drops its routes)."""
    _run("ip", "link", "set", link.dev, "down", netns=link.netns)


def restore_link(link: Link) -> None:
    """The link comes back, routes included."""
    _run("ip", "link", "set", link.dev, "up", netns=link.netns)
    for route in link.routes:
        _run("ip", "route", "replace", route.prefix, "via", route.via, netns=link.netns)


@contextlib.contextmanager
def link_cut(link: Link) -> Iterator[Link]:
    """The link is cut for the body, and always restored after it."""
    cut_link(link)
    try:
        yield link
    finally:
        restore_link(link)


class Flapper:
    """A link toggled down and up every `period` seconds, `times` times (down, up = one time),
    on a background thread. It always ends with the link up; join() re-raises its failure."""

    def __init__(self, link: Link, period: float, times: int) -> None:
        if period <= 0 or times < 1:
            raise ValueError(f"flap period must be > 0 and times >= 1 (got {period}, {times})")
        self.link = link
        self.period = period
        self.times = times
        self.changes: list[tuple[float, str]] = []  # (wall-clock time, "down" or "up")
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._flap, name="monitord-lab-flapper",
                                        daemon=True)

    @property
    def duration(self) -> float:
        """How long a full run takes: 2 * times * period seconds."""
        return 2 * self.times * self.period

    def start(self) -> Flapper:
        self._thread.start()
        return self

    def _flap(self) -> None:
        try:
            for _ in range(self.times):
                for action, state in ((cut_link, "down"), (restore_link, "up")):
                    if self._stop.is_set():
                        return
                    action(self.link)
                    self.changes.append((time.time(), state))
                    self._stop.wait(self.period)
        except BaseException as error:  # handed to join()
            self._error = error
        finally:
            if self.changes and self.changes[-1][1] == "down":
                with contextlib.suppress(FaultError):
                    restore_link(self.link)
                    self.changes.append((time.time(), "up"))

    def stop(self) -> None:
        """End early: the current period is cut short and the link left up."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the end (at most `timeout`, default the remaining run plus a margin)."""
        wait = self.duration + 10.0 if timeout is None else timeout
        self._thread.join(wait)
        if self._thread.is_alive():
            self.stop()
            self._thread.join(_COMMAND_TIMEOUT)
            raise FaultError(f"flapping {self.link.dev} did not end within {wait:g}s")
        if self._error is not None:
            raise FaultError(f"flapping {self.link.dev} failed: {self._error}") from self._error

    def __enter__(self) -> Flapper:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self.stop()
        self.join()


# -- packet loss (iptables statistic) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LossRule:
    """A DROP rule in `chain` of `netns`'s filter table, told apart by its comment."""

    netns: str | None
    chain: str
    match: tuple[str, ...]  # iptables match arguments before the statistic match
    statistic: tuple[str, ...]  # e.g. ("--mode", "random", "--probability", "0.3")
    comment: str

    def spec(self) -> list[str]:
        return [*self.match, "-m", "statistic", *self.statistic,
                "-m", "comment", "--comment", self.comment, "-j", "DROP"]

    def dropped(self) -> int:
        """Packets this rule has dropped so far (its iptables packet counter)."""
        for line in _run("iptables", "-w", "-S", self.chain, "-v", netns=self.netns).splitlines():
            words = line.split()
            if f'"{self.comment}"' in words or self.comment in words:
                return int(words[words.index("-c") + 1])
        raise FaultError(f"loss rule {self.comment} is not in {self.chain} of {self.netns}")


@contextlib.contextmanager
def _loss(netns: str | None, statistic: tuple[str, ...], chains: Sequence[str],
          match: Sequence[str]) -> Iterator[list[LossRule]]:
    rules: list[LossRule] = []
    try:
        for chain in chains:
            rule = LossRule(netns, chain, tuple(match), statistic,
                            f"monitord-lab-loss-{os.getpid()}-{next(_rule_ids)}")
            _run("iptables", "-w", "-A", chain, *rule.spec(), netns=netns)
            rules.append(rule)
        yield rules
    finally:
        for rule in rules:
            _run("iptables", "-w", "-D", rule.chain, *rule.spec(), netns=netns)


def packet_loss(netns: str | None, probability: float, chains: Sequence[str] = ("INPUT",),
                match: Sequence[str] = ()) -> contextlib.AbstractContextManager[list[LossRule]]:
    """Drops each packet (of those `match` selects) with `probability`, in every chain given:
    INPUT for packets to the namespace itself, FORWARD for those it routes. The rules are
    removed on exit, whatever happened."""
    if not 0.0 < probability <= 1.0:
        raise ValueError(f"loss probability must be in (0, 1], not {probability}")
    return _loss(netns, ("--mode", "random", "--probability", f"{probability:.6f}"), chains, match)


def packet_loss_every(netns: str | None, every: int, chains: Sequence[str] = ("INPUT",),
                      match: Sequence[str] = ()) -> contextlib.AbstractContextManager[list[LossRule]]:
    """Deterministic loss: exactly one packet of every `every` matched (the first, then every
    `every`-th), so a burst of `every` echoes loses exactly one, whatever the phase."""
    if every < 2:
        raise ValueError(f"every must be at least 2, not {every}")
    return _loss(netns, ("--mode", "nth", "--every", str(every), "--packet", "0"), chains, match)


# -- child processes driven through a control file ------------------------------------------

class _ControlledChild:
    """A lab server run as `python -m MODULE ...` (in a namespace if given) that prints "ready",
    and on SIGUSR1 re-reads its JSON control file and prints "applied ..."."""

    def __init__(self, module: str, args: Sequence[str], control: Path,
                 netns: str | None, ready_timeout: float = 10.0) -> None:
        self.control = control
        command = [sys.executable, "-m", module, *args, "--control", str(control)]
        if netns:
            command = ["ip", "netns", "exec", netns, *command]
        self.command = " ".join(command)
        # `ip netns exec` execs the command itself: the PID is the server's.
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=set_parent_death_signal)  # noqa: PLW1509
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True,
                         name=f"{module}-output").start()
        try:
            self._expect("ready", ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line.rstrip("\n"))
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output: the process is gone

    def _expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise FaultError(f"{self.command} exited: {' / '.join(self.output)}")
            if line.startswith("control error"):
                raise FaultError(line)
            if line.startswith(prefix):
                return line
        raise FaultError(f"{self.command}: no {prefix!r} within {timeout:g}s "
                         f"(output: {' / '.join(self.output)})")

    def _apply(self, doc: dict[str, object], timeout: float = 10.0) -> None:
        partial = self.control.with_suffix(".tmp")
        partial.write_text(json.dumps(doc))
        partial.replace(self.control)  # the server never reads half a file
        self.proc.send_signal(signal.SIGUSR1)
        self._expect("applied", timeout)

    def stop(self) -> None:
        stop_process(self.proc, grace=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _sysctl(name: str, netns: str | None) -> str:
    return _run("sysctl", "-n", name, netns=netns).strip()


class DelayedEchoes(_ControlledChild):
    """Echo replies of a namespace delayed in user space (monitord.lab.echo_responder): its
    kernel's own echo replies are turned off while this runs, and back on by stop()."""

    IGNORE_ALL = "net.ipv4.icmp_echo_ignore_all"

    def __init__(self, netns: str, workdir: Path, delay_ms: float, jitter_ms: float = 0.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self._kernel_setting = _sysctl(self.IGNORE_ALL, netns)
        _run("sysctl", "-qw", f"{self.IGNORE_ALL}=1", netns=netns)
        control = workdir / f"echo-{netns}.json"
        control.write_text(json.dumps({"delay_ms": delay_ms, "jitter_ms": jitter_ms}))
        try:
            super().__init__("monitord.lab.echo_responder",
                             ["--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)],
                             control, netns)
        except BaseException:
            _run("sysctl", "-qw", f"{self.IGNORE_ALL}={self._kernel_setting}", netns=netns)
            raise

    def set_delay(self, delay_ms: float, jitter_ms: float = 0.0) -> None:
        """Change the delay now; returns once the responder has applied it."""
        self._apply({"delay_ms": delay_ms, "jitter_ms": jitter_ms})

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            _run("sysctl", "-qw", f"{self.IGNORE_ALL}={self._kernel_setting}", netns=self.netns)

    def __enter__(self) -> DelayedEchoes:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class MisbehavingAgent(_ControlledChild):
    """monitord.lab.bad_agent listening on `listen` (in `netns` if given), spoiling the answers
    of the real agent at `upstream` (or making its own) as its mode says."""

    def __init__(self, listen: Address, workdir: Path, mode: Mode = "pass",
                 upstream: Address | None = None, netns: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.listen = listen
        control = workdir / f"bad-agent-{listen[0]}-{listen[1]}.json"
        control.write_text(json.dumps({"mode": mode}))
        args = ["--listen", f"{listen[0]}:{listen[1]}", "--mode", mode]
        if upstream is not None:
            args += ["--upstream", f"{upstream[0]}:{upstream[1]}"]
        super().__init__("monitord.lab.bad_agent", args, control, netns)
        self.mode: Mode = mode

    def set_mode(self, mode: Mode) -> None:
        """Switch how it misbehaves; returns once the agent has switched."""
        self._apply({"mode": mode})
        self.mode = mode

    def __enter__(self) -> MisbehavingAgent:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- devices, broker, daemon ---------------------------------------------------------------

class Restartable(Protocol):
    """An agent or broker the lab started: stop() ends it, start() brings it back."""

    def stop(self) -> None: ...

    def start(self) -> object: ...


def reboot_device(agent: Restartable, down_for: float = 0.0) -> None:
    """A device's agent stops and starts again. With snmpd that is a reboot as SNMP sees it
    (sysUpTime restarts from 0; tests/integration/test_faults.py); with the lab's snmpsim it is
    only an SNMP outage: its recordings have a fixed sysUpTime, so monitord sees no reboot."""
    agent.stop()
    if down_for > 0:
        time.sleep(down_for)
    agent.start()


@contextlib.contextmanager
def broker_outage(broker: Restartable) -> Iterator[None]:
    """The MQTT broker is away for the body, and started again after it whatever happened."""
    broker.stop()
    try:
        yield
    finally:
        broker.start()


def sigkill(proc: subprocess.Popen[Any]) -> int:
    """SIGKILL a process the lab started (by its PID) and reap it; returns its exit status."""
    proc.kill()
    return proc.wait(timeout=_COMMAND_TIMEOUT)


# -- the state disk ------------------------------------------------------------------------

class StateDisk:
    """A small tmpfs mounted on `directory` (the daemon's state_dir, before the daemon starts)
    that can be filled up to ENOSPC and freed again. Mount it in a private mount namespace;
    it is unmounted on exit."""

    FILLER = "lab-filler.bin"
    _CHUNK = 64 * 1024

    def __init__(self, directory: Path, size_bytes: int = 4 * 1024 * 1024) -> None:
        self.directory = directory
        self.size_bytes = size_bytes
        self.mounted = False

    @property
    def filler(self) -> Path:
        return self.directory / self.FILLER

    def mount(self) -> StateDisk:
        self.directory.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "tmpfs", "-o", f"size={self.size_bytes},mode=0750", "tmpfs",
             str(self.directory))
        self.mounted = True
        return self

    def fill(self) -> int:
        """Write the filler file until the disk is full; returns the bytes it took. Bounded:
        never more than the disk's size plus two chunks. (Unbuffered: a write that only
        partly fits returns short, and the next one fails with ENOSPC.)"""
        written = 0
        chunk = b"\0" * self._CHUNK
        with self.filler.open("ab", buffering=0) as out:
            for _ in range(self.size_bytes // self._CHUNK + 2):
                try:
                    written += out.write(chunk) or 0
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    return written
        raise FaultError(f"{self.directory} did not fill up after {written} bytes")

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def available(self) -> int:
        stats = os.statvfs(self.directory)
        return stats.f_bavail * stats.f_frsize

    def unmount(self) -> None:
        if not self.mounted:
            return
        try:
            _run("umount", str(self.directory))
        except FaultError:
            _run("umount", "-l", str(self.directory))  # still busy: detach it now, free later
        self.mounted = False

    def __enter__(self) -> StateDisk:
        return self.mount()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unmount()


# -- configuration -------------------------------------------------------------------------

# Lines 1-3 are fine; line 4 is indented under a scalar, which YAML cannot take: the loader's
# error must name line 4.
BAD_CONFIG = "daemon: {}\nprovince:\n  id: sulbar\n   kabupaten: []\n"
BAD_CONFIG_LINE = 4


@contextlib.contextmanager
def broken_config(path: Path, text: str = BAD_CONFIG) -> Iterator[str]:
    """The config file holds `text` (invalid) for the body; the original comes back after it.
    Yields the original text."""
    original = path.read_text()
    path.write_text(text)
    try:
        yield original
    finally:
        path.write_text(original)


def reload_by_signal(pid: int) -> None:
    """SIGHUP: ask the daemon (a process the lab started) to reload its config."""
    os.kill(pid, signal.SIGHUP)


def reload_by_http(base_url: str, timeout: float = 30.0) -> tuple[int, str]:
    """POST /-/reload; (HTTP status, body)."""
    return http_request(f"{base_url}/-/reload", data=b"", timeout=timeout)
