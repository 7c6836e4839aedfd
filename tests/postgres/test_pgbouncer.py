"""Behind PgBouncer in transaction mode (``?pgbouncer=true``): no prepared statement, lock or
LISTEN that outlives a transaction, and a worker that drains through it. The pooler hands each
transaction to the next server connection in turn (reliability/pgbouncer.py), so whatever
relied on the session of an earlier statement fails here."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from datetime import timezone
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa

from ferroq_core import QueueConfig, Runtime, make_plugin_manager
from ferroq_core.errors import ConfigError, DatabaseError, FerroqError
from ferroq_core.queue import Queue
from ferroq_postgres import PostgresBackend
from ferroq_postgres import vacuum as vacuum_module
from ferroq_postgres.options import PostgresOptions
from tests.postgres.conftest import request, wait_until, worker_id
from tests.worker.conftest import Marks, WorkerProcess, wait_for
from tests.worker.jobs import Record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.postgres


@pytest.fixture
def pooled(pgbouncer_url: str, pg_url: str) -> Iterator[Callable[..., PostgresBackend]]:
    """Backends on this run's database through PgBouncer (migrated, emptied), closed after."""
    made: list[PostgresBackend] = []

    def make(**options: object) -> PostgresBackend:
        backend = PostgresBackend.from_url(pgbouncer_url, pool_size=4, max_overflow=4, **options)
        made.append(backend)
        return backend

    first = make(pgbouncer=True)
    first.migrate()
    with first.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE ferroq_jobs RESTART IDENTITY")
    try:
        yield make
    finally:
        for backend in made:
            backend.close()


def _libpq(url: str) -> str:
    """``url`` as libpq takes it (no SQLAlchemy driver name)."""
    plain = sa.engine.make_url(url).set(drivername="postgresql")
    return plain.render_as_string(hide_password=False)


def _server_connections(pgbouncer_url: str, n: int = 4) -> None:
    """Have PgBouncer open ``n`` server connections (transactions that overlap), so that
    consecutive transactions of one client land on different ones."""
    barrier = threading.Barrier(n)

    def hold() -> None:
        with psycopg.connect(_libpq(pgbouncer_url), prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
            barrier.wait(10)
            conn.commit()

    threads = [threading.Thread(target=hold) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _hammer(backend: PostgresBackend, threads: int = 8, rounds: int = 25) -> list[BaseException]:
    """Dispatch, claim and complete from several threads at once; the errors raised."""
    errors: list[BaseException] = []

    def run() -> None:
        me = worker_id()
        try:
            for _ in range(rounds):
                backend.enqueue([request("hammer")])
                rows = backend.claim(["hammer"], me, 2)
                backend.complete([r.lease for r in rows])
                backend.now()
        except FerroqError as exc:
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_concurrent_work_needs_no_prepared_statement(
    pooled: Callable[..., PostgresBackend], pgbouncer_url: str
) -> None:
    backend = pooled(pgbouncer=True)
    _server_connections(pgbouncer_url)
    assert _hammer(backend) == []
    # Whatever the threads left is still there to claim: nothing was lost to an error.
    left = backend.claim(["hammer"], worker_id(), 1000)
    backend.complete([r.lease for r in left])
    assert backend.get_stats().pending == 0
    assert backend.get_stats().claimed == 0


def test_without_the_option_the_error_says_to_add_it(
    pooled: Callable[..., PostgresBackend], pgbouncer_url: str
) -> None:
    backend = pooled()
    _server_connections(pgbouncer_url)
    errors = _hammer(backend, threads=4, rounds=10)
    # A Bind that reaches another client's statement with as many parameters runs that
    # statement: its error, if any (a malformed array literal, a NUL byte), is the wrong
    # statement's and does not name the pooler. Only the clashes the server reports as such
    # can say what to do.
    clashes = [e for e in errors if _sqlstate(e) in {"26000", "42P05", "08P01"}]
    assert clashes, f"psycopg's prepared statements should clash behind PgBouncer: {errors}"
    assert all("?pgbouncer=true" in str(e) for e in clashes), clashes


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind a ferroq error."""
    cause = error.__cause__
    code = getattr(getattr(cause, "orig", cause), "sqlstate", None)
    return code if isinstance(code, str) else None


@pytest.fixture
def lone_database(pgbouncer_url: str, pg_admin: sa.engine.Engine) -> Iterator[str]:
    """A database of its own through PgBouncer: with no other client on it, PgBouncer runs
    every transaction on one server connection, in order, so which client's statements a
    session holds is known."""
    name = f"ferroq_lone_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # name is generated, not input
    try:
        yield (
            sa.engine.make_url(pgbouncer_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_statement_bound_to_another_clients_plan_says_to_add_it(lone_database: str) -> None:
    # psycopg names its prepared statements _pg3_0, _pg3_1... per client connection. Another
    # client resets the server connection (as a pooler's reset query does) and prepares its
    # own _pg3_0 with a parameter; ferroq's next Bind of its _pg3_0 (no parameter) then
    # reaches that plan, and the server answers with a protocol violation (08P01), not with
    # 26000 or 42P05.
    backend = PostgresBackend.from_url(
        lone_database, pool_size=1, max_overflow=0, reconnect_attempts=0
    )
    try:
        backend.now()  # prepares _pg3_0 on the one server connection
        with psycopg.connect(_libpq(lone_database), autocommit=True) as other:
            other.execute("DISCARD ALL")
            other.execute("SELECT %s::int", [1], prepare=True)
        with pytest.raises(DatabaseError) as caught:
            backend.now()
    finally:
        backend.close()
    assert type(caught.value) is DatabaseError  # refused, not "lost the connection"
    message = str(caught.value)
    assert "bind message supplies 0 parameters" in message  # the case this test is about
    assert "?pgbouncer=true" in message
    assert "\n" not in message


def test_records_stay_utc_when_other_sessions_set_their_zone(
    pooled: Callable[..., PostgresBackend], pgbouncer_url: str
) -> None:
    # PgBouncer replays each client's TimeZone on whichever server connection it gets, so the
    # SET ferroq runs once per connection holds for every later transaction.
    backend = pooled(pgbouncer=True)
    with psycopg.connect(_libpq(pgbouncer_url), autocommit=True, prepare_threshold=None) as other:
        other.execute("SET TIME ZONE 'Asia/Tokyo'")
        for _ in range(6):
            assert other.execute("SELECT current_setting('TimeZone')").fetchone() == ("Asia/Tokyo",)
            stamp = backend.now()
            assert stamp.tzinfo is timezone.utc


def test_the_workers_vacuum_leaves_no_lock_behind(
    pooled: Callable[..., PostgresBackend],
    pgbouncer_url: str,
    pg_admin: sa.engine.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vacuum_module, "MIN_INTERVAL", 0.0)
    backend = pooled(pgbouncer=True, vacuum_every=5)
    _server_connections(pgbouncer_url)

    def vacuums() -> int:
        with pg_admin.connect() as conn:
            query = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'ferroq_jobs'"
            return int(conn.execute(sa.text(query)).scalar() or 0)

    before = vacuums()
    backend.enqueue([request("vac") for _ in range(10)])
    rows = backend.claim(["vac"], worker_id(), 10)
    assert len(backend.complete([r.lease for r in rows])) == 10
    wait_until(lambda: vacuums() > before, what="a VACUUM of ferroq_jobs")
    wait_until(lambda: not backend._vacuum._running, what="the vacuum thread to end")
    with pg_admin.connect() as conn:
        held = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar()
    assert held == 0, "a session-level lock stayed on a server connection of the pooler"


def test_without_listen_url_idle_waits_poll(
    pooled: Callable[..., PostgresBackend], caplog: pytest.LogCaptureFixture
) -> None:
    waiter = pooled(pgbouncer=True, poll_interval=0.2)
    producer = pooled(pgbouncer=True, listen=False)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="ferroq.postgres"):
        waiter.wait_for_jobs(["default"], 10)
        waiter.wait_for_jobs(["default"], 0.01)
    assert time.monotonic() - started < 3, "a wait behind PgBouncer must poll"
    assert waiter.listener is None
    polls = [r.getMessage() for r in caplog.records if "poll every 0.2s" in r.getMessage()]
    assert len(polls) == 1, caplog.text  # said once, not per wait
    producer.enqueue([request()])
    assert waiter.wait_for_jobs(["default"], 10) is True  # the job is due now: no wait


def test_listen_url_listens_on_a_direct_connection(
    pooled: Callable[..., PostgresBackend], pg_url: str, pg_admin: sa.engine.Engine
) -> None:
    # A long poll_interval: only a notification can end the wait early.
    waiter = pooled(pgbouncer=True, listen_url=pg_url, poll_interval=60)
    producer = pooled(pgbouncer=True, listen=False)
    waiter.wait_for_jobs(["default"], 0.01)
    listener = waiter.listener
    assert listener is not None
    pid = wait_until(lambda: listener.backend_pid, what="the LISTEN connection")
    with pg_admin.connect() as conn:
        query = sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
        assert conn.execute(query, {"pid": pid}).scalar() == 'LISTEN "ferroq_jobs"'
    waiter.wait_for_jobs(["default"], 0.01)  # let the "connected" wake-up pass
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(waiter.wait_for_jobs(["default"], 30)))
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    producer.enqueue([request()])
    thread.join(30)
    assert woke == [True]
    assert time.monotonic() - started < 5


def test_the_options_come_from_the_url(pgbouncer_url: str, pg_url: str) -> None:
    direct = sa.engine.make_url(pg_url).set(password="s3cret").render_as_string(hide_password=False)
    url = f"{pgbouncer_url}?pgbouncer=true&listen_url={quote(direct, safe='')}"
    backend = PostgresBackend.from_url(url)
    try:
        assert backend.options.pgbouncer is True
        assert backend.options.listen_url == direct
        assert "s3cret" not in repr(backend.options)
        # Neither option reaches libpq (only the TCP bounds do).
        assert dict(backend.engine.url.query) == backend.options.libpq_bounds()
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not a url", "listen_url is not a URL"),
        ("sqlite:///jobs.db", "listen_url must be a postgresql:// URL"),
    ],
)
def test_a_bad_listen_url_is_a_config_error(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PostgresOptions.build({}, {"listen_url": value})


@pytest.mark.slow
@pytest.mark.parametrize("wake", ["polling", "listen_url"])
def test_a_worker_process_drains_through_pgbouncer(
    wake: str, pgbouncer_url: str, pg_url: str, tmp_path: Path
) -> None:
    # Polling: every 0.2 s. listen_url: a minute, so only a notification wakes it in time.
    options = "pgbouncer=true&poll_interval=0.2"
    if wake == "listen_url":
        options = f"pgbouncer=true&poll_interval=60&listen_url={quote(pg_url, safe='')}"
    url = f"{pgbouncer_url}?{options}"
    runtime = Runtime.build(
        url, QueueConfig(connection="db", database_url=url), make_plugin_manager()
    )
    runtime.backend.migrate()
    with runtime.backend.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("TRUNCATE ferroq_jobs RESTART IDENTITY")
    Queue.use(runtime)
    marks = Marks(tmp_path / "marks.log")
    env = dict(os.environ, FERROQ_TEST_LOG=str(marks.path), FERROQ_LOG_LEVEL="INFO")
    worker = WorkerProcess(url, ["--concurrency", "4", "--sleep", "30"], env, tmp_path / "w.log")
    try:
        for i in range(100):
            Record(tag=f"a{i}").dispatch()
        wait_for(lambda: len(marks.order()) == 100, timeout=30)
        time.sleep(0.5)  # the worker is idle, waiting
        started = time.monotonic()
        for i in range(100):
            Record(tag=f"b{i}").dispatch()
        wait_for(lambda: len(marks.order()) == 200, timeout=30)
        assert time.monotonic() - started < 10, worker.output()
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0, worker.output()
    finally:
        worker.kill()
        Queue.use(None)
        runtime.close()
    ran = marks.order()
    assert sorted(ran) == sorted([f"a{i}" for i in range(100)] + [f"b{i}" for i in range(100)])
    assert "Error" not in worker.output(), worker.output()
