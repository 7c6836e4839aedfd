"""SQLite backend: WAL, ``BEGIN IMMEDIATE`` write transactions, bounded busy retries, wake-ups.

Locking model: SQLite allows one writer per file. Every write transaction starts with
``BEGIN IMMEDIATE`` (a deferred BEGIN that later writes fails at once with SQLITE_BUSY,
ignoring the busy timeout). Inside one process, writers to one file first queue on a Python
lock, so threads take turns fairly instead of polling SQLite's busy handler against each
other; across processes SQLite's busy timeout does the waiting, and a lock that outlasts it is
retried with jittered backoff a bounded number of times, then raised as ``BackendBusy``. Reads
run in deferred transactions and never take the write lock (WAL lets them run beside a
writer). "database is locked" never leaves the backend.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ferroq_core.clock import to_micros, utcnow
from ferroq_core.errors import BackendBusy, ConfigError, DatabaseError, FerroqError
from ferroq_core.records import EnqueueResult
from ferroq_core.schema import Timestamp, jobs
from ferroq_core.storage.sql import SqlBackend, claim_in_order
from ferroq_sqlite.bulk import insert_in_order
from ferroq_sqlite.options import OPTION_NAMES, SqliteOptions
from ferroq_sqlite.rows import claimed_rows
from ferroq_sqlite.statements import (
    CLAIM_SQL,
    COMPLETE_RETURNING_SQL,
    COMPLETE_SQL,
    INSERT_ONE,
    MAX_ID,
    NEW_IDS,
    complete_params,
)
from ferroq_sqlite.watch import ChangeWatcher, PollInterval

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from sqlalchemy.engine import Connection, Engine

    from ferroq_core.records import EnqueueRequest, JobRow, Lease

__all__ = ["SqliteBackend"]

T = TypeVar("T")
log = logging.getLogger("ferroq.sqlite")

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
# Checkpointed WAL files are truncated back to this size, so a burst does not leave a
# gigabyte-sized -wal file behind.
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

# One write lock per database file per process, shared by every backend on that file.
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(database: str) -> threading.Lock:
    key = os.path.realpath(database)
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


def _is_busy(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(orig)
    return "locked" in text or "busy" in text


class SqliteBackend(SqlBackend):
    """The embedded backend. Share one instance per process; it is thread-safe."""

    name = "sqlite"

    def __init__(self, engine: Engine, options: SqliteOptions | None = None) -> None:
        super().__init__(engine)
        if engine.dialect.name != "sqlite":
            raise ConfigError(f"SqliteBackend needs a SQLite engine, not {engine.dialect.name}")
        self.options = options or SqliteOptions()
        #: Busy errors absorbed by a retry so far (none of them reached a caller).
        self.busy_retried = 0
        self._write_lock = _file_lock(engine.url.database or "")
        # Set on every new connection, and restored after _begin_immediate turned it off.
        busy_ms = int(self.options.busy_timeout * 1000)
        self._busy_timeout_pragma = f"PRAGMA busy_timeout={busy_ms:d}"  # an int: nothing to inject
        self._watcher = ChangeWatcher(engine)
        self._interval = PollInterval(self.options.poll_min, self.options.poll_max)
        self._seen = threading.local()
        self._install_events(engine)

    @classmethod
    def from_url(cls, url_or_engine: Any, **options: Any) -> SqliteBackend:
        """Build from ``sqlite:///path`` or an existing SQLite ``Engine``; options come from
        the URL's query string and from keywords (which win)."""
        if isinstance(url_or_engine, sa.engine.Engine):
            # The driver ignores query keys it does not know, so ferroq's may still be there.
            opts, rest = SqliteOptions.from_sources(url_or_engine.url.query, options)
            _reject_unknown(rest)
            return cls(url_or_engine, opts)
        url = sa.engine.make_url(url_or_engine)
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise ConfigError(
                "ferroq needs a SQLite file, not an in-memory database (workers and dispatchers "
                "share it through the file): use sqlite:///path/to/jobs.db"
            )
        opts, rest = SqliteOptions.from_sources(url.query, options)
        _reject_unknown(rest)
        url = url.difference_update_query(OPTION_NAMES)
        engine = sa.create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=False)
        return cls(engine, opts)

    def _install_events(self, engine: Engine) -> None:
        busy_timeout = self._busy_timeout_pragma
        synchronous = self.options.synchronous

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE below is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # The busy timeout first: switching to WAL itself may have to wait for a lock.
            cur.execute(busy_timeout)
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")  # validated: one of four words
            cur.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT:d}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A deferred BEGIN that later writes fails at once with SQLITE_BUSY, ignoring the
            # busy timeout; IMMEDIATE takes the write lock up front and waits for it.
            mode = conn.get_execution_options().get("ferroq_begin", "IMMEDIATE")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    # -- transactions ------------------------------------------------------------------------
    def _busy(self, detail: str) -> BackendBusy:
        return BackendBusy(
            f"the SQLite database {self.engine.url.database} stayed locked by another writer "
            f"({detail}; busy timeout {self.options.busy_timeout:g}s, "
            f"{self.options.busy_retries} retries): find the process holding a long write "
            "transaction, or raise busy_timeout (sqlite:///...?busy_timeout=30)"
        )

    def _retrying(self, fn: Callable[[], T], *, write: bool) -> T:
        opts = self.options
        # One budget for the whole call, whether it is spent queueing behind this process's
        # other writers or in SQLite's busy handler: each retry may wait a full busy timeout
        # plus its backoff (at most 1 s).
        deadline = time.monotonic() + (opts.busy_retries + 1) * opts.busy_timeout
        deadline += opts.busy_retries
        delay = 0.01
        attempt = 0
        while True:
            try:
                if not write:
                    return fn()
                if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise self._busy("this process's other writers held it the whole time")
                try:
                    return fn()
                finally:
                    self._write_lock.release()
            except sa.exc.DBAPIError as exc:
                if not _is_busy(exc):
                    raise self._translate(exc) from exc
                if attempt >= opts.busy_retries:
                    raise self._busy("retries exhausted") from exc
                attempt += 1
                self.busy_retried += 1
                log.debug("SQLite busy (%s); retry %d", exc.orig, attempt)
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 1.0)

    def _write(self, fn: Callable[[Connection], T]) -> T:
        def once() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return self._retrying(once, write=True)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        def once() -> T:
            with self.engine.connect().execution_options(ferroq_begin="DEFERRED") as conn:
                return fn(conn)

        return self._retrying(once, write=False)

    def _translate(self, exc: sa.exc.DBAPIError) -> FerroqError:
        if _is_busy(exc):
            return self._busy("inside the caller's transaction")
        return super()._translate(exc)

    def close(self) -> None:
        self._watcher.close()
        super().close()

    # -- dialect pieces ----------------------------------------------------------------------
    def _at(self, offset: float = 0.0) -> sa.ColumnElement[Any]:
        # One clock: the host's, read here and bound as a parameter.
        return sa.literal(utcnow() + timedelta(seconds=offset), Timestamp())

    def _insert(self) -> Any:
        return sqlite_insert(jobs)

    def enqueue(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[EnqueueResult]:
        if connection is not None or any(r.idempotency_key is not None for r in requests):
            # The caller's transaction, or keys to settle: the shared SQLAlchemy path.
            return super().enqueue(requests, connection=connection)
        if not requests:
            return []
        # Plain jobs on the pooled sqlite3 connection itself, as claim and complete: for one
        # job SQLAlchemy's transaction and execution layers cost more than the INSERT.
        results = self._raw_write(lambda db: self._insert_rows(db, requests))
        self.wake()
        return results

    def _insert_plain(
        self, conn: Connection, reqs: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult]:
        db: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        try:
            return self._insert_rows(db, reqs)
        except sqlite3.Error as exc:
            raise _dbapi_error(exc) from exc

    def _insert_rows(
        self, db: sqlite3.Connection, reqs: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult]:
        """Insert jobs without idempotency keys inside the open write transaction."""
        base = utcnow()
        created = to_micros(base)
        rows = [
            (
                r.queue,
                r.job_type,
                r.payload,
                r.priority,
                r.max_attempts,
                r.tenant_id,
                to_micros(self._shift(base, r.delay)) if r.delay else created,
                created,
            )
            for r in reqs
        ]
        if len(rows) == 1:
            # One job: INSERT ... RETURNING; no clock query (the clock is ours).
            return [EnqueueResult(id=int(db.execute(INSERT_ONE, rows[0]).fetchone()[0]))]
        before = int(db.execute(MAX_ID).fetchone()[0])
        insert_in_order(db, rows)
        first, last, count = db.execute(NEW_IDS, (before,)).fetchone()
        if count != len(reqs) or last - first + 1 != count:
            raise DatabaseError(
                f"inserted {len(reqs)} jobs but found {count} new ids from {first} to {last}: "
                "another writer wrote inside this transaction; nothing was committed"
            )
        return [EnqueueResult(i) for i in range(first, last + 1)]

    def _clock_value(self, conn: Connection) -> datetime:
        # The host's clock: reading it through a SELECT cost a statement per dispatch.
        return utcnow()

    # The worker's claim and acknowledgement run on the pooled sqlite3 connection itself:
    # SQLAlchemy's transaction and execution layers cost more per call than SQLite spends on
    # a 100-job claim's bookkeeping (see docs/performance.md).
    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        if limit <= 0 or not queues:
            return []

        def run(db: sqlite3.Connection) -> list[JobRow]:
            now = to_micros(utcnow())
            return claim_in_order(
                queues, limit, lambda queue, n: _claim_rows(db, queue, worker_id, n, now)
            )

        return self._raw_write(run, batch=True)

    def complete(self, leases: Collection[Lease]) -> set[int]:
        if not leases:
            return set()
        groups = complete_params(leases)

        def returning(db: sqlite3.Connection) -> set[int]:
            done: set[int] = set()
            for params, _count in groups:
                done.update(r[0] for r in db.execute(COMPLETE_RETURNING_SQL, params).fetchall())
            return done

        def run(db: sqlite3.Connection) -> set[int]:
            db.execute("SAVEPOINT ack")
            for params, count in groups:
                if db.execute(COMPLETE_SQL, params).rowcount != count:
                    # Some lease did not match (lost, or listed twice): undo, ask which did.
                    db.execute("ROLLBACK TO ack")
                    return returning(db)
            return {lease.id for lease in leases}

        return self._raw_write(run, batch=True)

    def _raw_write(self, fn: Callable[[sqlite3.Connection], T], *, batch: bool = False) -> T:
        """``fn`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` on a pooled sqlite3 connection,
        with the same write lock, busy retries and error translation as :meth:`_write`.

        ``batch``: a worker's claim or acknowledgement, which waits for another process's
        write in fine steps (:meth:`_begin_immediate`); two more statements per call, which
        a single dispatch would feel (0.91x) and a batch of jobs does not.
        """

        def once() -> T:
            pooled = self.engine.raw_connection()
            try:
                db: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
                if batch:
                    self._begin_immediate(db)
                else:
                    db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as exc:
                raise _dbapi_error(exc) from exc
            finally:
                pooled.close()

        return self._retrying(once, write=True)

    def _begin_immediate(self, db: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting for another process's write in fine steps.

        SQLite's own busy handler sleeps 1 ms, then 2, then 5 and more between tries, while a
        worker's claim or acknowledgement holds the lock for a few tenths of a millisecond:
        with two worker processes on one file each spent a third of its time asleep there
        (0.64 ms per wait on average). Here the tries are made with the busy timeout off and
        a busy one is retried after 20 us, doubling up to 1 ms, for at most the busy timeout;
        then the error goes to the retries of :meth:`_retrying`, as SQLite's would have. A
        lock held longer than 0.1 s (a long transaction, a VACUUM) is polled every 10 ms.
        """
        db.execute("PRAGMA busy_timeout=0")
        try:
            started: float | None = None
            delay = 20e-6
            while True:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                    now = time.monotonic()
                    if started is None:
                        started = now
                    elif now - started >= self.options.busy_timeout:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.001 if now - started < 0.1 else 0.01)
        finally:
            db.execute(self._busy_timeout_pragma)

    # -- wake-ups ----------------------------------------------------------------------------
    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> bool:
        """Wait for a local :meth:`wake`, a commit by another connection that leaves a job due
        on ``queues``, or a delayed job's time; at most ``timeout`` seconds.

        Commits are seen through ``PRAGMA data_version``, polled every few milliseconds right
        after a change and less often the longer nothing changes (up to ``poll_max``, or the
        timeout). A wake or change that came while this thread was busy claiming counts too.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._wakeup:
            generation = self._wake_generation
        last_generation = getattr(self._seen, "generation", generation)
        self._seen.generation = generation
        if generation != last_generation:
            return True
        self._saw_change(self._watcher.version())
        due_at = self._next_due(queues)
        while True:
            now = time.monotonic()
            if due_at is not None and due_at <= now:
                return True
            end = deadline if due_at is None else min(deadline, due_at)
            if end <= now:
                return end < deadline
            pause = self._interval.next(end - now)
            with self._wakeup:
                if self._wakeup.wait_for(lambda: self._wake_generation != generation, pause):
                    self._seen.generation = self._wake_generation
                    return True
            if self._saw_change(self._watcher.version()):
                due_at = self._next_due(queues)

    def _saw_change(self, version: int | None) -> bool:
        """Record the data version this thread saw; True when it differs from the last one."""
        if version is None or version == getattr(self._seen, "version", None):
            return False
        self._seen.version = version
        self._interval.changed()
        return True

    def _next_due(self, queues: Sequence[str]) -> float | None:
        """When (on the monotonic clock) the earliest pending job of ``queues`` is due."""
        due_in = self._due_in(queues)
        return None if due_in is None else time.monotonic() + due_in


def _dbapi_error(exc: sqlite3.Error) -> sa.exc.DBAPIError:
    """A driver error raised on the sqlite3 connection itself, in the shape SQLAlchemy gives
    its own (what busy retries and error translation expect)."""
    err = sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error, ismulti=None)
    # instance() picks the subclass matching the driver's class (OperationalError, ...).
    return err if isinstance(err, sa.exc.DBAPIError) else sa.exc.DBAPIError(None, None, exc)


def _claim_rows(
    db: sqlite3.Connection, queue: str, worker_id: str, limit: int, now: int
) -> list[JobRow]:
    rows = db.execute(CLAIM_SQL, (worker_id, now, now, queue, now, limit)).fetchall()
    # RETURNING gives no order: sort by (priority, available_at, id), columns 4, 9, 0.
    return claimed_rows(sorted(rows, key=lambda r: (r[4], r[9], r[0])), worker_id, now)


def _reject_unknown(rest: dict[str, Any]) -> None:
    if rest:
        raise ConfigError(
            f"unknown SQLite backend option(s): {', '.join(sorted(rest))} "
            f"(known: {', '.join(OPTION_NAMES)})"
        )
