"""Helpers shared by the backend contract suite (see :mod:`ferroq_core.testing.contract`)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ferroq_core.records import EnqueueRequest, JobRow

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.storage.protocol import Backend

__all__ = ["HOST", "claim_one", "enqueue_one", "request", "wait_until", "worker_id"]

T = TypeVar("T")

#: The host part of the worker ids the suite makes up (no real host has this name).
HOST = "contract-host"
#: Job type name the suite stores; no handler is ever looked up for it.
JOB_TYPE = "contract:Noop"


def request(
    queue: str = "default",
    *,
    job_type: str = JOB_TYPE,
    payload: str | None = None,
    **fields: Any,
) -> EnqueueRequest:
    """An :class:`EnqueueRequest` with a unique payload unless one is given."""
    body = payload if payload is not None else f'{{"n": "{uuid.uuid4().hex}"}}'
    return EnqueueRequest(queue=queue, job_type=job_type, payload=body, **fields)


def enqueue_one(backend: Backend, queue: str = "default", **fields: Any) -> int:
    """Enqueue one job and return its id."""
    (result,) = backend.enqueue([request(queue, **fields)])
    return result.id


def worker_id(host: str = HOST, pid: int = 4242) -> str:
    """A worker id in the ``host:pid:uuid`` form real workers use."""
    return f"{host}:{pid}:{uuid.uuid4().hex[:8]}"


def claim_one(backend: Backend, queue: str = "default", worker: str | None = None) -> JobRow:
    """Claim exactly one job from ``queue`` (fails the test when there is none)."""
    rows = backend.claim([queue], worker or worker_id(), 1)
    assert len(rows) == 1, f"expected one claimable job on {queue!r}, got {rows!r}"
    return rows[0]


def wait_until(
    predicate: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Time-dependent contract checks wait for a condition instead of sleeping a fixed amount, so
    they hold on a slow, loaded machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        time.sleep(interval)


def age_of(backend: Backend, job_id: int) -> float:
    """Seconds since the job was created, on the backend's clock."""
    row = backend.get_job(job_id)
    assert row is not None
    return (backend.now() - row.created_at).total_seconds()
