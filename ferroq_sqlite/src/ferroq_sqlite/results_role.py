"""The results role of :class:`~ferroq_sqlite.backend.SqliteBackend` (``ResultStore``): results
written in the acknowledgement's write transaction, read, awaited and pruned, as a mixin base
of the backend.

The statements and the commit feed that waiters watch (``PRAGMA data_version``) are in
:mod:`ferroq_sqlite.results`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.storage.results import await_state
from ferroq_sqlite import results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.storage.results import ResultState, ResultWrite
    from ferroq_sqlite.transactions import Transactions

__all__ = ["ResultRole"]


class ResultRole:
    """``ResultStore`` in the backend's transactions."""

    _tx: Transactions
    _result_feed: results.CommitFeed

    def complete_with_results(self, writes: Sequence[ResultWrite]) -> set[int]:
        if not writes:
            return set()
        return self._tx.write(lambda db: results.complete_with_results(db, writes), batch=True)

    def read_result(self, job_id: int) -> ResultState:
        return self._tx.read(lambda db: results.read_state(db, job_id))

    def wait_result(self, job_id: int, timeout: float) -> ResultState:
        return await_state(lambda: self.read_result(job_id), self._result_feed, job_id, timeout)

    def prune_results(self, *, limit: int | None = None) -> int:
        return self._tx.write(lambda db: results.prune(db, limit))
