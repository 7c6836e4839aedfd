"""Storage: the backend protocol in roles, the rules backends share, and the storage functions."""

from __future__ import annotations

from ferroq_core.storage.controls import Beat, ControlStore
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
from ferroq_core.storage.workers import WorkerRegistry

__all__ = [
    "Admin",
    "Backend",
    "Beat",
    "ControlStore",
    "Dispatcher",
    "FlowStore",
    "SchemaStore",
    "TestingStore",
    "WorkerRegistry",
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
