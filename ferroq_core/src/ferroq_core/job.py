"""The job model: ``Job``, the ``Queueable`` mixin and ``PendingDispatch``.

A job type is an attrs class deriving from :class:`Job` with a ``handle(self)`` method (plain
or ``async def``)::

    @attrs.define
    class SendEmail(Job):
        queue = "emails"
        max_attempts = 5

        to: str
        subject: str

        def handle(self) -> None:
            mailer.send(self.to, self.subject)

    SendEmail(to="a@example.com", subject="Hi").dispatch()
    SendEmail(to="a@example.com", subject="Hi").delay(timedelta(minutes=5)).on_queue("low") \
        .dispatch()
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ferroq_core.clock import seconds
from ferroq_core.registry import default_registry, job_type_name

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from datetime import timedelta

    from typing_extensions import Self

__all__ = ["Job", "JobId", "PendingDispatch", "Queueable"]


class JobId(int):
    """The id ``dispatch()`` returns: an ``int`` that also tells what happened.

    ``duplicate`` is True when an equal idempotency key was already pending or running (the id
    is then the existing job's); ``inline`` is True in sync mode, where the job ran in the
    caller and no row was written (the id is then 0).
    """

    # Class-level defaults, set on an instance only when True: a ``dispatch_many`` of
    # 10,000 plain jobs makes 10,000 of these (see ``dispatching._plain_id``).
    duplicate: bool = False
    inline: bool = False

    def __new__(cls, value: int, *, duplicate: bool = False, inline: bool = False) -> Self:
        obj = super().__new__(cls, value)
        if duplicate:
            obj.duplicate = True
        if inline:
            obj.inline = True
        return obj

    def __str__(self) -> str:
        # int inherits object.__str__, which would print the repr below: "<JobId 5>".
        return str(int(self))

    def __repr__(self) -> str:
        flags = " duplicate" if self.duplicate else ""
        flags += " inline" if self.inline else ""
        return f"<JobId {int(self)}{flags}>"


def _delay(delay: float | timedelta) -> float:
    value = seconds(delay)
    if value < 0:
        raise ValueError(f"delay must not be negative, got {value}")
    return value


def _queue(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("queue name must be a non-empty string")
    return name


def _tenant(tenant_id: str | int) -> str:
    # bool is an int subclass: for_tenant(True) is a bug, not tenant "True".
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, (str, int)):
        raise ValueError(f"tenant id must be a str or int, got {tenant_id!r}")
    if str(tenant_id) == "":
        raise ValueError("tenant id must not be empty")
    return str(tenant_id)


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

    # Each option builds the next record directly: ``attrs.evolve`` looks the fields up on
    # every call, and ``Job(...).on_queue(q)`` in a ``dispatch_many`` list paid 1.6 us per job
    # for it (0.45 now; docs/performance.md).
    def _but(
        self,
        queue: str | None,
        delay_seconds: float,
        idempotency_key: str | None,
        tenant_id: str | None,
        priority: int | None,
    ) -> PendingDispatch:
        return PendingDispatch(self.job, queue, delay_seconds, idempotency_key, tenant_id, priority)

    def delay(self, delay: float | timedelta) -> PendingDispatch:
        return self._but(
            self.queue, _delay(delay), self.idempotency_key, self.tenant_id, self.priority
        )

    def on_queue(self, name: str) -> PendingDispatch:
        return self._but(
            _queue(name), self.delay_seconds, self.idempotency_key, self.tenant_id, self.priority
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

    def dispatch(self, connection: Any = None) -> JobId:
        """Enqueue (db mode) or run inline (sync mode); see :func:`ferroq_core.dispatch`."""
        from ferroq_core.dispatching import dispatch_pending

        return dispatch_pending(self, connection=connection)


class Queueable:
    """Dispatch methods for job instances; each returns a :class:`PendingDispatch`."""

    def pending(self) -> PendingDispatch:
        return PendingDispatch(job=self)  # type: ignore[arg-type]

    def dispatch(self, connection: Any = None) -> JobId:
        return self.pending().dispatch(connection=connection)

    def delay(self, delay: float | timedelta) -> PendingDispatch:
        return PendingDispatch(self, delay_seconds=_delay(delay))  # type: ignore[arg-type]

    def on_queue(self, name: str) -> PendingDispatch:
        return PendingDispatch(self, queue=_queue(name))  # type: ignore[arg-type]

    def with_idempotency_key(self, key: str) -> PendingDispatch:
        return PendingDispatch(self, idempotency_key=str(key))  # type: ignore[arg-type]

    def for_tenant(self, tenant_id: str | int) -> PendingDispatch:
        return PendingDispatch(self, tenant_id=_tenant(tenant_id))  # type: ignore[arg-type]

    def with_priority(self, priority: int) -> PendingDispatch:
        return PendingDispatch(self, priority=int(priority))  # type: ignore[arg-type]


class Job(Queueable):
    """Base for job types. Subclass it with an attrs class and define ``handle``.

    Class-level options (plain class attributes, not attrs fields):

    - ``queue``: queue name (default ``"default"``, or ``QUEUE_DEFAULT``).
    - ``max_attempts``: total executions, first run included (default 3).
    - ``timeout``: seconds one execution may take (None: the worker's default).
    - ``priority``: lower runs first within a queue (default 0).
    - ``job_name``: stable type name stored with each job (default ``module:QualName``);
      set it so renaming or moving the class does not orphan queued jobs.
    """

    queue: ClassVar[str | None] = None
    max_attempts: ClassVar[int] = 3
    timeout: ClassVar[float | None] = None
    priority: ClassVar[int] = 0
    job_name: ClassVar[str | None] = None
    #: Full-jitter backoff base and cap, in seconds (used by the default ``retry_delay``).
    backoff_base: ClassVar[float] = 5.0
    backoff_cap: ClassVar[float] = 900.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        default_registry().register(cls)

    def handle(self) -> Awaitable[None] | None:
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

    @classmethod
    def type_name(cls) -> str:
        """The stable name stored in ``job_type``."""
        return job_type_name(cls)


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """``uniform(0, min(cap, base * 2 ** attempt))`` (AWS "full jitter")."""
    bound = min(cap, base * (2.0 ** min(attempt, 64)))
    return (rng or random).uniform(0.0, bound)
