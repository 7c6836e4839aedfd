"""PostgreSQL backend: ``FOR UPDATE SKIP LOCKED`` claims on the database clock, LISTEN/NOTIFY
wake-ups, and operations that survive a broken connection.

It implements :class:`~ferroq_core.storage.Backend` directly over psycopg: every operation runs
named queries (``queries.sql``) on connections of SQLAlchemy's pool (:mod:`.connections`;
docs/postgres.md says why that pool), and SQLAlchemy itself serves only the schema and a
caller's ``Connection``/``Session``. Each role's methods are thin: the work is in
:mod:`.dispatch`, :mod:`.leases`, :mod:`.admin` and :mod:`.wait`.
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
from ferroq_core.storage.history import PRUNE_BATCH
from ferroq_core.storage.results import await_state
from ferroq_core.storage.rules import check_version
from ferroq_postgres import (
    admin,
    controls,
    flow,
    history,
    leases,
    results,
    schedules,
    unique,
    workers,
)
from ferroq_postgres.capabilities import CAPABILITIES
from ferroq_postgres.connections import Connections, no_prepared_statements, utc_sessions
from ferroq_postgres.deadline import watchdog
from ferroq_postgres.dispatch import enqueue_in_caller, enqueue_one, insert_all
from ferroq_postgres.listener import Listener, listen_connection
from ferroq_postgres.options import PostgresOptions, split_url
from ferroq_postgres.params import CHANNEL
from ferroq_postgres.vacuum import Vacuumer
from ferroq_postgres.wait import Notifications, due_in

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence, Set
    from datetime import datetime

    import psycopg
    from sqlalchemy.engine import Engine

    from ferroq_core.control_records import CancelResult, Pause, PauseScope
    from ferroq_core.fleet import WorkerBeat, WorkerInfo, WorkerRegistration
    from ferroq_core.flowlimits import LimitRule, LimitScope, LimitUsage
    from ferroq_core.history_records import AttemptError, Completion, HistoryRecord, Progress
    from ferroq_core.records import (
        EnqueueRequest,
        EnqueueResult,
        JobRow,
        JobState,
        Lease,
        QueueStats,
        ReapResult,
    )
    from ferroq_core.schedule_records import Schedule, ScheduleAdvance, ScheduleSpec
    from ferroq_core.storage.controls import Beat
    from ferroq_core.storage.results import ResultState, ResultWrite
    from ferroq_core.storage.schedules import SaveOutcome
    from ferroq_core.unique import UniqueKey

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


class PostgresBackend:
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
        self._result_waits = results.ResultWaits(
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

    # -- FlowStore -----------------------------------------------------------------------------
    def set_limit(self, rule: LimitRule) -> None:
        flow.set_limit(self._connections, rule, pooled=self.options.pgbouncer)
        self._limits.changed()

    def delete_limit(self, scope: LimitScope, name: str) -> bool:
        self._limits.changed()
        return flow.delete_limit(self._connections, scope, name)

    def list_limits(self) -> list[LimitRule]:
        return flow.list_limits(self._connections)

    def limit_usage(self) -> list[LimitUsage]:
        return flow.usage(self._connections)

    def held_back(self, queues: Sequence[str]) -> bool:
        return self._blocked.held(queues)

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

    # -- ResultStore ---------------------------------------------------------------------------
    def complete_with_results(self, writes: Sequence[ResultWrite]) -> set[int]:
        if not writes:
            return set()
        done = results.complete_with_results(self._worker_connections, writes)
        self._vacuum.note(len(done))
        return done

    def read_result(self, job_id: int) -> ResultState:
        return results.read_state(self._connections, job_id)

    def wait_result(self, job_id: int, timeout: float) -> ResultState:
        return await_state(lambda: self.read_result(job_id), self._result_waits, job_id, timeout)

    def prune_results(self, *, limit: int | None = None) -> int:
        return results.prune(self._connections, limit)

    # -- Admin ---------------------------------------------------------------------------------
    def get_job(self, job_id: int) -> JobRow | None:
        return admin.get_job(self._connections, job_id)

    def unique_keys(self, job_id: int) -> list[UniqueKey]:
        return unique.unique_keys(self._connections, job_id)

    def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        limit_key: str | None = None,
    ) -> list[JobRow]:
        return admin.list_jobs(
            self._connections,
            state=state,
            queue=queue,
            job_type=job_type,
            tenant_id=tenant_id,
            limit=limit,
            offset=offset,
            limit_key=limit_key,
        )

    def get_stats(self) -> QueueStats:
        return admin.get_stats(self._connections)

    def retry_failed(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> int:
        moved = admin.retry_failed(self._connections, ids, queue=queue, job_type=job_type)
        if moved:
            self.wake()
        return moved

    def delete_jobs(self, ids: Collection[int], *, state: JobState | None = None) -> int:
        return admin.delete_jobs(self._connections, ids, state)

    def flush_failed(self, *, older_than: float | None = None) -> int:
        return admin.flush_failed(self._connections, older_than)

    def clear_queue(self, queue: str) -> int:
        return admin.clear_queue(self._connections, queue)

    def worker_heartbeats(self) -> dict[str, datetime]:
        return admin.worker_heartbeats(self._connections)

    # -- ControlStore (ferroq_postgres.controls) --------------------------------------------
    def pause(self, scope: PauseScope, name: str, *, reason: str | None = None) -> Pause | None:
        return controls.pause(self._connections, scope, name, reason)

    def resume(self, scope: PauseScope, name: str) -> Pause | None:
        removed = controls.resume(self._connections, scope, name)
        if removed is not None:
            self.wake()  # this process's waiters, whether or not its listener is connected
        return removed

    def pauses(self) -> list[Pause]:
        return controls.list_pauses(self._connections)

    def cancel_jobs(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> CancelResult:
        return controls.cancel_jobs(self._connections, ids, queue, job_type)

    def heartbeat_cancels(self, leases_: Collection[Lease]) -> Beat:
        return controls.heartbeat_cancels(self._worker_connections, leases_)

    def finish_cancelled(self, lease: Lease) -> bool:
        return controls.finish_cancelled(self._worker_connections, lease)

    def sweep_cancelled(self, holders: Collection[str] = ()) -> list[JobRow]:
        return controls.sweep_cancelled(self._worker_connections, holders)

    # -- HistoryStore --------------------------------------------------------------------------
    def complete_with_history(self, completions: Collection[Completion]) -> set[int]:
        if not completions:
            return set()
        done = history.complete_with_history(self._worker_connections, completions)
        self._vacuum.note(len(done))
        return done

    def write_progress(self, updates: Mapping[int, Progress]) -> None:
        if updates:
            history.write_progress(self._worker_connections, updates)

    def get_progress(self, ids: Collection[int]) -> dict[int, Progress]:
        if not ids:
            return {}
        return history.get_progress(self._connections, ids)

    def get_history(self, job_id: int) -> HistoryRecord | None:
        return history.get_history(self._connections, job_id)

    def list_history(
        self,
        *,
        queue: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        return history.list_history(
            self._connections,
            queue=queue,
            job_type=job_type,
            tenant_id=tenant_id,
            limit=limit,
            offset=offset,
        )

    def attempt_errors(self, job_id: int) -> list[AttemptError]:
        return history.attempt_errors(self._connections, job_id)

    def prune_history(self, older_than: float, *, limit: int = PRUNE_BATCH) -> int:
        return history.prune(self._worker_connections, older_than, limit)

    # -- WorkerRegistry (ferroq_postgres.workers) -------------------------------------------
    def register_worker(self, registration: WorkerRegistration) -> datetime:
        return workers.register(self._connections, registration)

    def beat_worker(self, worker_id: str, leases_: Collection[Lease]) -> WorkerBeat:
        return workers.beat(self._worker_connections, worker_id, leases_)

    def deregister_worker(self, worker_id: str) -> bool:
        return workers.deregister(self._connections, worker_id)

    def list_workers(self) -> list[WorkerInfo]:
        return workers.live(self._connections)

    def registered_heartbeats(self) -> dict[str, datetime]:
        return workers.registered_beats(self._connections)

    def reap_workers(self) -> list[WorkerInfo]:
        return workers.reap(self._worker_connections)

    def request_restart(self) -> datetime:
        return workers.send_signal(self._connections)

    def restart_requested_at(self) -> datetime | None:
        return workers.read_signal(self._connections)

    # -- TestingStore --------------------------------------------------------------------------
    def make_due(self, queues: Sequence[str] | None = None, *, within: float | None = None) -> int:
        moved = admin.make_due(self._connections, queues, within)
        if moved:
            self.wake()
        return moved

    # -- ScheduleStore (ferroq_postgres.schedules) ----------------------------------------------
    def schedule_due_in(self) -> float | None:
        return schedules.due_in(self._worker_connections)

    def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        return schedules.due(self._worker_connections, now, limit)

    def advance_schedule(
        self, advance: ScheduleAdvance, requests: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult] | None:
        results = schedules.advance(self._worker_connections, advance, requests)
        if results:
            self._heard_own({r.queue for r in requests})
        return results

    def save_schedule(
        self, spec: ScheduleSpec, next_run_at: datetime, *, replace: bool = True
    ) -> SaveOutcome:
        return schedules.save(self._connections, spec, next_run_at, replace=replace)

    def get_schedule(self, name: str) -> Schedule | None:
        return schedules.get(self._connections, name)

    def list_schedules(self) -> list[Schedule]:
        return schedules.list_all(self._connections)

    def pause_schedule(self, name: str, *, paused: bool, next_run_at: datetime | None) -> bool:
        return schedules.pause(self._connections, name, paused=paused, next_run_at=next_run_at)

    def remove_schedule(self, name: str) -> bool:
        return schedules.remove(self._connections, name)

    def record_schedule_run(
        self, name: str, at: datetime, request: EnqueueRequest
    ) -> EnqueueResult | None:
        result = schedules.record_run(self._connections, name, at, request)
        if result is not None:
            self._heard_own({request.queue})
        return result

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
