"""The bounds that let a worker notice a silent network (issue 20): TCP keepalives and
``tcp_user_timeout`` on every connection the backend opens (pool and LISTEN), a bounded
connect, and a client-side deadline on the worker's operations. The network partition itself
is the ``partition`` reliability scenario (tests/chaos/test_partition.py)."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core.errors import BackendUnavailable, ConfigError
from ferroq_postgres import PostgresBackend
from ferroq_postgres.listener import listen_connection
from tests.postgres.conftest import request, worker_id

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.postgres


def kernel_bounds(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """What the kernel really applies to the connection's socket."""
    sock = socket.socket(fileno=socket.dup(conn.pgconn.socket))
    try:
        return {
            "keepalives": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepalives_idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepalives_interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "keepalives_count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "tcp_user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }
    finally:
        sock.close()


def pooled(backend: PostgresBackend) -> psycopg.Connection[Any]:
    fairy = backend.engine.raw_connection()
    conn = fairy.driver_connection
    fairy.close()
    return conn  # type: ignore[no-any-return]


DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def test_every_connection_has_keepalives_and_a_user_timeout_by_default(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url, pool_size=1, max_overflow=0)
    try:
        assert kernel_bounds(pooled(backend)) == DEFAULTS
        assert pooled(backend).info.get_parameters()["connect_timeout"] == "10"
        listening = listen_connection(backend.engine)
        try:
            assert kernel_bounds(listening) == DEFAULTS
        finally:
            listening.close()
    finally:
        backend.close()


def test_the_bounds_are_options_of_the_url(pg_url: str) -> None:
    url = (
        f"{pg_url}?keepalives_idle=2&keepalives_interval=1&keepalives_count=4"
        "&tcp_user_timeout=1500&connect_timeout=3&statement_deadline=2.5"
    )
    backend = PostgresBackend.from_url(url, pool_size=1, max_overflow=0)
    try:
        want = {
            "keepalives": 1,
            "keepalives_idle": 2,
            "keepalives_interval": 1,
            "keepalives_count": 4,
            "tcp_user_timeout": 1500,
        }
        assert kernel_bounds(pooled(backend)) == want
        listening = listen_connection(backend.engine)
        try:
            assert kernel_bounds(listening) == want
        finally:
            listening.close()
        assert backend.options.statement_deadline == 2.5
        assert backend.options.connect_timeout == 3
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"statement_deadline": -1}, "statement_deadline must not be negative"),
        ({"keepalives_idle": 0}, "keepalives_idle must be greater than 0"),
        ({"tcp_user_timeout": -5}, "tcp_user_timeout must not be negative"),
    ],
)
def test_bad_bounds_fail_at_start_up(pg_url: str, option: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PostgresBackend.from_url(pg_url, **option)


def test_a_worker_operation_that_outlives_the_deadline_is_cut_off(pg_url: str) -> None:
    """A heartbeat blocked (here on a row lock held elsewhere; in production on a silent
    network) ends with a clear error within the deadline, and the pool stays usable."""
    backend = PostgresBackend.from_url(pg_url, pool_size=2, max_overflow=0, statement_deadline=1)
    blocker = PostgresBackend.from_url(pg_url, pool_size=1, max_overflow=0)
    try:
        backend.migrate()
        (result,) = backend.enqueue([request("deadline")])
        (row,) = backend.claim(["deadline"], worker_id(), 1)
        outcome: dict[str, Any] = {}

        def beat() -> None:
            started = time.monotonic()
            try:
                outcome["held"] = backend.heartbeat([row.lease])
            except Exception as exc:
                outcome["error"] = exc
            outcome["seconds"] = time.monotonic() - started

        fairy = blocker.engine.raw_connection()
        conn = fairy.driver_connection
        assert conn is not None
        try:
            conn.execute("SELECT id FROM ferroq_jobs WHERE id = %s FOR UPDATE", (result.id,))
            thread = threading.Thread(target=beat, daemon=True)
            thread.start()
            thread.join(10)
            assert not thread.is_alive(), "the heartbeat hung past its deadline"
        finally:
            conn.rollback()
            fairy.close()
        assert isinstance(outcome.get("error"), BackendUnavailable), outcome
        assert "statement_deadline" in str(outcome["error"])
        assert 0.9 <= outcome["seconds"] < 4.0, outcome
        assert backend.heartbeat([row.lease]) == {row.id}
    finally:
        blocker.close()
        backend.close()
