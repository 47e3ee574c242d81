"""The event history on real SQLite files: round trips, the outbox, retention, refusing files
that are not ours, WAL/FULL durability settings, the asyncio facade's thread, and a writer
SIGKILLed mid-way."""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from monitord.state.history import (
    _SELECT_EVENTS_BETWEEN,
    _SELECT_TARGET_EVENTS_BETWEEN,
    HISTORY_FILE,
    SCHEMA_VERSION,
    History,
    HistoryError,
    HistoryStore,
    Run,
    read_statuses,
)
from monitord.state.model import (
    EventKind,
    Placement,
    ReasonCode,
    State,
    StateEvent,
    TargetStatus,
    new_event_id,
)

T0 = 1_767_225_600.123456789  # 2026-01-01, a fraction using every bit of the float: REAL keeps it

KABUPATEN = Placement(target="kab-demak", province="Jawa Tengah", kabupaten="Kab. Demak",
                      site="Diskominfo Demak", role="distribution", address="10.20.0.1",
                      name="Router Diskominfo", parent=None)
DESA = Placement(target="desa-wonosalam", province="Jawa Tengah", kabupaten="Kab. Demak",
                 site="Balai Desa Wonosalam", role="access", address="2001:db8::7", name="",
                 parent="kab-demak")


def event(placement: Placement, time_: float, from_state: State, to_state: State,
          kind: EventKind = EventKind.STATE, reason_code: ReasonCode = ReasonCode.PROBES_FAILED,
          root_cause: str | None = None, flapping: bool = False) -> StateEvent:
    return StateEvent(id=new_event_id(time_), time=time_, kind=kind, placement=placement,
                      from_state=from_state, to_state=to_state, reason=f"{to_state} at {time_}",
                      reason_code=reason_code, root_cause=root_cause, flapping=flapping)


def status_after(last: StateEvent, own_state: State | None = None) -> TargetStatus:
    return TargetStatus(placement=last.placement, state=last.to_state, since=last.time,
                        reason=last.reason, reason_code=last.reason_code,
                        root_cause=last.root_cause, own_state=own_state or last.to_state,
                        flapping=last.flapping)


def sample_events() -> list[StateEvent]:
    """Every kind, state and optional field at least once."""
    return [
        event(KABUPATEN, T0, State.UNKNOWN, State.UP, reason_code=ReasonCode.FIRST_PROBE),
        event(DESA, T0 + 0.5, State.UNKNOWN, State.DEGRADED,
              reason_code=ReasonCode.PROBES_DEGRADED),
        event(KABUPATEN, T0 + 60, State.UP, State.DOWN, root_cause="kab-demak"),
        event(DESA, T0 + 60.25, State.DEGRADED, State.UNREACHABLE,
              reason_code=ReasonCode.PARENT_DOWN, root_cause="kab-demak"),
        event(KABUPATEN, T0 + 61, State.DOWN, State.DOWN, kind=EventKind.FLAPPING,
              reason_code=ReasonCode.FLAPPING_STARTED, root_cause="kab-demak", flapping=True),
    ]


def seqs_of(events: list[StateEvent]) -> list[int]:
    seqs = [e.seq for e in events if e.seq is not None]
    assert len(seqs) == len(events)
    return seqs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    opened = HistoryStore(tmp_path / "state" / HISTORY_FILE)
    yield opened
    opened.close()


def assert_enum_types(stored: StateEvent) -> None:
    # StrEnum members equal their strings, so == alone would not notice a plain str.
    assert type(stored.kind) is EventKind
    assert type(stored.from_state) is State
    assert type(stored.to_state) is State
    assert type(stored.reason_code) is ReasonCode


def test_events_and_statuses_round_trip(store: HistoryStore) -> None:
    events = sample_events()
    statuses = [status_after(events[4]), status_after(events[3], own_state=State.DOWN)]

    stored = store.append(events, statuses, outbox=False)

    assert stored == [replace(e, seq=i) for i, e in enumerate(events, start=1)]
    read = store.events()
    assert read == stored
    for e in read:
        assert_enum_types(e)
    loaded = store.load_statuses()
    assert loaded == {"kab-demak": statuses[0], "desa-wonosalam": statuses[1]}
    assert loaded["desa-wonosalam"].own_state is State.DOWN
    assert loaded["kab-demak"].flapping is True
    assert type(loaded["kab-demak"].reason_code) is ReasonCode


def test_status_is_replaced_by_the_latest(store: HistoryStore) -> None:
    first, second = sample_events()[0], sample_events()[2]
    store.append([first], [status_after(first)], outbox=False)
    store.append([second], [status_after(second)], outbox=False)

    assert store.load_statuses() == {"kab-demak": status_after(second)}


def test_a_failed_batch_stores_nothing(store: HistoryStore) -> None:
    before = sample_events()[0]
    store.append([before], [status_after(before)], outbox=True)
    good = sample_events()[2]
    duplicate_id = replace(sample_events()[3], id=good.id)

    with pytest.raises(HistoryError, match=rf"cannot append events to {store.path}: UNIQUE"):
        store.append([good, duplicate_id], [status_after(good)], outbox=True)

    assert store.events() == [replace(before, seq=1)]
    assert store.load_statuses() == {"kab-demak": status_after(before)}
    assert store.pending_count() == 1


def test_outbox_oldest_first_with_limit_until_delivered(store: HistoryStore) -> None:
    stored = store.append(sample_events(), [], outbox=True)
    seqs = seqs_of(stored)

    assert store.pending_count() == 5
    assert store.pending(2) == stored[:2]
    store.delivered([seqs[3], seqs[0]])  # acknowledgements may come in any order
    assert store.pending(10) == [stored[1], stored[2], stored[4]]
    assert store.pending_count() == 3
    store.delivered([seqs[1], seqs[2], seqs[4]])
    assert store.pending(10) == []
    assert store.events() == stored  # delivered events stay in the history


def test_outbox_false_queues_nothing(store: HistoryStore) -> None:
    store.append(sample_events(), [], outbox=False)

    assert store.pending_count() == 0
    assert store.pending(10) == []
    assert len(store.events()) == 5


def test_events_by_time_range_and_target(store: HistoryStore) -> None:
    stored = store.append(sample_events(), [], outbox=False)

    assert store.events(since=T0 + 60) == stored[2:]  # since is inclusive
    assert store.events(until=T0 + 60) == stored[:2]  # until is exclusive
    assert store.events(since=T0 + 0.5, until=T0 + 61) == stored[1:4]
    assert store.events(target="desa-wonosalam") == [stored[1], stored[3]]
    assert store.events(since=T0 + 1, target="desa-wonosalam") == [stored[3]]
    assert store.events(target="nowhere") == []


def test_purge_keeps_undelivered_events(store: HistoryStore) -> None:
    old = store.append(sample_events()[:3], [], outbox=True)
    recent = store.append([event(DESA, T0 + 86_400, State.UNREACHABLE, State.UP)], [],
                          outbox=True)
    store.delivered(seqs_of([old[0], old[2], recent[0]]))

    assert store.purge(before=T0 + 3600) == 2

    assert store.events() == [old[1], recent[0]]
    assert store.pending(10) == [old[1]]
    store.delivered(seqs_of([old[1]]))
    assert store.purge(before=T0 + 3600) == 1
    assert store.events() == recent
    # Seqs are never reused, even once every event before them is gone.
    assert store.append([event(DESA, T0 + 86_401, State.UP, State.DOWN)], [],
                        outbox=False)[0].seq == 5


def test_runs_record_crashes_and_purge_keeps_the_ones_that_matter(store: HistoryStore) -> None:
    crashed = store.record_run_start(T0)
    clean = store.record_run_start(T0 + 100)
    store.record_run_stop(clean, T0 + 200)
    current = store.record_run_start(T0 + 300)

    assert store.runs() == [Run(crashed, T0, None), Run(clean, T0 + 100, T0 + 200),
                            Run(current, T0 + 300, None)]
    # A run is gone only once the run after it started before the cutoff.
    store.purge(before=T0 + 250)
    assert [r.id for r in store.runs()] == [clean, current]
    store.purge(before=T0 + 10_000)
    assert [r.id for r in store.runs()] == [current]
    with pytest.raises(HistoryError, match="no run 99"):
        store.record_run_stop(99, T0)


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    first = HistoryStore(path)
    events = sample_events()
    stored = first.append(events, [status_after(events[4])], outbox=True)
    first.delivered([1])
    run = first.record_run_start(T0)
    first.close()

    again = HistoryStore(path)
    try:
        assert again.events() == stored
        assert again.load_statuses() == {"kab-demak": status_after(events[4])}
        assert again.pending(10) == stored[1:]
        assert again.runs() == [Run(run, T0, None)]
        assert again.append([event(DESA, T0 + 90, State.UP, State.DOWN)], [],
                            outbox=False)[0].seq == 6
    finally:
        again.close()


def test_directory_and_file_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        HistoryStore(tmp_path / "state" / HISTORY_FILE).close()
    finally:
        os.umask(old_umask)

    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "state" / HISTORY_FILE).stat().st_mode & 0o777 == 0o640


def test_wal_and_synchronous_full_are_set(store: HistoryStore) -> None:
    db = store._db  # the store's own connection: synchronous is per connection
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # WAL is persistent: any later connection sees it too.
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_the_report_queries_use_the_indexes(store: HistoryStore) -> None:
    def plan(query: str, parameters: tuple[object, ...]) -> str:
        return str(store._db.execute(f"EXPLAIN QUERY PLAN {query}", parameters).fetchall())

    assert "INDEX events_by_time" in plan(_SELECT_EVENTS_BETWEEN, (0.0, 1.0))
    assert "INDEX events_by_target_time" in plan(_SELECT_TARGET_EVENTS_BETWEEN, ("a", 0.0, 1.0))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    HistoryStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 2}")
    db.close()
    digest = file_digest(path)

    expected = rf"{path} was written by a newer monitord \(schema {SCHEMA_VERSION + 2} > 1\)"
    with pytest.raises(HistoryError, match=expected):
        HistoryStore(path)
    with pytest.raises(HistoryError, match=expected):
        read_statuses(path)
    assert file_digest(path) == digest


def test_a_file_that_is_not_sqlite_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_bytes(b"monitord probe log\n" * 300)

    with pytest.raises(HistoryError, match=rf"{path} is not a monitord history database"):
        HistoryStore(path)

    assert path.read_bytes() == b"monitord probe log\n" * 300
    assert sorted(p.name for p in tmp_path.iterdir()) == [HISTORY_FILE]


def test_another_programs_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('jangan dihapus')")
    db.commit()
    db.close()
    digest = file_digest(path)

    with pytest.raises(HistoryError, match="is not a monitord history database"):
        HistoryStore(path)

    assert file_digest(path) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == [HISTORY_FILE]


def test_an_unusable_path_names_the_file(tmp_path: Path) -> None:
    # A path under a regular file fails for root too (unlike a permission error).
    (tmp_path / "state").write_text("not a directory")
    path = tmp_path / "state" / HISTORY_FILE

    with pytest.raises(HistoryError,
                       match=rf"^cannot open {path}: {path.parent} is not a directory$"):
        HistoryStore(path)


def test_an_unknown_stored_value_is_an_error_naming_the_file(store: HistoryStore) -> None:
    last = sample_events()[0]
    store.append([last], [status_after(last)], outbox=False)
    store._db.execute("UPDATE target_state SET reason_code = 'from_the_future'")

    with pytest.raises(HistoryError, match=rf"cannot read {store.path}: 'from_the_future'"):
        store.load_statuses()


def test_read_statuses_reads_while_the_daemon_writes(store: HistoryStore, tmp_path: Path) -> None:
    assert read_statuses(tmp_path / "missing" / HISTORY_FILE) == {}
    assert read_statuses(store.path) == {}  # set up, nothing stored yet
    last = sample_events()[4]
    store.append([last], [status_after(last)], outbox=False)

    assert read_statuses(store.path) == {"kab-demak": status_after(last)}
    # The read-only reader left the database writable for the daemon.
    again = sample_events()[0]
    store.append([again], [status_after(again)], outbox=False)
    assert read_statuses(store.path)["kab-demak"].state is State.UP


def test_read_statuses_refuses_what_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_bytes(b"x" * 1000)

    with pytest.raises(HistoryError, match="is not a monitord history database"):
        read_statuses(path)


async def test_history_runs_sqlite_off_the_event_loop_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: dict[str, int] = {}
    real_init, real_append = HistoryStore.__init__, HistoryStore.append

    def recording_init(self: HistoryStore, path: str | Path) -> None:
        threads["open"] = threading.get_ident()
        real_init(self, path)

    def recording_append(self: HistoryStore, events: list[StateEvent],
                         statuses: list[TargetStatus], outbox: bool) -> list[StateEvent]:
        threads["append"] = threading.get_ident()
        return real_append(self, events, statuses, outbox)

    monkeypatch.setattr(HistoryStore, "__init__", recording_init)
    monkeypatch.setattr(HistoryStore, "append", recording_append)
    history = await History.open(tmp_path / HISTORY_FILE)
    events = sample_events()

    stored = await history.append(events, [status_after(events[4])], outbox=True)

    assert threads["open"] == threads["append"] != threading.get_ident()
    assert await history.events(target="kab-demak") == [stored[0], stored[2], stored[4]]
    assert await history.events(since=T0 + 60, until=T0 + 61) == stored[2:4]
    assert await history.load_statuses() == {"kab-demak": status_after(events[4])}
    assert await history.pending(2) == stored[:2]
    await history.delivered([1, 2])
    assert await history.pending_count() == 3
    run = await history.record_run_start(T0)
    await history.record_run_stop(run, T0 + 1)
    assert await history.runs() == [Run(run, T0, T0 + 1)]
    assert await history.purge(before=T0 + 1) == 2
    await history.close()
    await history.close()  # idempotent

    with pytest.raises(HistoryError, match="is closed"):
        await history.pending_count()
    assert HistoryStore(tmp_path / HISTORY_FILE).pending_count() == 3


async def test_history_close_waits_for_queued_work(tmp_path: Path) -> None:
    history = await History.open(tmp_path / HISTORY_FILE)
    batches = [[event(DESA, T0 + i, State.UP, State.DOWN)] for i in range(50)]

    appends = [asyncio.create_task(history.append(batch, [], outbox=True)) for batch in batches]
    await asyncio.sleep(0)  # let every append queue its work in the thread

    await history.close()

    assert all(task.done() for task in appends)  # close waited for the queued appends
    assert [len(await task) for task in appends] == [1] * 50

    reopened = HistoryStore(tmp_path / HISTORY_FILE)
    try:
        assert reopened.pending_count() == 50
    finally:
        reopened.close()


async def test_history_open_failure_is_a_history_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(HistoryError, match="not a directory"):
        await History.open(tmp_path / "file" / HISTORY_FILE)


WRITER = Path(__file__).with_name("history_writer.py")
KILL_AFTER_EVENTS = 200
WRITER_MAX_EVENTS = 2000


def read_committed_until(process: subprocess.Popen[bytes], wanted: int, timeout: float) -> int:
    """Reads the writer's commit counts until one reaches `wanted`; returns the last one."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffered, committed = b"", 0
    deadline = time.monotonic() + timeout
    while committed < wanted and (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break  # the writer ended
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        if lines:
            committed = int(lines[-1])
    return committed


def test_a_writer_killed_mid_way_leaves_a_consistent_database(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    writer = subprocess.Popen([sys.executable, str(WRITER), str(path), str(WRITER_MAX_EVENTS)],
                              stdout=subprocess.PIPE)
    try:
        committed = read_committed_until(writer, KILL_AFTER_EVENTS, timeout=20)
        still_running = writer.poll() is None
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=10)
        assert writer.stdout is not None
        writer.stdout.close()
    assert committed >= KILL_AFTER_EVENTS
    assert still_running, "the writer finished before it could be killed mid-way"

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    store = HistoryStore(path)
    try:
        events = store.events()
        statuses = store.load_statuses()
        pending = store.pending_count()
    finally:
        store.close()

    assert len(events) >= committed  # every commit the writer reported survived
    assert len(events) < WRITER_MAX_EVENTS
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.id for e in events}) == len(events)
    assert pending == len(events)
    last_by_target = {e.target: e for e in events}
    assert statuses.keys() == last_by_target.keys()
    for target, last in last_by_target.items():
        assert statuses[target].state == last.to_state
        assert statuses[target].since == last.time
