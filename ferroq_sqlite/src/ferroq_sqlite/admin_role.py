"""The operator's role of :class:`~ferroq_sqlite.backend.SqliteBackend`: listings, counts and
actions on jobs (``Admin``), a job's unique keys (``UniqueKeys``) and the testing kit's clock
jump (``TestingStore``), as a mixin base of the backend.

The methods are thin: each runs the statements of :mod:`ferroq_sqlite.admin` or
:mod:`ferroq_sqlite.unique` in one of the backend's transactions. An action that makes jobs
eligible wakes this process's waiters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_sqlite import admin, unique

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from ferroq_core.records import JobRow, JobState, QueueStats
    from ferroq_core.unique import UniqueKey
    from ferroq_sqlite.transactions import Transactions

__all__ = ["AdminRole"]


class AdminRole:
    """``Admin``, ``UniqueKeys`` and ``TestingStore`` in the backend's transactions."""

    _tx: Transactions

    if TYPE_CHECKING:

        def wake(self) -> None: ...

    # -- Admin -------------------------------------------------------------------------------
    def get_job(self, job_id: int) -> JobRow | None:
        return self._tx.read(lambda db: admin.get_job(db, job_id))

    def unique_keys(self, job_id: int) -> list[UniqueKey]:
        return self._tx.read(lambda db: unique.unique_keys(db, job_id))

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
        return self._tx.read(
            lambda db: admin.list_jobs(
                db,
                state=state,
                queue=queue,
                job_type=job_type,
                tenant_id=tenant_id,
                limit=limit,
                offset=offset,
                limit_key=limit_key,
            )
        )

    def get_stats(self) -> QueueStats:
        return self._tx.read(admin.queue_stats)

    def retry_failed(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> int:
        if ids is not None and not ids:
            return 0
        moved = self._tx.write(
            lambda db: admin.retry_failed(db, ids, queue=queue, job_type=job_type)
        )
        if moved:
            self.wake()
        return moved

    def delete_jobs(self, ids: Collection[int], *, state: JobState | None = None) -> int:
        if not ids:
            return 0
        return self._tx.write(lambda db: admin.delete_jobs(db, ids, state=state))

    def flush_failed(self, *, older_than: float | None = None) -> int:
        return self._tx.write(lambda db: admin.flush_failed(db, older_than=older_than))

    def clear_queue(self, queue: str) -> int:
        return self._tx.write(lambda db: admin.clear_queue(db, queue))

    def worker_heartbeats(self) -> dict[str, datetime]:
        return self._tx.read(admin.worker_heartbeats)

    # -- TestingStore ------------------------------------------------------------------------
    def make_due(self, queues: Sequence[str] | None = None, *, within: float | None = None) -> int:
        if queues is not None and not queues:
            return 0
        moved = self._tx.write(lambda db: admin.make_due(db, queues, within))
        if moved:
            self.wake()
        return moved
