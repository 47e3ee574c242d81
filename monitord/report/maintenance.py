"""Maintenance windows added from the command line (`monitord maintenance add`), kept in
STATE_DIR/maintenance.sqlite3: a file of its own, so the history's schema stays the daemon's,
and the daemon never has to open it (only reports read it)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitord.report.settings import MaintenanceWindow, TargetSelector
from monitord.sqlite_file import BUSY_TIMEOUT, SqliteFile

__all__ = ["MAINTENANCE_FILE", "MaintenanceError", "MaintenanceStore", "StoredWindow",
           "read_windows"]

MAINTENANCE_FILE = "maintenance.sqlite3"
APPLICATION_ID = int.from_bytes(b"MNTW", "big")  # marks the file as ours
SCHEMA_VERSION = 1

_SCHEMA = """
    CREATE TABLE windows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a removed id stays gone
        start_time REAL NOT NULL,
        end_time REAL NOT NULL CHECK (end_time > start_time),
        targets TEXT NOT NULL,  -- JSON arrays of ids; a window matches like TargetSelector
        sites TEXT NOT NULL,
        kabupaten TEXT NOT NULL,
        roles TEXT NOT NULL,
        reason TEXT NOT NULL,
        created REAL NOT NULL
    );
"""
_SELECT = ("SELECT id, start_time, end_time, targets, sites, kabupaten, roles, reason, created "
           "FROM windows")


class MaintenanceError(Exception):
    """The maintenance file cannot be opened, read or written; the message names it."""


_FILE = SqliteFile("maintenance file", APPLICATION_ID, SCHEMA_VERSION, MaintenanceError)


@dataclass(frozen=True, slots=True)
class StoredWindow:
    id: int
    window: MaintenanceWindow
    created: float


class MaintenanceStore:
    """The windows file, opened for writing (by the CLI only)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _FILE.create_private(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as error:
            raise MaintenanceError(f"cannot open {self.path}: {error}") from error
        try:
            with self._failing("set up"):
                if _FILE.version_of(self._db, self.path) == 0:
                    self._db.executescript(
                        f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA application_id = {APPLICATION_ID};"
                        f" PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        except BaseException:
            self._db.close()
            raise

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise MaintenanceError(f"cannot {what} {self.path}: {error}") from error

    def add(self, window: MaintenanceWindow, now: float) -> StoredWindow:
        selector = window.selector
        with self._failing("add a window to"):
            cursor = self._db.execute(
                "INSERT INTO windows (start_time, end_time, targets, sites, kabupaten, roles, "
                "reason, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (window.start, window.end, *(_ids(values) for values in (
                    selector.targets, selector.sites, selector.kabupaten, selector.roles)),
                 window.reason, now))
        assert cursor.lastrowid is not None
        return StoredWindow(cursor.lastrowid, _sourced(window, cursor.lastrowid), now)

    def remove(self, window_id: int) -> bool:
        with self._failing("remove a window from"):
            return self._db.execute("DELETE FROM windows WHERE id = ?",
                                    (window_id,)).rowcount == 1

    def windows(self) -> list[StoredWindow]:
        with self._failing("read"):
            return _decode(self._db.execute(f"{_SELECT} ORDER BY start_time, id").fetchall(),
                           self.path)

    def close(self) -> None:
        self._db.close()


def read_windows(path: str | Path) -> list[StoredWindow]:
    """The stored windows, read only; none if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return []
    with contextlib.closing(_FILE.open_read_only(path)) as db:
        try:
            if _FILE.version_of(db, path) == 0:
                return []
            return _decode(db.execute(f"{_SELECT} ORDER BY start_time, id").fetchall(), path)
        except sqlite3.Error as error:
            raise MaintenanceError(f"cannot read {path}: {error}") from error


def _ids(values: frozenset[str]) -> str:
    return json.dumps(sorted(values))


def _sourced(window: MaintenanceWindow, window_id: int) -> MaintenanceWindow:
    return MaintenanceWindow(window.start, window.end, window.selector, window.reason,
                             source=f"state #{window_id}")


def _decode(rows: Sequence[Sequence[Any]], path: Path) -> list[StoredWindow]:
    stored = []
    for window_id, start, end, targets, sites, kabupaten, roles, reason, created in rows:
        try:
            selector = TargetSelector(*(frozenset(json.loads(v))
                                        for v in (targets, sites, kabupaten, roles)))
            window = MaintenanceWindow(start, end, selector, reason, source="state")
        except (ValueError, TypeError) as error:
            raise MaintenanceError(f"cannot read window {window_id} of {path}: {error}") \
                from error
        stored.append(StoredWindow(window_id, _sourced(window, window_id), created))
    return stored
