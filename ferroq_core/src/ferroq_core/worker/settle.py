"""How an attempt's outcome is written back: a success acknowledged, a failure retried with
backoff or parked as failed, a release, a cancellation.

Shared by :class:`~ferroq_core.worker.WorkerLoop` and the testing kit's ``drain()``, so retry,
failure and fencing rules exist once. Every write is fenced by the row's lease: when it no
longer matches (the job was reaped and reclaimed), the write is dropped and logged, never
applied.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferroq_core.backoff import full_jitter
from ferroq_core.controlling import settle_cancelled
from ferroq_core.errors import JobCancelled, JobDecodeError, JobGivenUp, JobReleased, LeaseExpired
from ferroq_core.execution import call_failed, decode_row, describe_error
from ferroq_core.jobmodel import JobBase
from ferroq_core.runtime import fire
from ferroq_core.worker.acknowledge import settle_successes
from ferroq_core.worker.outcome import describe_row

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.outcome import Outcome

__all__ = ["PERMANENT_ERRORS", "retry_delay_for", "settle", "settle_reaped"]

log = logging.getLogger("ferroq.worker")

#: Errors that no retry can fix: the job fails at once. An unknown job type is not one of
#: them: during a rolling deploy the workers that know it may not have started yet, so it is
#: retried with the default backoff. ``ctx.fail()`` gives a job up the same way.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (JobDecodeError, JobGivenUp)


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


def _headline(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
