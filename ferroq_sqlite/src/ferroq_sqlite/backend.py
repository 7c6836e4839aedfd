"""The SQLite backend: every storage role over sqlite3, on one stack.

A SQLAlchemy ``Engine`` is the connection pool (and runs the schema's migrations); every
operation runs the named queries of ``queries.sql`` on a pooled sqlite3 connection
(:mod:`ferroq_sqlite.transactions`), or, for a transactional dispatch, on the driver connection
inside the caller's SQLAlchemy transaction.

This module holds the class: construction, lifecycle, and the roles of dispatch, the worker's
hot path and the schema (``Dispatcher``, ``WorkerStore``, ``SchemaStore``). The other roles
are mixin bases, one module each (:mod:`~ferroq_sqlite.admin_role`,
:mod:`~ferroq_sqlite.flow_role`, :mod:`~ferroq_sqlite.results_role`,
:mod:`~ferroq_sqlite.controls_role`, :mod:`~ferroq_sqlite.history_role`,
:mod:`~ferroq_sqlite.workers_role`, :mod:`~ferroq_sqlite.schedules_role`). Every method is
thin: the statements' parameters and results are handled in :mod:`~ferroq_sqlite.dispatch`,
:mod:`~ferroq_sqlite.leases`, :mod:`~ferroq_sqlite.watch` and the other statement modules.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ferroq_core.clock import to_micros, utcnow
from ferroq_core.errors import BackendUnavailable, ConfigError, DatabaseError
from ferroq_core.schema import Applied, adoptable, migrate
from ferroq_core.storage.claimplan import GroupsSeen
from ferroq_core.storage.flow import Blocked, LimitsSeen
from ferroq_core.storage.headclaim import HeadFirst
from ferroq_core.storage.rules import (
    check_version,
    claim_in_order,
    host_like_pattern,
    workers_on_host,
)
from ferroq_core.storage.wakeup import WakeSignal
from ferroq_sqlite import flow, leases
from ferroq_sqlite.admin_role import AdminRole
from ferroq_sqlite.capabilities import CAPABILITIES
from ferroq_sqlite.connect import install_connection_setup
from ferroq_sqlite.controls_role import ControlRole
from ferroq_sqlite.dispatch import insert_plain, insert_requests, with_result_ttls
from ferroq_sqlite.flow_role import FlowRole
from ferroq_sqlite.groups_index import GroupsIndex
from ferroq_sqlite.history_role import HistoryRole
from ferroq_sqlite.options import OPTION_NAMES, SqliteOptions
from ferroq_sqlite.queries import sql
from ferroq_sqlite.results import CommitFeed
from ferroq_sqlite.results_role import ResultRole
from ferroq_sqlite.schedules_role import ScheduleRole
from ferroq_sqlite.text import is_undecodable
from ferroq_sqlite.transactions import Transactions
from ferroq_sqlite.watch import ChangeWatcher, IdleWait, PollInterval, due_in
from ferroq_sqlite.workers_role import WorkerRegistryRole

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Collection, Sequence
    from datetime import datetime

    from sqlalchemy.engine import Engine

    from ferroq_core.records import EnqueueRequest, EnqueueResult, JobRow, Lease, ReapResult
    from ferroq_sqlite.dispatch import Insert

__all__ = ["SqliteBackend"]

T = TypeVar("T")


class SqliteBackend(
    AdminRole,
    FlowRole,
    ResultRole,
    ControlRole,
    HistoryRole,
    WorkerRegistryRole,
    ScheduleRole,
):
    """The embedded backend. Share one instance per process; it is thread-safe."""

    name = "sqlite"
    capabilities = CAPABILITIES

    def __init__(self, engine: Engine, options: SqliteOptions | None = None) -> None:
        if engine.dialect.name != "sqlite":
            raise ConfigError(f"SqliteBackend needs a SQLite engine, not {engine.dialect.name}")
        #: The connection pool (and the engine a caller's transactional dispatch may use).
        self.engine = engine
        self.options = options or SqliteOptions()
        install_connection_setup(engine, self.options)
        self._tx = Transactions(engine, self.options)
        self._signal = WakeSignal()
        self._watcher = ChangeWatcher(engine)
        self._idle = IdleWait(
            self._signal,
            self._watcher,
            PollInterval(self.options.poll_min, self.options.poll_max),
            lambda queues: self._blocked.due_in(
                queues, self._tx.read(lambda db: due_in(db, queues))
            ),
        )
        self._result_feed = CommitFeed(self._watcher, self.options.poll_min)
        #: Flow control: whether limits exist (then the limited claim runs), and what the
        #: last limited claim left waiting for a limit (idle waits).
        self._limits = LimitsSeen()
        self._blocked = Blocked()
        self._groups = GroupsSeen()
        #: Where the head claim last failed (flow control: the limited claim's common case).
        self._head_first = HeadFirst()
        #: When the limited claims last needed the groups index (it is made on the second).
        self._groups_index = GroupsIndex()

    @classmethod
    def from_url(cls, url_or_engine: Any, **options: Any) -> SqliteBackend:
        """Build from ``sqlite:///path`` or an existing SQLite ``Engine``; options come from
        the URL's query string and from keywords (which win)."""
        if isinstance(url_or_engine, sa.engine.Engine):
            # The driver ignores query keys it does not know, so ferroq's may still be there.
            return cls(url_or_engine, SqliteOptions.from_sources(url_or_engine.url.query, options))
        url = sa.engine.make_url(url_or_engine)
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise ConfigError(
                "ferroq needs a SQLite file, not an in-memory database (workers and dispatchers "
                "share it through the file): use sqlite:///path/to/jobs.db"
            )
        opts = SqliteOptions.from_sources(url.query, options)
        folder = os.path.dirname(os.path.abspath(url.database))
        if not os.path.isdir(folder):
            raise BackendUnavailable(
                f"the directory of the SQLite database {url.database} does not exist ({folder}): "
                "create it, or fix the path in the database URL (SQLite creates the file, not "
                "its directory)"
            )
        url = url.difference_update_query(OPTION_NAMES)
        engine = sa.create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=False)
        return cls(engine, opts)

    @property
    def busy_retried(self) -> int:
        """Busy errors absorbed by a retry so far (none of them reached a caller)."""
        return self._tx.busy_retried

    def close(self) -> None:
        self._result_feed.closed.set()
        self._watcher.close()
        self.wake()
        self.engine.dispose()

    # -- Dispatcher --------------------------------------------------------------------------
    def enqueue(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[EnqueueResult]:
        if not requests:
            return []
        keyed = connection is not None or any(r.idempotency_key is not None for r in requests)
        insert: Insert = insert_requests if keyed else insert_plain
        if any(r.result_ttl is not None for r in requests):
            insert = with_result_ttls(insert)
        if connection is not None:
            results = self._tx.in_caller(connection, lambda db: insert(db, requests))
        else:
            results = self._tx.write(lambda db: insert(db, requests))
        self.wake()
        return results

    # -- WorkerStore -------------------------------------------------------------------------
    def now(self) -> datetime:
        # One clock, the host's (capabilities.database_clock is False): every timestamp this
        # backend stores is read from it.
        return utcnow()

    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        if limit <= 0 or not queues:
            return []
        seen = self._limits
        if seen.stale():
            seen.saw(self._tx.read(flow.scopes))
        # A job type's limits bind only the queues holding its jobs: the others keep the
        # plain claim, which leaves the limited types' jobs alone.
        if seen.typed_queues(queues, self._typed_look):
            return self._claim_limited(queues, worker_id, limit)
        self._blocked.note(queues, None)
        excluded = json.dumps(seen.types)

        def run(db: sqlite3.Connection, claim_queue: Any = leases.claim_queue) -> list[JobRow]:
            now = to_micros(utcnow())
            return claim_in_order(
                queues,
                limit,
                lambda queue, n: claim_queue(db, queue, worker_id, n, now, excluded),
            )

        try:
            rows = self._tx.write(run, batch=True)
        except DatabaseError as exc:
            if not is_undecodable(exc):
                raise
            # A row of these queues holds text that is not UTF-8: claim again, failing it
            # alone.
            rows = self._tx.write(lambda db: run(db, leases.claim_queue_lenient), batch=True)
        if seen.types and len(rows) < limit:
            seen.short(queues)
        return rows

    def _typed_look(self, queues: list[str], types: list[str]) -> list[str]:
        """Which of ``queues`` hold pending jobs of the limited ``types`` (LimitsSeen)."""
        return self._tx.read(lambda db: flow.typed_queues(db, queues, types))

    def _claim_limited(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        rows, plan = self._tx.write(
            lambda db: flow.claim(
                db,
                self._groups,
                self._groups_index,
                self._head_first,
                queues,
                worker_id,
                limit,
                to_micros(utcnow()),
            ),
            batch=True,
        )
        self._blocked.note(queues, plan)
        return rows

    def complete(self, leases_: Collection[Lease]) -> set[int]:
        if not leases_:
            return set()
        done = self._tx.write(lambda db: leases.complete(db, leases_), batch=True)
        self._blocked.freed()  # flow control: a slot of this process came free
        return done

    def release(
        self, lease: Lease, *, delay: float, error: str | None, count_attempt: bool = True
    ) -> bool:
        return self._tx.write(
            lambda db: leases.release(
                db, lease, delay=delay, error=error, count_attempt=count_attempt
            )
        )

    def fail(self, lease: Lease, *, error: str) -> bool:
        return self._tx.write(lambda db: leases.fail(db, lease, error=error))

    def heartbeat(self, leases_: Collection[Lease]) -> set[int]:
        if not leases_:
            return set()
        return self._tx.write(lambda db: leases.heartbeat(db, leases_))

    def reap(self, visibility_timeout: float) -> ReapResult:
        return self._tx.write(lambda db: leases.reap(db, visibility_timeout))

    def requeue(self, leases_: Collection[Lease], *, count_attempt: bool = True) -> set[int]:
        if not leases_:
            return set()
        return self._tx.write(lambda db: leases.requeue(db, leases_, count_attempt=count_attempt))

    def requeue_claimed_by(self, worker_id: str, *, count_attempt: bool = True) -> int:
        return self._tx.write(
            lambda db: leases.requeue_claimed_by(db, worker_id, count_attempt=count_attempt)
        )

    def reap_worker(self, worker_id: str) -> ReapResult:
        return self._tx.write(lambda db: leases.reap_worker(db, worker_id))

    def claimed_by_host(self, host: str) -> list[str]:
        pattern = {"pattern": host_like_pattern(host)}
        found = self._tx.read(lambda db: db.execute(sql("claimed_by_like"), pattern).fetchall())
        return workers_on_host((r[0] for r in found), host)

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> bool:
        return self._idle.wait(queues, timeout)

    def wake(self) -> None:
        self._signal.wake()

    # -- SchemaStore -------------------------------------------------------------------------
    def migrate(self) -> list[Applied]:
        return self._schema(lambda conn: migrate(conn, now=utcnow()))

    def schema_version(self) -> int:
        def read(db: sqlite3.Connection) -> int:
            if not db.execute(sql("schema_table_exists")).fetchone()[0]:
                return 0
            return int(db.execute(sql("schema_version")).fetchone()[0] or 0)

        return self._tx.read(read)

    def check_schema(self) -> None:
        check_version(self.schema_version(), lambda v: self._schema(lambda c: adoptable(c, v)))

    def _schema(self, work: Callable[[sa.engine.Connection], T]) -> T:
        def run() -> T:
            # The schema is SQLAlchemy metadata: it migrates through the engine, whose
            # transactions start with BEGIN IMMEDIATE (ferroq_sqlite.connect).
            with self.engine.begin() as conn:
                return work(conn)

        return self._tx.retrying(run, write=True)
