"""A single dispatch and a release are one statement (one round trip): INSERT/UPDATE and NOTIFY
together in autocommit. Their NOTIFY still fires only on commit, and a statement that may have
reached the server is never sent twice."""

from __future__ import annotations

import select
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.sql
import pytest
import sqlalchemy as sa

from ferroq_core.errors import BackendUnavailable
from ferroq_core.records import Lease
from ferroq_postgres.backend import CHANNEL
from tests.postgres.conftest import (
    listening,
    request,
    terminate_backends,
    wait_until,
    worker_id,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_postgres import PostgresBackend

pytestmark = pytest.mark.postgres


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement sent through psycopg (by SQLAlchemy or directly), in order."""
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def record(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(cur, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    return sent


@pytest.fixture
def heard(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection LISTENing on the backend's channel."""
    with listening(pg_url, CHANNEL) as conn:
        yield conn


def notified(conn: psycopg.Connection[Any]) -> list[str]:
    """Every notification heard within 0.3 s (from different transactions: none folded)."""
    return [n.payload for n in conn.notifies(timeout=0.3)]


def test_single_dispatch_and_release_are_one_statement_that_notifies(
    pg_backend: PostgresBackend, statements: list[str], heard: psycopg.Connection[Any]
) -> None:
    statements.clear()
    [job] = pg_backend.enqueue([request("q1")])
    assert len(statements) == 1
    assert notified(heard) == ["q1"]
    assert pg_backend.get_job(job.id) is not None
    me = worker_id()
    [row] = pg_backend.claim(["q1"], me, 1)
    statements.clear()
    assert pg_backend.release(Lease(row.id, me, row.attempts), delay=0, error="boom") is True
    assert len(statements) == 1
    assert notified(heard) == ["q1"]
    # A release into the future is announced too (idle workers then wait for its time); a
    # lost lease changes nothing.
    [row] = pg_backend.claim(["q1"], me, 1)
    assert pg_backend.release(Lease(row.id, me, row.attempts), delay=60, error=None) is True
    assert notified(heard) == ["q1"]
    assert pg_backend.release(Lease(row.id, me, row.attempts), delay=0, error=None) is False
    assert notified(heard) == []


def test_single_keyed_dispatch_settles_on_the_holder_past_prepared_plans(
    pg_backend: PostgresBackend, heard: psycopg.Connection[Any]
) -> None:
    # psycopg prepares a statement after 5 runs; a generic plan must still find the index.
    results = [pg_backend.enqueue([request(key="k")])[0] for _ in range(12)]
    assert not results[0].duplicate
    assert all(r.duplicate and r.id == results[0].id for r in results[1:])
    assert notified(heard) == ["default"]  # the duplicates woke nobody
    assert len(pg_backend.list_jobs(queue="default")) == 1


def test_dead_pooled_connections_are_skipped_before_sending(
    pg_admin: sa.engine.Engine, pg_backend: PostgresBackend, statements: list[str]
) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: pg_backend.get_stats(), range(16)))
    assert terminate_backends(pg_admin) >= 1
    wait_until(lambda: _only_admin_left(pg_admin), what="the terminated backends to exit")
    statements.clear()
    [job] = pg_backend.enqueue([request()])
    # The new connection's session set-up (utc_sessions) comes first; the INSERT once.
    sent = [s for s in statements if s != "SET TIME ZONE 'UTC'"]
    assert len(sent) == 1, "the INSERT was sent once, on a live connection"
    assert pg_backend.get_job(job.id) is not None


def test_a_sent_insert_whose_connection_breaks_is_not_sent_again(
    pg_admin: sa.engine.Engine, pg_backend: PostgresBackend, statements: list[str]
) -> None:
    execute = psycopg.Cursor.execute

    def sabotage(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if "INSERT" in str(query):
            terminate_backends(pg_admin, cur.connection.info.backend_pid)
            # The FATAL message is in the socket: the statement fails once it is sent.
            select.select([cur.connection.fileno()], [], [], 10)
        return execute(cur, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", sabotage)
        with pytest.raises(BackendUnavailable):
            pg_backend.enqueue([request()])
    inserts = [q for q in statements if "INSERT" in q]
    assert len(inserts) == 1, "a statement that may have reached the server is not resent"
    assert pg_backend.enqueue([request()])[0].id > 0


def _only_admin_left(admin: sa.engine.Engine) -> bool:
    with admin.connect() as conn:
        others = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    return others == 0
