"""Storage: the backend protocol, the shared SQL implementation and the storage functions."""

from __future__ import annotations

from ferroq_core.storage.functions import (
    claim,
    delete_job,
    enqueue,
    fail_job,
    get_delayed_jobs,
    get_failed_jobs,
    get_pending_jobs,
    get_stats,
    reap_startup_claims,
    reaper,
    release_job,
    requeue_claimed_by,
)
from ferroq_core.storage.protocol import Backend

__all__ = [
    "Backend",
    "claim",
    "delete_job",
    "enqueue",
    "fail_job",
    "get_delayed_jobs",
    "get_failed_jobs",
    "get_pending_jobs",
    "get_stats",
    "reap_startup_claims",
    "reaper",
    "release_job",
    "requeue_claimed_by",
]
