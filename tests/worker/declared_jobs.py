"""Periodic jobs declared in code, imported only by worker subprocesses
(``--import tests.worker.declared_jobs``): a declaration is process-wide, and an in-process
worker of another test would store it."""

from __future__ import annotations

import attrs

from ferroq_core import Job, periodic
from tests.worker.jobs import Tick, mark


@attrs.define
class EverySecond(Job):
    """Declared on the type: every second, built without arguments at each tick."""

    job_name = "test.every-second"
    schedule = "* * * * * *"
    schedule_timezone = "Europe/Berlin"

    def handle(self) -> None:
        mark("declared-class", "run")


# Two schedules of one type with different arguments.
periodic(Tick(tag="declared-a"), "* * * * * *", name="declared-a")
periodic(Tick(tag="declared-b"), "*/2 * * * * *", name="declared-b", catch_up="all")
