"""Fixtures for the Postgres backend's own tests (the contract suite lives in tests/contract)."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import psycopg.sql
import pytest
import sqlalchemy as sa

from ferroq_core.records import EnqueueRequest
from ferroq_core.testing.databases import empty_tables
from ferroq_postgres import PostgresBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

T = TypeVar("T")


@pytest.fixture
def pg_backend(pg_url: str) -> Iterator[PostgresBackend]:
    """A migrated, empty backend on this run's database (small pool: the server is shared)."""
    backend = PostgresBackend.from_url(pg_url, pool_size=4, max_overflow=4)
    backend.migrate()
    with backend.engine.begin() as conn:
        empty_tables(conn)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def pg_admin(pg_url: str) -> Iterator[sa.engine.Engine]:
    """An autocommit engine on the test database for sabotage (terminating backends)."""
    engine = sa.create_engine(
        sa.engine.make_url(pg_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def listening(pg_url: str, channel: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own LISTENing on ``channel`` of the test database."""
    url = sa.engine.make_url(pg_url).set(drivername="postgresql")
    conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
    conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
    try:
        yield conn
    finally:
        conn.close()


def terminate_backends(
    admin: sa.engine.Engine, pid: int | None = None, *, wait: bool = False
) -> int:
    """``pg_terminate_backend`` one server process, or every other one of this database.

    :param wait: return only once each is gone (up to 5 s), so its connection's FATAL message
        is already in the client's socket; otherwise a client may send a statement to a
        process that is still on its way out (a sent statement is never resent).
    """
    timeout = 5000 if wait else 0
    with admin.connect() as conn:
        if pid is not None:
            query = sa.text("SELECT pg_terminate_backend(:pid, :timeout)")
            return int(bool(conn.execute(query, {"pid": pid, "timeout": timeout}).scalar()))
        killed = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, :timeout)) "
                "FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ),
            {"timeout": timeout},
        ).scalar()
    return int(killed or 0)


def request(queue: str = "default", *, key: str | None = None) -> EnqueueRequest:
    return EnqueueRequest(
        queue=queue,
        job_type="pg-tests.noop",
        payload="{}",
        priority=0,
        max_attempts=3,
        delay=0.0,
        idempotency_key=key,
        tenant_id=None,
    )


def worker_id() -> str:
    return f"pg-tests:{4000 + uuid.uuid4().int % 1000}:{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Callable[[], T], timeout: float = 15.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        time.sleep(0.01)
    return value
