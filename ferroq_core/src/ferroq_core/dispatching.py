"""Dispatch: run a job inline (sync mode) or write its row (db mode).

:class:`PendingDispatch` (a job with its dispatch options) and :class:`Queueable` (the
dispatch methods of :class:`~ferroq_core.Job`) live here, next to the functions they call;
:mod:`ferroq_core.job` adds them to the job model.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.bounds import (
    MAX_TENANT_ID_CHARS,
    check_delay,
    check_limit_key,
    check_queue_name,
    check_result_ttl,
    check_text,
)
from ferroq_core.clock import seconds
from ferroq_core.context import inline_context, running_job
from ferroq_core.dispatch_requests import RequestBuilder, build_request
from ferroq_core.errors import InvalidDispatch, JobReleased
from ferroq_core.execution import call_failed, call_handle, decode_row, job_scope
from ferroq_core.jobmodel import JobId
from ferroq_core.queue import Queue
from ferroq_core.records import EnqueueRequest
from ferroq_core.runtime import fire, guarded_scopes
from ferroq_core.unique import Unique

if TYPE_CHECKING:
    from datetime import timedelta

    import pluggy

    from ferroq_core.job import Job
    from ferroq_core.records import EnqueueResult
    from ferroq_core.runtime import Runtime

__all__ = [
    "Interceptor",
    "PendingDispatch",
    "Queueable",
    "dispatch",
    "dispatch_later",
    "dispatch_many",
    "dispatch_pending",
    "dispatch_to",
    "enqueue_pending",
    "set_interceptor",
]

log = logging.getLogger("ferroq")


def _delay(delay: float | timedelta) -> float:
    try:
        value = seconds(delay)
    except (TypeError, ValueError, OverflowError):
        raise InvalidDispatch(
            f"delay must be a number of seconds or a timedelta, got {type(delay).__name__}"
        ) from None
    return check_delay(value)


def _tenant(tenant_id: str | int) -> str:
    # bool is an int subclass: for_tenant(True) is a bug, not tenant "True".
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, (str, int)):
        raise InvalidDispatch(f"tenant id must be a str or int, got {type(tenant_id).__name__}")
    text = str(tenant_id)
    if text == "":
        raise InvalidDispatch("tenant id must not be empty")
    return check_text("tenant id", text, MAX_TENANT_ID_CHARS)


def _unique(unique: Unique) -> Unique:
    if not isinstance(unique, Unique):
        raise InvalidDispatch(f"with_unique takes a Unique(...), got {type(unique).__name__}")
    return unique


def _result_ttl(job: Job, ttl: float | timedelta | None) -> float:
    """Seconds to keep a stored result: ``ttl`` (seconds or a timedelta), else the job type's
    ``result_ttl``."""
    if ttl is None:
        return check_result_ttl(job.result_ttl)
    if isinstance(ttl, datetime.timedelta):
        return check_result_ttl(ttl.total_seconds())
    return check_result_ttl(ttl)


@attrs.frozen
class PendingDispatch:
    """A job with its dispatch options, built by the ``Queueable`` methods. Immutable: each
    option returns a new ``PendingDispatch``; ``.dispatch()`` enqueues it."""

    #: The job instance.
    job: Job
    #: Queue name override.
    queue: str | None = None
    #: Seconds before the job may run.
    delay_seconds: float = 0.0
    #: Idempotency key override.
    idempotency_key: str | None = None
    #: Tenant id override (stored as text).
    tenant_id: str | None = None
    #: Priority override (lower runs first).
    priority: int | None = None
    #: Unique-job rule override (:class:`~ferroq_core.unique.Unique`).
    unique: Unique | None = None
    #: Seconds to keep this job's result, whatever its type's ``store_result`` (None: as its
    #: type says); set by :meth:`with_stored_result`.
    result_ttl: float | None = None
    #: Limit key override (stored as text; see :mod:`ferroq_core.flowlimits`).
    limit_key: str | None = None

    # Each option builds the next record directly rather than through ``attrs.evolve``,
    # which looks the fields up on every call: ``Job(...).on_queue(q)`` is built per job in
    # ``dispatch_many`` lists.
    def _but(
        self,
        queue: str | None,
        delay_seconds: float,
        idempotency_key: str | None,
        tenant_id: str | None,
        priority: int | None,
    ) -> PendingDispatch:
        return PendingDispatch(
            self.job,
            queue,
            delay_seconds,
            idempotency_key,
            tenant_id,
            priority,
            self.unique,
            self.result_ttl,
            self.limit_key,
        )

    def delay(self, delay: float | timedelta) -> PendingDispatch:
        return self._but(
            self.queue, _delay(delay), self.idempotency_key, self.tenant_id, self.priority
        )

    def on_queue(self, name: str) -> PendingDispatch:
        return self._but(
            check_queue_name(name),
            self.delay_seconds,
            self.idempotency_key,
            self.tenant_id,
            self.priority,
        )

    def with_idempotency_key(self, key: str) -> PendingDispatch:
        return self._but(self.queue, self.delay_seconds, str(key), self.tenant_id, self.priority)

    def for_tenant(self, tenant_id: str | int) -> PendingDispatch:
        return self._but(
            self.queue, self.delay_seconds, self.idempotency_key, _tenant(tenant_id), self.priority
        )

    def with_priority(self, priority: int) -> PendingDispatch:
        return self._but(
            self.queue, self.delay_seconds, self.idempotency_key, self.tenant_id, int(priority)
        )

    def with_unique(self, unique: Unique) -> PendingDispatch:
        """This dispatch under ``unique`` instead of its job type's rule."""
        return attrs.evolve(self, unique=_unique(unique))

    def with_stored_result(self, ttl: float | timedelta | None = None) -> PendingDispatch:
        """Store this job's result (its handler's return value), as ``store_result = True``
        does for a whole type, kept ``ttl`` seconds (default: the type's ``result_ttl``)."""
        return attrs.evolve(self, result_ttl=_result_ttl(self.job, ttl))

    def with_limit_key(self, key: str | int) -> PendingDispatch:
        """This job counted under limit key ``key`` (instead of its type's ``limit_key``
        field, or its tenant) by every limit per key and in fair turns."""
        return attrs.evolve(self, limit_key=check_limit_key(key))

    def dispatch(self, connection: Any = None) -> JobId:
        """Enqueue (db mode) or run inline (sync mode); see :func:`ferroq_core.dispatch`."""
        return dispatch_pending(self, connection=connection)


class Queueable:
    """Dispatch methods for job instances; each returns a :class:`PendingDispatch`."""

    def pending(self) -> PendingDispatch:
        # Positional: a keyword costs more, once per job of every dispatch.
        return PendingDispatch(self)  # type: ignore[arg-type]

    def dispatch(self, connection: Any = None) -> JobId:
        return self.pending().dispatch(connection=connection)

    def delay(self, delay: float | timedelta) -> PendingDispatch:
        return PendingDispatch(self, delay_seconds=_delay(delay))  # type: ignore[arg-type]

    def on_queue(self, name: str) -> PendingDispatch:
        return PendingDispatch(self, queue=check_queue_name(name))  # type: ignore[arg-type]

    def with_idempotency_key(self, key: str) -> PendingDispatch:
        return PendingDispatch(self, idempotency_key=str(key))  # type: ignore[arg-type]

    def for_tenant(self, tenant_id: str | int) -> PendingDispatch:
        return PendingDispatch(self, tenant_id=_tenant(tenant_id))  # type: ignore[arg-type]

    def with_priority(self, priority: int) -> PendingDispatch:
        return PendingDispatch(self, priority=int(priority))  # type: ignore[arg-type]

    def with_unique(self, unique: Unique) -> PendingDispatch:
        return PendingDispatch(self, unique=_unique(unique))  # type: ignore[arg-type]

    def with_stored_result(self, ttl: float | timedelta | None = None) -> PendingDispatch:
        job: Job = self  # type: ignore[assignment]
        return PendingDispatch(job, result_ttl=_result_ttl(job, ttl))

    def with_limit_key(self, key: str | int) -> PendingDispatch:
        return PendingDispatch(self, limit_key=check_limit_key(key))  # type: ignore[arg-type]


#: Receives dispatches instead of the database or the inline runner (the testing kit's
#: ``fake_queue()``): ``interceptor(items, runtime) -> ids``, ``runtime`` being the one the
#: caller passed (None: the process-wide one, if any).
Interceptor = Callable[[list[PendingDispatch], "Runtime | None"], list[JobId]]

# Process-wide rather than a ContextVar: code under test often dispatches from threads it
# starts itself (thread pools, a live test server), and those dispatches must be captured too.
_interceptor: Interceptor | None = None
_interceptor_lock = threading.Lock()


def set_interceptor(interceptor: Interceptor | None) -> Interceptor | None:
    """Install ``interceptor`` (None removes it); returns the one it replaces."""
    global _interceptor
    with _interceptor_lock:
        previous, _interceptor = _interceptor, interceptor
    return previous


def _runtime(runtime: Runtime | None) -> Runtime:
    if runtime is not None:
        return runtime
    return Queue.runtime()


def _pending(item: Job | PendingDispatch) -> PendingDispatch:
    return item if isinstance(item, PendingDispatch) else item.pending()


# A JobId with no flag set, without JobId's Python-level ``__new__``: int's own builds the
# same object (the flags are class-level defaults) at a fraction of the cost, once per job.
_plain_id: Callable[[int], JobId] = functools.partial(int.__new__, JobId)


def enqueue_pending(
    items: Iterable[Job | PendingDispatch], runtime: Runtime, connection: Any = None
) -> list[JobId]:
    """Write jobs to the database in one transaction, whatever ``QUEUE_CONNECTION`` says."""
    intercept = _interceptor
    if intercept is not None:
        return intercept([_pending(i) for i in items], runtime)
    pendings = [i if type(i) is PendingDispatch else _pending(i) for i in items]
    requests = RequestBuilder(runtime).build_all(pendings)
    hook = runtime.pm.hook
    # Checked once per dispatch call: with no observer the insert is all there is.
    if hook.ferroq_dispatch_scope.get_hookimpls() or hook.ferroq_dispatch_requests.get_hookimpls():
        requests, results = _observed_write(runtime, requests, connection)
    else:
        results = runtime.backend.enqueue(requests, connection=connection)
    fire(runtime.pm, "ferroq_jobs_enqueued", requests=requests, results=results)
    # Nothing in this loop can register a plugin while none listens: check once, not per job.
    if runtime.pm.hook.ferroq_job_enqueued.get_hookimpls():
        for req, res in zip(requests, results, strict=False):
            fire(
                runtime.pm,
                "ferroq_job_enqueued",
                job_id=res.id,
                request=req,
                duplicate=res.duplicate,
            )
    return [
        JobId(r.id, duplicate=True, replaced=r.replaced) if r.duplicate else _plain_id(r.id)
        for r in results
    ]


def _observed_write(
    runtime: Runtime, requests: list[EnqueueRequest], connection: Any
) -> tuple[list[EnqueueRequest], list[EnqueueResult]]:
    """The insert inside the plugins' dispatch scopes, with the rows they rewrite."""
    with guarded_scopes(runtime.pm, "ferroq_dispatch_scope", requests=requests):
        requests = _rewritten(runtime.pm, requests)
        return requests, runtime.backend.enqueue(requests, connection=connection)


def _rewritten(pm: pluggy.PluginManager, requests: list[EnqueueRequest]) -> list[EnqueueRequest]:
    hook = pm.hook.ferroq_dispatch_requests
    if not hook.get_hookimpls():
        return requests
    try:
        result = hook(requests=requests)
    except Exception:
        log.exception("ferroq plugin hook ferroq_dispatch_requests raised; ignoring")
        return requests
    if result is None:
        return requests
    if len(result) != len(requests) or not all(isinstance(r, EnqueueRequest) for r in result):
        log.error(
            "a ferroq_dispatch_requests implementation returned %d items for %d requests; "
            "writing the requests as they were",
            len(result),
            len(requests),
        )
        return requests
    return list(result)


def run_inline(pending: PendingDispatch, runtime: Runtime) -> JobId:
    """Sync mode: encode and decode (as the worker would), enter scopes, run ``handle``.

    On error the job's ``failed(error)`` runs once and the error is raised to the caller
    (``ctx.release()``'s :class:`~ferroq_core.errors.JobReleased` is raised without it).
    """
    request = build_request(pending, runtime)
    job = decode_row(runtime, request.job_type, request.payload)
    try:
        with running_job(inline_context(request)), job_scope(runtime, job, None, request.tenant_id):
            call_handle(job)
    except JobReleased:
        raise  # ctx.release(): not a failure, and sync mode has no later run
    except BaseException as exc:
        call_failed(runtime, job, exc, None, request.tenant_id)
        raise
    return JobId(0, inline=True)


def dispatch_pending(
    pending: PendingDispatch, *, connection: Any = None, runtime: Runtime | None = None
) -> JobId:
    intercept = _interceptor
    if intercept is not None:
        return intercept([pending], runtime)[0]
    rt = _runtime(runtime)
    if rt.config.connection == "sync" and connection is None:
        return run_inline(pending, rt)
    return enqueue_pending([pending], rt, connection)[0]


def dispatch(
    job: Job | PendingDispatch, *, connection: Any = None, runtime: Runtime | None = None
) -> JobId:
    """Dispatch one job; returns its id (see :class:`~ferroq_core.job.JobId`)."""
    return dispatch_pending(_pending(job), connection=connection, runtime=runtime)


def dispatch_to(
    job: Job | PendingDispatch,
    queue: str,
    *,
    connection: Any = None,
    runtime: Runtime | None = None,
) -> JobId:
    """Dispatch one job onto ``queue``."""
    return dispatch_pending(_pending(job).on_queue(queue), connection=connection, runtime=runtime)


def dispatch_later(
    job: Job | PendingDispatch,
    delay: float | timedelta,
    *,
    connection: Any = None,
    runtime: Runtime | None = None,
) -> JobId:
    """Dispatch one job that may run ``delay`` (seconds or timedelta) from now."""
    return dispatch_pending(_pending(job).delay(delay), connection=connection, runtime=runtime)


def dispatch_many(
    jobs: Iterable[Job | PendingDispatch],
    *,
    connection: Any = None,
    runtime: Runtime | None = None,
) -> list[JobId]:
    """Dispatch many jobs in one transaction (bulk insert); sync mode runs them in order."""
    items = [_pending(j) for j in jobs]
    intercept = _interceptor
    if intercept is not None:
        return intercept(items, runtime)
    rt = _runtime(runtime)
    if rt.config.connection == "sync" and connection is None:
        return [run_inline(p, rt) for p in items]
    return enqueue_pending(items, rt, connection)
