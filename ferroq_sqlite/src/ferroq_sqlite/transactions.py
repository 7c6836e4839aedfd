"""Transactions on the pooled sqlite3 connections: the write lock, ``BEGIN IMMEDIATE``, busy
retries and error translation.

Locking model: SQLite allows one writer per file. Every write transaction starts with
``BEGIN IMMEDIATE`` (a deferred BEGIN that later writes fails at once with SQLITE_BUSY,
ignoring the busy timeout). Inside one process, writers to one file first queue on a Python
lock, so threads take turns fairly instead of polling SQLite's busy handler against each
other; across processes SQLite's busy timeout does the waiting, and a lock that outlasts it is
retried with jittered backoff a bounded number of times, then raised as ``BackendBusy``. Reads
run outside any write transaction and never take the write lock (WAL lets them run beside a
writer). "database is locked" never leaves the backend: every driver error is translated into
a :class:`~ferroq_core.errors.FerroqError`.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa

from ferroq_core.errors import (
    BackendBusy,
    BackendUnavailable,
    DatabaseError,
    FerroqError,
    SchemaMissing,
)
from ferroq_core.storage.connections import driver_connection
from ferroq_sqlite.connect import busy_timeout_pragma
from ferroq_sqlite.queries import sql
from ferroq_sqlite.text import is_undecodable, lenient_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Engine

    from ferroq_sqlite.options import SqliteOptions

__all__ = ["Transactions", "file_lock", "is_busy", "translate"]

T = TypeVar("T")
log = logging.getLogger("ferroq.sqlite")

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

# One write lock per database file per process, shared by every backend on that file.
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def file_lock(database: str) -> threading.Lock:
    """This process's write lock for the database file at ``database``."""
    key = os.path.realpath(database)
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


def _driver_error(exc: BaseException) -> BaseException:
    """The sqlite3 error itself, also when SQLAlchemy wrapped it."""
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (a sqlite3 error, or SQLAlchemy's wrapping of one) is a lock error."""
    orig = _driver_error(exc)
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(orig)
    return "locked" in text or "busy" in text


def translate(exc: BaseException) -> FerroqError:
    """A driver error (not a lock error) as a :class:`FerroqError`."""
    orig = _driver_error(exc)
    name = type(orig).__name__
    if "no such table" in str(orig).lower():
        return SchemaMissing()
    if is_undecodable(orig):  # sqlite3's message quotes the text: never pass it on
        return DatabaseError(
            "a stored text value is not valid UTF-8 (written by another program?): find the "
            "row with `ferroq jobs` and remove it with `ferroq forget ID --any-state`"
        )
    if isinstance(orig, (sqlite3.OperationalError, sqlite3.InterfaceError)):
        return BackendUnavailable(
            f"database unavailable ({name}: {orig}); check the URL and that the file is "
            "readable and writable"
        )
    return DatabaseError(f"database error ({name}: {orig})")


class Transactions:
    """Runs functions of a sqlite3 connection in read or write transactions of ``engine``'s
    pool (thread-safe; one per backend)."""

    def __init__(self, engine: Engine, options: SqliteOptions) -> None:
        self.engine = engine
        self.options = options
        #: Busy errors absorbed by a retry so far (none of them reached a caller).
        self.busy_retried = 0
        self._write_lock = file_lock(engine.url.database or "")
        self._busy_timeout = busy_timeout_pragma(options.busy_timeout)
        # Looked up once: every write runs these, a single dispatch among them.
        self._begin = sql("begin_immediate")
        self._commit = sql("commit")
        self._rollback = sql("rollback")

    def busy(self, detail: str) -> BackendBusy:
        """The error for a write lock that stayed taken."""
        return BackendBusy(
            f"the SQLite database {self.engine.url.database} stayed locked by another writer "
            f"({detail}; busy timeout {self.options.busy_timeout:g}s, "
            f"{self.options.busy_retries} retries): find the process holding a long write "
            "transaction, or raise busy_timeout (sqlite:///...?busy_timeout=30)"
        )

    def write(self, fn: Callable[[sqlite3.Connection], T], *, batch: bool = False) -> T:
        """``fn`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` on a pooled connection, under the
        write lock, retried while busy.

        :param batch: a worker's claim or acknowledgement, which waits for another process's
            write in fine steps (:meth:`begin_immediate`); it costs two more statements per
            transaction, which a batch of jobs does not feel and a single dispatch would.
        """

        def once() -> T:
            pooled = self.engine.raw_connection()
            try:
                db = cast("sqlite3.Connection", pooled.driver_connection)
                if batch:
                    self.begin_immediate(db)
                else:
                    db.execute(self._begin)
                try:
                    result = fn(db)
                    db.execute(self._commit)
                except BaseException:
                    if db.in_transaction:
                        db.execute(self._rollback)
                    raise
                return result
            finally:
                pooled.close()

        return self.retrying(once, write=True)

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on a pooled connection, each statement its own read (no write lock).

        A read that meets stored text that is not valid UTF-8 runs again with such bytes
        shown as U+FFFD, so a listing shows the row instead of failing on it.
        """

        def once(lenient: bool = False) -> T:
            pooled = self.engine.raw_connection()
            try:
                db = cast("sqlite3.Connection", pooled.driver_connection)
                if not lenient:
                    return fn(db)
                with lenient_text(db, escape=False):
                    return fn(db)
            finally:
                pooled.close()

        try:
            return self.retrying(once, write=False)
        except DatabaseError as exc:
            if not is_undecodable(exc):
                raise
        return self.retrying(lambda: once(lenient=True), write=False)

    def in_caller(self, connection: Any, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on the driver connection of a caller's SQLAlchemy ``Connection`` or
        ``Session``, inside its open transaction (started if none is): no lock, no retry (the
        caller owns the transaction), errors translated."""
        try:
            # May begin the caller's transaction (BEGIN IMMEDIATE), which may find the lock
            # taken: that is met inside the dispatch too.
            _conn, db = driver_connection(connection, "sqlite")
            return fn(cast("sqlite3.Connection", db))
        except (sqlite3.Error, sa.exc.DBAPIError) as exc:
            if is_busy(exc):
                raise self.busy("inside the caller's transaction") from exc
            raise translate(exc) from exc

    def retrying(self, fn: Callable[[], T], *, write: bool) -> T:
        """``fn()``, under the write lock when ``write``, retried with jittered backoff while
        the database is busy; driver errors (sqlite3's or SQLAlchemy's) come out translated."""
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
                    raise self.busy("this process's other writers held it the whole time")
                try:
                    return fn()
                finally:
                    self._write_lock.release()
            except (sqlite3.Error, sa.exc.DBAPIError) as exc:
                if not is_busy(exc):
                    raise translate(exc) from exc
                if attempt >= opts.busy_retries:
                    raise self.busy("retries exhausted") from _driver_error(exc)
                attempt += 1
                self.busy_retried += 1
                log.debug("SQLite busy (%s); retry %d", _driver_error(exc), attempt)
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 1.0)

    def begin_immediate(self, db: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting for another process's write in fine steps.

        SQLite's own busy handler sleeps 1 ms, then 2, then 5 and more between tries, while a
        worker's claim or acknowledgement holds the lock for a fraction of a millisecond, so
        workers sharing a file would spend much of their time asleep there. Here the tries
        are made with the busy timeout off and a busy one is retried after 20 us, doubling up
        to 1 ms, for at most the busy timeout; then the error goes to the retries of
        :meth:`retrying`, as SQLite's would have. A lock held longer than 0.1 s (a long
        transaction, a VACUUM) is polled every 10 ms.
        """
        db.execute(sql("busy_timeout_off"))
        try:
            started: float | None = None
            delay = 20e-6
            while True:
                try:
                    db.execute(self._begin)
                    return
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
                    now = time.monotonic()
                    if started is None:
                        started = now
                    elif now - started >= self.options.busy_timeout:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.001 if now - started < 0.1 else 0.01)
        finally:
            db.execute(self._busy_timeout)
