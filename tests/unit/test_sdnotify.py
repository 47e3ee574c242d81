"""monitord.sdnotify against a real AF_UNIX datagram socket that the test binds: that socket is
the whole sd_notify protocol (systemd reads datagrams of KEY=VALUE lines from it). systemd
itself cannot run in this container, so the receiving end is the test, not PID 1;
tests/integration/test_systemd_unit.py runs the real daemon against such a socket too."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.sdnotify import Notifier, feed_watchdog


class NotifySocket:
    """The receiving end of $NOTIFY_SOCKET, as systemd binds it (with SO_PASSCRED, so each
    message carries the sender's PID: how systemd enforces NotifyAccess=main)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(2.0)

    def receive(self) -> tuple[dict[str, str], int]:
        """One message as {key: value} and the sender's PID."""
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(int.from_bytes(payload[:4], "little") for level, kind, payload in ancillary
                   if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
        return dict(line.split("=", 1) for line in data.decode().split("\n")), pid

    def next_with(self, key: str, timeout: float) -> tuple[dict[str, str], int]:
        """The next message that sets `key` (earlier ones are dropped), within `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message, pid = self.receive()
            except TimeoutError:
                continue
            if key in message:
                return message, pid
        raise AssertionError(f"no {key}= message within {timeout} s")

    def pending(self) -> list[dict[str, str]]:
        """Every message already waiting, without blocking."""
        messages = []
        self.sock.setblocking(False)
        try:
            while True:
                messages.append(dict(line.split("=", 1)
                                     for line in self.sock.recv(4096).decode().split("\n")))
        except BlockingIOError:
            return messages
        finally:
            self.sock.settimeout(2.0)


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    receiver = NotifySocket(str(tmp_path / "notify"))
    yield receiver
    receiver.sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[NotifySocket]:
    receiver = NotifySocket(f"@monitord-test-{os.getpid()}-{time.monotonic_ns()}")
    yield receiver
    receiver.sock.close()


def test_ready_reaches_a_path_socket_from_this_process(path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address)
    assert notifier.ready("probing 3 checks")
    message, pid = path_socket.receive()
    assert message == {"READY": "1", "STATUS": "probing 3 checks"}
    assert pid == os.getpid()
    notifier.close()


def test_abstract_socket_address(abstract_socket: NotifySocket) -> None:
    notifier = Notifier(abstract_socket.address)
    assert notifier.stopping()
    assert abstract_socket.receive()[0] == {"STOPPING": "1"}
    notifier.close()


def test_reloading_carries_the_monotonic_clock(path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message, _ = path_socket.receive()
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after
    notifier.close()


def test_status_is_kept_on_one_line(path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address)
    notifier.status("reload failed:\n  profiles.x: bad\nREADY=1")
    assert path_socket.receive()[0] == {"STATUS": "reload failed: profiles.x: bad READY=1"}
    notifier.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    environ: dict[str, str] = {"PATH": "/usr/bin"}
    notifier = Notifier.from_environment(environ)
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_environment_is_taken_out_for_children(path_socket: NotifySocket) -> None:
    environ = {"NOTIFY_SOCKET": path_socket.address, "WATCHDOG_USEC": "30000000",
               "WATCHDOG_PID": str(os.getpid()), "PATH": "/usr/bin"}
    notifier = Notifier.from_environment(environ)
    assert environ == {"PATH": "/usr/bin"}
    assert notifier.address == path_socket.address
    assert notifier.watchdog_interval == 30.0


def test_watchdog_meant_for_another_process_is_ignored(path_socket: NotifySocket) -> None:
    environ = {"NOTIFY_SOCKET": path_socket.address, "WATCHDOG_USEC": "30000000",
               "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier.from_environment(environ).watchdog_interval is None
    no_pid = {"NOTIFY_SOCKET": path_socket.address, "WATCHDOG_USEC": "5000000"}
    assert Notifier.from_environment(no_pid).watchdog_interval == 5.0


@pytest.mark.parametrize("environ", [
    {"NOTIFY_SOCKET": "relative/path"},
    {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"},
    {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "0"},
])
def test_malformed_variables_disable_only_what_they_configure(environ: dict[str, str]) -> None:
    notifier = Notifier.from_environment(dict(environ))
    assert notifier.watchdog_interval is None
    assert notifier.enabled == environ["NOTIFY_SOCKET"].startswith("/")


def test_unreachable_socket_does_not_raise(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    assert notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    notifier.close()


async def test_watchdog_pings_at_half_the_interval_while_healthy(
        path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address, watchdog_interval=0.2)
    task = asyncio.create_task(feed_watchdog(notifier, lambda: True))
    await asyncio.sleep(0.45)  # pings at 0, 0.1, 0.2, 0.3, 0.4
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    pings = [m for m in path_socket.pending() if m == {"WATCHDOG": "1"}]
    assert 4 <= len(pings) <= 5
    notifier.close()


async def test_watchdog_withholds_pings_while_unhealthy_and_resumes(
        path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address, watchdog_interval=0.1)
    healthy = True
    task = asyncio.create_task(feed_watchdog(notifier, lambda: healthy))
    await asyncio.sleep(0.12)
    assert {"WATCHDOG": "1"} in path_socket.pending()
    healthy = False
    await asyncio.sleep(0.06)  # the check at 0.15 saw it
    path_socket.pending()
    await asyncio.sleep(0.3)
    stalled = path_socket.pending()
    assert stalled == [], stalled  # the STATUS line went out with the first failed check
    healthy = True
    await asyncio.sleep(0.12)
    resumed = path_socket.pending()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert {"WATCHDOG": "1"} in resumed
    assert {"STATUS": "running"} in resumed
    notifier.close()


async def test_watchdog_reports_a_stall_in_status(path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address, watchdog_interval=0.1)
    task = asyncio.create_task(feed_watchdog(notifier, lambda: False))
    await asyncio.sleep(0.17)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert path_socket.pending() == [{"STATUS": "stalled: probe schedule not advancing"}]
    notifier.close()


async def test_a_blocked_event_loop_sends_no_pings(path_socket: NotifySocket) -> None:
    notifier = Notifier(path_socket.address, watchdog_interval=0.1)
    task = asyncio.create_task(feed_watchdog(notifier, lambda: True))
    await asyncio.sleep(0.01)
    path_socket.pending()
    time.sleep(0.4)  # noqa: ASYNC251 - blocking the loop is what this test is about
    assert path_socket.pending() == []
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert path_socket.pending() == [{"WATCHDOG": "1"}]  # the loop turned again: one ping
    notifier.close()


async def test_a_failing_health_check_counts_as_unhealthy(path_socket: NotifySocket) -> None:
    def broken() -> bool:
        raise RuntimeError("bug")

    notifier = Notifier(path_socket.address, watchdog_interval=0.1)
    task = asyncio.create_task(feed_watchdog(notifier, broken))
    await asyncio.sleep(0.12)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert {"WATCHDOG": "1"} not in path_socket.pending()
    notifier.close()


async def test_no_watchdog_expected_returns_at_once(path_socket: NotifySocket) -> None:
    await asyncio.wait_for(feed_watchdog(Notifier(path_socket.address), lambda: True), 1)
    await asyncio.wait_for(feed_watchdog(Notifier(None, 1.0), lambda: True), 1)
    assert path_socket.pending() == []
