"""The parameters of the named queries, built from ferroq's records.

Only plain values go in: the statements themselves live in ``queries.sql``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.records import JobState
from ferroq_core.storage.rules import cap_error, lease_arrays

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ferroq_core.records import EnqueueRequest, Lease

__all__ = [
    "CHANNEL",
    "RESULTS_CHANNEL",
    "bulk_params",
    "fence_params",
    "job_params",
    "lease_params",
    "release_params",
    "state_params",
]

#: The LISTEN/NOTIFY channel; the payload is the queue name, never job data.
CHANNEL = "ferroq_jobs"
#: The channel of result waiters (:mod:`ferroq_postgres.results`); the payload is a job id,
#: never its result.
RESULTS_CHANNEL = "ferroq_results"


def job_params(req: EnqueueRequest) -> dict[str, Any]:
    """One job's parameters (``enqueue_one``, ``insert_job`` and their keyed forms)."""
    return {
        "queue": req.queue,
        "job_type": req.job_type,
        "payload": req.payload,
        "priority": req.priority,
        "max_attempts": req.max_attempts,
        "idempotency_key": req.idempotency_key,
        "tenant_id": req.tenant_id,
        "limit_key": req.limit_key,
        "delay": float(req.delay),
        "channel": CHANNEL,
    }


def bulk_params(reqs: Sequence[EnqueueRequest]) -> dict[str, list[Any] | None]:
    """The arrays ``insert_jobs`` takes (requests without idempotency keys)."""
    given = [r.limit_key for r in reqs]
    # No key given (the common batch): a NULL array, which unnest pads with NULLs, costs
    # less to send and decode than an array of NULLs.
    keys = given if any(given) else None
    return {
        "queues": [r.queue for r in reqs],
        "job_types": [r.job_type for r in reqs],
        "payloads": [r.payload for r in reqs],
        "priorities": [r.priority for r in reqs],
        "max_attempts": [r.max_attempts for r in reqs],
        "tenants": [r.tenant_id for r in reqs],
        "delays": [float(r.delay) for r in reqs],
        "limit_keys": keys,
    }


def lease_params(leases: Iterable[Lease]) -> dict[str, Any]:
    """The three arrays the fenced batch statements take, and the status they must have."""
    ids, owners, attempts = lease_arrays(leases)
    return {
        "lease_ids": ids,
        "lease_owners": owners,
        "lease_attempts": attempts,
        "claimed": "claimed",
    }


def fence_params(lease: Lease) -> dict[str, Any]:
    """One lease's fence (``fail``, ``release``)."""
    return {"id": lease.id, "owner": lease.claimed_by, "attempts": lease.attempts}


def release_params(
    lease: Lease, delay: float, error: str | None, count_attempt: bool
) -> dict[str, Any]:
    """The parameters of ``release``."""
    params = fence_params(lease)
    params["error"] = cap_error(error)
    params["delay"] = float(delay)
    params["uncount"] = 0 if count_attempt else 1
    params["channel"] = CHANNEL
    return params


def state_params(state: JobState | None) -> dict[str, Any]:
    """A state as the ``status`` and ``due`` filters of the admin queries (None: any)."""
    if state is None:
        return {"status": None, "due": None}
    if state is JobState.PENDING:
        return {"status": "pending", "due": True}
    if state is JobState.DELAYED:
        return {"status": "pending", "due": False}
    return {"status": state.value, "due": None}
