"""A job type the first workers of a rolling deploy do not know (``--import
tests.worker.late_jobs`` on the later ones)."""

from __future__ import annotations

import attrs

from ferroq_core import Job
from tests.worker.jobs import mark


@attrs.define
class LateDeployed(Job):
    job_name = "test.late_deployed"
    tag: str

    def handle(self) -> None:
        mark(self.tag, "run")
