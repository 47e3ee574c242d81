"""sd_notify(3) without libsystemd: service state and watchdog pings for systemd.

Under a unit with Type=notify, systemd passes $NOTIFY_SOCKET (a path, or '@name' for an abstract
socket) and, with WatchdogSec=, $WATCHDOG_USEC and $WATCHDOG_PID. Each message is one datagram
of newline-separated KEY=VALUE lines. Outside systemd there is no $NOTIFY_SOCKET and every call
is a no-op, so the daemon calls these unconditionally.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping

__all__ = ["Notifier", "feed_watchdog"]

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"
# A wedged systemd must not stall the event loop for long: a datagram that cannot be sent
# within this is dropped (a lost WATCHDOG=1 is repeated half an interval later anyway).
SEND_TIMEOUT = 1.0


class Notifier:
    """Sends state changes to systemd's notification socket; a no-op without one."""

    def __init__(self, address: str | None, watchdog_interval: float | None = None) -> None:
        self.address = address
        self.watchdog_interval = watchdog_interval  # seconds; None: no watchdog expected
        self._socket: socket.socket | None = None
        self._failing = False  # log a failing socket once, not on every ping

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """Take the variables out of the environment (default os.environ): children (the
        Chromium that prints PDFs) must not inherit them and talk to systemd as monitord."""
        env = os.environ if environ is None else environ
        address = env.pop(NOTIFY_SOCKET, None) or None
        usec, pid = env.pop(WATCHDOG_USEC, None), env.pop(WATCHDOG_PID, None)
        if address is not None and not address.startswith(("/", "@")):
            log.warning("ignoring NOTIFY_SOCKET=%r: not a path or an abstract socket", address)
            address = None
        return cls(address, _watchdog_interval(usec, pid))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str | None = None) -> bool:
        """Started, or a reload finished (either way: serving)."""
        return self.send("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """A reload begins; READY=1 ends it. MONOTONIC_USEC lets systemd (253+,
        Type=notify-reload) tell this reload from an older one."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        """Free text that `systemctl status` shows."""
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def send(self, *fields: str) -> bool:
        """One datagram of `fields`; True if it was sent. Never raises: systemd being
        unreachable must not take the daemon down."""
        if self.address is None or not fields:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.settimeout(SEND_TIMEOUT)
            target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._socket.sendto("\n".join(fields).encode(), target)
        except OSError as error:
            if not self._failing:
                log.warning("cannot notify systemd at %s: %s", self.address, error)
            self._failing = True
            return False
        self._failing = False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def feed_watchdog(notifier: Notifier, healthy: Callable[[], bool],
                        interval: float | None = None) -> None:
    """Send WATCHDOG=1 every half `interval` (default: the one systemd asked for) while
    `healthy()` holds; return at once when no watchdog is expected. Run as a task on the
    event loop: a blocked loop sends nothing, and `healthy()` adds what a turning loop
    cannot show (the probe schedule still advancing). Withheld pings make systemd restart us.
    """
    period = notifier.watchdog_interval if interval is None else interval
    if not notifier.enabled or period is None or period <= 0:
        return
    withheld = False
    while True:
        try:
            ok = healthy()
        except Exception:  # a broken check must not stop the pings silently either way
            log.exception("watchdog health check failed")
            ok = False
        if ok:
            notifier.watchdog()
            if withheld:
                log.warning("watchdog: healthy again; pinging systemd")
                notifier.status("running")
            withheld = False
        elif not withheld:
            log.error("watchdog: the probe schedule is stalled; withholding pings, systemd "
                      "restarts monitord unless it recovers within %g s", period)
            notifier.status("stalled: probe schedule not advancing")
            withheld = True
        await asyncio.sleep(period / 2)


def _watchdog_interval(usec: str | None, pid: str | None) -> float | None:
    """$WATCHDOG_USEC in seconds, if it is meant for this process ($WATCHDOG_PID unset or ours)."""
    if usec is None:
        return None
    try:
        if pid is not None and int(pid) != os.getpid():
            return None
        microseconds = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r / WATCHDOG_PID=%r", usec, pid)
        return None
    return microseconds / 1e6 if microseconds > 0 else None


def _status(text: str | None) -> tuple[str, ...]:
    # One message is KEY=VALUE lines: a newline in the text would start a bogus field.
    return () if text is None else ("STATUS=" + " ".join(text.split()),)
