"""Job types the context tests run in real worker processes (``--import tests.context.jobs``).

Each appends ``<tag> <event> <pid> <time>`` lines to ``FERROQ_TEST_LOG`` (see
tests/worker/jobs.py), so a test counts runs and ``failed()`` calls across processes.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, ClassVar

import attrs

from ferroq_core import Job
from tests.worker.jobs import mark

if TYPE_CHECKING:
    from ferroq_core import CurrentJob


@attrs.define
class Attempts(Job):
    """Fails on attempts 1 and 2, reading them from ``handle(self, ctx)``."""

    job_name = "test.ctx.attempts"
    max_attempts = 3
    backoff_base: ClassVar[float] = 0.0
    tag: str

    def handle(self, ctx: CurrentJob) -> None:
        mark(self.tag, f"attempt{ctx.attempt}")
        if ctx.attempt < 3:
            raise RuntimeError(f"failure of attempt {ctx.attempt}")


@attrs.define
class ReleaseOnce(Job):
    """Releases itself on its first run (a file marks it), then succeeds. One attempt
    allowed: the second run happens only if the release did not count one."""

    job_name = "test.ctx.release_once"
    max_attempts = 1
    tag: str
    flag: str

    def handle(self, ctx: CurrentJob) -> None:
        mark(self.tag, f"run-attempt{ctx.attempt}")
        if not os.path.exists(self.flag):
            open(self.flag, "w").close()
            try:
                ctx.release(0)
            except Exception:
                mark(self.tag, "caught")  # swallowed: the release holds all the same

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class GiveUp(Job):
    """Gives up at once with ``ctx.fail()`` although it has attempts left."""

    job_name = "test.ctx.give_up"
    max_attempts = 5
    tag: str

    def handle(self, ctx: CurrentJob) -> None:
        mark(self.tag, "run")
        ctx.fail("bad input: cannot be retried")

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class Progressing(Job):
    """Reports progress, then waits (at most 60 s) for the file ``stop`` to exist."""

    job_name = "test.ctx.progressing"
    tag: str
    stop: str

    def handle(self, ctx: CurrentJob) -> None:
        ctx.progress(0.1, "starting")
        ctx.progress(0.4, "pages 40/100")
        time.sleep(0.05)
        mark(self.tag, "beat" if ctx.heartbeat() else "lost")
        mark(self.tag, "reported")
        deadline = time.monotonic() + 60
        while not os.path.exists(self.stop) and time.monotonic() < deadline:
            time.sleep(0.05)
        mark(self.tag, "done")


@attrs.define
class AsyncProgressThenGiveUp(Job):
    """``async def handle(self, ctx)`` on the worker's event loop: reports progress, then
    gives up."""

    job_name = "test.ctx.async_give_up"
    max_attempts = 3
    tag: str

    async def handle(self, ctx: CurrentJob) -> None:
        mark(self.tag, f"run{ctx.attempt}")
        ctx.progress(0.9, "almost")
        ctx.fail("async: cannot go on")

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")
