"""Job types run by real ``ferroq worker`` processes in the Postgres tests
(``--import tests.postgres.jobs``).

Each run appends ``<n> <pid>`` to the file named by ``FERROQ_PG_TEST_LEDGER`` (one short
O_APPEND write: lines from many processes never interleave).
"""

from __future__ import annotations

import os
import time

import attrs

from ferroq_core import Job


@attrs.define
class Tick(Job):
    job_name = "pg-tests.tick"
    queue = "ticks"
    max_attempts = 10

    n: int
    #: Seconds the handler takes, so jobs are in flight when connections are cut.
    seconds: float = 0.005

    def handle(self) -> None:
        time.sleep(self.seconds)
        fd = os.open(os.environ["FERROQ_PG_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{self.n} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
