"""Job types that store their results, for the result tests' real worker processes
(``--import tests.worker.result_jobs``). Marks go to ``FERROQ_TEST_LOG`` as in
:mod:`tests.worker.jobs`."""

from __future__ import annotations

import os
import time

import attrs

from ferroq_core import Job, current_job
from tests.worker.jobs import mark


@attrs.define
class Square(Job):
    """Returns its number squared: the quick job of the 1,000-result test."""

    job_name = "test.square"
    store_result = True
    n: int

    def handle(self) -> dict[str, int]:
        return {"n": self.n, "square": self.n * self.n}


@attrs.define
class WhoRan(Job):
    """Sleeps (per attempt: ``seconds[attempt - 1]``), marks ``returned``, and returns which
    attempt and process ran it."""

    job_name = "test.who_ran"
    store_result = True
    max_attempts = 3
    tag: str
    seconds: list[float]

    def handle(self) -> dict[str, int]:
        attempt = current_job().attempt
        mark(self.tag, f"start{attempt}")
        time.sleep(self.seconds[min(attempt, len(self.seconds)) - 1])
        mark(self.tag, f"returned{attempt}")
        return {"attempt": attempt, "pid": os.getpid()}


@attrs.define
class Broken(Job):
    """Fails at once, for good."""

    job_name = "test.broken"
    store_result = True
    max_attempts = 1
    code: int

    def handle(self) -> None:
        raise ValueError(f"broken {self.code}")


@attrs.define
class KeptWhoRan(WhoRan):
    """:class:`WhoRan` that also keeps history: its acknowledgement writes both."""

    job_name = "test.kept_who_ran"
    keep_history = True


@attrs.define
class Echo(Job):
    """Returns its number; stores it only when its dispatch asks
    (``.with_stored_result()``)."""

    job_name = "test.echo"
    n: int

    def handle(self) -> dict[str, int]:
        return {"echo": self.n}
