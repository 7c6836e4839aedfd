"""What both backends do the same way for the worker registry: the row a registration
writes, the records a row and the claimed jobs make, and the name of the restart signal."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ferroq_core.fleet import ClaimedJob, WorkerInfo

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ferroq_core.fleet import WorkerRegistration

__all__ = ["RESTART", "WORKER_COLUMNS", "held_jobs", "registration_params", "worker_from_row"]

#: The signal ``ferroq restart`` sets (a row of ``ferroq_worker_signals``).
RESTART = "restart"

#: The columns of ``ferroq_workers`` in the order the listing queries read them.
WORKER_COLUMNS = (
    "id",
    "role",
    "host",
    "pid",
    "queues",
    "concurrency",
    "visibility_timeout",
    "version",
    "supervisor",
    "started_at",
    "heartbeat_at",
)


def registration_params(registration: WorkerRegistration) -> dict[str, Any]:
    """The named parameters of ``register_worker`` (``started_at`` as the record has it:
    the backend converts it and supplies ``now``)."""
    return {
        "id": registration.id,
        "role": registration.role,
        "host": registration.host,
        "pid": registration.pid,
        "queues": json.dumps(list(registration.queues)),
        "concurrency": registration.concurrency,
        "visibility_timeout": float(registration.visibility_timeout),
        "version": registration.version,
        "supervisor": registration.supervisor,
        "started_at": registration.started_at,
    }


def _queues(text: str) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(q) for q in value) if isinstance(value, list) else ()


def worker_from_row(
    row: Sequence[Any], jobs: Mapping[str, tuple[ClaimedJob, ...]] | None = None
) -> WorkerInfo:
    """A row of :data:`WORKER_COLUMNS` (times as aware datetimes) as a record, with the jobs
    it holds from :func:`held_jobs`."""
    worker_id = str(row[0])
    return WorkerInfo(
        id=worker_id,
        role=str(row[1]),
        host=str(row[2]),
        pid=int(row[3]),
        queues=_queues(row[4]),
        concurrency=int(row[5]),
        visibility_timeout=float(row[6]),
        version=str(row[7]),
        supervisor=row[8],
        started_at=row[9],
        heartbeat_at=row[10],
        jobs=(jobs or {}).get(worker_id, ()),
    )


def held_jobs(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[ClaimedJob, ...]]:
    """Rows of ``held_jobs`` (id, job type, queue, holder, claim time as an aware datetime)
    grouped by holder."""
    held: defaultdict[str, list[ClaimedJob]] = defaultdict(list)
    for job_id, job_type, queue, holder, claimed_at in rows:
        held[str(holder)].append(ClaimedJob(int(job_id), str(job_type), str(queue), claimed_at))
    return {holder: tuple(jobs) for holder, jobs in held.items()}
