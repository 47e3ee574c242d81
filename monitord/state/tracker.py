"""The state sink: probe results -> state engine -> events -> history (-> MQTT outbox).

observe() is called by the scheduler for every ICMP result and never waits: the engine is
pure and fast, and its events are handed to one writer task that commits them in batches
(a failed kabupaten link changes two hundred village states at once: one transaction). Only
committed events are published, and the publisher reads them back from the store's outbox,
so an event is never published without being in the history, and one produced while the
broker is away (or just before a crash) is delivered later.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from monitord.model import Check, MqttSettings, ProbeResult
from monitord.mqtt.publisher import MqttPublisher
from monitord.state.engine import StateEngine
from monitord.state.history import HISTORY_FILE, History, HistoryError
from monitord.state.model import EventKind, StateEvent, TargetStatus

log = logging.getLogger(__name__)

LOCK_FILE = "monitord.lock"
# A failed write (disk full, I/O error) is retried after this long; the events wait in memory.
WRITE_RETRY = 5.0


class StateTracker:
    def __init__(self, history: History, mqtt: MqttSettings | None, lock_fd: int = -1) -> None:
        self.engine = StateEngine()
        self._lock_fd = lock_fd
        self.history = history
        self._mqtt_settings = mqtt
        self.publisher: MqttPublisher | None = None
        # Events not yet committed, each with its target's status *as of that event*: the
        # status row is written with its event so a restart restores exactly the last stored
        # state, even when the engine has moved on while a batch was being written.
        self._unwritten: list[tuple[StateEvent, TargetStatus | None]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._run_id: int | None = None
        self._restored: dict[str, TargetStatus] = {}  # stored states, until the first set_checks
        # Other shards' targets, judged here only for their children's sake (monitord.shard):
        # their owner stores, publishes and exports them.
        self._borrowed: frozenset[str] = frozenset()
        self.events_written = 0
        self.write_failures = 0

    @classmethod
    async def open(cls, state_dir: str | Path, mqtt: MqttSettings | None) -> StateTracker:
        """Open (or create) the history under `state_dir`, which no other monitord may be
        using (two daemons would each publish and store every event). Raises HistoryError."""
        history = await History.open(Path(state_dir) / HISTORY_FILE)
        try:
            lock_fd = _lock(Path(state_dir) / LOCK_FILE)
        except HistoryError:
            await history.close()
            raise
        return cls(history, mqtt, lock_fd)

    def history_counts(self) -> tuple[int, int, int]:
        """(events written, events waiting to be written, write failures), for /metrics."""
        return self.events_written, len(self._unwritten), self.write_failures

    def statuses(self) -> Mapping[str, TargetStatus]:
        """The owned targets' statuses; safe to call from another thread."""
        statuses, borrowed = self.engine.statuses(), self._borrowed
        if not borrowed:
            return statuses
        return {target: s for target, s in statuses.items() if target not in borrowed}

    async def start(self) -> None:
        """Load the stored states (the first set_checks restores them, so a restart invents
        no events), then start writing and, if configured, publishing."""
        self._restored = await self.history.load_statuses()
        self._run_id = await self.history.record_run_start(time.time())
        self._tasks.append(asyncio.create_task(self._write_loop(), name="history-writer"))
        if self._mqtt_settings is not None:
            self.publisher = MqttPublisher(self._mqtt_settings, self.history, self.statuses)
            self._tasks.append(asyncio.create_task(self.publisher.run(), name="mqtt-publisher"))

    def set_checks(self, checks: Iterable[Check], borrowed: Iterable[Check] = ()) -> None:
        """The owned `checks`, and `borrowed` ones that only feed the engine."""
        borrowed = tuple(borrowed)
        before = set(self.statuses())
        restored, self._restored = self._restored, {}  # only new targets take them up anyway
        events = self.engine.set_checks((*checks, *borrowed), time.time(), restored)
        self._borrowed = frozenset(c.target for c in borrowed)
        self._accept(events)
        removed = before - set(self.statuses())
        if removed and self.publisher is not None:
            self.publisher.notify_removed(removed)

    def observe(self, result: ProbeResult) -> None:
        self._accept(self.engine.observe(result, time.time()))

    def _accept(self, events: list[StateEvent]) -> None:
        changed = self.engine.take_changed() - self._borrowed
        events = [e for e in events if e.target not in self._borrowed]
        if changed and self.publisher is not None:
            # The retained status is the current one; it need not wait for the history.
            self.publisher.notify_status(changed)
        for event in events:
            log_state_event(event)
        if events:
            self._unwritten.extend((e, self.engine.status(e.target)) for e in events)
            self._idle.clear()
            self._wake.set()

    async def _write_loop(self) -> None:
        failing_since = 0  # write_failures when the current failure streak began, 0 if none
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._unwritten:
                batch = self._unwritten[:]
                events = [event for event, _ in batch]
                latest = {event.target: status for event, status in batch}  # last one wins
                statuses = [s for s in latest.values() if s is not None]
                try:
                    await self.history.append(events, statuses, outbox=self.publisher is not None)
                except Exception as error:
                    self.write_failures += 1
                    failing_since = failing_since or self.write_failures
                    if failing_since == self.write_failures:  # the traceback once per outage
                        log.exception("cannot store %d state events; retrying every %gs",
                                      len(batch), WRITE_RETRY)
                    else:  # a full disk fails every retry: one short line, not a traceback
                        log.warning("still cannot store %d state events: %s", len(batch), error)
                    await asyncio.sleep(WRITE_RETRY)
                    continue
                if failing_since:
                    log.info("stored the %d state events held back since the history failed",
                             len(batch))
                    failing_since = 0
                del self._unwritten[:len(batch)]
                self.events_written += len(batch)
                if self.publisher is not None:
                    self.publisher.notify_events()
            self._idle.set()

    async def flush(self) -> None:
        """Wait until every event produced so far is committed."""
        if self._unwritten:
            await self._idle.wait()

    async def close(self) -> None:
        """Commit what is pending, stop publishing (offline status), close the history."""
        if self._tasks:
            try:
                await asyncio.wait_for(self.flush(), timeout=10.0)
            except TimeoutError:
                # Nothing can store them now (the disk is full or the history broken); their
                # state-change log lines above remain the record of them.
                log.error("stopping with %d state events not stored: %s", len(self._unwritten),
                          "; ".join(f"{e.target} {e.kind.value} at {e.time:.3f}"
                                    for e, _ in self._unwritten[:20]))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._run_id is not None:
            await self.history.record_run_stop(self._run_id, time.time())
        await self.history.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1


def _lock(path: Path) -> int:
    """An exclusive lock on `path` held while the daemon runs; the kernel drops it when the
    process dies, so a crash never leaves a stale lock behind."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise HistoryError(f"{path.parent} is in use by another monitord (pid {holder}); "
                           "give each daemon its own daemon.state_dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def log_state_event(event: StateEvent) -> None:
    """One line per state change (never per probe), with the event's fields for JSON logs."""
    if event.kind is EventKind.FLAPPING:
        what = "flapping started" if event.flapping else "flapping stopped"
    else:
        what = f"{event.from_state} -> {event.to_state}"
    root = f", root cause {event.root_cause}" if event.root_cause not in (None, event.target) \
        else ""
    log.info("%s: %s (%s%s)", event.target, what, event.reason, root,
             extra={"target": event.target, "event_kind": event.kind.value,
                    "from_state": event.from_state.value, "to_state": event.to_state.value,
                    "reason_code": event.reason_code.value, "root_cause": event.root_cause,
                    "event_id": event.id})
