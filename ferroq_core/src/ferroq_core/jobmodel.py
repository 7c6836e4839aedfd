"""What a job type is, below the dispatch API: class options, naming, retry delay,
idempotency key, and the :class:`JobId` that dispatch returns.

Users subclass :class:`ferroq_core.Job`, which adds the dispatch methods to :class:`JobBase`
and registers each subclass by name. Everything below the dispatch API (the registry, the
runtime, the worker) needs only what this module defines.
"""

from __future__ import annotations

from datetime import timedelta  # noqa: TC003 - get_type_hints() resolves the class options
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from ferroq_core.errors import InvalidDispatch, NotInitialized
from ferroq_core.flowlimits import check_limit_key_field
from ferroq_core.unique import Unique, check_unique_fields

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from typing_extensions import Self

__all__ = ["DEFAULT_RESULT_TTL", "JobBase", "JobId", "ResultSource", "job_type_name"]

#: Seconds a stored result is kept after its job succeeded, unless the type sets ``result_ttl``.
DEFAULT_RESULT_TTL = 86_400.0


class ResultSource(Protocol):
    """How a :class:`JobId` reads its job's result: the API layer's
    :mod:`ferroq_core.results` for a runtime (the process-wide queue unless one is given)."""

    def result(self, job_id: int, timeout: float | None, runtime: Any) -> Any: ...

    async def aresult(self, job_id: int, timeout: float | None, runtime: Any) -> Any: ...


class _Sources:
    """The :class:`ResultSource` in use: set by ``Queue.init`` (the API layer), read by
    :meth:`JobId.result`, which sits below it and cannot import it."""

    current: ClassVar[ResultSource | None] = None


def set_result_source(source: ResultSource | None) -> None:
    """Install how :meth:`JobId.result` reads results (``Queue.init`` does it)."""
    _Sources.current = source


def _source() -> ResultSource:
    source = _Sources.current
    if source is None:
        raise NotInitialized()
    return source


class JobId(int):
    """The id ``dispatch()`` returns: an ``int`` that also tells what happened.

    ``duplicate`` is True when an equal idempotency or unique key was held (the id is then the
    holder's); ``replaced`` is True when, besides, the holder was pending and took this
    dispatch's payload and run time (``Unique(on_conflict="replace")``); ``inline`` is True in
    sync mode, where the job ran in the caller and no row was written (the id is then 0).
    """

    # Class-level defaults, set on an instance only when True, so an id with no flag can be
    # built by int's own constructor (see ``dispatching._plain_id``).
    duplicate: bool = False
    replaced: bool = False
    inline: bool = False

    def __new__(
        cls, value: int, *, duplicate: bool = False, inline: bool = False, replaced: bool = False
    ) -> Self:
        obj = super().__new__(cls, value)
        if duplicate:
            obj.duplicate = True
        if replaced:
            obj.replaced = True
        if inline:
            obj.inline = True
        return obj

    def __str__(self) -> str:
        # int inherits object.__str__, which would print the repr below: "<JobId 5>".
        return str(int(self))

    def result(self, timeout: float | None = None, *, runtime: Any = None) -> Any:
        """The job's result, once it succeeded: its handler's return value, stored because
        the job type sets ``store_result`` (see docs/results.md), decoded by the serializer.

        Waits up to ``timeout`` seconds (None: without limit; 0: only looks) for the job to
        finish, woken by the database (NOTIFY on PostgreSQL, change detection on SQLite),
        from any process or host.

        :param runtime: the queue to read (default: the process-wide ``Queue``).
        :raises JobFailed: the job was parked as failed; ``.error`` holds its error.
        :raises TimeoutError: the job has not finished within ``timeout``.
        :raises ResultMissing: no such job and no stored result (see the error's message).
        """
        return _source().result(int(self), timeout, runtime)

    async def aresult(self, timeout: float | None = None, *, runtime: Any = None) -> Any:
        """:meth:`result` for ``async`` code: waits without blocking the event loop."""
        return await _source().aresult(int(self), timeout, runtime)

    def __repr__(self) -> str:
        flags = " duplicate" if self.duplicate else ""
        flags += " replaced" if self.replaced else ""
        flags += " inline" if self.inline else ""
        return f"<JobId {int(self)}{flags}>"


def job_type_name(cls: type) -> str:
    """The stable name of a job type: its ``job_name`` or ``module:QualName``."""
    name = cls.__dict__.get("job_name") or getattr(cls, "_ferroq_default_name", None)
    if isinstance(name, str) and name:
        return name
    return f"{cls.__module__}:{cls.__qualname__}"


class JobBase:
    """The job model without dispatch: see :class:`ferroq_core.Job` for the options."""

    queue: ClassVar[str | None] = None
    max_attempts: ClassVar[int] = 3
    timeout: ClassVar[float | None] = None
    priority: ClassVar[int] = 0
    job_name: ClassVar[str | None] = None
    #: Full-jitter backoff base and cap, in seconds (used by the default ``retry_delay``).
    backoff_base: ClassVar[float] = 5.0
    backoff_cap: ClassVar[float] = 900.0
    #: Store ``handle()``'s return value with the job's acknowledgement (docs/results.md).
    store_result: ClassVar[bool] = False
    #: Seconds a stored result is kept (workers and ``ferroq prune`` delete it after).
    result_ttl: ClassVar[float] = DEFAULT_RESULT_TTL
    #: A cron expression: the type is a periodic job (see :mod:`ferroq_core.schedules`).
    schedule: ClassVar[str | None] = None
    schedule_timezone: ClassVar[str] = "UTC"
    schedule_catch_up: ClassVar[str] = "latest"
    schedule_catch_up_window: ClassVar[float] = 3600.0
    #: Unique-job rule (:class:`~ferroq_core.unique.Unique`), or None.
    unique: ClassVar[Unique | None] = None
    #: Flow control (:mod:`ferroq_core.flowlimits`): at most this many running at once,
    #: at most ``rate_limit[0]`` starts per ``rate_limit[1]`` seconds (or ``timedelta``),
    #: counted per limit key when ``limit_per_key``. None: no limit.
    concurrency_limit: ClassVar[int | None] = None
    rate_limit: ClassVar[tuple[int, float | timedelta] | None] = None
    #: The payload field whose value is a job's limit key (unless its dispatch gives one:
    #: ``.with_limit_key()``); None: the tenant id is the key.
    limit_key: ClassVar[str | None] = None
    #: Count the type's limits per limit key; None: per key when ``limit_key`` names a field.
    limit_per_key: ClassVar[bool | None] = None
    #: The old name of ``limit_per_key``.
    limit_per_tenant: ClassVar[bool | None] = None

    @classmethod
    def __attrs_init_subclass__(cls, **kwargs: Any) -> None:
        # Called by attrs once the class has its fields (after __init_subclass__, which runs
        # before attrs adds them): a bad unique rule or limit key field fails at import, not
        # at dispatch.
        fields = attrs.fields(cls)  # type: ignore[arg-type]  # called on attrs classes only
        key = cls.limit_key
        if isinstance(key, str):  # anything else fails in flowlimits.type_rule
            check_limit_key_field(job_type_name(cls), key, (f.name for f in fields))
        unique = cls.__dict__.get("unique")
        if unique is None:
            return
        if not isinstance(unique, Unique):
            raise InvalidDispatch(
                f"job {job_type_name(cls)}: unique must be a Unique(...) or None, "
                f"got {type(unique).__name__}"
            )
        check_unique_fields(job_type_name(cls), unique, (f.name for f in fields))

    #: Keep a history record when a job of this type succeeds: True or False, or None to
    #: follow the queue's ``keep_history`` (``FERROQ_KEEP_HISTORY``, off by default).
    keep_history: ClassVar[bool | None] = None

    if TYPE_CHECKING:
        # ``handle(self)`` or ``handle(self, ctx)`` (the job's CurrentJob), plain or async:
        # typed loosely so that either signature is a valid override.
        handle: Callable[..., Awaitable[Any] | Any]
    else:

        def handle(self):
            """The job's work: ``handle(self)``, or ``handle(self, ctx)`` to receive its
            :class:`~ferroq_core.context.CurrentJob`; plain or ``async def``."""
            raise NotImplementedError(f"{type(self).__qualname__} must define handle()")

    def retry_delay(self, attempt: int) -> float | None:
        """Seconds to wait before the next attempt after failed attempt ``attempt`` (1-based).

        Returning None defers to the backoff policy hook (full jitter by default):
        ``uniform(0, min(backoff_cap, backoff_base * 2 ** attempt))``.
        """
        return None

    def idempotency_key(self) -> str | None:
        """A key that makes equal dispatches collapse into one active job (None: no key)."""
        return None

    def failed(self, error: BaseException) -> None:
        """Called once when the job is parked as failed (its attempts are spent)."""

    def cancelled(self) -> None:
        """Called once when the job is cancelled (``ferroq cancel``, ``Queue.cancel()``):
        removed while pending, or stopped while running. ``failed()`` is not called."""

    @classmethod
    def type_name(cls) -> str:
        """The stable name stored in ``job_type``."""
        return job_type_name(cls)
