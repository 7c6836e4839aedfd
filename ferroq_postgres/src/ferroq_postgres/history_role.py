"""The history role of :class:`~ferroq_postgres.backend.PostgresBackend` (``HistoryStore``):
history records written with the acknowledgement, progress, listings and pruning, as a mixin
base of the backend.

The statements are in :mod:`ferroq_postgres.history`; the acknowledgement counts its deleted
jobs towards the workers' own vacuum, as ``complete`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.storage.history import PRUNE_BATCH
from ferroq_postgres import history

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from ferroq_core.history_records import AttemptError, Completion, HistoryRecord, Progress
    from ferroq_postgres.connections import Connections
    from ferroq_postgres.vacuum import Vacuumer

__all__ = ["HistoryRole"]


class HistoryRole:
    """``HistoryStore`` over the backend's connections (the workers' writes on theirs)."""

    _connections: Connections
    _worker_connections: Connections
    _vacuum: Vacuumer

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
