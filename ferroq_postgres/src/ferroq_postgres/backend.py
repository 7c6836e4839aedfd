"""PostgreSQL backend: ``FOR UPDATE SKIP LOCKED`` claims on the database clock, LISTEN/NOTIFY
wake-ups, and operations that survive a broken connection.

It implements :class:`~ferroq_core.storage.Backend` directly over psycopg: every operation runs
named queries (``queries.sql``) on connections of SQLAlchemy's pool (:mod:`.connections`;
docs/postgres.md says why that pool), and SQLAlchemy itself serves only the schema and a
caller's ``Connection``/``Session``. This module holds the class: construction, fork safety,
the LISTEN thread's lifecycle, and the roles the worker's hot path and the schema use
(``Dispatcher``, ``WorkerStore``, ``SchemaStore``). The other roles are mixin bases, one module
each (:mod:`.admin_role`, :mod:`.flow_role`, :mod:`.results_role`, :mod:`.controls_role`,
:mod:`.history_role`, :mod:`.workers_role`, :mod:`.schedules_role`). Every method is thin: the
work is in :mod:`.dispatch`, :mod:`.leases`, :mod:`.admin`, :mod:`.wait` and the other
statement modules.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ferroq_core.clock import utcnow
from ferroq_core.errors import ConfigError
from ferroq_core.schema import Applied, adoptable, current_version, migrate
from ferroq_core.storage.claimplan import GroupsSeen
from ferroq_core.storage.flow import Blocked, LimitsSeen
from ferroq_core.storage.headclaim import HeadFirst
from ferroq_core.storage.rules import check_version
from ferroq_postgres import admin, flow, leases
from ferroq_postgres.admin_role import AdminRole
from ferroq_postgres.capabilities import CAPABILITIES
from ferroq_postgres.connections import Connections, no_prepared_statements, utc_sessions
from ferroq_postgres.controls_role import ControlRole
from ferroq_postgres.deadline import watchdog
from ferroq_postgres.dispatch import enqueue_in_caller, enqueue_one, insert_all
from ferroq_postgres.flow_role import FlowRole
from ferroq_postgres.history_role import HistoryRole
from ferroq_postgres.listener import Listener, listen_connection
from ferroq_postgres.options import PostgresOptions, split_url
from ferroq_postgres.params import CHANNEL
from ferroq_postgres.results import ResultWaits
from ferroq_postgres.results_role import ResultRole
from ferroq_postgres.schedules_role import ScheduleRole
from ferroq_postgres.vacuum import Vacuumer
from ferroq_postgres.wait import Notifications, due_in
from ferroq_postgres.workers_role import WorkerRegistryRole

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence, Set
    from datetime import datetime

    import psycopg
    from sqlalchemy.engine import Engine

    from ferroq_core.records import EnqueueRequest, EnqueueResult, JobRow, Lease, ReapResult

__all__ = ["CHANNEL", "PostgresBackend", "normalize_url"]

log = logging.getLogger("ferroq.postgres")


def normalize_url(url: str | sa.engine.URL) -> sa.engine.URL:
    """Any postgres URL as a ``postgresql+psycopg`` URL (psycopg 3 is the only driver)."""
    return split_url(url)[0]


def _after_fork(ref: weakref.ref[PostgresBackend]) -> None:
    """In a forked child (a pre-forking web server, for instance): the parent's pooled
    connections and listener thread are not ours. Forget them without closing the parent's
    sockets; the child opens its own on first use."""
    backend = ref()
    if backend is not None:
        backend.engine.dispose(close=False)
        watchdog.reset()
        backend._forget_threads()


class PostgresBackend(
    AdminRole,
    FlowRole,
    ResultRole,
    ControlRole,
    HistoryRole,
    WorkerRegistryRole,
    ScheduleRole,
):
    """Share one instance per process; it is thread-safe."""

    name = "postgres"
    capabilities = CAPABILITIES

    def __init__(self, engine: Engine, options: PostgresOptions | None = None) -> None:
        if engine.dialect.driver != "psycopg":
            raise ConfigError(
                f"ferroq-postgres needs the psycopg 3 driver, not {engine.dialect.driver!r}: "
                "create the engine from a postgresql+psycopg:// URL"
            )
        #: The connection pool (and the schema's engine); an engine passed in stays shared.
        self.engine = engine
        self.options = options or PostgresOptions()
        if self.options.pgbouncer:
            no_prepared_statements(engine)
        #: Where the LISTEN connection goes (None: where the pool's connections go).
        self._listen_url = (
            split_url(self.options.listen_url)[0].update_query_dict(self.options.libpq_bounds())
            if self.options.listen_url
            else None
        )
        self._connections = Connections(engine, self.options)
        # The worker's operations: a silent network must not hold a worker up for long.
        self._worker_connections = Connections(
            engine, self.options, deadline=self.options.statement_deadline or None
        )
        self._claim_size = leases.ClaimSize()
        #: Flow control: whether limits exist (then the limited claim runs), and what the
        #: last limited claim left waiting for a limit (idle waits).
        self._limits = LimitsSeen()
        #: Which queues hold pending jobs of limited types (LimitsSeen.typed_queues' look).
        self._typed_look = functools.partial(flow.typed_queues, self._worker_connections)
        self._blocked = Blocked()
        self._groups = GroupsSeen()
        #: Where the head claim last failed (flow control: the limited claim's common case).
        self._head_first = HeadFirst()
        self._closed = False
        self._forget_threads()
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _forget_threads(self) -> None:
        """Start without a listener, waiters or a running vacuum (at init, and after a fork)."""
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        self._poll_noted = False
        self._notifications = Notifications()
        self._vacuum = Vacuumer(
            self.engine, every=self.options.vacuum_every, pooled=self.options.pgbouncer
        )
        self._result_waits = ResultWaits(
            self._listen_connection,
            listen=self.options.listen and not (self.options.pgbouncer and not self._listen_url),
            backoff_cap=self.options.listen_backoff_cap,
        )

    @classmethod
    def from_url(cls, url_or_engine: Any, **options: Any) -> PostgresBackend:
        """Build from a URL (options from its query string and ``options``) or an Engine."""
        if isinstance(url_or_engine, sa.engine.Engine):
            return cls(url_or_engine, PostgresOptions.build({}, options))
        url, from_query = split_url(url_or_engine)
        opts = PostgresOptions.build(from_query, options)
        # On every connection of the pool and the LISTEN one (which connects to this URL).
        url = url.update_query_dict(opts.libpq_bounds())
        engine = sa.create_engine(
            url,
            pool_size=opts.pool_size,
            max_overflow=opts.max_overflow,
            pool_timeout=opts.pool_timeout,
            pool_recycle=opts.pool_recycle,
            pool_pre_ping=opts.pool_pre_ping,
        )
        utc_sessions(engine)  # an engine passed in keeps its sessions as they are
        return cls(engine, opts)

    @property
    def listener(self) -> Listener | None:
        """The LISTEN thread, once a :meth:`wait_for_jobs` started it (None before)."""
        return self._listener

    def close(self) -> None:
        self._closed = True
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._result_waits.close()
        self.wake()
        self.engine.dispose()

    # -- Dispatcher ----------------------------------------------------------------------------
    def enqueue(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[EnqueueResult]:
        if not requests:
            return []
        if connection is not None:
            # The NOTIFY sent in the caller's transaction is the only wake-up: it fires on
            # commit, and never for a rollback.
            return enqueue_in_caller(connection, requests)
        if len(requests) == 1:
            results = [enqueue_one(self._connections, requests[0])]
        else:
            results = self._connections.transaction(
                lambda conn: insert_all(conn, requests, prepare=True)
            )
        self._heard_own({r.queue for r in requests})
        return results

    def _heard_own(self, queues: Set[str]) -> None:
        listener = self._listener
        if listener is None or not listener.connected:
            # Nobody here hears our own NOTIFY: wake this process's waiters directly.
            self._notifications.heard(queues)

    # -- WorkerStore ---------------------------------------------------------------------------
    def now(self) -> datetime:
        return admin.now(self._connections)

    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        seen, conns = self._limits, self._worker_connections
        if seen.stale():
            seen.saw(flow.scopes(conns))
        # A job type's limits bind only the queues holding its jobs: the others keep the
        # plain claim (concurrent, no lock), which leaves the limited types' jobs alone.
        if limit <= 0 or not queues or not seen.typed_queues(queues, self._typed_look):
            self._blocked.note(queues, None)
            excluded = seen.types
            rows = leases.claim(conns, self._claim_size, queues, worker_id, limit, excluded)
            if excluded and len(rows) < limit:
                seen.short(queues)
            return rows
        rows, plan = flow.claim(conns, self._groups, self._head_first, queues, worker_id, limit)
        self._blocked.note(queues, plan)
        return rows

    def complete(self, leases_: Collection[Lease]) -> set[int]:
        done = leases.fenced(self._worker_connections, "complete", leases_)
        self._vacuum.note(len(done))
        self._blocked.freed()  # flow control: a slot of this process came free
        return done

    def release(
        self, lease: Lease, *, delay: float, error: str | None, count_attempt: bool = True
    ) -> bool:
        return leases.release(self._worker_connections, lease, delay, error, count_attempt)

    def fail(self, lease: Lease, *, error: str) -> bool:
        return leases.fail(self._worker_connections, lease, error)

    def heartbeat(self, leases_: Collection[Lease]) -> set[int]:
        return leases.fenced(self._worker_connections, "heartbeat", leases_)

    def reap(self, visibility_timeout: float) -> ReapResult:
        return leases.reap(self._worker_connections, visibility_timeout)

    def requeue(self, leases_: Collection[Lease], *, count_attempt: bool = True) -> set[int]:
        uncount = 0 if count_attempt else 1
        return leases.fenced(self._worker_connections, "requeue", leases_, uncount=uncount)

    def requeue_claimed_by(self, worker_id: str, *, count_attempt: bool = True) -> int:
        return leases.requeue_claimed_by(self._worker_connections, worker_id, count_attempt)

    def reap_worker(self, worker_id: str) -> ReapResult:
        return leases.reap_worker(self._connections, worker_id)

    def claimed_by_host(self, host: str) -> list[str]:
        return leases.claimed_by_host(self._connections, host)

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> bool:
        listener = self._ensure_listener()
        if listener is None or not listener.connected:
            timeout = min(timeout, self.options.poll_interval)
            if listener is not None:
                listener.retry_now()  # this poll may find the database back: LISTEN with it
        return self._notifications.wait(queues, timeout, self._due_in)

    def wake(self) -> None:
        self._notifications.wake()

    def _due_in(self, queues: Sequence[str]) -> float | None:
        return self._blocked.due_in(queues, due_in(self._worker_connections, queues))

    # -- the LISTEN thread ---------------------------------------------------------------------
    def _ensure_listener(self) -> Listener | None:
        if not self.options.listen or self._closed:
            return None
        if self.options.pgbouncer and self._listen_url is None:
            # A LISTEN through the pooler would stay on whichever server connection ran it.
            if not self._poll_noted:
                self._poll_noted = True
                log.info(
                    "ferroq: behind PgBouncer without listen_url: idle workers poll every %gs",
                    self.options.poll_interval,
                )
            return None
        if self._listener is None:
            with self._listener_lock:
                if self._listener is None and not self._closed:
                    listener = Listener(
                        self._listen_connection,
                        CHANNEL,
                        on_notify=self._on_notify,
                        on_state=self._on_listen_state,
                        backoff_cap=self.options.listen_backoff_cap,
                    )
                    listener.start()
                    self._listener = listener
        return self._listener

    def _listen_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        return listen_connection(self.engine, self._listen_url)

    def _on_notify(self, queues: Set[str]) -> None:
        self._notifications.heard(queues)

    def _on_listen_state(self, _connected: bool) -> None:
        # Connected: notifications sent while we were away are lost, so look now.
        # Disconnected: waiters in a long wait must fall back to polling now.
        self.wake()

    # -- SchemaStore ---------------------------------------------------------------------------
    def migrate(self) -> list[Applied]:
        return self._connections.schema(lambda conn: migrate(conn, now=utcnow()))

    def schema_version(self) -> int:
        return self._connections.schema(current_version)

    def check_schema(self) -> None:
        check_version(
            self.schema_version(),
            lambda v: self._connections.schema(lambda conn: adoptable(conn, v)),
        )
