"""Running one job: decode, enter scopes, call ``handle``. Shared by sync mode, the worker
and the testing kit, so a job behaves the same in all three."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import traceback
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

from ferroq_core.context import current_job
from ferroq_core.errors import JobDecodeError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import JobContext

__all__ = [
    "NO_SCOPE",
    "call_failed",
    "call_handle",
    "decode_row",
    "describe_error",
    "in_own_context",
    "job_scope",
    "start_handle",
    "takes_context",
    "tenant_scope",
]

T = TypeVar("T")

log = logging.getLogger("ferroq.worker")

#: Traceback text kept with a failed job, at most.
MAX_TRACEBACK_CHARS = 8_000


def decode_row(runtime: JobContext, job_type: str, payload: str) -> Job:
    """The job instance a stored row describes.

    :raises UnknownJobType: no type is registered under ``job_type``.
    :raises JobDecodeError: the payload does not fit the type, or is larger than
        ``max_payload_bytes`` (a row another program wrote, or written under a higher limit):
        it is never decoded into a handler.
    """
    limit = runtime.config.max_payload_bytes
    # A character is at most 4 bytes of UTF-8: only a payload that long is measured.
    if len(payload) * 4 > limit:
        _check_size(job_type, payload, limit)
    cls = runtime.registry.get(job_type, runtime.pm)
    job: Job = runtime.serializer.decode(cls, payload)
    return job


def _check_size(job_type: str, payload: str | bytes, limit: int) -> None:
    size = len(payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload)
    if size > limit:
        raise JobDecodeError(
            f"payload of job type {job_type} is {size} bytes, over the {limit}-byte limit "
            "(FERROQ_MAX_PAYLOAD_BYTES): not decoded; raise the limit on the workers and "
            "`ferroq retry` it, or `ferroq forget` it"
        )


def in_own_context(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a context of its own: an empty :class:`contextvars.Context`.

    A stored job runs this way (an ``async def`` one as a task of its own, which asyncio
    gives the same isolation): context variables it sets (its tenant, a request id, a trace)
    end with it, and it starts with none set, whatever ran before it on the same worker
    thread. The worker's threads start with an empty context, so this is the context every
    job on them sees; ``drain()`` and ``run_job()`` give a job the same one, not their
    caller's.
    """
    return contextvars.Context().run(fn, *args)


def job_scope(
    runtime: JobContext, job: Job, row: JobRow | None, tenant_id: str | None
) -> AbstractContextManager[Any]:
    """The tenant scope (when the job carries a tenant) and every plugin's job scope, as one
    context manager that enters them in that order and leaves them in reverse.

    The hooks are called here, the scopes entered by ``with``. A single scope (the tenancy
    plugin's, for every stored job) is returned as it is, and no scope at all as
    :data:`NO_SCOPE`: the worker calls this for every job, and a generator-based wrapper with
    an ``ExitStack`` around one scope would add work that changes nothing.
    """
    pm = runtime.pm
    scopes: list[AbstractContextManager[Any]] = []
    if tenant_id is not None:
        scope = pm.hook.ferroq_tenant_scope(tenant_id=tenant_id)
        if scope is not None:
            scopes.append(scope)
    hook = pm.hook.ferroq_job_scope
    # Skipped when no plugin implements it (pluggy's get_hookimpls), as runtime.fire does:
    # this runs once per job.
    if hook.get_hookimpls():
        scopes.extend(scope for scope in hook(job=job, row=row) if scope is not None)
    if len(scopes) == 1:
        return scopes[0]
    if not scopes:
        return NO_SCOPE
    return _nested(scopes)


def tenant_scope(runtime: JobContext, tenant_id: str | None) -> AbstractContextManager[Any]:
    """The scope of ``tenant_id`` (the ``ferroq_tenant_scope`` hook), or :data:`NO_SCOPE`
    when there is no tenant or no plugin gives one."""
    if tenant_id is None:
        return NO_SCOPE
    scope = runtime.pm.hook.ferroq_tenant_scope(tenant_id=tenant_id)
    return NO_SCOPE if scope is None else scope


#: What :func:`job_scope` returns when a job needs no scope. Stateless and reentrant: one
#: serves every such job, and callers may skip entering it.
NO_SCOPE: AbstractContextManager[None] = nullcontext()


@contextmanager
def _nested(scopes: list[AbstractContextManager[Any]]) -> Iterator[None]:
    with ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(scope)
        yield


def call_failed(
    runtime: JobContext, job: Job, error: BaseException, row: JobRow | None, tenant_id: str | None
) -> None:
    """Run ``job.failed(error)`` in a context of its own, inside the job's tenant scope
    (:func:`tenant_scope`), so what it dispatches or writes carries the job's tenant. Not in
    the plugins' ``ferroq_job_scope`` scopes: those wrap a run of the job, and an observer
    (a tracer, a metric) would count the callback as one more. When the tenant scope cannot
    be entered (the tenant is unknown) ``failed()`` still runs, outside it, and a warning
    says so. Its own errors are logged, never raised."""
    in_own_context(_call_failed, runtime, job, error, row, tenant_id)


def _call_failed(
    runtime: JobContext, job: Job, error: BaseException, row: JobRow | None, tenant_id: str | None
) -> None:
    name = f"job {row.id} ({row.job_type})" if row is not None else type(job).job_name
    try:
        with ExitStack() as stack:
            try:
                stack.enter_context(tenant_scope(runtime, tenant_id))
            except Exception as exc:
                log.warning(
                    "failed() of %s runs outside its tenant scope, which could not be entered: %s",
                    name,
                    exc,
                )
            job.failed(error)
    except BaseException:
        log.exception("failed() of %s raised", name)


#: Per job class: whether its ``handle`` takes the context (``handle(self, ctx)``).
_TAKES_CONTEXT: dict[type, bool] = {}


def _takes_context(cls: type) -> bool:
    try:
        params = inspect.signature(cls.handle).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) >= 2


def takes_context(cls: type) -> bool:
    """Whether ``cls.handle`` is declared ``handle(self, ctx)`` (looked up once per class)."""
    takes = _TAKES_CONTEXT.get(cls)
    if takes is None:
        takes = _TAKES_CONTEXT[cls] = _takes_context(cls)
    return takes


def start_handle(job: Job) -> Any:
    """``job.handle()`` or ``job.handle(ctx)``: its return value (an awaitable for an
    ``async def`` handler)."""
    # Inline lookup rather than takes_context(): this runs for every job.
    takes = _TAKES_CONTEXT.get(type(job))
    if takes is None:
        takes = takes_context(type(job))
    return job.handle(current_job()) if takes else job.handle()


def call_handle(job: Job) -> Any:
    """Call ``job.handle()`` (or ``job.handle(ctx)``) and return what it returned; an
    ``async def`` handler runs to completion on a fresh event loop (on a helper thread when
    this thread already runs a loop), and its coroutine's value is returned."""
    takes = _TAKES_CONTEXT.get(type(job))
    if takes is None:
        takes = takes_context(type(job))
    result: Any = job.handle(current_job()) if takes else job.handle()
    if result is None or not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(result))
    box: list[Any] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            box.append(asyncio.run(_await(result)))
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=runner, name="ferroq-sync-async", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


async def _await(awaitable: Any) -> Any:
    return await awaitable


def describe_error(exc: BaseException) -> str:
    """``Type: message`` then the traceback, capped (the text stored with a failed job)."""
    head = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(tb) > MAX_TRACEBACK_CHARS:
        tb = "...\n" + tb[-MAX_TRACEBACK_CHARS:]
    return f"{head}\n\n{tb}"
