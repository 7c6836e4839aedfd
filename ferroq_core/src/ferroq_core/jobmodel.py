"""What a job type is, below the dispatch API: class options, naming, retry delay,
idempotency key, and the :class:`JobId` that dispatch returns.

Users subclass :class:`ferroq_core.Job`, which adds the dispatch methods to :class:`JobBase`
and registers each subclass by name. Everything below the dispatch API (the registry, the
runtime, the worker) needs only what this module defines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from typing_extensions import Self

__all__ = ["JobBase", "JobId", "job_type_name"]


class JobId(int):
    """The id ``dispatch()`` returns: an ``int`` that also tells what happened.

    ``duplicate`` is True when an equal idempotency key was already pending or running (the id
    is then the existing job's); ``inline`` is True in sync mode, where the job ran in the
    caller and no row was written (the id is then 0).
    """

    # Class-level defaults, set on an instance only when True, so an id with no flag can be
    # built by int's own constructor (see ``dispatching._plain_id``).
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
    #: Keep a history record when a job of this type succeeds: True or False, or None to
    #: follow the queue's ``keep_history`` (``FERROQ_KEEP_HISTORY``, off by default).
    keep_history: ClassVar[bool | None] = None

    if TYPE_CHECKING:
        # ``handle(self)`` or ``handle(self, ctx)`` (the job's CurrentJob), plain or async:
        # typed loosely so that either signature is a valid override.
        handle: Callable[..., Awaitable[None] | None]
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

    @classmethod
    def type_name(cls) -> str:
        """The stable name stored in ``job_type``."""
        return job_type_name(cls)
