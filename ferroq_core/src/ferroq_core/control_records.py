"""Records of the control plane: pauses and cancellations (see docs/pause-and-cancel.md)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.bounds import MAX_JOB_TYPE_CHARS, MAX_TENANT_ID_CHARS, check_queue_name
from ferroq_core.errors import InvalidDispatch

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.records import JobRow

__all__ = ["CancelResult", "Pause", "PauseScope", "check_pause_name"]


class PauseScope(str, enum.Enum):
    """What a pause stops the workers from claiming."""

    #: Every job of one queue.
    QUEUE = "queue"
    #: Every job of one job type (its stable name), in any queue.
    JOB_TYPE = "job_type"
    #: Every job of one tenant (the tenancy plugin's ``tenant_id``), in any queue.
    TENANT = "tenant"


def check_pause_name(scope: PauseScope, name: str) -> str:
    """``name`` when it can name a ``scope``; else :class:`InvalidDispatch` in one line."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidDispatch(f"a {scope.value} to pause or resume needs a non-empty name")
    if scope is PauseScope.QUEUE:
        check_queue_name(name)
    limit = MAX_JOB_TYPE_CHARS if scope is PauseScope.JOB_TYPE else MAX_TENANT_ID_CHARS
    if len(name) > limit:
        raise InvalidDispatch(f"a {scope.value} name is at most {limit} characters")
    return name


def _tz_aware(_instance: Any, attribute: attrs.Attribute[Any], value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime, got {value!r}")


@attrs.frozen
class Pause:
    """One stored pause: workers claim no job it covers until it is resumed."""

    #: What it covers.
    scope: PauseScope = attrs.field(converter=PauseScope)
    #: The queue, job type or tenant id.
    name: str
    #: When it was recorded (the database's clock where it keeps the time).
    paused_at: datetime = attrs.field(validator=_tz_aware)
    #: Why, as the operator gave it (None: not given).
    reason: str | None = None


@attrs.frozen
class CancelResult:
    """What a cancel did."""

    #: Pending or delayed jobs removed (they will never run), as they were.
    removed: tuple[JobRow, ...] = ()
    #: Running (claimed) jobs asked to stop: their worker learns it at its next heartbeat.
    requested: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        return len(self.removed) + len(self.requested)
