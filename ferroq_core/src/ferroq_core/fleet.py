"""The worker registry's records: what a worker registers, what its heartbeat brings back,
and what a listing of live workers shows.

A *worker* here is any registered process: a ``ferroq worker`` (role ``worker``), a child of
``ferroq worker --processes N`` (role ``child``, with its supervisor's id) or the supervisor
itself (role ``supervisor``, which runs no job). Times come from the backend's clock (the
database's on Postgres), so a worker's start and a restart request compare on one clock.
"""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ROLES",
    "ClaimedJob",
    "WorkerBeat",
    "WorkerInfo",
    "WorkerRegistration",
    "ferroq_version",
    "serving",
]

#: The roles a registered process has (the same words as ``ferroq_worker_scope``'s ``role``).
ROLES = ("worker", "child", "supervisor")


def _aware(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime, got {value!r}")


def _role(_instance: Any, _attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {value!r}")


def ferroq_version() -> str:
    """The installed ferroq-core's version (``unknown`` when run from a source tree)."""
    try:
        return version("ferroq-core")
    except PackageNotFoundError:
        return "unknown"


@attrs.frozen
class WorkerRegistration:
    """What a worker writes about itself when it registers."""

    #: Its id (``host:pid:uuid``), the ``claimed_by`` of the jobs it claims.
    id: str
    #: ``worker``, ``child`` (of a supervisor) or ``supervisor``.
    role: str = attrs.field(validator=_role)
    #: Host name, as in the id.
    host: str
    #: Process id on that host.
    pid: int
    #: Queues served, in priority order (empty for a supervisor).
    queues: tuple[str, ...]
    #: Jobs run at once (0 for a supervisor; its children's sum is theirs).
    concurrency: int
    #: Lease timeout in seconds: without a heartbeat for this long the worker counts as dead.
    visibility_timeout: float
    #: The ferroq-core version it runs.
    version: str = attrs.field(factory=ferroq_version)
    #: The supervisor's id, for a child.
    supervisor: str | None = None
    #: When it started (None: now, on the backend's clock); given again on re-registration.
    started_at: datetime | None = attrs.field(default=None, validator=_aware)


@attrs.frozen
class ClaimedJob:
    """A job a worker holds now (claimed, running or its result not yet written)."""

    #: Job id.
    id: int
    #: Stable job type name.
    job_type: str
    #: Its queue.
    queue: str
    #: When this claim was made.
    claimed_at: datetime | None = attrs.field(validator=_aware)


@attrs.frozen
class WorkerInfo:
    """A registered worker, as a listing shows it."""

    #: Its id (``host:pid:uuid``).
    id: str
    #: ``worker``, ``child`` or ``supervisor``.
    role: str
    #: Host name.
    host: str
    #: Process id on that host.
    pid: int
    #: Queues served, in priority order.
    queues: tuple[str, ...]
    #: Jobs run at once.
    concurrency: int
    #: Lease timeout in seconds (a worker silent for longer is dead).
    visibility_timeout: float
    #: The ferroq-core version it runs.
    version: str
    #: The supervisor's id, for a child.
    supervisor: str | None
    #: When it started (backend clock).
    started_at: datetime = attrs.field(validator=_aware)
    #: Its last heartbeat (backend clock).
    heartbeat_at: datetime = attrs.field(validator=_aware)
    #: The jobs it holds now, by id.
    jobs: tuple[ClaimedJob, ...] = ()


@attrs.frozen
class WorkerBeat:
    """What one registry heartbeat brought back."""

    #: The ids of the leases still held (those missing were reaped).
    held: frozenset[int]
    #: False when the worker's row was gone (removed as dead while it was cut off): it
    #: registers again.
    registered: bool
    #: The latest ``ferroq restart`` (backend clock), or None when none was ever asked.
    restart_at: datetime | None = attrs.field(default=None, validator=_aware)
    #: The held leases' jobs with a cancel request (``ferroq cancel``): asked to stop.
    stop: frozenset[int] = frozenset()


def serving(workers: Iterable[WorkerInfo]) -> set[str]:
    """The queues that at least one of ``workers`` runs jobs from (a supervisor runs none:
    its children do)."""
    return {queue for worker in workers if worker.role != "supervisor" for queue in worker.queues}
