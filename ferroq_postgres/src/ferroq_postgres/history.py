"""History, attempt errors and progress on PostgreSQL (:class:`~ferroq_core.storage.history.
HistoryStore`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.history_records import AttemptError, HistoryRecord, Progress
from ferroq_postgres.connections import rowcount
from ferroq_postgres.params import lease_params

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    import psycopg

    from ferroq_core.history_records import Completion
    from ferroq_postgres.connections import Connections

__all__ = [
    "attempt_errors",
    "complete_with_history",
    "get_history",
    "get_progress",
    "list_history",
    "prune",
    "write_progress",
]


def complete_with_history(
    connections: Connections, completions: Collection[Completion]
) -> set[int]:
    """Delete and record the jobs whose lease matches, one statement that must not run
    twice; return their ids."""
    items = list(completions)
    params = lease_params(c.lease for c in items)
    params["lease_durations"] = [float(c.duration) for c in items]
    return {int(row[0]) for row in connections.rows_once("complete_with_history", params)}


def write_progress(connections: Connections, updates: Mapping[int, Progress]) -> None:
    params = {
        "job_ids": list(updates),
        "fractions": [p.fraction for p in updates.values()],
        "messages": [p.message for p in updates.values()],
    }
    connections.transaction(lambda conn: rowcount(conn, "write_progress", params))


def get_progress(connections: Connections, ids: Collection[int]) -> dict[int, Progress]:
    rows = connections.rows("get_progress", {"ids": list(ids)}, prepare=False)
    return {int(r[0]): Progress(r[1], r[2], r[3]) for r in rows}


def _record(row: Sequence[Any]) -> HistoryRecord:
    return HistoryRecord(
        job_id=int(row[0]),
        queue=row[1],
        job_type=row[2],
        tenant_id=row[3],
        priority=int(row[4]),
        attempts=int(row[5]),
        max_attempts=int(row[6]),
        created_at=row[7],
        claimed_at=row[8],
        finished_at=row[9],
        duration=float(row[10]),
        worker=row[11],
    )


def get_history(connections: Connections, job_id: int) -> HistoryRecord | None:
    rows = connections.rows("get_history", {"job_id": job_id}, shown=True)
    return _record(rows[0]) if rows else None


def list_history(connections: Connections, **filters: Any) -> list[HistoryRecord]:
    rows = connections.rows("list_history", filters, prepare=False, shown=True)
    return [_record(r) for r in rows]


def attempt_errors(connections: Connections, job_id: int) -> list[AttemptError]:
    rows = connections.rows("attempt_errors", {"job_id": job_id}, shown=True)
    return [AttemptError(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]


def prune(connections: Connections, older_than: float, limit: int) -> int:
    """One batch of each kind (see ``HistoryStore.prune_history``), one transaction."""
    params = {"older_than": float(older_than), "limit": limit}

    def run(conn: psycopg.Connection[Any]) -> int:
        return sum(
            rowcount(conn, name, params)
            for name in ("prune_history", "prune_errors", "prune_progress")
        )

    return connections.transaction(run)
