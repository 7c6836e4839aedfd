"""A job type whose schedule is invalid: importing this module fails with a one-line error."""

from __future__ import annotations

import attrs

from ferroq_core import Job


@attrs.define
class Broken(Job):
    job_name = "test.broken-schedule"
    schedule = "*/5 * * *"

    def handle(self) -> None:
        pass
