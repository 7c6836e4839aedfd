"""The rules of periodic jobs that every backend and the worker share: which due ticks a
pass enqueues (the catch-up policies), and the idempotency key of a tick's job, which is also
how a worker learns the tick of a row it claimed (:func:`tick_of`, the one parser)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ferroq_core.records import EnqueueRequest

if TYPE_CHECKING:
    from ferroq_core.cron import Cron
    from ferroq_core.schedule_records import Schedule, ScheduleSpec

__all__ = [
    "MAX_TICKS_PER_PASS",
    "TICK_KEY_PREFIX",
    "plan_ticks",
    "tick_key",
    "tick_of",
    "tick_request",
]

#: Every tick job's idempotency key starts with this, then the tick, then the schedule name.
TICK_KEY_PREFIX = "ferroq:tick:"
_TICK_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TICK_WIDTH = len("2026-01-01T00:00:00.000000Z")
#: At most this many ticks of one schedule are enqueued by one pass (``all`` after a long
#: outage); the rest come at the next pass, a moment later.
MAX_TICKS_PER_PASS = 500


def tick_key(name: str, tick: datetime) -> str:
    """The idempotency key of the job for ``tick`` of schedule ``name``."""
    return f"{TICK_KEY_PREFIX}{tick.astimezone(timezone.utc).strftime(_TICK_FORMAT)}:{name}"


def tick_of(key: str | None) -> datetime | None:
    """The tick a job was enqueued for, read from its idempotency key; None for a job no
    schedule enqueued."""
    if key is None or not key.startswith(TICK_KEY_PREFIX):
        return None
    start = len(TICK_KEY_PREFIX)
    text = key[start : start + _TICK_WIDTH]
    try:
        return datetime.strptime(text, _TICK_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def tick_request(spec: ScheduleSpec, tick: datetime) -> EnqueueRequest:
    """The job row for ``tick`` of ``spec``."""
    return EnqueueRequest(
        queue=spec.queue,
        job_type=spec.job_type,
        payload=spec.payload,
        priority=spec.priority,
        max_attempts=spec.max_attempts,
        idempotency_key=tick_key(spec.name, tick),
        limit_key=spec.limit_key,
    )


def plan_ticks(
    cron: Cron, schedule: Schedule, now: datetime
) -> tuple[tuple[datetime, ...], datetime]:
    """The ticks of a due schedule that a pass at ``now`` enqueues, and its next run after.

    The due ticks are those from ``next_run_at`` up to ``now``. None is ever enqueued more
    than ``catch_up_window`` seconds late. Then, by policy: ``all`` enqueues every one (at
    most :data:`MAX_TICKS_PER_PASS`; the next run is then the first left over), ``latest``
    the newest, ``none`` the newest only when it is the only one due (more than one due
    means the schedule was not served for a while: those ticks are missed, not run).
    """
    spec = schedule.spec
    first = schedule.next_run_at
    assert first is not None, "a paused schedule is never due"
    oldest = now - timedelta(seconds=spec.catch_up_window)
    due: list[datetime] = []
    if first < oldest:
        # Ticks too late to enqueue are skipped without stepping through them (an outage of
        # a day is 86,400 ticks of a schedule a second).
        count = 1
        ticks = cron.ticks_after(oldest - timedelta(microseconds=1))
        tick = next(ticks)
    else:
        count = 0
        ticks = cron.ticks_after(first)
        tick = first
    while tick <= now:
        count += 1
        due.append(tick)
        if spec.catch_up == "all" and len(due) >= MAX_TICKS_PER_PASS:
            return tuple(due), next(ticks)
        if spec.catch_up != "all" and len(due) > 1:
            del due[0]  # only the newest (and how many there were) matter
        tick = next(ticks)
    if spec.catch_up == "all":
        return tuple(due), tick
    if spec.catch_up == "none" and count > 1:
        return (), tick
    return tuple(due[-1:]), tick
