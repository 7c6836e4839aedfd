"""The job type the unique-jobs concurrency tests dispatch from many processes and run on
real workers."""

from __future__ import annotations

import attrs

from ferroq_core import Job, current_job


@attrs.define
class Hammer(Job):
    """A job of one key; even ``seq`` fails its first attempt (a retry comes back)."""

    job_name = "tests.unique.hammer"
    max_attempts = 3
    backoff_base = 0.05
    backoff_cap = 0.2

    #: The unique key it is dispatched under (also set with with_idempotency_key).
    key: str
    #: The dispatching process.
    writer: int
    #: Its dispatch number in that process (rounds ascend).
    seq: int

    def handle(self) -> None:
        if self.seq % 2 == 0 and current_job().attempt == 1:
            raise RuntimeError("first attempt fails: the retry comes back to pending")
