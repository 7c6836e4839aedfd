"""Pooled psycopg connections: checkout, retries, autocommit discipline, stale connections.

Every operation runs named queries (``queries.sql``) on the psycopg connection of one
SQLAlchemy pool checkout (``engine.raw_connection()``), in one of three modes:

* a read, or a write that may safely run twice: one autocommit statement (no BEGIN/COMMIT
  round trips), run again on a fresh connection when the connection breaks;
* a write that must not run twice (a dispatch, a claim, a fenced finish): one autocommit
  statement, run again only when it provably never reached the server; once sent, a broken
  connection may have committed it and raises :class:`~ferroq_core.errors.BackendUnavailable`;
* a transaction of several statements: run again when it broke before COMMIT (the server
  rolled it back), not when COMMIT itself broke.

A conflict the server rolled back (deadlock, serialization failure, no free connection slot)
is run again in every mode. Retries back off with capped full jitter. A connection goes back
to the pool as SQLAlchemy expects it, autocommit off and no transaction open, since an engine
passed in by the application is shared with its own code; one in any other state is dropped.
"""

from __future__ import annotations

import enum
import logging
import random
import select
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import psycopg
import sqlalchemy as sa
from psycopg import pq

from ferroq_core.errors import BackendUnavailable
from ferroq_core.storage.queries import load_queries
from ferroq_postgres.deadline import watchdog
from ferroq_postgres.errors import (
    connect_refusal,
    first_line,
    is_disconnect,
    is_transient,
    one_line,
    translate,
    translate_connect,
)
from ferroq_postgres.times import ShownTimestamptz

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import PoolProxiedConnection

    from ferroq_postgres.options import PostgresOptions

__all__ = [
    "QUERIES",
    "Connections",
    "Row",
    "autocommit",
    "closed_by_server",
    "fetch",
    "no_prepared_statements",
    "rowcount",
    "utc_sessions",
]

T = TypeVar("T")
Row = tuple[Any, ...]
log = logging.getLogger("ferroq.postgres")

#: Every statement of this backend, by name.
QUERIES = load_queries("ferroq_postgres")
#: A backend logs at most ``reconnect_attempts`` retries (one failing operation's worth) as
#: warnings per this many seconds, the others at DEBUG: during an outage a worker retries
#: several operations a second, and the operations that give up say so themselves.
RETRY_WARNING_EVERY = 10.0

_IDLE = pq.TransactionStatus.IDLE
_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


def fetch(
    conn: psycopg.Connection[Any],
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    prepare: bool | None = True,
    shown: bool = False,
) -> list[Row]:
    """The rows of query ``name`` run on ``conn`` (prepared server-side unless told not to:
    the hot statements are; queries with optional filters are planned with their values).

    :param shown: read times past what a ``datetime`` holds as the nearest one it does
        (:class:`~ferroq_postgres.times.ShownTimestamptz`), for listings.
    """
    if shown:
        cur = conn.cursor()
        cur.adapters.register_loader("timestamptz", ShownTimestamptz)
        shown_rows: list[Row] = cur.execute(QUERIES[name], params, prepare=prepare).fetchall()
        return shown_rows
    rows: list[Row] = conn.execute(QUERIES[name], params, prepare=prepare).fetchall()
    return rows


def rowcount(conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any]) -> int:
    """How many rows query ``name`` (a write without RETURNING) touched."""
    return conn.execute(QUERIES[name], params, prepare=False).rowcount


def closed_by_server(conn: psycopg.Connection[Any]) -> bool:
    """Has the server already closed this idle pooled connection? It then wrote a FATAL
    message (``pg_terminate_backend``, shutdown) or EOF that sits unread in the socket: a
    zero-timeout poll, no round trip. An idle connection is otherwise silent (it LISTENs to
    nothing), so a false alarm only costs a reconnect."""
    if conn.closed:
        return True
    try:
        if hasattr(select, "poll"):  # select() cannot watch a descriptor above 1023
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        # Cannot tell: treat it as alive (a dead one then fails after sending, no resend)
        # rather than reconnecting on every call.
        return False
    return bool(readable)


def _give_back(fairy: PoolProxiedConnection, conn: psycopg.Connection[Any]) -> None:
    """Return a checkout to the pool with autocommit off and no transaction open; drop the
    connection when it is broken or cannot be brought to that state."""
    try:
        if not conn.closed:
            status = conn.pgconn.transaction_status
            if status in _OPEN:
                conn.rollback()
                status = conn.pgconn.transaction_status
            if status == _IDLE:
                if conn.autocommit:
                    conn.autocommit = False
                fairy.close()
                return
    except psycopg.Error:
        pass  # broken while cleaning up: dropped below
    fairy.invalidate()


def _fresh(fairy: PoolProxiedConnection) -> psycopg.Connection[Any]:
    """The psycopg connection of a pool checkout."""
    conn = fairy.driver_connection
    if conn is None:  # only after invalidate(), which ends the checkout
        raise psycopg.InterfaceError("the pooled connection was invalidated")
    return cast("psycopg.Connection[Any]", conn)


@contextmanager
def autocommit(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """One pooled connection in autocommit, given back clean (no retries: for maintenance)."""
    fairy = engine.raw_connection()
    conn = _fresh(fairy)
    try:
        conn.autocommit = True
        yield conn
    finally:
        _give_back(fairy, conn)


def utc_sessions(engine: Engine) -> None:
    """Give every new connection of ``engine`` (one ferroq created) the session time zone UTC:
    psycopg converts each ``timestamptz`` it reads into the session's zone, and only the zone
    named ``UTC`` skips zoneinfo (see docs/performance.md). The instants are the same; records
    then carry UTC datetimes on every server, as they do on SQLite."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(QUERIES["set_utc"])
        dbapi_connection.commit()  # a SET inside a transaction that is rolled back is undone

    sa.event.listen(engine, "connect", on_connect)


def no_prepared_statements(engine: Engine) -> None:
    """Make psycopg prepare nothing on the server on the connections ``engine`` opens from now
    on (``prepare_threshold = None`` overrides every ``prepare=True``): behind a pooler in
    transaction mode the next transaction may run on a server connection that never saw the
    statement, or one where another client's statement has the same name."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.prepare_threshold = None

    sa.event.listen(engine, "connect", on_connect)


class _Mode(enum.Enum):
    #: A read, or a write that may run twice: retried when the connection breaks.
    AGAIN = enum.auto()
    #: A write that must not run twice: retried only if it never reached the server.
    ONCE = enum.auto()
    #: Several statements in one transaction: retried when it broke before COMMIT.
    TRANSACTION = enum.auto()
    #: A transaction whose work sends COMMIT itself, pipelined with its last statements (one
    #: round trip fewer): whether it committed is unknown once a statement was sent, so it
    #: is retried only as ONCE is.
    COMMITTING = enum.auto()


class Connections:
    """Runs work on pooled psycopg connections in the modes of the module docstring.

    :param deadline: seconds an operation may take, retries included, before its connection
        is cut off client side (:mod:`.deadline`); None: no deadline.
    """

    def __init__(
        self, engine: Engine, options: PostgresOptions, *, deadline: float | None = None
    ) -> None:
        self.engine = engine
        self.options = options
        self.deadline = deadline
        #: When the current window of retry warnings began, and how many it has had.
        self._window = -RETRY_WARNING_EVERY
        self._warned = 0

    def rows(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        prepare: bool | None = True,
        shown: bool = False,
    ) -> list[Row]:
        """Query ``name`` as one autocommit statement that may run twice (a read); ``shown``
        as for :func:`fetch`."""
        return self._run(
            lambda conn: fetch(conn, name, params, prepare=prepare, shown=shown), _Mode.AGAIN
        )

    def rows_once(self, name: str, params: Mapping[str, Any]) -> list[Row]:
        """Query ``name`` as one autocommit statement that must not run twice."""
        return self._run(lambda conn: fetch(conn, name, params), _Mode.ONCE)

    def transaction(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(conn)`` inside one transaction, committed when it returns."""
        return self._run(work, _Mode.TRANSACTION)

    def committing(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(conn)`` inside one transaction that ``work`` commits itself (``commit`` in
        the pipeline of its last statements); committed here if it returned without."""
        return self._run(work, _Mode.COMMITTING)

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], mode: _Mode) -> T:
        options = self.options
        delay = 0.05
        # Every pooled connection may be dead (all backends terminated); skipping one costs
        # no round trip, so skips do not count as attempts.
        skips = options.pool_size + options.max_overflow + 1
        attempt = 0
        deadline = self.deadline
        give_up = None if deadline is None else time.monotonic() + deadline
        while True:
            # Set once the work may have committed: from then on it is not run again.
            unsafe = False
            connecting = True
            token: int | None = None
            cut = False
            try:
                fairy: PoolProxiedConnection | None = self.engine.raw_connection()
                assert fairy is not None
                connecting = False
                conn = _fresh(fairy)
                try:
                    # A pooled connection the server closed (all backends terminated, a
                    # restart) is skipped before anything is sent: SQLAlchemy never sees the
                    # driver's errors, so it would not drop it on its own.
                    if skips > 0 and closed_by_server(conn):
                        skips -= 1
                        fairy.invalidate()
                        fairy = None
                        continue
                    if give_up is not None:
                        token = watchdog.arm(conn.pgconn.socket, give_up - time.monotonic())
                    if mode is _Mode.COMMITTING:
                        unsafe = True
                        result = work(conn)
                        conn.commit()  # a no-op when the work committed (the server says so)
                        return result
                    if mode is _Mode.TRANSACTION:
                        result = work(conn)
                        unsafe = True
                        conn.commit()
                        return result
                    conn.autocommit = True
                    unsafe = mode is _Mode.ONCE
                    return work(conn)
                finally:
                    cut = token is not None and not watchdog.disarm(token)
                    if fairy is not None:
                        if cut:  # its socket is shut down, whatever the work got back
                            fairy.invalidate()
                        else:
                            _give_back(fairy, conn)
            except (sa.exc.DBAPIError, sa.exc.TimeoutError, psycopg.Error) as exc:
                late = give_up is not None and time.monotonic() >= give_up
                if cut or (late and is_disconnect(exc) and connect_refusal(exc) is None):
                    raise BackendUnavailable(
                        f"no answer from Postgres within statement_deadline={deadline:g}s "
                        f"({first_line(exc)}): the network or the server is not responding; "
                        "the connection was closed"
                    ) from exc
                if connecting:
                    self._retry_connect(exc, attempt)
                else:
                    # A conflict was rolled back wherever it happened; a broken connection
                    # is safe to retry only while nothing may have committed.
                    retry = is_transient(exc) or (not unsafe and is_disconnect(exc))
                    if not retry or attempt == options.reconnect_attempts:
                        raise translate(exc) from exc
                    level, more = self._retry_level()
                    log.log(
                        level,
                        "ferroq: Postgres operation failed (%s); retrying (%d/%d)%s",
                        first_line(exc),
                        attempt + 1,
                        options.reconnect_attempts,
                        more,
                    )
            attempt += 1
            time.sleep(random.uniform(0, delay))
            delay = min(options.reconnect_backoff_cap, delay * 4)

    def _retry_connect(self, exc: BaseException, attempt: int) -> None:
        """Return to try connecting again after a failed attempt, or raise its error: when no
        retry can help (a refused login, an unknown database or host), or none is left."""
        attempts = self.options.reconnect_attempts
        retry = (is_transient(exc) or is_disconnect(exc)) and connect_refusal(exc) is None
        if not retry or attempt == attempts:
            raise translate_connect(exc) from exc
        level, more = self._retry_level()
        log.log(
            level,
            "ferroq: cannot connect to Postgres (%s); retrying (%d/%d)%s",
            one_line(str(getattr(exc, "orig", exc))),
            attempt + 1,
            attempts,
            more,
        )

    def _retry_level(self) -> tuple[int, str]:
        """The level of the next retry's log line (see :data:`RETRY_WARNING_EVERY`) and what
        to add to it."""
        now = time.monotonic()
        if now - self._window >= RETRY_WARNING_EVERY:
            self._window, self._warned = now, 0
        allowed = max(1, self.options.reconnect_attempts)
        if self._warned >= allowed:
            return logging.DEBUG, ""
        self._warned += 1
        if self._warned < allowed:
            return logging.WARNING, ""
        return logging.WARNING, f" (more in the next {RETRY_WARNING_EVERY:g}s at debug level)"

    def schema(self, work: Callable[[sa.engine.Connection], T]) -> T:
        """``work(conn)`` in one SQLAlchemy transaction (migrations, the schema version: the
        schema is SQLAlchemy's). Both are idempotent, so a broken connection is retried even
        when COMMIT broke."""
        attempt = 0
        while True:
            try:
                conn = self.engine.connect()
            except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
                self._retry_connect(exc, attempt)
            else:
                try:
                    with conn, conn.begin():
                        return work(conn)
                except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
                    retry = is_transient(exc) or is_disconnect(exc)
                    if not retry or attempt == self.options.reconnect_attempts:
                        raise translate(exc) from exc
            attempt += 1
            time.sleep(
                random.uniform(0, min(self.options.reconnect_backoff_cap, 0.05 * 4**attempt))
            )
