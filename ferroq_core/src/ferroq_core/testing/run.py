"""``run_job()``: one job, executed in the caller exactly as a worker would run it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from ferroq_core.clock import utcnow
from ferroq_core.context import attempt_context, enter_job
from ferroq_core.dispatch_requests import build_request
from ferroq_core.execution import call_handle, decode_row, in_own_context, job_scope
from ferroq_core.job import Job, PendingDispatch
from ferroq_core.records import JobRow
from ferroq_core.testing._context import job_context

if TYPE_CHECKING:
    from ferroq_core.runtime import JobContext

__all__ = ["run_job"]

J = TypeVar("J", bound=Job)

#: The ``claimed_by`` of the row ``run_job`` shows to job scope plugins.
RUN_JOB_WORKER_ID = "ferroq-testing:0:run_job"


def run_job(
    job: J | PendingDispatch,
    *,
    runtime: JobContext | None = None,
    tenant: str | int | None = None,
) -> J:
    """Run ``job`` once, in this thread, the way a worker runs it: encode the payload with the
    configured serializer (payload limit and tenant capture included), decode it into a new
    instance through the job registry, enter the tenant and job scopes, call ``handle()``
    (an ``async def`` handler runs to completion), all in a context of its own as under a
    worker (context variables of the caller, its tenant included, are not the job's).

    A job that cannot round-trip (a field the serializer cannot encode, or that decodes to
    something else) fails here as it would in production. ``failed()`` is not called: this is
    one attempt, and a worker would retry it.

    :param job: a job instance, or a ``PendingDispatch`` (``job.for_tenant(7)``...).
    :param runtime: where the serializer, plugins and configuration come from; default the
        process-wide queue's runtime, or one built from the environment.
    :param tenant: run inside this tenant's scope (same as ``job.for_tenant(tenant)``).
    :return: the decoded instance that ran (inspect it for state the handler left).
    :raises: whatever encoding, decoding, a scope or the handler raised.
    """
    ctx = job_context(runtime)
    pending = job if isinstance(job, PendingDispatch) else job.pending()
    if tenant is not None:
        pending = pending.for_tenant(tenant)
    request = build_request(pending, ctx)
    decoded = decode_row(ctx, request.job_type, request.payload)
    now = utcnow()
    # Job scope plugins receive a row as they do under a worker: first attempt, claimed now.
    row = JobRow(
        id=0,
        queue=request.queue,
        job_type=request.job_type,
        payload=request.payload,
        status="claimed",
        priority=request.priority,
        attempts=1,
        max_attempts=request.max_attempts,
        idempotency_key=request.idempotency_key,
        tenant_id=request.tenant_id,
        limit_key=request.tenant_id if request.limit_key is None else request.limit_key,
        available_at=now,
        created_at=now,
        claimed_at=now,
        claimed_by=RUN_JOB_WORKER_ID,
        heartbeat_at=now,
    )
    in_own_context(_run, ctx, decoded, row)
    return cast("J", decoded)


def _run(ctx: JobContext, job: Job, row: JobRow) -> None:
    enter_job(attempt_context(row, timeout=None))
    with job_scope(ctx, job, row, row.tenant_id):
        call_handle(job)
