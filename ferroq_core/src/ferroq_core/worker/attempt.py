"""One attempt of one claimed job, and how its outcome is written back.

Shared by :class:`~ferroq_core.worker.WorkerLoop` and the testing kit's ``drain()``, so retry,
failure and fencing rules exist once. Every write is fenced by the row's lease: when it no
longer matches (the job was reaped and reclaimed), the write is dropped and logged, never
applied.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.backoff import full_jitter
from ferroq_core.context import DETACHED, NEVER_STOPPED, Attempt, StopSignal, enter_job
from ferroq_core.controlling import settle_cancelled
from ferroq_core.errors import JobCancelled, JobDecodeError, JobGivenUp, JobReleased, LeaseExpired
from ferroq_core.execution import (
    NO_SCOPE,
    call_failed,
    call_handle,
    decode_row,
    describe_error,
    in_own_context,
    job_scope,
    start_handle,
)
from ferroq_core.history_records import Completion
from ferroq_core.jobmodel import DEFAULT_RESULT_TTL, JobBase
from ferroq_core.runtime import fire
from ferroq_core.schedule_rules import tick_of
from ferroq_core.storage.results import ResultWrite

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ferroq_core.context import JobChannel
    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime

__all__ = [
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

log = logging.getLogger("ferroq.worker")

#: Errors that no retry can fix: the job fails at once. An unknown job type is not one of
#: them: during a rolling deploy the workers that know it may not have started yet, so it is
#: retried with the default backoff. ``ctx.fail()`` gives a job up the same way.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (JobDecodeError, JobGivenUp)


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
    #: stores it (:func:`settle_successes`).
    result: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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


def retry_delay_for(runtime: Runtime, job: Job | None, attempt: int) -> float:
    """The delay before the next attempt: the job's ``retry_delay`` or the backoff policy; for
    a job that did not decode (an unknown type), full jitter over ``Job``'s defaults."""
    if job is None:
        return full_jitter(attempt, JobBase.backoff_base, JobBase.backoff_cap)
    try:
        custom = job.retry_delay(attempt)
    except Exception:
        log.exception("retry_delay() of %s raised; using the backoff policy", type(job))
        custom = None
    if custom is not None:
        return max(0.0, float(custom))
    return max(0.0, float(runtime.backoff.delay(job, attempt)))


def settle(
    runtime: Runtime,
    outcome: Outcome,
    *,
    complete: bool = True,
    defer: Callable[[Callable[[], None]], None] | None = None,
) -> str:
    """Write an attempt's outcome back. Returns ``succeeded``, ``retrying``, ``failed``,
    ``released`` (``ctx.release()``) or ``stale`` (the lease no longer matched, nothing was
    written).

    With ``complete=False`` a success is not deleted here (the caller acknowledges successes
    in batches with ``backend.complete``) and ``succeeded`` is returned. ``defer`` runs the
    job's ``failed()`` callback and the ``failed`` hook (user code that may be slow) after
    the row is parked, e.g. on another thread; by default they run before this returns.
    """
    row = outcome.row
    backend = runtime.backend
    lease = row.lease
    if outcome.error is None:
        if complete:
            return settle_successes(runtime, [outcome])[0]
        fire(runtime.pm, "ferroq_job_succeeded", row=row, duration=outcome.duration)
        fire(runtime.pm, "ferroq_jobs_succeeded", rows=[row], durations=[outcome.duration])
        return "succeeded"
    error = outcome.error
    if isinstance(error, JobCancelled):  # never retried, cancelled() instead of failed()
        return settle_cancelled(runtime, row, outcome.job, defer=defer)
    if isinstance(error, JobReleased):
        return _release(runtime, outcome, error)
    text = describe_error(error)
    permanent = isinstance(error, PERMANENT_ERRORS)
    if not permanent and row.attempts < row.max_attempts:
        delay = retry_delay_for(runtime, outcome.job, row.attempts)
        if not backend.release(lease, delay=delay, error=text):
            log.warning("job %s: retry rejected, lease lost (reaped and reclaimed)", row.id)
            return "stale"
        log.info(
            "%s: failed after %.3fs, retrying in %.1fs: %s",
            describe_row(row),
            outcome.duration,
            delay,
            _headline(error),
        )
        fire(runtime.pm, "ferroq_job_retrying", row=row, error=error, delay=delay)
        return "retrying"
    if not backend.fail(lease, error=text):
        log.warning("job %s: failure rejected, lease lost (reaped and reclaimed)", row.id)
        return "stale"
    log.warning(
        "%s: failed after %.3fs%s: %s",
        describe_row(row),
        outcome.duration,
        " (not retried)" if permanent else "",
        _headline(error),
    )

    def finish() -> None:
        if outcome.job is not None:
            call_failed(runtime, outcome.job, error, row, row.tenant_id)
        fire(runtime.pm, "ferroq_job_failed", row=row, error=error)

    if defer is None:
        finish()
    else:
        defer(finish)
    return "failed"


def _release(runtime: Runtime, outcome: Outcome, released: JobReleased) -> str:
    """``ctx.release()``: back to pending after its delay, the attempt given back and the
    row's last error kept (no failure happened). Returns ``released`` or ``stale``."""
    row = outcome.row
    if not runtime.backend.release(
        row.lease, delay=released.delay, error=row.error, count_attempt=False
    ):
        log.warning("job %s: release rejected, lease lost (reaped and reclaimed)", row.id)
        return "stale"
    log.info("%s: released by its handler for %.1fs", describe_row(row), released.delay)
    return "released"


def acknowledge(runtime: Runtime, outcomes: Sequence[Outcome]) -> set[int]:
    """Acknowledge successes; return the ids whose lease matched. Three fenced paths, the
    plain one unchanged for jobs that ask for nothing more:

    - a result to store: ``complete_with_results``, which stores each result in the same
      fenced write that deletes its job (a lost lease stores nothing), and the history
      record of a job that also keeps history in that same write;
    - history kept (the job type's ``keep_history``, else the queue's), no result:
      ``complete_with_history``, the record written in the acknowledgement's transaction;
    - the others: the plain batch ``complete``.
    """
    backend = runtime.backend
    # Inline comprehensions, not a call per job: this runs for every success.
    stored = [o for o in outcomes if o.result is not None]
    # --- history: a branch taken only when a job keeps history -------------------------------
    if runtime.config.keep_history:
        kept = [o for o in outcomes if o.job is None or o.job.keep_history is not False]
    else:
        kept = [o for o in outcomes if o.job is not None and o.job.keep_history]
    if not stored and not kept:
        # --- the plain acknowledgement -------------------------------------------------------
        return backend.complete([o.row.lease for o in outcomes])
    if not kept:
        # --- results, no history: the record's fields keep their defaults --------------------
        writes = [
            ResultWrite(o.row.lease, o.result, _result_ttl(o))
            for o in stored
            if o.result is not None
        ]
        if len(stored) == len(outcomes):
            return backend.complete_with_results(writes)
        plain = [o.row.lease for o in outcomes if o.result is None]
        return backend.complete(plain) | backend.complete_with_results(writes)
    # --- history kept by some, with or without results ---------------------------------------
    recorded = {id(o) for o in kept}
    plain = [o.row.lease for o in outcomes if o.result is None and id(o) not in recorded]
    matched = backend.complete(plain) if plain else set()
    only_kept = [Completion(o.row.lease, o.duration) for o in kept if o.result is None]
    if only_kept:
        matched |= backend.complete_with_history(only_kept)
    if stored:
        writes = [
            ResultWrite(o.row.lease, o.result, _result_ttl(o), id(o) in recorded, o.duration)
            for o in stored
            if o.result is not None
        ]
        matched |= backend.complete_with_results(writes)
    return matched


def _result_ttl(outcome: Outcome) -> float:
    """Seconds to keep a result: its dispatch's (the row's), else its type's."""
    ttl = outcome.row.result_ttl
    if ttl is not None:
        return ttl
    job = outcome.job
    return job.result_ttl if job is not None else DEFAULT_RESULT_TTL


def settle_successes(runtime: Runtime, outcomes: Sequence[Outcome]) -> list[str]:
    """Delete the rows of successful attempts in one batch and fire ``ferroq_job_succeeded``
    for each whose lease still matched. Returns ``succeeded`` or ``stale`` per outcome."""
    if not outcomes:
        return []
    matched = acknowledge(runtime, outcomes)
    results: list[str] = []
    # Looked up once per batch, not per job: describe_row() is not free, nor is a hook call.
    logged = log.isEnabledFor(logging.INFO)
    listened = bool(runtime.pm.hook.ferroq_job_succeeded.get_hookimpls())
    batch: list[Outcome] | None = (
        [] if runtime.pm.hook.ferroq_jobs_succeeded.get_hookimpls() else None
    )
    for outcome in outcomes:
        row = outcome.row
        if row.id in matched:
            if logged:
                log.info("%s: succeeded in %.3fs", describe_row(row), outcome.duration)
            if listened:
                fire(runtime.pm, "ferroq_job_succeeded", row=row, duration=outcome.duration)
            if batch is not None:
                batch.append(outcome)
            results.append("succeeded")
        else:
            log.warning("job %s: completion rejected, lease lost (reaped and reclaimed)", row.id)
            results.append("stale")
    if batch:
        rows, durations = [o.row for o in batch], [o.duration for o in batch]
        fire(runtime.pm, "ferroq_jobs_succeeded", rows=rows, durations=durations)
    return results


def settle_reaped(runtime: Runtime, row: JobRow) -> None:
    """Finish a row the reaper parked as failed (its worker died on the last attempt): call
    the job's ``failed()`` and fire ``ferroq_job_failed``, exactly as for any failed job."""
    error = LeaseExpired(
        f"job {row.id} ({row.job_type}) was parked as failed: its worker stopped heartbeating "
        f"on the last of {row.max_attempts} attempts ({row.error or 'lease expired'})"
    )
    job: Job | None = None
    try:
        job = decode_row(runtime, row.job_type, row.payload)
    except Exception as exc:
        log.warning("job %s: failed() not called, the payload does not decode: %s", row.id, exc)
    if job is not None:
        call_failed(runtime, job, error, row, row.tenant_id)
    fire(runtime.pm, "ferroq_job_failed", row=row, error=error)


def describe_row(row: JobRow) -> str:
    """How log lines name a job: id, type, queue and attempt (never the payload)."""
    return (
        f"job {row.id} ({row.job_type}) queue={row.queue} attempt={row.attempts}/{row.max_attempts}"
    )


def _headline(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
