"""Introspection and operator actions, shared by every SQL backend (see :mod:`.sql`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ferroq_core.records import JobRow, JobState, QueueStats, SingleQueueStats
from ferroq_core.schema import jobs

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from datetime import datetime

    from sqlalchemy.engine import Connection

__all__ = ["AdminMixin"]

T = TypeVar("T")


class AdminMixin:
    """Read-side queries and bulk operator actions; needs ``_read``, ``_write`` and ``_at``."""

    if TYPE_CHECKING:

        def _read(self, fn: Callable[[Connection], T]) -> T: ...
        def _write(self, fn: Callable[[Connection], T]) -> T: ...
        def _at(self, offset: float = 0.0) -> sa.ColumnElement[Any]: ...
        def _notify(self, conn: Connection, queues: Collection[str]) -> None: ...
        def wake(self) -> None: ...

    def get_job(self, job_id: int) -> JobRow | None:
        from ferroq_core.storage.sql import row_to_job

        stmt = sa.select(jobs).where(jobs.c.id == job_id)
        row = self._read(lambda conn: conn.execute(stmt).first())
        return None if row is None else row_to_job(row)

    def _state_filter(self, state: JobState) -> sa.ColumnElement[bool]:
        if state is JobState.PENDING:
            return sa.and_(jobs.c.status == "pending", jobs.c.available_at <= self._at(0.0))
        if state is JobState.DELAYED:
            return sa.and_(jobs.c.status == "pending", jobs.c.available_at > self._at(0.0))
        cond: sa.ColumnElement[bool] = jobs.c.status == state.value
        return cond

    def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRow]:
        from ferroq_core.storage.sql import row_to_job

        stmt = sa.select(jobs)
        if state is not None:
            stmt = stmt.where(self._state_filter(state))
        if queue is not None:
            stmt = stmt.where(jobs.c.queue == queue)
        if job_type is not None:
            stmt = stmt.where(jobs.c.job_type == job_type)
        if tenant_id is not None:
            stmt = stmt.where(jobs.c.tenant_id == tenant_id)
        if state is JobState.FAILED:
            stmt = stmt.order_by(jobs.c.failed_at.desc(), jobs.c.id.desc())
        elif state is JobState.CLAIMED:
            stmt = stmt.order_by(jobs.c.claimed_at, jobs.c.id)
        else:
            stmt = stmt.order_by(jobs.c.priority, jobs.c.available_at, jobs.c.id)
        stmt = stmt.limit(max(0, limit)).offset(max(0, offset))
        return self._read(lambda conn: [row_to_job(r) for r in conn.execute(stmt)])

    def get_stats(self) -> QueueStats:
        now = self._at(0.0)
        eligible = sa.and_(jobs.c.status == "pending", jobs.c.available_at <= now)
        delayed = sa.and_(jobs.c.status == "pending", jobs.c.available_at > now)

        def count(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
            return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

        stmt = (
            sa.select(
                jobs.c.queue,
                count(eligible).label("pending"),
                count(delayed).label("delayed"),
                count(jobs.c.status == "claimed").label("claimed"),
                count(jobs.c.status == "failed").label("failed"),
                sa.func.min(sa.case((eligible, jobs.c.available_at), else_=None)).label("oldest"),
                now.label("now"),
            )
            .group_by(jobs.c.queue)
            .order_by(jobs.c.queue)
        )

        def run(conn: Connection) -> QueueStats:
            out = []
            for r in conn.execute(stmt):
                # min() over the CASE keeps the Timestamp type, so both dialects return an
                # aware datetime here.
                oldest = r.oldest
                age = None if oldest is None else max(0.0, (r.now - oldest).total_seconds())
                out.append(
                    SingleQueueStats(
                        queue=r.queue,
                        pending=int(r.pending),
                        delayed=int(r.delayed),
                        claimed=int(r.claimed),
                        failed=int(r.failed),
                        oldest_pending_age=age,
                    )
                )
            return QueueStats(queues=tuple(out))

        return self._read(run)

    def retry_failed(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> int:
        other = jobs.alias("other")
        # Leave a job failed when its idempotency key is held by another active job:
        # retrying it would break the one-active-job-per-key promise.
        key_free = ~sa.exists().where(
            other.c.job_type == jobs.c.job_type,
            other.c.idempotency_key == jobs.c.idempotency_key,
            other.c.status.in_(("pending", "claimed")),
        )
        conds: list[sa.ColumnElement[bool]] = [jobs.c.status == "failed"]
        if ids is not None:
            if not ids:
                return 0
            conds.append(jobs.c.id.in_(list(ids)))
        if queue is not None:
            conds.append(jobs.c.queue == queue)
        if job_type is not None:
            conds.append(jobs.c.job_type == job_type)
        conds.append(sa.or_(jobs.c.idempotency_key.is_(None), key_free))
        stmt = (
            sa.update(jobs)
            .where(*conds)
            .values(
                status="pending",
                attempts=0,
                available_at=self._at(0.0),
                claimed_by=None,
                claimed_at=None,
                heartbeat_at=None,
                failed_at=None,
            )
            .returning(jobs.c.id, jobs.c.queue)
        )
        return self._make_eligible(stmt)

    def _make_eligible(self, stmt: Any) -> int:
        """Run an UPDATE that makes rows eligible (it must return ``queue``), wake the workers
        of their queues and return how many rows moved."""

        def run(conn: Connection) -> int:
            rows = conn.execute(stmt).all()
            if rows:
                self._notify(conn, {r.queue for r in rows})
            return len(rows)

        moved = self._write(run)
        if moved:
            self.wake()
        return moved

    def delete_jobs(self, ids: Collection[int], *, state: JobState | None = None) -> int:
        if not ids:
            return 0
        stmt = sa.delete(jobs).where(jobs.c.id.in_(list(ids)))
        if state is not None:
            stmt = stmt.where(self._state_filter(state))
        return self._write(lambda conn: conn.execute(stmt).rowcount)

    def flush_failed(self, *, older_than: float | None = None) -> int:
        stmt = sa.delete(jobs).where(jobs.c.status == "failed")
        if older_than is not None:
            stmt = stmt.where(jobs.c.failed_at < self._at(-older_than))
        return self._write(lambda conn: conn.execute(stmt).rowcount)

    def clear_queue(self, queue: str) -> int:
        stmt = sa.delete(jobs).where(jobs.c.status == "pending", jobs.c.queue == queue)
        return self._write(lambda conn: conn.execute(stmt).rowcount)

    def worker_heartbeats(self) -> dict[str, datetime]:
        stmt = (
            sa.select(jobs.c.claimed_by, sa.func.max(jobs.c.heartbeat_at).label("last"))
            .where(jobs.c.status == "claimed")
            .group_by(jobs.c.claimed_by)
        )
        return self._read(lambda conn: {str(r[0]): r[1] for r in conn.execute(stmt)})
