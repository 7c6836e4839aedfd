"""Transactional dispatch: the job row and its NOTIFY live and die with the caller's transaction.

A waiter in a thread LISTENs (through ``wait_for_jobs``) while the test dispatches inside an
open SQLAlchemy ``Connection`` or ``Session`` transaction: it must not wake before the commit,
must wake after it, and must never see a job (or a wake-up) from a rolled-back transaction.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ferroq_core import Job, QueueConfig, Runtime, dispatch_many, make_plugin_manager
from ferroq_core.errors import DatabaseError
from ferroq_core.queue import Queue
from ferroq_postgres import PostgresBackend
from tests.postgres.conftest import wait_until, worker_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.postgres

QUEUE = "tx-tests"


@attrs.define
class Invoice(Job):
    job_name = "pg-tests.invoice"
    queue = QUEUE

    number: int

    def handle(self) -> None:
        pass


@pytest.fixture
def pg_runtime(pg_url: str, pg_backend: PostgresBackend) -> Iterator[Runtime]:
    """A db-mode runtime installed as the process-wide queue (pg_backend migrated and emptied)."""
    runtime = Runtime.build(
        pg_url, QueueConfig(connection="db", database_url=pg_url), make_plugin_manager()
    )
    Queue.use(runtime)
    try:
        yield runtime
    finally:
        Queue.use(None)
        runtime.close()


class Waiter:
    """A thread that waits for a wake-up on QUEUE and records when it came."""

    def __init__(self, backend: PostgresBackend) -> None:
        self.backend = backend
        self.woken_at: float | None = None
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Waiter:
        # Start the listener and let its first "connected" wake-up pass before the test acts.
        self.backend.wait_for_jobs([QUEUE], 0.01)
        listener = self.backend.listener
        assert listener is not None
        wait_until(lambda: listener.connected, what="the LISTEN connection")
        self.backend.wait_for_jobs([QUEUE], 0.01)
        self._thread.start()
        wait_until(self._go.is_set, what="the waiter thread")
        return self

    def _run(self) -> None:
        self._go.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.backend.wait_for_jobs([QUEUE], 0.5):
                self.woken_at = time.monotonic()
                return

    def __exit__(self, *exc: object) -> None:
        self.backend.wake()
        self._thread.join(5)


def stays_asleep(waiter: Waiter, seconds: float = 0.5) -> bool:
    time.sleep(seconds)  # proving an absence: there is no condition to wait for
    return waiter.woken_at is None


@contextmanager
def sa_connection(runtime: Runtime) -> Iterator[sa.engine.Connection]:
    # The application's own engine, separate from ferroq's pool.
    engine = sa.create_engine(runtime.backend.engine.url)  # type: ignore[attr-defined]
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def dispatch_in(conn: Any, number: int) -> int:
    return int(Invoice(number=number).dispatch(connection=conn))


def backend_of(runtime: Runtime) -> PostgresBackend:
    # The waiter uses the dispatching runtime's own backend, so a wake-up sent locally (not
    # through NOTIFY) before the commit would be caught too.
    assert isinstance(runtime.backend, PostgresBackend)
    return runtime.backend


def committed_count(backend: PostgresBackend) -> int:
    return len(backend.list_jobs(queue=QUEUE))


@contextmanager
def caller_transaction(
    kind: str, conn: sa.engine.Connection
) -> Iterator[tuple[Any, Callable[[bool], None]]]:
    """The application's open transaction, on a ``Connection`` or a ``Session``: yields what to
    pass as ``dispatch(connection=...)`` and a function that ends it (True: commit)."""
    if kind == "session":
        with Session(bind=conn) as session:
            session.begin()
            yield session, lambda commit: session.commit() if commit else session.rollback()
    else:
        trans = conn.begin()
        yield conn, lambda commit: trans.commit() if commit else trans.rollback()


@pytest.mark.parametrize("kind", ["connection", "session"])
def test_rolled_back_dispatch_leaves_no_job_and_no_wakeup(
    pg_runtime: Runtime, pg_backend: PostgresBackend, kind: str
) -> None:
    with (
        Waiter(backend_of(pg_runtime)) as waiter,
        sa_connection(pg_runtime) as conn,
        caller_transaction(kind, conn) as (handle, end),
    ):
        job_id = dispatch_in(handle, 1)
        assert job_id > 0
        end(False)
        assert pg_backend.get_job(job_id) is None
        assert committed_count(pg_backend) == 0
        assert stays_asleep(waiter), "a rolled-back dispatch woke a worker"
        assert pg_backend.claim([QUEUE], worker_id(), 10) == []


@pytest.mark.parametrize("kind", ["connection", "session"])
def test_committed_dispatch_wakes_a_listening_worker_only_after_commit(
    pg_runtime: Runtime, pg_backend: PostgresBackend, kind: str
) -> None:
    with (
        Waiter(backend_of(pg_runtime)) as waiter,
        sa_connection(pg_runtime) as conn,
        caller_transaction(kind, conn) as (handle, end),
    ):
        job_id = dispatch_in(handle, 2)
        # Uncommitted: invisible to other connections, and nobody was woken.
        assert pg_backend.get_job(job_id) is None
        assert stays_asleep(waiter), "a worker woke before the commit"
        committed_at = time.monotonic()
        end(True)
        woken_at = wait_until(lambda: waiter.woken_at, timeout=10, what="the wake-up")
        assert woken_at >= committed_at
        (row,) = pg_backend.claim([QUEUE], worker_id(), 10)
        assert row.id == job_id
        assert row.job_type == "pg-tests.invoice"


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_bulk_dispatch_lives_and_dies_with_the_callers_transaction(
    pg_runtime: Runtime, pg_backend: PostgresBackend, commit: bool
) -> None:
    # More than SMALL_BATCH jobs: the one-statement bulk insert, sent on the caller's psycopg
    # connection inside its transaction, with queue names that need quoting (a comma, which
    # would too, is no part of a queue name).
    queue = "tx-'bulk\"{a b}\\"
    jobs = [Invoice(number=i).on_queue(queue) for i in range(50)]
    with sa_connection(pg_runtime) as conn, caller_transaction("connection", conn) as (h, end):
        ids = dispatch_many(jobs, connection=h)
        assert len(set(ids)) == 50
        end(commit)
    stored = pg_backend.list_jobs(queue=queue)
    if commit:
        assert sorted(r.id for r in stored) == sorted(ids)
        assert {r.queue for r in stored} == {queue}
    else:
        assert stored == []


def test_bulk_dispatch_in_a_failed_transaction_raises_a_ferroq_error(
    pg_runtime: Runtime, pg_backend: PostgresBackend
) -> None:
    with sa_connection(pg_runtime) as conn, caller_transaction("connection", conn) as (h, end):
        with pytest.raises(sa.exc.DBAPIError):
            conn.exec_driver_sql("SELECT 1/0")
        # The caller's transaction is aborted: the bulk insert fails with ferroq's own error.
        with pytest.raises(DatabaseError, match="aborted"):
            dispatch_many([Invoice(number=i) for i in range(20)], connection=h)
        end(False)
    assert committed_count(pg_backend) == 0
