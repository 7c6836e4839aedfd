"""Storage: the backend protocol in roles, the rules backends share, and the storage functions."""

from __future__ import annotations

from ferroq_core.storage.flow import FlowStore
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
from ferroq_core.storage.protocol import (
    Admin,
    Backend,
    Dispatcher,
    SchemaStore,
    TestingStore,
    WorkerStore,
)

__all__ = [
    "Admin",
    "Backend",
    "Dispatcher",
    "FlowStore",
    "SchemaStore",
    "TestingStore",
    "WorkerStore",
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
