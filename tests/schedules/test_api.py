"""The schedules API on both backends: a job enqueued by ``run_schedule_now`` (or a tick)
knows its tick in ``drain()`` as on a worker; edits are checked; unknown names are named."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pytest

from ferroq_core import (
    InvalidSchedule,
    Job,
    ScheduleNotFound,
    add_schedule,
    current_job,
    edit_schedule,
    list_schedules,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    run_schedule_now,
)
from ferroq_core.testing import drain

if TYPE_CHECKING:
    from ferroq_core import Runtime


@attrs.define
class Seen(Job):
    job_name = "test.seen-tick"
    ticks: ClassVar[list[Any]] = []
    label: str = ""

    def handle(self) -> None:
        Seen.ticks.append(current_job().tick)


def test_run_now_and_the_tick_in_drain(runtime: Runtime) -> None:
    Seen.ticks.clear()
    stored = add_schedule(Seen(label="x"), "@daily", name="daily-seen", timezone="Asia/Tokyo")
    assert (stored.spec.queue, stored.spec.timezone, stored.paused) == (
        "default",
        "Asia/Tokyo",
        False,
    )
    assert stored.next_run_at is not None
    assert stored.next_run_at.astimezone(stored.spec.parsed().zone).hour == 0
    before = runtime.backend.now()
    job_id = run_schedule_now("daily-seen")
    assert drain().succeeded == 1
    (tick,) = Seen.ticks
    assert tick is not None
    assert abs(tick - before) < timedelta(seconds=30)
    after = list_schedules()[0]
    assert (after.last_job_id, after.next_run_at) == (int(job_id), stored.next_run_at)
    # A job no schedule enqueued has no tick.
    Seen(label="plain").dispatch()
    drain()
    assert Seen.ticks[-1] is None


def test_edits_are_checked_and_names_must_exist(runtime: Runtime) -> None:
    add_schedule(Seen(), "*/5 * * * *", name="five")
    with pytest.raises(InvalidSchedule, match="unknown timezone"):
        edit_schedule("five", timezone="Moon/Base")
    with pytest.raises(InvalidSchedule, match="cannot edit job_type"):
        edit_schedule("five", job_type="other")
    with pytest.raises(InvalidSchedule, match="exists with another definition"):
        add_schedule(Seen(), "0 * * * *", name="five")
    assert list_schedules()[0].spec.cron == "*/5 * * * *"
    edited = edit_schedule("five", cron="0 * * * *", catch_up="all")
    assert (edited.spec.cron, edited.spec.catch_up, edited.revision) == ("0 * * * *", "all", 2)
    assert pause_schedule("five").paused
    assert resume_schedule("five").next_run_at is not None
    remove_schedule("five")
    for action in (pause_schedule, resume_schedule, remove_schedule, run_schedule_now):
        with pytest.raises(ScheduleNotFound, match="no schedule named 'five'"):
            action("five")
