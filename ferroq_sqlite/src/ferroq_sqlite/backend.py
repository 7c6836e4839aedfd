"""SQLite backend: WAL, ``BEGIN IMMEDIATE`` write transactions, bounded busy retries."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ferroq_core.clock import utcnow
from ferroq_core.errors import BackendBusy, ConfigError, FerroqError
from ferroq_core.records import JobRow
from ferroq_core.schema import Timestamp, jobs
from ferroq_core.storage.sql import JOB_COLUMNS, SqlBackend, row_to_job

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["SqliteBackend"]

T = TypeVar("T")


def _is_busy(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and (
        "locked" in str(orig) or "busy" in str(orig)
    )


class SqliteBackend(SqlBackend):
    """The embedded backend. Share one instance per process; it is thread-safe."""

    name = "sqlite"

    def __init__(
        self,
        engine: Engine,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        busy_retries: int = 20,
    ) -> None:
        super().__init__(engine)
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError(
                f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
            )
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous.upper()
        self.busy_retries = busy_retries
        self._install_events(engine)

    @classmethod
    def from_url(cls, url_or_engine: Any, **options: Any) -> SqliteBackend:
        if isinstance(url_or_engine, sa.engine.Engine):
            return cls(url_or_engine, **options)
        url = sa.engine.make_url(url_or_engine)
        if url.database in (None, "", ":memory:"):
            raise ConfigError(
                "ferroq needs a SQLite file, not an in-memory database (workers and dispatchers "
                "share it through the file): use sqlite:///path/to/jobs.db"
            )
        engine = sa.create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=False)
        return cls(engine, **options)

    def _install_events(self, engine: Engine) -> None:
        busy_ms = int(self.busy_timeout * 1000)
        synchronous = self.synchronous

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE below is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")  # int only: no injection possible
            cur.execute(f"PRAGMA synchronous={synchronous}")  # validated in __init__
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A deferred BEGIN that later writes fails at once with SQLITE_BUSY, ignoring the
            # busy timeout; IMMEDIATE takes the write lock up front and waits for it.
            mode = conn.get_execution_options().get("ferroq_begin", "IMMEDIATE")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    # -- transactions ------------------------------------------------------------------------
    def _retrying(self, fn: Callable[[], T]) -> T:
        delay = 0.005
        for attempt in range(self.busy_retries + 1):
            try:
                return fn()
            except sa.exc.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._translate(exc) from exc
                if attempt == self.busy_retries:
                    raise BackendBusy(
                        f"SQLite database stayed locked after {self.busy_retries} retries "
                        f"(busy timeout {self.busy_timeout}s): another process holds a long "
                        "write transaction; raise the busy timeout or shorten that transaction"
                    ) from exc
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.5)
            except sa.exc.DBAPIError as exc:
                raise self._translate(exc) from exc
        raise AssertionError("unreachable")

    def _write(self, fn: Callable[[Connection], T]) -> T:
        def once() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return self._retrying(once)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        def once() -> T:
            with self.engine.connect().execution_options(ferroq_begin="DEFERRED") as conn:
                return fn(conn)

        return self._retrying(once)

    def _translate(self, exc: sa.exc.DBAPIError) -> FerroqError:
        if _is_busy(exc):
            return BackendBusy()
        return super()._translate(exc)

    # -- dialect pieces ----------------------------------------------------------------------
    def _at(self, offset: float = 0.0) -> sa.ColumnElement[Any]:
        # One clock: the host's, read here and bound as a parameter.
        return sa.literal(utcnow() + timedelta(seconds=offset), Timestamp())

    def _insert(self) -> Any:
        return sqlite_insert(jobs)

    def _claim_one(self, conn: Connection, queue: str, worker_id: str, limit: int) -> list[JobRow]:
        # Inside BEGIN IMMEDIATE this transaction is the only writer, so selecting then
        # updating by id cannot double-claim.
        now = self._at(0.0)
        ids = (
            sa.select(jobs.c.id)
            .where(jobs.c.status == "pending", jobs.c.queue == queue, jobs.c.available_at <= now)
            .order_by(jobs.c.priority, jobs.c.available_at, jobs.c.id)
            .limit(limit)
            .scalar_subquery()
        )
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id.in_(ids))
            .values(**self._claim_values(worker_id))
            .returning(*JOB_COLUMNS)
        )
        rows = [row_to_job(r) for r in conn.execute(stmt)]
        rows.sort(key=lambda r: (r.priority, r.available_at, r.id))
        return rows
