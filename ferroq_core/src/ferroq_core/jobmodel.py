"""What a job type is, below the dispatch API: class options, naming, retry delay,
idempotency key, and the :class:`JobId` that dispatch returns.

Users subclass :class:`ferroq_core.Job`, which adds the dispatch methods to :class:`JobBase`
and registers each subclass by name. Everything below the dispatch API (the registry, the
runtime, the worker) needs only what this module defines.
"""

from __future__ import annotations

from datetime import timedelta  # noqa: TC003 - get_type_hints() resolves the class options
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

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
    #: Flow control (:mod:`ferroq_core.flowlimits`): at most this many running at once,
    #: at most ``rate_limit[0]`` starts per ``rate_limit[1]`` seconds (or ``timedelta``),
    #: counted per tenant when ``limit_per_tenant``. None: no limit.
    concurrency_limit: ClassVar[int | None] = None
    rate_limit: ClassVar[tuple[int, float | timedelta] | None] = None
    limit_per_tenant: ClassVar[bool] = False

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
