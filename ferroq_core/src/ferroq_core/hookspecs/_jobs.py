# Hookspecs are documentation-only bodies; pluggy never calls them.
# mypy: disable-error-code="empty-body"
"""Job hookspecs: the hooks along one job's life, from its dispatch to its end.

The tenant captured at dispatch and the scopes entered around each execution, the hooks that
wrap and may rewrite one dispatch call's insert, and the lifecycle events (enqueued, started,
succeeded, retrying, failed, and their batch forms) that logging and metrics plugins observe.
Import the hooks from :mod:`ferroq_core.hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.markers import hookspec

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from ferroq_core.job import Job
    from ferroq_core.records import EnqueueRequest, EnqueueResult, JobRow

__all__ = [
    "ferroq_capture_tenants",
    "ferroq_dispatch_requests",
    "ferroq_dispatch_scope",
    "ferroq_job_enqueued",
    "ferroq_job_failed",
    "ferroq_job_retrying",
    "ferroq_job_scope",
    "ferroq_job_started",
    "ferroq_job_succeeded",
    "ferroq_jobs_claimed",
    "ferroq_jobs_enqueued",
    "ferroq_jobs_succeeded",
    "ferroq_tenant_scope",
]

# ---------------------------------------------------------------------------------------------
# tenancy and scope
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_capture_tenants(jobs: Sequence[Job]) -> Sequence[str | None] | None:
    """The tenants to store with ``jobs`` when they are dispatched.

    ``jobs`` are the jobs of one dispatch call that have no ``for_tenant()``. Called once per
    ``dispatch()`` or ``dispatch_many()`` call (not once per job), so a bulk dispatch pays one
    hook call. For each job the first non-None entry among the plugins' results (in pluggy's
    call order) is stored; a job for which every plugin gives None has no tenant.

    :param jobs: the job instances being dispatched, in dispatch order (never empty).
    :return: one entry per job, in the same order: its tenant id as text, or None; or None
        for no opinion on any of them.

    Example::

        @hookimpl
        def ferroq_capture_tenants(jobs):
            tenant = flask.g.get("tenant_id")
            return [tenant] * len(jobs)
    """


@hookspec
def ferroq_job_scope(job: Job, row: JobRow | None) -> AbstractContextManager[Any] | None:
    """A context manager to enter around one execution of ``job``.

    Every non-None result is entered before ``handle()`` runs (in the order pluggy calls the
    plugins: the most recently registered first) and exited after it, on the thread or event
    loop that runs the job. An exception raised while entering fails that attempt (the handler
    does not run).

    :param job: the decoded job instance.
    :param row: the stored row, or None in sync mode (where no row is written).
    :return: a context manager, or None to add nothing.

    Example::

        @hookimpl
        def ferroq_job_scope(job, row):
            return sentry_sdk.new_scope()
    """


@hookspec(firstresult=True)
def ferroq_tenant_scope(tenant_id: str) -> AbstractContextManager[Any] | None:
    """The context manager that makes ``tenant_id`` current around a job's execution.

    Stops at the first non-None result. Called by the worker and by sync mode for every job
    that carries a tenant; raising :class:`~ferroq_core.errors.TenantNotFound` (or any error)
    fails that attempt and the handler never runs outside its tenant.

    :param tenant_id: the tenant stored with the job.
    :return: a context manager, or None when this plugin does not handle tenants.

    Example::

        @hookimpl
        def ferroq_tenant_scope(tenant_id):
            return my_app.tenant_context(tenant_id)
    """


# ---------------------------------------------------------------------------------------------
# dispatch (called once per dispatch call in db mode; errors are logged and ignored)
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_dispatch_scope(requests: Sequence[EnqueueRequest]) -> AbstractContextManager[Any] | None:
    """A context manager to enter around writing the rows of one dispatch call.

    Called once per ``dispatch()`` or ``dispatch_many()`` call that writes to the database
    (not in sync mode), on the dispatching thread; every non-None result is entered before the
    insert and left after it, seeing the insert's exception if it raised. Errors a scope raises
    while entering or leaving are logged and ignored: the dispatch goes on without it.

    :param requests: the rows about to be written, in dispatch order (never empty).
    :return: a context manager, or None to add nothing.

    Example::

        @hookimpl
        def ferroq_dispatch_scope(requests):
            return tracer.start_as_current_span("ferroq dispatch")
    """


@hookspec(firstresult=True)
def ferroq_dispatch_requests(
    requests: Sequence[EnqueueRequest],
) -> Sequence[EnqueueRequest] | None:
    """Rows to write instead of ``requests`` (to carry metadata in the payload, for instance).

    Called once per dispatch call that writes to the database, inside the
    :func:`ferroq_dispatch_scope` scopes; stops at the first non-None result. The result must
    have one request per request given, in the same order; a result of another length, or an
    error, is logged and the rows are written as they were.

    :param requests: the rows about to be written, in dispatch order (never empty).
    :return: the rows to write, or None to leave them as they are.

    Example::

        @hookimpl
        def ferroq_dispatch_requests(requests):
            return [attrs.evolve(r, payload=add_header(r.payload)) for r in requests]
    """


# ---------------------------------------------------------------------------------------------
# lifecycle events (for logging and metrics; exceptions raised here are logged and ignored)
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_job_enqueued(job_id: int, request: EnqueueRequest, duplicate: bool) -> None:
    """A job was written to the database (db mode).

    Called after the insert; when the caller owns the transaction (``dispatch(connection=)``)
    that is before it commits, so the job may still be rolled back.

    :param job_id: the stored id (the existing job's id when ``duplicate``).
    :param request: what was inserted (queue, type, payload, delay, key, tenant).
    :param duplicate: True when an equal idempotency key was already active.

    Example::

        @hookimpl
        def ferroq_job_enqueued(job_id, request, duplicate):
            metrics.incr("jobs.enqueued", tags={"queue": request.queue})
    """


@hookspec
def ferroq_job_started(row: JobRow, worker_id: str) -> None:
    """A worker is about to run one attempt of a job.

    :param row: the claimed row (``attempts`` counts this attempt).
    :param worker_id: the running worker's id (``host:pid:uuid``).

    Example::

        @hookimpl
        def ferroq_job_started(row, worker_id):
            log.info("start %s #%d", row.job_type, row.attempts)
    """


@hookspec
def ferroq_job_succeeded(row: JobRow, duration: float) -> None:
    """An attempt finished without error and the job was deleted.

    :param row: the claimed row.
    :param duration: seconds the handler ran.

    Example::

        @hookimpl
        def ferroq_job_succeeded(row, duration):
            metrics.timing("jobs.duration", duration)
    """


@hookspec
def ferroq_job_retrying(row: JobRow, error: BaseException, delay: float) -> None:
    """An attempt failed and the job was released for another attempt.

    :param row: the claimed row.
    :param error: what the attempt raised.
    :param delay: seconds until the next attempt may start.

    Example::

        @hookimpl
        def ferroq_job_retrying(row, error, delay):
            log.warning("retry %s in %.1fs: %s", row.id, delay, error)
    """


@hookspec
def ferroq_job_failed(row: JobRow, error: BaseException) -> None:
    """A job was parked as failed (attempts spent, or an error that is never retried).

    :param row: the claimed row.
    :param error: what the last attempt raised.

    Example::

        @hookimpl
        def ferroq_job_failed(row, error):
            sentry_sdk.capture_exception(error)
    """


@hookspec
def ferroq_jobs_enqueued(
    requests: Sequence[EnqueueRequest], results: Sequence[EnqueueResult]
) -> None:
    """The rows of one dispatch call were written (db mode): one call per dispatch call.

    The batch form of :func:`ferroq_job_enqueued` (which still fires per job), for metrics:
    a bulk dispatch pays one hook call. Called after the insert; when the caller owns the
    transaction that is before it commits.

    :param requests: what was inserted, in dispatch order (never empty).
    :param results: the stored id of each, and whether it was an idempotent duplicate.

    Example::

        @hookimpl
        def ferroq_jobs_enqueued(requests, results):
            metrics.incr("jobs.enqueued", sum(not r.duplicate for r in results))
    """


@hookspec
def ferroq_jobs_claimed(rows: Sequence[JobRow], worker_id: str) -> None:
    """A worker claimed ``rows`` and is about to start them: one call per claim, not per job.

    The batch form of :func:`ferroq_job_started` for metrics, which pays one hook call per
    claim (``claimed_at - available_at`` of each row is how long it waited once due).

    :param rows: the claimed rows that will run (``attempts`` counts this attempt; never
        empty). A row whose attempts were already spent (its last attempt killed its worker)
        is parked as failed without running and is not among them.
    :param worker_id: the claiming worker's id (``host:pid:uuid``).

    Example::

        @hookimpl
        def ferroq_jobs_claimed(rows, worker_id):
            metrics.incr("jobs.started", len(rows))
    """


@hookspec
def ferroq_jobs_succeeded(rows: Sequence[JobRow], durations: Sequence[float]) -> None:
    """Attempts finished without error and their jobs were deleted: one call per write-back.

    The batch form of :func:`ferroq_job_succeeded` (which still fires per job), for metrics.

    :param rows: the claimed rows whose completion was written (never empty).
    :param durations: seconds each handler ran, in the order of ``rows``.

    Example::

        @hookimpl
        def ferroq_jobs_succeeded(rows, durations):
            metrics.incr("jobs.succeeded", len(rows))
    """
