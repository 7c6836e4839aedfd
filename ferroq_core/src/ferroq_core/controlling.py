"""The control plane's API: pause and resume claiming, cancel jobs (docs/pause-and-cancel.md).

:class:`~ferroq_core.Queue` exposes these as ``Queue.pause()``, ``Queue.resume()``,
``Queue.pauses()`` and ``Queue.cancel()``; the CLI's ``pause``, ``resume`` and ``cancel`` call
them too, so every action fires its lifecycle hook whichever way it was asked for.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING

from ferroq_core.control_records import PauseScope, check_pause_name
from ferroq_core.errors import InvalidDispatch
from ferroq_core.execution import decode_row, in_own_context, tenant_scope
from ferroq_core.runtime import fire

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from ferroq_core.control_records import CancelResult, Pause
    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime

__all__ = [
    "cancel",
    "cancelled_rows",
    "pause",
    "pause_target",
    "pauses",
    "resume",
    "settle_cancelled",
]

log = logging.getLogger("ferroq")


def pause_target(
    queue: str | None = None, job_type: str | None = None, tenant: str | None = None
) -> tuple[PauseScope, str]:
    """The scope and name of a pause given as one of ``queue``, ``job_type`` or ``tenant``.

    :raises InvalidDispatch: none or several were given, or the name is not valid.
    """
    given = [
        (scope, name)
        for scope, name in (
            (PauseScope.QUEUE, queue),
            (PauseScope.JOB_TYPE, job_type),
            (PauseScope.TENANT, tenant),
        )
        if name is not None
    ]
    if len(given) != 1:
        raise InvalidDispatch("pause or resume one thing: a queue, a job type or a tenant")
    scope, name = given[0]
    return scope, check_pause_name(scope, name)


def pause(
    runtime: Runtime, scope: PauseScope, name: str, *, reason: str | None = None
) -> Pause | None:
    """Stop every worker from claiming what ``scope``/``name`` covers (stored, so it holds
    across restarts and hosts); fire ``ferroq_paused``. None when it was paused already."""
    done = runtime.backend.pause(scope, check_pause_name(scope, name), reason=reason)
    if done is not None:
        log.info("paused %s %s", scope.value, name)
        fire(runtime.pm, "ferroq_paused", pause=done)
    return done


def resume(runtime: Runtime, scope: PauseScope, name: str) -> Pause | None:
    """Remove a pause (workers claim its jobs again); fire ``ferroq_resumed``. None when
    there was no such pause."""
    done = runtime.backend.resume(scope, check_pause_name(scope, name))
    if done is not None:
        log.info("resumed %s %s", scope.value, name)
        fire(runtime.pm, "ferroq_resumed", pause=done)
    return done


def pauses(runtime: Runtime) -> list[Pause]:
    """Every pause in force."""
    return runtime.backend.pauses()


def cancel(
    runtime: Runtime,
    ids: Collection[int] | None = None,
    *,
    queue: str | None = None,
    job_type: str | None = None,
) -> CancelResult:
    """Cancel jobs by id, or every job of ``queue`` and/or ``job_type``: pending and delayed
    ones are removed here (their ``cancelled()`` and ``ferroq_job_cancelled`` run in this
    process); running ones are asked to stop, which their worker does at its next heartbeat.

    :raises InvalidDispatch: neither ids nor a filter, or both.
    """
    if (ids is None) == (queue is None and job_type is None):
        raise InvalidDispatch("cancel job ids, or every job of a --queue and/or --type")
    if ids is not None and not ids:
        raise InvalidDispatch("cancel needs at least one job id")
    result = runtime.backend.cancel_jobs(
        None if ids is None else sorted(set(ids)), queue=queue, job_type=job_type
    )
    cancelled_rows(runtime, result.removed, running=False)
    return result


def cancelled_rows(runtime: Runtime, rows: Sequence[JobRow], *, running: bool) -> None:
    """After cancelled jobs were removed: each one's ``cancelled()`` (when its type decodes
    here), then ``ferroq_job_cancelled``. Their errors are logged, never raised."""
    for row in rows:
        try:
            job = decode_row(runtime, row.job_type, row.payload)
        except Exception as exc:
            log.info("job %s: cancelled() not called here: %s", row.id, exc)
        else:
            call_cancelled(runtime, job, row)
        fire(runtime.pm, "ferroq_job_cancelled", row=row, running=running)


def call_cancelled(runtime: Runtime, job: Job, row: JobRow) -> None:
    """``job.cancelled()`` in a context of its own, inside its tenant's scope when that can
    be entered (as ``failed()``); its errors are logged."""
    in_own_context(_call_cancelled, runtime, job, row)


def _call_cancelled(runtime: Runtime, job: Job, row: JobRow) -> None:
    try:
        with ExitStack() as stack:
            try:
                stack.enter_context(tenant_scope(runtime, row.tenant_id))
            except Exception as exc:
                log.warning("cancelled() of job %s runs outside its tenant scope: %s", row.id, exc)
            job.cancelled()
    except BaseException:
        log.exception("cancelled() of job %s (%s) raised", row.id, row.job_type)


def settle_cancelled(
    runtime: Runtime,
    row: JobRow,
    job: Job | None,
    *,
    defer: Callable[[Callable[[], None]], None] | None = None,
) -> str:
    """Write back an attempt that ended as cancelled: the row and its cancel request are
    deleted (fenced by the lease), then ``cancelled()`` and ``ferroq_job_cancelled`` run
    (through ``defer`` when given, as ``failed()`` does). Returns ``cancelled``, or ``stale``
    when the lease no longer matched."""
    if not runtime.backend.finish_cancelled(row.lease):
        log.warning("job %s: cancellation rejected, lease lost (reaped and reclaimed)", row.id)
        return "stale"
    log.warning("job %s (%s): cancelled while running, removed", row.id, row.job_type)

    def finish() -> None:
        if job is not None:
            call_cancelled(runtime, job, row)
        fire(runtime.pm, "ferroq_job_cancelled", row=row, running=True)

    if defer is None:
        finish()
    else:
        defer(finish)
    return "cancelled"
