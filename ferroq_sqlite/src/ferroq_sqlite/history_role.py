"""The history role of :class:`~ferroq_sqlite.backend.SqliteBackend` (``HistoryStore``):
history records written in the acknowledgement's write transaction, progress, listings and
pruning, as a mixin base of the backend.

The statements are in :mod:`ferroq_sqlite.history`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.storage.history import PRUNE_BATCH
from ferroq_sqlite import history

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from ferroq_core.history_records import AttemptError, Completion, HistoryRecord, Progress
    from ferroq_sqlite.transactions import Transactions

__all__ = ["HistoryRole"]


class HistoryRole:
    """``HistoryStore`` in the backend's transactions."""

    _tx: Transactions

    def complete_with_history(self, completions: Collection[Completion]) -> set[int]:
        if not completions:
            return set()
        return self._tx.write(lambda db: history.complete_with_history(db, completions), batch=True)

    def write_progress(self, updates: Mapping[int, Progress]) -> None:
        if updates:
            self._tx.write(lambda db: history.write_progress(db, updates))

    def get_progress(self, ids: Collection[int]) -> dict[int, Progress]:
        if not ids:
            return {}
        return self._tx.read(lambda db: history.get_progress(db, ids))

    def get_history(self, job_id: int) -> HistoryRecord | None:
        return self._tx.read(lambda db: history.get_history(db, job_id))

    def list_history(
        self,
        *,
        queue: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        filters = {"queue": queue, "job_type": job_type, "tenant_id": tenant_id}
        return self._tx.read(
            lambda db: history.list_history(db, **filters, limit=limit, offset=offset)
        )

    def attempt_errors(self, job_id: int) -> list[AttemptError]:
        return self._tx.read(lambda db: history.attempt_errors(db, job_id))

    def prune_history(self, older_than: float, *, limit: int = PRUNE_BATCH) -> int:
        return self._tx.write(lambda db: history.prune(db, older_than, limit))
