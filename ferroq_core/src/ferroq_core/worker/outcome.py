"""How one attempt ended: the :class:`Outcome` a runner hands to the write-back, and the name
log lines give its job (:func:`describe_row`).

It sits below both running an attempt (:mod:`.attempt`) and writing its outcome back
(:mod:`.settle`, :mod:`.acknowledge`), so either can import it without importing the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ferroq_core.job import Job
    from ferroq_core.records import JobRow

__all__ = ["Outcome", "describe_row"]


@attrs.frozen
class Outcome:
    """How an attempt ended."""

    #: The claimed row.
    row: JobRow
    #: None on success, else what the attempt raised.
    error: BaseException | None = None
    #: Seconds the handler ran.
    duration: float = 0.0
    #: The decoded job (None when decoding failed).
    job: Job | None = None
    #: What ``handle()`` returned (an ``async def`` one's awaited value).
    value: Any = None
    #: ``value`` encoded by the serializer when the job type stores its result or its
    #: dispatch asked for it (the row's ``result_ttl``), else None: its acknowledgement then
    #: stores it (:func:`~ferroq_core.worker.acknowledge.settle_successes`).
    result: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_row(row: JobRow) -> str:
    """How log lines name a job: id, type, queue and attempt (never the payload)."""
    return (
        f"job {row.id} ({row.job_type}) queue={row.queue} attempt={row.attempts}/{row.max_attempts}"
    )
