"""The operator's role of :class:`~ferroq_postgres.backend.PostgresBackend`: listings, counts
and actions on jobs (``Admin``), a job's unique keys (``UniqueKeys``) and the testing kit's
clock jump (``TestingStore``), as a mixin base of the backend.

The methods are thin: the statements are in :mod:`ferroq_postgres.admin` and
:mod:`ferroq_postgres.unique`. An action that makes jobs eligible wakes this process's waiters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_postgres import admin, unique

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from ferroq_core.records import JobRow, JobState, QueueStats
    from ferroq_core.unique import UniqueKey
    from ferroq_postgres.connections import Connections

__all__ = ["AdminRole"]


class AdminRole:
    """``Admin``, ``UniqueKeys`` and ``TestingStore`` over the backend's connections."""

    _connections: Connections

    if TYPE_CHECKING:

        def wake(self) -> None: ...

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

    # -- TestingStore --------------------------------------------------------------------------
    def make_due(self, queues: Sequence[str] | None = None, *, within: float | None = None) -> int:
        moved = admin.make_due(self._connections, queues, within)
        if moved:
            self.wake()
        return moved
