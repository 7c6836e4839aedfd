"""Periodic jobs as values: a schedule's definition (:class:`ScheduleSpec`), a stored schedule
with its state (:class:`Schedule`), and the compare-and-set a worker makes to enqueue its due
ticks (:class:`ScheduleAdvance`). Backends return and take these, never driver rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs

from ferroq_core.bounds import MAX_DELAY_SECONDS, check_limit_key, check_queue_name, check_text
from ferroq_core.cron import Cron
from ferroq_core.errors import InvalidDispatch, InvalidSchedule

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "CATCH_UP_POLICIES",
    "DEFAULT_CATCH_UP_WINDOW",
    "MAX_SCHEDULE_NAME_CHARS",
    "CatchUp",
    "Schedule",
    "ScheduleAdvance",
    "ScheduleSpec",
    "check_catch_up",
    "check_schedule_name",
]

#: What a worker enqueues of the ticks that came due while no worker ran (docs/schedules.md).
CatchUp = Literal["latest", "all", "none"]
CATCH_UP_POLICIES: tuple[CatchUp, ...] = ("latest", "all", "none")
#: Seconds: a tick more than this late is never enqueued (every policy).
DEFAULT_CATCH_UP_WINDOW = 3600.0
#: A schedule's name goes into its ticks' idempotency keys, which hold 255 characters.
MAX_SCHEDULE_NAME_CHARS = 200


def check_schedule_name(name: object) -> str:
    """``name`` if it is a valid schedule name, else :class:`InvalidSchedule`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidSchedule(f"a schedule name must be a non-empty string, got {name!r}")
    try:
        return check_text("schedule name", name, MAX_SCHEDULE_NAME_CHARS)
    except InvalidDispatch as exc:
        raise InvalidSchedule(str(exc)) from None


def check_catch_up(policy: object, window: object) -> tuple[CatchUp, float]:
    """The catch-up policy and window if valid, else :class:`InvalidSchedule`."""
    if policy not in CATCH_UP_POLICIES:
        raise InvalidSchedule(
            f"unknown catch-up policy {policy!r}: use one of {', '.join(CATCH_UP_POLICIES)}"
        )
    if isinstance(window, bool) or not isinstance(window, (int, float)):
        raise InvalidSchedule(f"catch-up window must be a number of seconds, got {window!r}")
    if not 0 < window <= MAX_DELAY_SECONDS:
        raise InvalidSchedule(f"catch-up window must be > 0 and <= 100 years, got {window!r}")
    return policy, float(window)


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise InvalidSchedule(f"{attribute.name} must be >= 1, got {value}")


def _limit_key(value: object) -> str | None:
    """``value`` as a schedule's limit key (None: none), else :class:`InvalidSchedule`."""
    if value is None:
        return None
    try:
        return check_limit_key(value)
    except InvalidDispatch as exc:
        raise InvalidSchedule(str(exc)) from None


@attrs.frozen
class ScheduleSpec:
    """What a schedule is: which job to enqueue (type and encoded payload), where, and when.

    Build one with :func:`ferroq_core.schedules.add_schedule` or a declaration; it is checked
    when built (:class:`InvalidSchedule` on a bad cron expression, timezone or policy)."""

    #: Unique name (at most 200 characters).
    name: str = attrs.field(converter=check_schedule_name)
    #: Stable job type name.
    job_type: str
    #: The job's encoded payload (the serializer's text).
    payload: str
    #: Queue the ticks' jobs go to.
    queue: str
    #: Cron expression: 5 fields, 6 with leading seconds, or an ``@`` alias.
    cron: str
    #: IANA timezone the expression's wall times are in.
    timezone: str = "UTC"
    #: What to enqueue of the ticks missed while no worker ran.
    catch_up: CatchUp = "latest"
    #: Seconds; a tick more than this late is never enqueued.
    catch_up_window: float = DEFAULT_CATCH_UP_WINDOW
    priority: int = 0
    max_attempts: int = attrs.field(default=3, validator=_positive)
    #: ``code`` (declared on a job type or with ``periodic()``) or ``api`` (added at runtime).
    source: str = "api"
    #: The limit key of every job it enqueues (docs/limits.md): the one a dispatch of its job
    #: would get, computed when the schedule is saved; None: none (a schedule has no tenant).
    limit_key: str | None = attrs.field(default=None, converter=_limit_key)

    def __attrs_post_init__(self) -> None:
        self.parsed()  # validates the expression and the timezone
        check_catch_up(self.catch_up, self.catch_up_window)
        try:
            check_queue_name(self.queue)
        except InvalidDispatch as exc:
            raise InvalidSchedule(str(exc)) from None

    def parsed(self) -> Cron:
        """The expression in its timezone."""
        return Cron.parse(self.cron, self.timezone)

    def same_definition(self, other: ScheduleSpec) -> bool:
        """Whether ``other`` enqueues the same jobs at the same ticks (the source aside)."""
        return attrs.evolve(other, source=self.source) == self


@attrs.frozen
class Schedule:
    """A stored schedule: its definition and its state."""

    spec: ScheduleSpec
    #: A paused schedule enqueues nothing; resuming starts from the next tick.
    paused: bool
    #: The next tick not yet enqueued (None while paused).
    next_run_at: datetime | None
    #: The newest tick enqueued (or ``run-now`` time), and that job's id.
    last_run_at: datetime | None
    last_job_id: int | None
    #: Counts edits; a worker's compare-and-set fails across one.
    revision: int
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name


@attrs.frozen
class ScheduleAdvance:
    """A worker's compare-and-set on a due schedule: when the row still has ``revision`` and
    ``next_run_at``, set ``next_run_at`` to ``new_next_run_at`` and enqueue ``ticks``'
    jobs in the same transaction; otherwise (another worker or an edit came first) nothing."""

    name: str
    revision: int
    next_run_at: datetime
    new_next_run_at: datetime
    #: The ticks to enqueue (may be empty: every due tick was skipped by the policy).
    ticks: tuple[datetime, ...]
