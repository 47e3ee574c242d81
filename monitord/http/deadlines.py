"""Deadlines for client connections, enforced by one watchdog thread.

A socket timeout restarts with every byte received, so a client trickling one byte every few
seconds would hold its thread for hours. The watchdog shuts down the socket of a connection
whose deadline has passed, which wakes its thread out of any read or write.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

TICK = 0.1  # seconds between checks: how late a deadline may be enforced


class Deadlines:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[socket.socket, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitord-http-deadlines",
                                        daemon=True)
        self.expired = 0  # connections cut so far

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, and cut every connection still armed (idle ones among them)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._cut(float("inf"), expired=False)  # closed by the stop, not by a deadline

    def arm(self, conn: socket.socket, seconds: float) -> None:
        """Cut `conn` unless disarmed or re-armed within `seconds`."""
        with self._lock:
            self._due[conn] = time.monotonic() + seconds

    def disarm(self, conn: socket.socket) -> None:
        """Once this returns the watchdog never touches `conn`: call it before closing, or a
        new connection reusing the file descriptor could be cut instead."""
        with self._lock:
            self._due.pop(conn, None)

    def _run(self) -> None:
        while not self._stopped.wait(TICK):
            self._cut(time.monotonic())

    def _cut(self, now: float, expired: bool = True) -> None:
        with self._lock:  # held while cutting: see disarm
            due = [conn for conn, deadline in self._due.items() if deadline <= now]
            for conn in due:
                del self._due[conn]
                # Counted before the cut: whoever sees the connection close sees it counted.
                self.expired += expired
                # The plain socket's shutdown, also for an SSLSocket: the TLS layer is not
                # thread-safe, the kernel's shutdown is. OSError: the client is already gone.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
