"""SQLite specifics: connection set-up and options, busy handling, reads beside a writer,
and wake-ups (local, cross-process through ``PRAGMA data_version``, delayed jobs)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from ferroq_core import make_plugin_manager
from ferroq_core.errors import BackendBusy, ConfigError, DatabaseError, SchemaMissing
from ferroq_core.records import EnqueueRequest
from ferroq_core.runtime import open_backend
from ferroq_sqlite.backend import SqliteBackend
from ferroq_sqlite.watch import PollInterval


def _req(queue: str = "q", **fields: Any) -> EnqueueRequest:
    return EnqueueRequest(queue=queue, job_type="t:Job", payload="{}", **fields)


def _pragma(backend: SqliteBackend, name: str) -> Any:
    with backend.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


# -- options and connection set-up ------------------------------------------------------------
def test_default_pragmas(backend: SqliteBackend) -> None:
    assert _pragma(backend, "journal_mode") == "wal"
    assert _pragma(backend, "synchronous") == 1  # NORMAL
    assert _pragma(backend, "busy_timeout") == 5000
    assert _pragma(backend, "foreign_keys") == 1


def test_url_query_sets_options(db_path: str) -> None:
    url = f"sqlite:///{db_path}?synchronous=full&busy_timeout=2.5&busy_retries=1&poll_max=0.2"
    b = SqliteBackend.from_url(url)
    try:
        assert b.options.synchronous == "FULL"
        assert (b.options.busy_timeout, b.options.busy_retries) == (2.5, 1)
        assert b.options.poll_max == 0.2
        assert _pragma(b, "synchronous") == 2
        assert _pragma(b, "busy_timeout") == 2500
        assert "synchronous" not in b.engine.url.query, "ferroq keys never reach the driver"
    finally:
        b.close()


@pytest.mark.parametrize("value", ["none", "None"])
def test_poll_max_none_lets_the_interval_grow_to_the_sleep(db_path: str, value: str) -> None:
    b = SqliteBackend.from_url(f"sqlite:///{db_path}?poll_max={value}")
    try:
        assert b.options.poll_max is None
    finally:
        b.close()


def test_keyword_options_win_over_the_url(db_path: str) -> None:
    b = open_backend(
        f"sqlite:///{db_path}?synchronous=FULL",
        make_plugin_manager(),
        {"synchronous": "OFF", "busy_timeout": 1},
    )
    assert isinstance(b, SqliteBackend)
    try:
        assert _pragma(b, "synchronous") == 0
        assert _pragma(b, "busy_timeout") == 1000
    finally:
        b.close()


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ("?synchronous=FAST", {}, "synchronous must be one of"),
        ("?busy_timeout=-1", {}, "busy_timeout must be a finite number greater than 0"),
        ("?busy_timeout=soon", {}, "busy_timeout: expected a number, got 'soon'"),
        ("?busy_timeout=inf", {}, "busy_timeout: expected a finite number"),
        ("", {"busy_timeout": float("inf")}, "busy_timeout: expected a finite number"),
        ("?busy_timout=1", {}, "unknown SQLite option in the database URL: busy_timout"),
        ("", {"busy_retries": -1}, "busy_retries must not be negative"),
        ("", {"journal": "DELETE"}, "unknown SQLite backend option"),
    ],
)
def test_bad_options_are_config_errors(
    db_path: str, query: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        SqliteBackend.from_url(f"sqlite:///{db_path}{query}", **options)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_database_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="not an in-memory database"):
        SqliteBackend.from_url(url)


def test_engine_can_be_passed_in(db_path: str) -> None:
    engine = sa.create_engine(f"sqlite:///{db_path}")
    b = SqliteBackend.from_url(engine, synchronous="FULL", busy_timeout=2)
    try:
        b.migrate()
        assert _pragma(b, "synchronous") == 2
        assert _pragma(b, "busy_timeout") == 2000
        assert b.enqueue([_req()])[0].id == 1
    finally:
        b.close()


def test_ids_are_never_reused(backend: SqliteBackend) -> None:
    (first,) = backend.enqueue([_req()])
    (row,) = backend.claim(["q"], "h:1:a", 1)
    assert backend.complete([row.lease]) == {first.id}
    (second,) = backend.enqueue([_req()])
    assert second.id > first.id


def test_bulk_ids_follow_a_deleted_newest_row(backend: SqliteBackend) -> None:
    # The bulk path reads the new ids back as a range above the largest id it saw: with the
    # newest row deleted, AUTOINCREMENT continues past it and the range still holds them all.
    first, second = backend.enqueue([_req(), _req()])
    rows = backend.claim(["q"], "h:1:a", 2)
    assert backend.complete([r.lease for r in rows]) == {first.id, second.id}
    results = backend.enqueue([EnqueueRequest("q", "t:Job", f'{{"n":{i}}}') for i in range(3)])
    ids = [r.id for r in results]
    assert ids == [second.id + 1, second.id + 2, second.id + 3]
    with backend.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT id, payload FROM ferroq_jobs ORDER BY id").all()
    assert [tuple(r) for r in stored] == [(ids[i], f'{{"n":{i}}}') for i in range(3)]


def test_bulk_insert_refuses_rows_it_did_not_write(backend: SqliteBackend, db_path: str) -> None:
    # A trigger stands in for any other writer inside the transaction: the ids above the
    # previous largest are then not all ours, so nothing may be committed or returned.
    raw = sqlite3.connect(db_path)
    raw.execute(
        "CREATE TRIGGER twin AFTER INSERT ON ferroq_jobs WHEN NEW.queue = 'twin' BEGIN"
        " INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
        " max_attempts, available_at, created_at) VALUES ('echo', NEW.job_type, NEW.payload,"
        " 'pending', 0, 0, 1, NEW.available_at, NEW.created_at); END"
    )
    raw.commit()
    raw.close()
    with pytest.raises(DatabaseError, match="another writer"):
        backend.enqueue([_req("twin"), _req("twin")])
    assert backend.get_stats().total == 0


# -- locks ----------------------------------------------------------------------------------
class WriteLockHolder:
    """Another connection (as another process would) holding the write lock."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_lock_outlasting_the_busy_timeout_is_retried(db_path: str) -> None:
    b = SqliteBackend.from_url(f"sqlite:///{db_path}", busy_timeout=0.1, busy_retries=50)
    b.migrate()
    holder = WriteLockHolder(db_path)
    result: list[Any] = []
    writer = threading.Thread(target=lambda: result.append(b.enqueue([_req()])))
    writer.start()
    deadline = time.monotonic() + 30
    while b.busy_retried < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    holder.release()
    writer.join(30)
    assert b.busy_retried >= 2
    assert len(result) == 1, "the write went through once the lock was free"
    assert b.get_stats().pending == 1
    b.close()


@pytest.mark.timing
def test_a_claim_takes_the_lock_soon_after_another_process_lets_go(
    backend: SqliteBackend, db_path: str
) -> None:
    # SQLite's own busy handler would sleep 1, 2, 5, ... ms between tries and wake 28 ms after
    # a 150 ms lock ends; the worker's writes try again within a millisecond or so.
    backend.enqueue([_req(), _req()])
    holder = WriteLockHolder(db_path)
    released: list[float] = []

    def release_later() -> None:
        time.sleep(0.15)
        released.append(time.monotonic())
        holder.release()

    threading.Thread(target=release_later).start()
    rows = backend.claim(["q"], "h:1:a", 2)
    late = time.monotonic() - released[0]
    assert len(rows) == 2
    assert late < 0.015, f"took the lock {late * 1000:.1f} ms after it was released"
    assert _pragma(backend, "busy_timeout") == 5000, "the connection's busy timeout is back"


def test_lock_held_past_every_retry_raises_backend_busy(db_path: str) -> None:
    b = SqliteBackend.from_url(f"sqlite:///{db_path}", busy_timeout=0.1, busy_retries=2)
    b.migrate()
    holder = WriteLockHolder(db_path)
    try:
        start = time.monotonic()
        with pytest.raises(BackendBusy) as info:
            b.claim(["q"], "h:1:a", 5)
        assert time.monotonic() - start < 10
        message = str(info.value)
        assert "busy_timeout" in message
        assert "database is locked" not in message
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.release()
        b.close()


@pytest.mark.timing
def test_reads_do_not_wait_for_a_writer(backend: SqliteBackend, db_path: str) -> None:
    (job,) = backend.enqueue([_req()])
    holder = WriteLockHolder(db_path)  # the busy timeout is 5 s: a read that waited would show
    try:
        start = time.monotonic()
        assert backend.get_stats().pending == 1
        assert backend.get_job(job.id) is not None
        assert len(backend.list_jobs()) == 1
        backend.now()
        backend.check_schema()
        assert time.monotonic() - start < 2.5
    finally:
        holder.release()


def test_a_missing_table_is_schema_missing_on_every_write_path(db_path: str) -> None:
    # Plain jobs are written on the sqlite3 connection itself, alone, next to keyed jobs and
    # inside a caller's transaction: the driver's error must come out as ferroq's every time.
    b = SqliteBackend.from_url(f"sqlite:///{db_path}")  # never migrated
    try:
        with pytest.raises(SchemaMissing):
            b.enqueue([_req()])
        with pytest.raises(SchemaMissing):
            b.enqueue([_req(), _req(idempotency_key="k")])
        with pytest.raises(SchemaMissing):
            b.claim(["q"], "h:1:a", 5)
        with b.engine.connect() as conn, pytest.raises(SchemaMissing):
            b.enqueue([_req()], connection=conn)
    finally:
        b.close()


# -- wake-ups -------------------------------------------------------------------------------
def _timed_wait(backend: SqliteBackend, queues: list[str], timeout: float) -> tuple[bool, float]:
    start = time.monotonic()
    woke = backend.wait_for_jobs(queues, timeout)
    return woke, time.monotonic() - start


def test_commit_by_another_process_wakes_a_waiter(backend: SqliteBackend, db_path: str) -> None:
    backend.wait_for_jobs(["x"], 0.01)
    code = (
        "import sys\n"
        "from ferroq_core.records import EnqueueRequest\n"
        "from ferroq_sqlite.backend import SqliteBackend\n"
        "b = SqliteBackend.from_url(sys.argv[1])\n"
        "b.enqueue([EnqueueRequest(queue='x', job_type='t:Job', payload='{}')])\n"
    )
    result: list[tuple[bool, float]] = []
    waiter = threading.Thread(target=lambda: result.append(_timed_wait(backend, ["x"], 60)))
    waiter.start()
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{db_path}"], check=True, timeout=60)
    waiter.join(60)
    ((woke, elapsed),) = result
    assert woke
    assert elapsed < 30


@pytest.mark.timing
def test_a_long_idle_waiter_still_sees_other_commits_quickly(
    backend: SqliteBackend, db_path: str
) -> None:
    # After seconds without a change the poll has backed off as far as it goes (poll_max,
    # default 0.1 s), not toward the wait's whole timeout (where it had grown to checks
    # about 1.5 s apart after 3.5 idle seconds): a job dispatched by another process then
    # waits at most about poll_max, however long the worker was idle.
    other = SqliteBackend.from_url(f"sqlite:///{db_path}")  # its own connections
    backend.wait_for_jobs(["idle"], 0.01)
    result: list[tuple[bool, float]] = []
    waiter = threading.Thread(target=lambda: result.append(_timed_wait(backend, ["idle"], 30)))
    waiter.start()
    try:
        time.sleep(3.5)
        committed = time.monotonic()
        other.enqueue([_req("idle")])
        waiter.join(30)
    finally:
        other.close()
    ((woke, _elapsed),) = result
    assert woke
    assert time.monotonic() - committed < 0.35
    assert backend.options.poll_max == 0.1


@pytest.mark.timing
def test_jobs_arriving_faster_than_the_polls_end_a_wait_at_once(
    backend: SqliteBackend, db_path: str
) -> None:
    # Another process dispatches every 3 ms: each change makes the waiter look at due times
    # again, and a job due now must end the wait then (a floor under "due in" once pushed
    # the wake-up 10 ms ahead at every change, and the wait lasted its whole timeout).
    other = SqliteBackend.from_url(f"sqlite:///{db_path}")  # its own connections
    backend.wait_for_jobs(["busy"], 0.01)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            other.enqueue([_req("busy")])
            time.sleep(0.003)

    feeder = threading.Thread(target=feed)
    try:
        started = time.monotonic()
        feeder.start()
        woke, _elapsed = _timed_wait(backend, ["busy"], 10)
        waited = time.monotonic() - started
    finally:
        stop.set()
        feeder.join(10)
        other.close()
    assert woke
    assert waited < 1


def test_commits_on_other_queues_do_not_wake(backend: SqliteBackend, db_path: str) -> None:
    other = SqliteBackend.from_url(f"sqlite:///{db_path}")  # its own connections
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            other.enqueue([_req("other")])
            time.sleep(0.05)

    backend.wait_for_jobs(["mine"], 0.01)
    writer = threading.Thread(target=churn)
    writer.start()
    try:
        woke, elapsed = _timed_wait(backend, ["mine"], 1.0)
    finally:
        stop.set()
        writer.join()
        other.close()
    assert not woke
    assert elapsed >= 0.9
    assert backend.get_stats().for_queue("other").pending > 0


def test_delayed_job_wakes_a_waiter_when_due(backend: SqliteBackend) -> None:
    backend.enqueue([_req(delay=0.5)])
    woke, elapsed = _timed_wait(backend, ["q"], 60)
    assert woke
    assert 0.3 <= elapsed < 30
    assert len(backend.claim(["q"], "h:1:a", 1)) == 1


def test_wake_during_a_claim_is_not_lost(backend: SqliteBackend) -> None:
    backend.wait_for_jobs(["q"], 0.01)
    backend.wake()  # arrives while this thread is not waiting (e.g. claiming)
    woke, elapsed = _timed_wait(backend, ["q"], 30)
    assert woke
    assert elapsed < 5


def test_poll_interval_backs_off_and_resets() -> None:
    interval = PollInterval(0.01, None)
    pauses = [interval.next(1.0) for _ in range(20)]
    assert pauses[0] == 0.01
    assert pauses == sorted(pauses)
    assert pauses[-1] == 1.0, "idle polling backs off up to the wait's timeout"
    assert interval.next(0.2) == 0.2
    interval.changed()
    assert interval.next(1.0) == 0.01
    capped = PollInterval(0.01, 0.05)
    assert max(capped.next(10.0) for _ in range(20)) == 0.05
