"""``fake_queue()``: capture dispatches instead of storing or running them.

Inside the block every ``dispatch()``, ``dispatch_to()``, ``dispatch_later()`` and
``dispatch_many()`` (and ``PendingDispatch.dispatch()``) is encoded exactly as the real queue
would encode it (so a payload that cannot be serialized still fails), then recorded; nothing
is written and nothing runs, whatever ``QUEUE_CONNECTION`` says::

    with fake_queue() as fake:
        signup("a@example.com")
    fake.assert_dispatched(SendEmail, where={"to": "a@example.com"}, queue="emails")
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from ferroq_core.clock import seconds
from ferroq_core.dispatch_requests import build_request
from ferroq_core.dispatching import set_interceptor
from ferroq_core.job import Job, JobId
from ferroq_core.testing._context import job_context

if TYPE_CHECKING:
    from datetime import timedelta

    from ferroq_core.job import PendingDispatch
    from ferroq_core.runtime import JobContext, Runtime

__all__ = ["DispatchedJob", "FakeQueue", "fake_queue"]

#: A job type given as its class or its stable name.
JobTypeRef: TypeAlias = type[Job] | str
#: A filter on the job instance: a predicate, or field values that must all be equal.
Where: TypeAlias = Callable[[Any], bool] | Mapping[str, Any]

_REPR_LIMIT = 200


@attrs.frozen
class DispatchedJob:
    """One captured dispatch: the job instance and the options it would be stored with."""

    #: Fake job id (1, 2, ... in dispatch order).
    id: int
    #: The job instance that was dispatched.
    job: Job
    #: Stable job type name (what ``job_type`` would hold).
    job_type: str
    #: Queue it would run on.
    queue: str
    #: Seconds before it may run.
    delay: float
    #: Priority (lower runs first).
    priority: int
    #: Total executions allowed.
    max_attempts: int
    #: Idempotency key, if any.
    idempotency_key: str | None
    #: Tenant id (``for_tenant()`` or captured by the tenancy hooks), if any.
    tenant_id: str | None
    #: The encoded payload, exactly as it would be stored.
    payload: str
    #: Seconds its result would be kept when the dispatch asked for it
    #: (``.with_stored_result()``), else None.
    result_ttl: float | None = None
    #: The limit key it would be counted under (given, its type's field, else the tenant).
    limit_key: str | None = None

    def describe(self) -> str:
        text = repr(self.job)
        if len(text) > _REPR_LIMIT:
            text = text[: _REPR_LIMIT - 3] + "..."
        opts = [f"queue={self.queue!r}"]
        if self.delay:
            opts.append(f"delay={self.delay:g}s")
        if self.priority:
            opts.append(f"priority={self.priority}")
        if self.tenant_id is not None:
            opts.append(f"tenant={self.tenant_id!r}")
        if self.idempotency_key is not None:
            opts.append(f"idempotency_key={self.idempotency_key!r}")
        if self.result_ttl is not None:
            opts.append(f"result_ttl={self.result_ttl:g}s")
        return f"#{self.id} {text} {' '.join(opts)}"


def _type_name(job_type: JobTypeRef) -> str:
    if isinstance(job_type, str):
        return job_type
    if isinstance(job_type, type) and issubclass(job_type, Job):
        return job_type.type_name()
    raise TypeError(f"expected a Job subclass or a job type name, got {job_type!r}")


def _label(job_type: JobTypeRef) -> str:
    return job_type if isinstance(job_type, str) else job_type.__qualname__


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class FakeQueue:
    """Captured dispatches and assertions about them. Thread-safe.

    :param runtime: where the configuration (default queue, payload limit), the serializer and
        the tenant capture hooks come from; default the process-wide queue's runtime, or one
        built from the environment when ``Queue.init`` was never called.
    """

    def __init__(self, runtime: JobContext | None = None) -> None:
        self._runtime = runtime
        self._context: JobContext | None = None
        self._captured: list[DispatchedJob] = []
        self._keys: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- capture -----------------------------------------------------------------------------
    def _ctx(self, runtime: Runtime | None) -> JobContext:
        if runtime is not None:
            return runtime
        if self._context is None:
            self._context = job_context(self._runtime)
        return self._context

    def capture(self, items: list[PendingDispatch], runtime: Runtime | None = None) -> list[JobId]:
        """Record ``items`` as the real queue would store them; return their ids.

        Every item is encoded before any is recorded, so one bad payload records none (the
        real ``dispatch_many`` inserts none either). A duplicate idempotency key returns the
        first job's id with ``duplicate=True`` and is not recorded again.
        """
        ctx = self._ctx(runtime)
        requests = [(p, build_request(p, ctx)) for p in items]
        ids: list[JobId] = []
        with self._lock:
            for pending, req in requests:
                if req.idempotency_key is not None:
                    first = self._keys.get((req.job_type, req.idempotency_key))
                    if first is not None:
                        ids.append(JobId(first, duplicate=True))
                        continue
                job_id = next(self._ids)
                if req.idempotency_key is not None:
                    self._keys[(req.job_type, req.idempotency_key)] = job_id
                self._captured.append(
                    DispatchedJob(
                        id=job_id,
                        job=pending.job,
                        job_type=req.job_type,
                        queue=req.queue,
                        delay=req.delay,
                        priority=req.priority,
                        max_attempts=req.max_attempts,
                        idempotency_key=req.idempotency_key,
                        tenant_id=req.tenant_id,
                        payload=req.payload,
                        result_ttl=req.result_ttl,
                        limit_key=req.tenant_id if req.limit_key is None else req.limit_key,
                    )
                )
                ids.append(JobId(job_id))
        return ids

    def clear(self) -> None:
        """Forget every captured dispatch (and the idempotency keys they hold)."""
        with self._lock:
            self._captured.clear()
            self._keys.clear()

    # -- access ------------------------------------------------------------------------------
    @property
    def dispatched(self) -> list[DispatchedJob]:
        """Every captured dispatch, in order."""
        with self._lock:
            return list(self._captured)

    def jobs(self, job_type: JobTypeRef | None = None) -> list[Any]:
        """The dispatched job instances (of ``job_type`` only, when given), in order."""
        if job_type is None:
            return [d.job for d in self.dispatched]
        name = _type_name(job_type)
        return [d.job for d in self.dispatched if d.job_type == name]

    def matching(
        self,
        job_type: JobTypeRef | None = None,
        *,
        where: Where | None = None,
        queue: str | None = None,
        tenant: str | int | None = None,
        delay: float | timedelta | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
    ) -> list[DispatchedJob]:
        """Captured dispatches that pass every given filter."""
        name = None if job_type is None else _type_name(job_type)
        want_delay = None if delay is None else seconds(delay)
        out = []
        for d in self.dispatched:
            if name is not None and d.job_type != name:
                continue
            if queue is not None and d.queue != queue:
                continue
            if tenant is not None and d.tenant_id != str(tenant):
                continue
            if want_delay is not None and abs(d.delay - want_delay) > 1e-6:
                continue
            if priority is not None and d.priority != priority:
                continue
            if idempotency_key is not None and d.idempotency_key != idempotency_key:
                continue
            if where is not None and not _where_matches(where, d.job):
                continue
            out.append(d)
        return out

    # -- assertions --------------------------------------------------------------------------
    def assert_dispatched(
        self,
        job_type: JobTypeRef,
        count: int | None = None,
        *,
        where: Where | None = None,
        queue: str | None = None,
        tenant: str | int | None = None,
        delay: float | timedelta | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
    ) -> list[DispatchedJob]:
        """Assert that ``job_type`` was dispatched (exactly ``count`` times when given) with
        every given option; ``where`` is a predicate on the job or a mapping of field values.

        :return: the matching dispatches.
        :raises AssertionError: listing what was dispatched instead.
        """
        filters = {
            "where": where,
            "queue": queue,
            "tenant": tenant,
            "delay": delay,
            "priority": priority,
            "idempotency_key": idempotency_key,
        }
        found = self.matching(
            job_type,
            where=where,
            queue=queue,
            tenant=tenant,
            delay=delay,
            priority=priority,
            idempotency_key=idempotency_key,
        )
        if (count is None and found) or (count is not None and len(found) == count):
            return found
        want = "at least once" if count is None else f"exactly {_plural(count, 'time')}"
        raise AssertionError(
            f"expected {_label(job_type)} to be dispatched {want}{_describe_filters(filters)}, "
            f"but it was dispatched {_plural(len(found), 'time')}.\n{self._summary()}"
        )

    def assert_dispatched_times(
        self, job_type: JobTypeRef, times: int, **filters: Any
    ) -> list[DispatchedJob]:
        """Assert that ``job_type`` was dispatched exactly ``times`` times (same filters as
        :meth:`assert_dispatched`)."""
        return self.assert_dispatched(job_type, times, **filters)

    def assert_not_dispatched(self, job_type: JobTypeRef, **filters: Any) -> None:
        """Assert that no dispatch of ``job_type`` passes the filters (same as
        :meth:`assert_dispatched`)."""
        found = self.matching(job_type, **filters)
        if found:
            lines = "\n".join(f"  {d.describe()}" for d in found)
            raise AssertionError(
                f"expected {_label(job_type)} not to be dispatched{_describe_filters(filters)}, "
                f"but it was dispatched {_plural(len(found), 'time')}:\n{lines}"
            )

    def assert_nothing_dispatched(self) -> None:
        """Assert that no job at all was dispatched."""
        if self.dispatched:
            raise AssertionError(f"expected nothing to be dispatched.\n{self._summary()}")

    def _summary(self) -> str:
        captured = self.dispatched
        if not captured:
            return "Nothing was dispatched."
        lines = "\n".join(f"  {d.describe()}" for d in captured)
        return f"Dispatched ({len(captured)}):\n{lines}"


def _where_matches(where: Where, job: Any) -> bool:
    if callable(where):
        return bool(where(job))
    for field, value in where.items():
        if not hasattr(job, field):
            raise TypeError(f"{type(job).__qualname__} has no field {field!r} (in where=)")
        if getattr(job, field) != value:
            return False
    return True


def _describe_filters(filters: Mapping[str, Any]) -> str:
    parts = []
    for key, value in filters.items():
        if value is None:
            continue
        if key == "where" and callable(value):
            parts.append(f"where={getattr(value, '__name__', 'predicate')}")
        else:
            parts.append(f"{key}={value!r}")
    return f" with {', '.join(parts)}" if parts else ""


@contextmanager
def fake_queue(runtime: JobContext | None = None) -> Iterator[FakeQueue]:
    """Capture every dispatch in the block (in every thread) instead of storing or running it.

    Fakes nest: the inner one captures until its block ends, then the outer one resumes.

    :param runtime: see :class:`FakeQueue`.
    """
    fake = FakeQueue(runtime)
    previous = set_interceptor(fake.capture)
    try:
        yield fake
    finally:
        set_interceptor(previous)
