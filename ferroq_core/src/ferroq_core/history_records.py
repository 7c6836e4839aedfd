"""The records of what ran: a succeeded job's history, a failed attempt's error, a running
job's progress, and the acknowledgement that records history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.records import Lease

__all__ = ["AttemptError", "Completion", "HistoryRecord", "Progress"]


@attrs.frozen
class HistoryRecord:
    """A succeeded job, kept for the retention window when its type keeps history."""

    job_id: int
    queue: str
    job_type: str
    tenant_id: str | None
    priority: int
    #: Executions it took, the successful one included.
    attempts: int
    max_attempts: int
    #: When it was dispatched, when its last attempt was claimed, when it was acknowledged.
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime
    #: Seconds the successful attempt's handler ran.
    duration: float
    #: The worker that ran it (``host:pid:uuid``).
    worker: str | None


@attrs.frozen
class AttemptError:
    """The error of one failed attempt of a job."""

    job_id: int
    #: The attempt number the row held when the failure was written.
    attempt: int
    #: ``Type: message`` and the traceback (capped as the job's error is).
    error: str
    #: The worker that held the attempt (None when unknown).
    worker: str | None
    failed_at: datetime


@attrs.frozen
class Progress:
    """What a running job last reported with ``ctx.progress()``."""

    #: Done so far, from 0.0 to 1.0 (None when only a message was given).
    fraction: float | None
    message: str | None
    #: When it was written (None before it is stored).
    updated_at: datetime | None = None


@attrs.frozen
class Completion:
    """A successful attempt to acknowledge with a history record."""

    lease: Lease
    #: Seconds the handler ran.
    duration: float
