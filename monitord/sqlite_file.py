"""monitord's own SQLite files (the event history, the maintenance windows): created private,
identified by PRAGMA application_id before anything writes to them (a foreign or newer file
is refused and left untouched), and opened read-only by the commands that only look."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

# How long to wait for a lock another connection (the daemon, a CLI) holds.
BUSY_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SqliteFile:
    """One kind of file: what to call it in errors, its marks, and the error to raise."""

    description: str  # "history database", "maintenance file"
    application_id: int
    schema_version: int
    error: type[Exception]

    def create_private(self, path: Path) -> None:
        """The directory (0750) and an empty file (0640) if missing: SQLite would create the
        file world-readable, and gives its -wal and -shm files the file's mode."""
        try:
            try:
                path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            except FileExistsError:  # what mkdir says when the directory is a file
                raise self.error(f"cannot open {path}: {path.parent} is not a directory") \
                    from None
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
        except OSError as error:
            raise self.error(f"cannot open {path}: {(error.strerror or str(error)).lower()}") \
                from error

    def version_of(self, db: sqlite3.Connection, path: Path) -> int:
        """The file's schema version (0: empty, to be set up) after making sure it is ours
        and not from a newer monitord. Only reads."""
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version: int = db.execute("PRAGMA user_version").fetchone()[0]
            objects = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as error:  # "file is not a database", encrypted, ...
            raise self.error(f"{path} is not a monitord {self.description} ({error})") \
                from error
        if (application_id, version, objects) == (0, 0, 0):
            return 0
        if application_id != self.application_id:
            raise self.error(f"{path} is not a monitord {self.description} "
                             "(an SQLite database of some other program)")
        if version > self.schema_version:
            raise self.error(f"{path} was written by a newer monitord "
                             f"(schema {version} > {self.schema_version})")
        return version

    def open_read_only(self, path: Path) -> sqlite3.Connection:
        try:
            return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=BUSY_TIMEOUT)
        except sqlite3.Error as error:
            raise self.error(f"cannot open {path}: {error}") from error
