"""The durable event history: every StateEvent in an embedded SQLite database, with the
targets' current status and the MQTT outbox updated in the same transaction.

Crash safety comes from WAL with synchronous=FULL and one transaction per batch: a batch is
either wholly stored (events, statuses, outbox rows) or not at all, so the statuses restored on
start always match the last stored event and a restart never invents events.

HistoryStore is synchronous and bound to the thread that opened it; History runs one in a
single worker thread so that commits (fsyncs) never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from monitord.sqlite_file import BUSY_TIMEOUT, SqliteFile
from monitord.state.model import EventKind, Placement, ReasonCode, State, StateEvent, TargetStatus

__all__ = ["HISTORY_FILE", "SCHEMA_VERSION", "History", "HistoryError", "HistorySnapshot",
           "HistoryStore", "Run", "read_snapshot", "read_statuses"]

HISTORY_FILE = "history.sqlite3"  # name of the database inside the daemon's state directory
# PRAGMA application_id marks the file as ours ("MNTD"), so a foreign database is never touched.
APPLICATION_ID = int.from_bytes(b"MNTD", "big")

# MIGRATIONS[n] brings a database from schema n to n + 1; PRAGMA user_version holds n.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused after a purge
        id TEXT NOT NULL UNIQUE,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        province TEXT NOT NULL,
        kabupaten TEXT NOT NULL,
        site TEXT NOT NULL,
        role TEXT NOT NULL,
        address TEXT NOT NULL,
        name TEXT NOT NULL,
        parent TEXT,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        reason_code TEXT NOT NULL,
        root_cause TEXT,
        flapping INTEGER NOT NULL CHECK (flapping IN (0, 1))
    );
    CREATE INDEX events_by_target_time ON events (target, time);
    CREATE INDEX events_by_time ON events (time);
    CREATE TABLE target_state (
        target TEXT PRIMARY KEY,
        province TEXT NOT NULL,
        kabupaten TEXT NOT NULL,
        site TEXT NOT NULL,
        role TEXT NOT NULL,
        address TEXT NOT NULL,
        name TEXT NOT NULL,
        parent TEXT,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        reason TEXT NOT NULL,
        reason_code TEXT NOT NULL,
        root_cause TEXT,
        own_state TEXT NOT NULL,
        flapping INTEGER NOT NULL CHECK (flapping IN (0, 1))
    );
    -- Events the broker has not acknowledged yet; the FK keeps purge from orphaning them.
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY REFERENCES events (seq));
    -- When monitord was watching: a NULL stop that is not the last run is a crash.
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started REAL NOT NULL,
        stopped REAL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_EVENT_COLUMNS = ("seq, id, time, kind, target, province, kabupaten, site, role, address, name, "
                  "parent, from_state, to_state, reason, reason_code, root_cause, flapping")
_STATUS_COLUMNS = ("target, province, kabupaten, site, role, address, name, parent, state, since, "
                   "reason, reason_code, root_cause, own_state, flapping")

_INSERT_EVENT = """
    INSERT INTO events (id, time, kind, target, province, kabupaten, site, role, address, name,
                        parent, from_state, to_state, reason, reason_code, root_cause, flapping)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPSERT_STATUS = """
    INSERT OR REPLACE INTO target_state (target, province, kabupaten, site, role, address, name,
                                         parent, state, since, reason, reason_code, root_cause,
                                         own_state, flapping)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# Built once from the constant column lists above; nothing from outside goes into the SQL.
_SELECT_STATUSES = f"SELECT {_STATUS_COLUMNS} FROM target_state"  # noqa: S608
_SELECT_EVENTS_BETWEEN = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE time >= ? AND time < ? ORDER BY seq")  # noqa: S608
_SELECT_TARGET_EVENTS_BETWEEN = (
    f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608
    "WHERE target = ? AND time >= ? AND time < ? ORDER BY seq")
_SELECT_LAST_STATE_BEFORE = (
    f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608
    "WHERE target = ? AND time < ? AND kind = 'state' ORDER BY time DESC, seq DESC LIMIT 1")
_SELECT_PENDING = (
    f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608
    "WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?) ORDER BY seq")


class HistoryError(Exception):
    """The history database cannot be opened, read or written; the message names the file."""


_FILE = SqliteFile("history database", APPLICATION_ID, SCHEMA_VERSION, HistoryError)


@dataclass(frozen=True, slots=True)
class Run:
    """One period monitord was running; stopped is None while running or after a crash."""

    id: int
    started: float
    stopped: float | None


class HistoryStore:
    """The history database. Synchronous, and usable only from the thread that opened it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _FILE.create_private(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as error:
            raise HistoryError(f"cannot open {self.path}: {error}") from error
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        # Identify the file before anything writes to it: a foreign file must stay untouched.
        version = _FILE.version_of(self._db, self.path)
        with self._failing("set up"):
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":  # e.g. a file system without shared memory
                raise HistoryError(f"cannot use WAL journal for {self.path} (got {mode!r})")
            # Not persistent: every connection must set these itself.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            for step in range(version, SCHEMA_VERSION):
                self._migrate(step)

    def _migrate(self, step: int) -> None:
        # One transaction per step, the version included. In the script itself, because
        # executescript commits any open transaction before it starts (Python 3.11).
        try:
            self._db.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[step]}; PRAGMA application_id = {APPLICATION_ID}; "
                f"PRAGMA user_version = {step + 1}; COMMIT;")
        except BaseException:
            if self._db.in_transaction:
                self._db.rollback()
            raise

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Turns SQLite's errors into a HistoryError naming the file and the operation."""
        try:
            yield
        except sqlite3.Error as error:
            raise HistoryError(f"cannot {what} {self.path}: {error}") from error

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so another
        # writer cannot make a batch fail half way with SQLITE_BUSY. WAL readers never block.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                self._db.rollback()
            raise
        self._db.execute("COMMIT")

    def append(self, events: Sequence[StateEvent], statuses: Sequence[TargetStatus],
               outbox: bool) -> list[StateEvent]:
        """Stores events (and queues them for MQTT if `outbox`) and the targets' statuses in one
        transaction. Returns the events with their seq set; any seq they came with is ignored."""
        if not events and not statuses:
            return []
        stored: list[StateEvent] = []
        with self._failing("append events to"), self._transaction():
            for event in events:
                cursor = self._db.execute(_INSERT_EVENT, _event_row(event))
                seq = cursor.lastrowid
                assert seq is not None  # an INSERT into a rowid table always has one
                stored.append(replace(event, seq=seq))
            if outbox:
                self._db.executemany("INSERT INTO outbox (seq) VALUES (?)",
                                     [(event.seq,) for event in stored])
            self._db.executemany(_UPSERT_STATUS, [_status_row(status) for status in statuses])
        return stored

    def load_statuses(self) -> dict[str, TargetStatus]:
        with self._failing("read statuses from"):
            rows = self._db.execute(_SELECT_STATUSES).fetchall()
        return _statuses_from_rows(rows, self.path)

    def pending(self, limit: int) -> list[StateEvent]:
        """Events not yet acknowledged by the broker, oldest first."""
        with self._failing("read the outbox of"):
            rows = self._db.execute(_SELECT_PENDING, (limit,)).fetchall()
        return [_event_from_row(row, self.path) for row in rows]

    def pending_count(self) -> int:
        with self._failing("read the outbox of"):
            count: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return count

    def delivered(self, seqs: Sequence[int]) -> None:
        """Removes acknowledged events from the outbox (the events themselves stay)."""
        with self._failing("update the outbox of"), self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs])

    def events(self, since: float | None = None, until: float | None = None,
               target: str | None = None) -> list[StateEvent]:
        """Events with since <= time < until (either bound optional), of one target or all,
        in the order they were stored."""
        bounds = (-math.inf if since is None else since, math.inf if until is None else until)
        with self._failing("read events from"):
            if target is None:
                rows = self._db.execute(_SELECT_EVENTS_BETWEEN, bounds)
            else:
                rows = self._db.execute(_SELECT_TARGET_EVENTS_BETWEEN, (target, *bounds))
            return [_event_from_row(row, self.path) for row in rows]

    def purge(self, before: float) -> int:
        """Deletes events older than `before` except those still in the outbox, and runs wholly
        before it (those followed by a run that started before it). Returns events deleted."""
        with self._failing("purge"), self._transaction():
            deleted = self._db.execute(
                "DELETE FROM events WHERE time < ? AND seq NOT IN (SELECT seq FROM outbox)",
                (before,)).rowcount
            self._db.execute(
                "DELETE FROM runs WHERE id < (SELECT max(id) FROM runs WHERE started < ?)",
                (before,))
        return deleted

    def record_run_start(self, now: float) -> int:
        with self._failing("record the run start in"), self._transaction():
            run_id = self._db.execute("INSERT INTO runs (started) VALUES (?)", (now,)).lastrowid
        assert run_id is not None
        return run_id

    def record_run_stop(self, run_id: int, now: float) -> None:
        with self._failing("record the run stop in"), self._transaction():
            updated = self._db.execute("UPDATE runs SET stopped = ? WHERE id = ?",
                                       (now, run_id)).rowcount
        if updated != 1:
            raise HistoryError(f"cannot record the run stop in {self.path}: no run {run_id}")

    def runs(self) -> list[Run]:
        """Every run still kept, oldest first: the report's record of when monitord watched."""
        with self._failing("read runs from"):
            rows = self._db.execute("SELECT id, started, stopped FROM runs ORDER BY id").fetchall()
        return [Run(id=row[0], started=row[1], stopped=row[2]) for row in rows]

    def close(self) -> None:
        with self._failing("close"):
            try:
                self._db.execute("PRAGMA optimize")  # cheap; keeps the report queries' plans good
            finally:
                self._db.close()


_P = ParamSpec("_P")
_T = TypeVar("_T")


class History:
    """The history store for asyncio code: every call runs in one dedicated thread, the one that
    opened the database. A cancelled call still completes there (a commit cannot be undone)."""

    def __init__(self, store: HistoryStore, executor: ThreadPoolExecutor) -> None:
        self._store = store  # touched only from the executor's thread
        self._executor = executor
        self._closed = False
        self.path = store.path

    @classmethod
    async def open(cls, path: str | Path) -> History:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitord-history")
        try:
            store = await asyncio.get_running_loop().run_in_executor(executor, HistoryStore, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def _run(self, method: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._closed:
            raise HistoryError(f"{self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(method, *args, **kwargs))

    async def append(self, events: Sequence[StateEvent], statuses: Sequence[TargetStatus],
                     outbox: bool) -> list[StateEvent]:
        return await self._run(self._store.append, events, statuses, outbox)

    async def load_statuses(self) -> dict[str, TargetStatus]:
        return await self._run(self._store.load_statuses)

    async def pending(self, limit: int) -> list[StateEvent]:
        return await self._run(self._store.pending, limit)

    async def pending_count(self) -> int:
        return await self._run(self._store.pending_count)

    async def delivered(self, seqs: Sequence[int]) -> None:
        await self._run(self._store.delivered, seqs)

    async def events(self, since: float | None = None, until: float | None = None,
                     target: str | None = None) -> list[StateEvent]:
        return await self._run(self._store.events, since, until, target)

    async def purge(self, before: float) -> int:
        return await self._run(self._store.purge, before)

    async def record_run_start(self, now: float) -> int:
        return await self._run(self._store.record_run_start, now)

    async def record_run_stop(self, run_id: int, now: float) -> None:
        await self._run(self._store.record_run_stop, run_id, now)

    async def runs(self) -> list[Run]:
        return await self._run(self._store.runs)

    async def close(self) -> None:
        """Waits for the calls already queued, closes the database and stops the thread."""
        if self._closed:
            return
        self._closed = True  # later calls fail at once rather than queue behind the close
        try:
            # Queued behind the work already submitted: one thread, first in first out.
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.close)
        except BaseException:
            self._executor.shutdown(wait=False)  # the thread finishes its queue, then ends
            raise
        self._executor.shutdown(wait=True)  # idle by now: returns at once


def read_statuses(path: str | Path) -> dict[str, TargetStatus]:
    """The stored statuses, read through a read-only connection (for the CLI, while the daemon
    may be writing). {} if there is no database yet."""
    path = Path(path)
    if not path.exists():
        return {}
    with contextlib.closing(_FILE.open_read_only(path)) as db:
        try:
            if _FILE.version_of(db, path) == 0:
                return {}  # an empty file, not yet set up by the daemon
            rows = db.execute(_SELECT_STATUSES).fetchall()
        except sqlite3.Error as error:
            raise HistoryError(f"cannot read statuses from {path}: {error}") from error
    return _statuses_from_rows(rows, path)


class HistorySnapshot:
    """A read-only view of the history at one moment, for reports: every query sees the same
    snapshot, so events and runs the daemon adds meanwhile can't make them disagree.
    Queries raise sqlite3.Error; read_snapshot turns those into HistoryError."""

    def __init__(self, db: sqlite3.Connection, path: Path, version: int) -> None:
        self._db = db
        self.path = path
        self.empty = version == 0  # a file not yet set up by the daemon

    def events_between(self, since: float, until: float) -> list[StateEvent]:
        """Events with since <= time < until, in the order they were stored."""
        return [_event_from_row(row, self.path)
                for row in self._db.execute(_SELECT_EVENTS_BETWEEN, (since, until))]

    def targets(self) -> list[str]:
        """Every target that ever had an event (statuses are never deleted)."""
        return [row[0] for row in self._db.execute("SELECT target FROM target_state")]

    def last_state_event_before(self, target: str, before: float) -> StateEvent | None:
        row = self._db.execute(_SELECT_LAST_STATE_BEFORE, (target, before)).fetchone()
        return None if row is None else _event_from_row(row, self.path)

    def last_event_time(self, since: float, until: float) -> float | None:
        found: float | None = self._db.execute(
            "SELECT max(time) FROM events WHERE time >= ? AND time < ?", (since, until)
        ).fetchone()[0]
        return found

    def runs(self) -> list[Run]:
        return [Run(id=r[0], started=r[1], stopped=r[2]) for r in self._db.execute(
            "SELECT id, started, stopped FROM runs ORDER BY id")]


@contextlib.contextmanager
def read_snapshot(path: Path) -> Iterator[HistorySnapshot]:
    """A HistorySnapshot of an existing database, through a read-only connection (the daemon
    may be writing: WAL readers never block it, nor it them)."""
    with contextlib.closing(_FILE.open_read_only(path)) as db:
        try:
            version = _FILE.version_of(db, path)
            db.execute("BEGIN")  # one snapshot for every query
            yield HistorySnapshot(db, path, version)
        except sqlite3.Error as error:
            raise HistoryError(f"cannot read the history in {path}: {error}") from error


def _placement_row(placement: Placement) -> tuple[str | None, ...]:
    return (placement.target, placement.province, placement.kabupaten, placement.site,
            placement.role, placement.address, placement.name, placement.parent)


def _event_row(event: StateEvent) -> tuple[Any, ...]:
    return (event.id, event.time, event.kind.value, *_placement_row(event.placement),
            event.from_state.value, event.to_state.value, event.reason, event.reason_code.value,
            event.root_cause, int(event.flapping))


def _status_row(status: TargetStatus) -> tuple[Any, ...]:
    return (*_placement_row(status.placement), status.state.value, status.since, status.reason,
            status.reason_code.value, status.root_cause, status.own_state.value,
            int(status.flapping))


def _placement_from(columns: Sequence[Any]) -> Placement:
    target, province, kabupaten, site, role, address, name, parent = columns
    return Placement(target=target, province=province, kabupaten=kabupaten, site=site, role=role,
                     address=address, name=name, parent=parent)


def _event_from_row(row: Sequence[Any], path: Path) -> StateEvent:
    with _decoding(path):
        return StateEvent(
            seq=row[0], id=row[1], time=row[2], kind=EventKind(row[3]),
            placement=_placement_from(row[4:12]), from_state=State(row[12]),
            to_state=State(row[13]), reason=row[14], reason_code=ReasonCode(row[15]),
            root_cause=row[16], flapping=bool(row[17]))


def _statuses_from_rows(rows: Sequence[Sequence[Any]], path: Path) -> dict[str, TargetStatus]:
    statuses: dict[str, TargetStatus] = {}
    for row in rows:
        with _decoding(path):
            status = TargetStatus(
                placement=_placement_from(row[0:8]), state=State(row[8]), since=row[9],
                reason=row[10], reason_code=ReasonCode(row[11]), root_cause=row[12],
                own_state=State(row[13]), flapping=bool(row[14]))
        statuses[status.target] = status
    return statuses


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    # An enum value this monitord does not know: written by a newer one within the same schema.
    try:
        yield
    except ValueError as error:
        raise HistoryError(f"cannot read {path}: {error}") from error
