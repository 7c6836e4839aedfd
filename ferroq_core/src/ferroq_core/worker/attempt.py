"""One attempt of one claimed job: decode it, enter its scopes, run its handler in a context
of its own, and say how it ended (an :class:`~ferroq_core.worker.outcome.Outcome`).

Shared by :class:`~ferroq_core.worker.WorkerLoop` and the testing kit's ``drain()``. An
attempt never takes its caller down: whatever the job raises becomes the outcome's error.
Writing the outcome back is :mod:`.settle`'s (successes: :mod:`.acknowledge`); their
functions are importable from here too, where the worker's callers have always found them.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.context import DETACHED, NEVER_STOPPED, Attempt, StopSignal, enter_job
from ferroq_core.errors import JobCancelled, LeaseExpired
from ferroq_core.execution import (
    NO_SCOPE,
    call_handle,
    decode_row,
    in_own_context,
    job_scope,
    start_handle,
)
from ferroq_core.schedule_rules import tick_of
from ferroq_core.worker.acknowledge import acknowledge, settle_successes
from ferroq_core.worker.outcome import Outcome, describe_row
from ferroq_core.worker.settle import PERMANENT_ERRORS, retry_delay_for, settle, settle_reaped

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.context import JobChannel
    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime

__all__ = [
    "PERMANENT_ERRORS",
    "Outcome",
    "acknowledge",
    "attempts_exhausted",
    "describe_row",
    "execute",
    "execute_async",
    "retry_delay_for",
    "settle",
    "settle_reaped",
    "settle_successes",
]


def execute(
    runtime: Runtime,
    row: JobRow,
    *,
    call: Callable[[Job], Any] = call_handle,
    timeout: float | None = None,
    channel: JobChannel = DETACHED,
    stop: StopSignal = NEVER_STOPPED,
) -> Outcome:
    """Decode ``row``, enter its scopes and run the handler through ``call``, in a context of
    its own (:func:`~ferroq_core.execution.in_own_context`) where
    :func:`~ferroq_core.current_job` describes this attempt (under ``timeout`` seconds) and
    its actions go to ``channel``.

    Any exception, ``SystemExit``, ``KeyboardInterrupt`` and ``MemoryError`` included, becomes
    the outcome's error: a job never takes its caller down. Once ``stop`` is set (a cancel
    request) the attempt ends as :class:`~ferroq_core.JobCancelled` however it ended.
    """
    return in_own_context(_execute, runtime, row, call, timeout, channel, stop)


def _requested(attempt: Attempt, outcome: Outcome) -> Outcome:
    """``outcome``, with the release or failure the handler asked for (``ctx.release()``,
    ``ctx.fail()``) as its error even when the handler caught the exception."""
    action = attempt.action
    if action is None or outcome.error is action:
        return outcome
    return attrs.evolve(outcome, error=action, value=None, result=None)


def _ended(attempt: Attempt, stop: StopSignal, outcome: Outcome) -> Outcome:
    """How the attempt counts: cancelled once a cancel request reached it, else as it ended
    with what the handler asked for (:func:`_requested`)."""
    if stop.requested:
        row = outcome.row
        cancelled = JobCancelled(f"job {row.id} ({row.job_type}) was cancelled while running")
        return attrs.evolve(outcome, error=cancelled, value=None, result=None)
    if attempt.action is None:
        return outcome
    return _requested(attempt, outcome)


def _execute(
    runtime: Runtime,
    row: JobRow,
    call: Callable[[Job], Any],
    timeout: float | None,
    channel: JobChannel,
    stop: StopSignal,
) -> Outcome:
    start = time.monotonic()
    job: Job | None = None
    tick = tick_of(row.idempotency_key)
    attempt = Attempt(row, timeout=timeout, tick=tick, channel=channel, stop=stop)
    enter_job(attempt)
    try:
        job = decode_row(runtime, row.job_type, row.payload)
        if stop.requested:
            raise JobCancelled(f"job {row.id} ({row.job_type}) was cancelled before it started")
        scope = job_scope(runtime, job, row, row.tenant_id)
        if scope is NO_SCOPE:  # entering and leaving a nullcontext is two Python calls
            value = call(job)
        else:
            with scope:
                value = call(job)
        # Encoded here, on the job's thread: a value that does not encode fails the attempt.
        # Stored when the type says so or the dispatch asked (the row's result_ttl).
        stored = job.store_result or row.result_ttl is not None
        result = runtime.serializer.encode_result(value) if stored else None
    except BaseException as exc:  # isolation: every failure of a job is that job's
        return _ended(attempt, stop, Outcome(row, exc, time.monotonic() - start, job))
    outcome = Outcome(row, None, time.monotonic() - start, job, value, result)
    return _ended(attempt, stop, outcome)


async def execute_async(
    runtime: Runtime,
    row: JobRow,
    *,
    timeout: float | None = None,
    channel: JobChannel = DETACHED,
    stop: StopSignal = NEVER_STOPPED,
) -> Outcome:
    """:func:`execute` for ``async def handle()``, run as a task on the worker's event loop.

    The scopes are entered inside the task, so context variables they set (the tenant, the
    current job) are the task's own. Cancellation (timeout, shutdown, a cancel request) also
    ends up as the outcome's error.
    """
    start = time.monotonic()
    job: Job | None = None
    tick = tick_of(row.idempotency_key)
    attempt = Attempt(row, timeout=timeout, tick=tick, channel=channel, stop=stop)
    enter_job(attempt)
    try:
        job = decode_row(runtime, row.job_type, row.payload)
        if stop.requested:
            raise JobCancelled(f"job {row.id} ({row.job_type}) was cancelled before it started")
        with job_scope(runtime, job, row, row.tenant_id):
            value = start_handle(job)
            if inspect.isawaitable(value):
                value = await value
        stored = job.store_result or row.result_ttl is not None
        result = runtime.serializer.encode_result(value) if stored else None
    except BaseException as exc:  # isolation, as in execute()
        outcome = Outcome(row=row, error=exc, duration=time.monotonic() - start, job=job)
        return _ended(attempt, stop, outcome)
    duration = time.monotonic() - start
    outcome = Outcome(row=row, duration=duration, job=job, value=value, result=result)
    return _ended(attempt, stop, outcome)


def attempts_exhausted(row: JobRow) -> LeaseExpired:
    """The error of a claimed row whose attempts are already spent: its last attempt killed
    its worker or lost its lease, so it must not run again."""
    last = f"; last error: {row.error.splitlines()[0]}" if row.error else ""
    return LeaseExpired(
        f"attempts exhausted ({row.attempts - 1} of {row.max_attempts} used): the last "
        f"attempt never finished (its worker was killed or lost its lease){last}"
    )
