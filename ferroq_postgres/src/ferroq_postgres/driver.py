"""Statements sent on the pooled psycopg connection itself, below SQLAlchemy.

The worker's claim, acknowledgement and heartbeat, single dispatches and the bulk insert run
here: SQLAlchemy's execute path converted the query text and toggled isolation levels on every
call, more client time than the statement's round trip (see statements.py and
docs/performance.md). What SQLAlchemy would otherwise do for them is done here too: a
connection that broke is discarded, and a pooled connection the server already closed is
found before anything is sent.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa

from ferroq_core.records import JobRow
from ferroq_postgres.errors import is_disconnect

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Connection, Engine

__all__ = ["claimed_rows", "closed_by_server", "run_autocommit", "run_prepared", "utc_sessions"]


def closed_by_server(conn: Connection) -> bool:
    """Has the server already closed this idle pooled connection? It then wrote a FATAL
    message (``pg_terminate_backend``, shutdown) or EOF that sits unread in the socket: a
    zero-timeout poll, no round trip. An idle connection is otherwise silent (it LISTENs to
    nothing), so a false alarm only costs a reconnect."""
    raw: Any = conn.connection.dbapi_connection
    if raw is None or raw.closed:
        return True
    try:
        if hasattr(select, "poll"):  # select() cannot watch a descriptor above 1023
            poller = select.poll()
            poller.register(raw.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([raw.fileno()], [], [], 0)
    except (OSError, ValueError):
        # Cannot tell: treat it as alive (a dead one then fails after sending, no resend)
        # rather than reconnecting on every call.
        return False
    return bool(readable)


def run_autocommit(sql: str, params: Mapping[str, Any], conn: Connection) -> list[tuple[Any, ...]]:
    """``sql`` in autocommit on the pooled psycopg connection itself, its rows: see
    statements.py for why not through SQLAlchemy."""
    raw: Any = conn.connection.driver_connection
    raw.autocommit = True
    try:
        return run_prepared(sql, params, conn)
    finally:
        if not raw.closed:
            raw.autocommit = False


def run_prepared(sql: str, params: Mapping[str, Any], conn: Connection) -> list[tuple[Any, ...]]:
    """``sql`` prepared on the pooled psycopg connection, in whatever transaction state it is.
    A connection that broke is discarded (SQLAlchemy does not see driver-level errors)."""
    raw: Any = conn.connection.driver_connection
    try:
        rows: list[tuple[Any, ...]] = raw.execute(sql, params, prepare=True).fetchall()
    except psycopg.Error as exc:
        if is_disconnect(exc):
            conn.invalidate()
        raise
    return rows


def claimed_rows(rows: list[tuple[Any, ...]]) -> list[JobRow]:
    """:data:`CLAIM_SQL` rows as records, in claim order (RETURNING has no defined order)."""
    # Positional: the columns come in JobRow's field order (a dict per row cost ~10% more).
    jobs_ = [JobRow(*row) for row in rows]
    jobs_.sort(key=lambda r: (r.priority, r.available_at, r.id))
    return jobs_


def utc_sessions(engine: Engine) -> None:
    """Give every new connection of ``engine`` (one ferroq created) the session time zone UTC.

    psycopg converts each ``timestamptz`` it reads into the session's zone, and only the zone
    named ``UTC`` skips zoneinfo: on a server set to ``Etc/UTC`` (Debian's default) reading the
    four timestamps of 100 claimed rows cost 158 us of client CPU, against 60 us in ``UTC``
    (psycopg's ``fetchall``, binary or text alike). The instants are the same; records now
    carry UTC datetimes on every server, as they do on SQLite. A ``SET`` after connecting,
    not the ``options`` startup parameter, because PgBouncer tracks and replays ``TimeZone``
    but refuses unknown startup parameters.
    """

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()  # a SET inside a transaction that is rolled back is undone

    sa.event.listen(engine, "connect", on_connect)
