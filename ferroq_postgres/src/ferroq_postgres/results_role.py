"""The results role of :class:`~ferroq_postgres.backend.PostgresBackend` (``ResultStore``):
results written with the acknowledgement, read, awaited and pruned, as a mixin base of the
backend.

The statements and the LISTEN-based waits are in :mod:`ferroq_postgres.results`; the
acknowledgement counts its deleted jobs towards the workers' own vacuum, as ``complete`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.storage.results import await_state
from ferroq_postgres import results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.storage.results import ResultState, ResultWrite
    from ferroq_postgres.connections import Connections
    from ferroq_postgres.vacuum import Vacuumer

__all__ = ["ResultRole"]


class ResultRole:
    """``ResultStore`` over the backend's connections."""

    _connections: Connections
    _worker_connections: Connections
    _vacuum: Vacuumer
    _result_waits: results.ResultWaits

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
