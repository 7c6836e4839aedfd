"""The storage contract implemented once with SQLAlchemy Core, for every SQL backend.

A backend plugin subclasses :class:`SqlBackend` and supplies what differs per database: the
clock expression (:meth:`SqlBackend._at`), the claim statement (:meth:`SqlBackend._claim_one`,
or ``claim`` itself over :func:`claim_in_order`), how a write transaction starts and is
retried, error translation and wake-ups. Everything else (fenced transitions, the reaper,
idempotent enqueue) is shared, so both databases keep the same semantics by construction and
pass the same contract suite.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ferroq_core.clock import utcnow
from ferroq_core.errors import (
    BackendUnavailable,
    DatabaseError,
    FerroqError,
    SchemaMissing,
    SchemaOutdated,
)
from ferroq_core.records import (
    JobRow,
    Lease,
    ReapResult,
)
from ferroq_core.schema import SCHEMA_VERSION, current_version, jobs, migrate
from ferroq_core.storage.sql_admin import AdminMixin
from ferroq_core.storage.sql_enqueue import EnqueueMixin, _as_connection
from ferroq_core.storage.sql_wait import WaitMixin

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Sequence

    from sqlalchemy.engine import Connection, Engine

# _as_connection is re-exported for the backends that take a caller's connection.
__all__ = ["SqlBackend", "_as_connection", "claim_in_order", "row_to_job"]

T = TypeVar("T")

#: Every column, in the order :func:`row_to_job` reads them.
JOB_COLUMNS = tuple(jobs.c)
# Error text is capped so one runaway traceback cannot bloat the table.
MAX_ERROR_CHARS = 16_000


def row_to_job(row: Any) -> JobRow:
    """A result row with every ``ferroq_jobs`` column (by name) as a :class:`JobRow`."""
    m = row._mapping
    return JobRow(
        id=int(m["id"]),
        queue=m["queue"],
        job_type=m["job_type"],
        payload=m["payload"],
        status=m["status"],
        priority=int(m["priority"]),
        attempts=int(m["attempts"]),
        max_attempts=int(m["max_attempts"]),
        idempotency_key=m["idempotency_key"],
        tenant_id=m["tenant_id"],
        available_at=m["available_at"],
        created_at=m["created_at"],
        claimed_at=m["claimed_at"],
        claimed_by=m["claimed_by"],
        heartbeat_at=m["heartbeat_at"],
        error=m["error"],
        failed_at=m["failed_at"],
    )


def claim_in_order(
    queues: Sequence[str], limit: int, claim_one: Callable[[str, int], list[JobRow]]
) -> list[JobRow]:
    """Up to ``limit`` jobs, queue by queue in strict order: ``claim_one(queue, n)`` claims up
    to ``n`` of one queue (inside the caller's transaction)."""
    claimed: list[JobRow] = []
    for queue in queues:
        left = limit - len(claimed)
        if left <= 0:
            break
        claimed.extend(claim_one(queue, left))
    return claimed


def cap_error(error: str | None) -> str | None:
    if error is None or len(error) <= MAX_ERROR_CHARS:
        return error
    half = MAX_ERROR_CHARS // 2
    return (
        f"{error[:half]}\n... [{len(error) - MAX_ERROR_CHARS} characters cut] ...\n{error[-half:]}"
    )


def _fence(leases: Collection[Lease]) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.status == "claimed",
        sa.tuple_(jobs.c.id, jobs.c.claimed_by, jobs.c.attempts).in_(
            [(lease.id, lease.claimed_by, lease.attempts) for lease in leases]
        ),
    )


class SqlBackend(EnqueueMixin, AdminMixin, WaitMixin):
    """Shared SQLAlchemy Core implementation of :class:`~ferroq_core.storage.Backend`."""

    name = "sql"
    #: Whether each write waits on a database server (a network round trip), not only on
    #: this process: the worker then claims before it writes back (see docs/plugins.md).
    remote = False
    #: Largest number of leases finished in one statement (bounded by bind-parameter limits).
    BATCH = 500

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wakeup = threading.Condition()
        self._wake_generation = 0

    # -- what a dialect supplies ---------------------------------------------------------------
    def _at(self, offset: float = 0.0) -> sa.ColumnElement[Any]:
        """The clock plus ``offset`` seconds, as a SQL expression of the Timestamp type."""
        raise NotImplementedError

    def _claim_one(self, conn: Connection, queue: str, worker_id: str, limit: int) -> list[JobRow]:
        """Claim up to ``limit`` rows of one queue inside the open transaction."""
        raise NotImplementedError

    def _insert(self) -> Any:
        """The dialect's INSERT construct (it must offer ``on_conflict_do_nothing``)."""
        raise NotImplementedError

    def _translate(self, exc: sa.exc.DBAPIError) -> FerroqError:
        """Map a driver error to a :class:`FerroqError` (subclasses refine this)."""
        text = str(exc.orig).lower()
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            return SchemaMissing()
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
            return BackendUnavailable(
                f"database unavailable ({type(exc.orig).__name__}: {exc.orig}); "
                "check the URL and that the server is up"
            )
        return DatabaseError(f"database error ({type(exc.orig).__name__}: {exc.orig})")

    def _notify(self, conn: Connection, queues: Collection[str]) -> None:
        """Tell other processes that ``queues`` have new jobs (inside the transaction)."""

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.DBAPIError as exc:
            raise self._translate(exc) from exc

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction (subclasses add locking and retries)."""
        with self._errors(), self.engine.begin() as conn:
            return fn(conn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self._errors(), self.engine.connect() as conn:
            return fn(conn)

    # -- lifecycle ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        return self._write(lambda conn: [m.name for m in migrate(conn, now=utcnow())])

    def schema_version(self) -> int:
        return self._read(current_version)

    def check_schema(self) -> None:
        version = self.schema_version()
        if version == 0:
            raise SchemaMissing()
        if version < SCHEMA_VERSION:
            raise SchemaOutdated(
                f"the ferroq schema in this database is version {version}, this ferroq needs "
                f"{SCHEMA_VERSION}: run `ferroq migrate`"
            )

    def now(self) -> datetime:
        value = self._read(lambda conn: conn.execute(sa.select(self._at(0.0))).scalar_one())
        assert isinstance(value, datetime)
        return value

    def close(self) -> None:
        self.wake()
        self.engine.dispose()

    # -- worker ------------------------------------------------------------------------------
    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        if limit <= 0 or not queues:
            return []

        def run(conn: Connection) -> list[JobRow]:
            return claim_in_order(
                queues, limit, lambda queue, n: self._claim_one(conn, queue, worker_id, n)
            )

        return self._write(run)

    def _claim_values(self, worker_id: str) -> dict[str, Any]:
        now = self._at(0.0)
        return {
            "status": "claimed",
            "claimed_by": worker_id,
            "claimed_at": now,
            "heartbeat_at": now,
            "attempts": jobs.c.attempts + 1,
        }

    def complete(self, leases: Collection[Lease]) -> set[int]:
        return self._batched(leases, lambda chunk: sa.delete(jobs).where(_fence(chunk)))

    def _batched(self, leases: Collection[Lease], make: Callable[[list[Lease]], Any]) -> set[int]:
        items = list(leases)
        if not items:
            return set()

        def run(conn: Connection) -> set[int]:
            done: set[int] = set()
            for start in range(0, len(items), self.BATCH):
                stmt = make(items[start : start + self.BATCH]).returning(jobs.c.id)
                done.update(int(r[0]) for r in conn.execute(stmt))
            return done

        return self._write(run)

    def _release_values(self, error: str | None) -> dict[str, Any]:
        return {
            "status": "pending",
            "claimed_by": None,
            "claimed_at": None,
            "heartbeat_at": None,
            "error": cap_error(error),
        }

    def release(
        self, lease: Lease, *, delay: float, error: str | None, count_attempt: bool = True
    ) -> bool:
        values = self._release_values(error)
        values["available_at"] = self._at(delay)
        if not count_attempt:
            values["attempts"] = jobs.c.attempts - 1
        stmt = (
            sa.update(jobs)
            .where(_fence([lease]))
            .values(**values)
            .returning(jobs.c.id, jobs.c.queue)
        )

        def run(conn: Connection) -> bool:
            row = conn.execute(stmt).first()
            if row is not None:  # delayed too: idle workers then look again at due times
                self._notify(conn, {row.queue})
            return row is not None

        return self._write(run)

    def fail(self, lease: Lease, *, error: str) -> bool:
        stmt = (
            sa.update(jobs)
            .where(_fence([lease]))
            .values(
                status="failed", error=cap_error(error), failed_at=self._at(0.0), heartbeat_at=None
            )
            .returning(jobs.c.id)
        )
        return self._write(lambda conn: conn.execute(stmt).first() is not None)

    def heartbeat(self, leases: Collection[Lease]) -> set[int]:
        return self._batched(
            leases,
            lambda chunk: sa.update(jobs).where(_fence(chunk)).values(heartbeat_at=self._at(0.0)),
        )

    def reap(self, visibility_timeout: float) -> ReapResult:
        def run(conn: Connection) -> ReapResult:
            expired = sa.and_(
                jobs.c.status == "claimed", jobs.c.heartbeat_at < self._at(-visibility_timeout)
            )
            message = sa.literal(
                "lease expired: worker stopped heartbeating for more than "
                f"{visibility_timeout:g}s (killed, frozen or cut off); last held by "
            ) + sa.func.coalesce(jobs.c.claimed_by, "")
            requeued = conn.execute(
                sa.update(jobs)
                .where(expired, jobs.c.attempts < jobs.c.max_attempts)
                # available_at is kept: the job was already due, so it goes back to its
                # place in line instead of waiting behind the whole backlog again.
                .values(**dict(self._release_values(None), error=message))
                .returning(jobs.c.id, jobs.c.queue)
            ).all()
            failed = conn.execute(
                sa.update(jobs)
                .where(expired, jobs.c.attempts >= jobs.c.max_attempts)
                .values(status="failed", error=message, failed_at=self._at(0.0), heartbeat_at=None)
                .returning(*JOB_COLUMNS)
            ).all()
            if requeued:
                self._notify(conn, {r.queue for r in requeued})
            return ReapResult(
                requeued=tuple(sorted(int(r.id) for r in requeued)),
                failed=tuple(row_to_job(r) for r in failed),
            )

        return self._write(run)

    def requeue_claimed_by(self, worker_id: str, *, count_attempt: bool = True) -> int:
        # available_at is kept (the job was due when claimed): it keeps its place in line.
        values = self._release_values(None)
        values.pop("error")
        if not count_attempt:
            values["attempts"] = jobs.c.attempts - 1
        stmt = (
            sa.update(jobs)
            .where(jobs.c.status == "claimed", jobs.c.claimed_by == worker_id)
            .values(**values)
            .returning(jobs.c.id, jobs.c.queue)
        )

        def run(conn: Connection) -> int:
            rows = conn.execute(stmt).all()
            if rows:
                self._notify(conn, {r.queue for r in rows})
            return len(rows)

        return self._write(run)

    def requeue(self, leases: Collection[Lease], *, count_attempt: bool = True) -> set[int]:
        # available_at is kept (the job was due when claimed): it keeps its place in line.
        values = self._release_values(None)
        values.pop("error")
        if not count_attempt:
            values["attempts"] = jobs.c.attempts - 1
        return self._batched(
            leases, lambda chunk: sa.update(jobs).where(_fence(chunk)).values(**values)
        )

    def claimed_by_host(self, host: str) -> list[str]:
        prefix = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
        stmt = (
            sa.select(jobs.c.claimed_by)
            .where(jobs.c.status == "claimed", jobs.c.claimed_by.like(prefix, escape="\\"))
            .distinct()
        )
        # LIKE narrows the rows through the index; the exact, case-sensitive match is made
        # here because SQLite's LIKE ignores ASCII case (Postgres's does not).
        exact = host + ":"
        rows = self._read(lambda conn: [str(r[0]) for r in conn.execute(stmt)])
        return [worker for worker in rows if worker.startswith(exact)]

    def reap_startup_claims(self, host: str, alive: Callable[[int], bool]) -> int:
        total = 0
        for worker_id in self.claimed_by_host(host):
            parts = worker_id.rsplit(":", 2)
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            if not alive(int(parts[1])):
                total += self.requeue_claimed_by(worker_id)
        return total

    def make_due(self, queues: Sequence[str] | None = None, *, within: float | None = None) -> int:
        now = self._at(0.0)
        conds: list[sa.ColumnElement[bool]] = [
            jobs.c.status == "pending",
            jobs.c.available_at > now,
        ]
        if queues is not None:
            if not queues:
                return 0
            conds.append(jobs.c.queue.in_(list(queues)))
        if within is not None:
            conds.append(jobs.c.available_at <= self._at(within))
        return self._make_eligible(
            sa.update(jobs).where(*conds).values(available_at=now).returning(jobs.c.queue)
        )
