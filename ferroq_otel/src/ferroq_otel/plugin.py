"""The ``otel`` plugin: a span per dispatch call, the trace context in each job's payload, and
(once a worker starts with an SDK configured) a span per job run.

With no SDK configured the dispatch hooks return at once and the worker registers nothing:
the job path pays nothing per job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import hookimpl
from ferroq_otel.spans import dispatch_span, job_span, sdk_configured, stamped

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager

    import pluggy

    from ferroq_core import EnqueueRequest, Job, JobRow, Runtime

__all__ = ["JobTracing", "trace_jobs"]

#: The name :func:`trace_jobs` registers the job tracer under.
JOB_TRACING = "ferroq_otel.jobs"


@hookimpl
def ferroq_dispatch_scope(requests: Sequence[EnqueueRequest]) -> AbstractContextManager[Any] | None:
    return dispatch_span(requests) if sdk_configured() else None


@hookimpl
def ferroq_dispatch_requests(requests: Sequence[EnqueueRequest]) -> list[EnqueueRequest] | None:
    return stamped(requests) if sdk_configured() else None


class JobTracing:
    """The per-job hook, registered only where spans are recorded (see :func:`trace_jobs`)."""

    @hookimpl
    def ferroq_job_scope(self, job: Job, row: JobRow | None) -> AbstractContextManager[Any] | None:
        # Sync mode (no row) runs the job inside the dispatching code's own span.
        return job_span(row) if row is not None else None


def trace_jobs(pm: pluggy.PluginManager) -> bool:
    """Give every job run by workers of ``pm`` a span of its own, if an SDK is configured;
    returns whether it did. ``ferroq worker`` calls it once the application's modules
    (``--import``) are imported; an application running ``WorkerLoop`` itself calls it after
    setting up its tracer provider."""
    if not sdk_configured():
        return False
    if pm.get_plugin(JOB_TRACING) is None:
        pm.register(JobTracing(), name=JOB_TRACING)
    return True


@hookimpl
def ferroq_worker_scope(
    runtime: Runtime, options: Mapping[str, Any], role: str
) -> AbstractContextManager[Any] | None:
    if role != "supervisor":  # the supervisor runs no job
        trace_jobs(runtime.pm)
    return None
