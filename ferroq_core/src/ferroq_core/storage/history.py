"""The storage role of job history: succeeded jobs' records, every failed attempt's error,
running jobs' progress, and their pruning.

The errors are written by the database itself (a trigger the migration step installs, see
:mod:`ferroq_core.tables.history`), in the statement that records the failure; everything
else goes through these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from ferroq_core.history_records import AttemptError, Completion, HistoryRecord, Progress

__all__ = ["PRUNE_BATCH", "PRUNE_BATCHES", "HistoryStore"]

#: Rows one pruning statement deletes at most, and statements one reaper pass runs at most
#: per table: a pass never holds a lock long, and a backlog is worked off over passes.
PRUNE_BATCH = 1000
PRUNE_BATCHES = 10


@runtime_checkable
class HistoryStore(Protocol):
    """History, attempt errors and progress."""

    def complete_with_history(self, completions: Collection[Completion]) -> set[int]:
        """:meth:`~ferroq_core.storage.protocol.WorkerStore.complete`, and a
        :class:`~ferroq_core.history_records.HistoryRecord` for each job whose lease matched,
        in the same transaction (a record exists if and only if the job was acknowledged).
        Returns the ids whose lease matched."""

    def write_progress(self, updates: Mapping[int, Progress]) -> None:
        """Store each job's latest progress (replacing what it reported before)."""

    def get_progress(self, ids: Collection[int]) -> dict[int, Progress]:
        """The stored progress of these jobs (those that reported any)."""

    def get_history(self, job_id: int) -> HistoryRecord | None:
        """The history record of a succeeded job, or None."""

    def list_history(
        self,
        *,
        queue: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        """Succeeded jobs' records matching every given filter, newest first."""

    def attempt_errors(self, job_id: int) -> list[AttemptError]:
        """The error of every failed attempt of a job still kept, oldest first."""

    def prune_history(self, older_than: float, *, limit: int = PRUNE_BATCH) -> int:
        """Delete at most ``limit`` rows of each kind older than ``older_than`` seconds:
        history records, errors of jobs that no longer exist, progress of jobs not claimed.
        Returns how many were deleted in all (the caller calls again while that is at
        least ``limit``)."""
