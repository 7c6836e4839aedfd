"""Job types the worker tests run in real worker processes (``--import tests.worker.jobs``).

Every execution appends one line ``<tag> <event> <pid>`` to the file named by
``FERROQ_TEST_LOG`` (O_APPEND writes of one short line are atomic), so a test can count
runs across processes.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sys
import time

import attrs

from ferroq_core import Job, current_job


def mark(tag: str, event: str) -> None:
    path = os.environ.get("FERROQ_TEST_LOG")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{tag} {event} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


@attrs.define
class Record(Job):
    """Quick job: records that it ran."""

    job_name = "test.record"
    tag: str

    def handle(self) -> None:
        mark(self.tag, "run")


@attrs.define
class Sleep(Job):
    """Marks start, sleeps, marks end."""

    job_name = "test.sleep"
    tag: str
    seconds: float

    def handle(self) -> None:
        mark(self.tag, "start")
        time.sleep(self.seconds)
        mark(self.tag, "end")


@attrs.define
class Held(Job):
    """Marks start, holds until the file ``release`` exists (``seconds`` at most), marks end:
    running for as long as a test needs it to, however slow the machine, then done at once."""

    job_name = "test.held"
    tag: str
    release: str
    seconds: float = 60.0

    def handle(self) -> None:
        mark(self.tag, "start")
        deadline = time.monotonic() + self.seconds
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.02)
        mark(self.tag, "end")


@attrs.define
class LastTry(Sleep):
    """A :class:`Sleep` with a single attempt; ``failed()`` records the error type."""

    job_name = "test.last_try"
    max_attempts = 1

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class AsyncSleep(Job):
    job_name = "test.async_sleep"
    tag: str
    seconds: float

    async def handle(self) -> None:
        mark(self.tag, "start")
        await asyncio.sleep(self.seconds)
        mark(self.tag, "end")


@attrs.define
class Flaky(Job):
    """Fails every attempt; ``failed()`` records itself."""

    job_name = "test.flaky"
    max_attempts = 3
    tag: str

    def retry_delay(self, attempt: int) -> float | None:
        return 0.0

    def handle(self) -> None:
        mark(self.tag, "run")
        raise ValueError(f"flaky {self.tag}")

    def failed(self, error: BaseException) -> None:
        mark(self.tag, "failed")


@attrs.define
class Exit(Job):
    """Calls ``sys.exit()`` inside the job."""

    job_name = "test.exit"
    max_attempts = 1
    tag: str

    def handle(self) -> None:
        mark(self.tag, "run")
        sys.exit(3)

    def failed(self, error: BaseException) -> None:
        mark(self.tag, "failed")


@attrs.define
class HardExit(Job):
    """Kills its process with ``os._exit()``."""

    job_name = "test.hard_exit"
    max_attempts = 2
    tag: str

    def handle(self) -> None:
        mark(self.tag, "run")
        os._exit(7)

    def failed(self, error: BaseException) -> None:
        mark(self.tag, "failed")


@attrs.define
class Hang(Job):
    """Sleeps far past its timeout (a sync job that cannot be interrupted)."""

    job_name = "test.hang"
    max_attempts = 1
    timeout = 0.5
    tag: str
    seconds: float = 30.0

    def handle(self) -> None:
        mark(self.tag, "start")
        time.sleep(self.seconds)
        mark(self.tag, "end")

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class AsyncHang(Job):
    job_name = "test.async_hang"
    max_attempts = 1
    timeout = 0.5
    tag: str

    async def handle(self) -> None:
        mark(self.tag, "start")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            mark(self.tag, "cancelled")
            raise

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class Raise(Job):
    """Raises the named built-in exception (``KeyboardInterrupt``, ``MemoryError``...)."""

    job_name = "test.raise"
    max_attempts = 1
    tag: str
    kind: str

    def handle(self) -> None:
        mark(self.tag, "run")
        raise getattr(builtins, self.kind)()

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class Backoff(Job):
    """Always fails; its retries use the default full-jitter policy with a small base."""

    job_name = "test.backoff"
    queue = "backoff"
    max_attempts = 2
    backoff_base = 1.0
    backoff_cap = 10.0
    tag: str

    def handle(self) -> None:
        raise ValueError("retry me")


#: Memory held by Allocate jobs (kept so the worker's resident size stays up).
HELD: list[bytearray] = []


@attrs.define
class Allocate(Job):
    """Allocates and keeps ``mb`` megabytes."""

    job_name = "test.allocate"
    tag: str
    mb: int

    def handle(self) -> None:
        block = bytearray(self.mb * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
        HELD.append(block)
        mark(self.tag, "run")


@attrs.define
class AsyncBlock(Job):
    """An ``async def`` handler that blocks its event loop past its timeout (cannot be
    cancelled: only killing the process ends it)."""

    job_name = "test.async_block"
    max_attempts = 1
    timeout = 0.5
    tag: str

    async def handle(self) -> None:
        mark(self.tag, "start")
        time.sleep(30)
        mark(self.tag, "end")


@attrs.define
class Poison(Job):
    """Kills its process with ``os._exit()`` on every attempt; ``failed()`` records itself."""

    job_name = "test.poison"
    max_attempts = 3
    tag: str
    after: float = 0.0

    def handle(self) -> None:
        mark(self.tag, "run")
        time.sleep(self.after)
        os._exit(9)

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class Good(Job):
    """Takes a moment (so it is claimed beside others); ``failed()`` records itself."""

    job_name = "test.good"
    tag: str
    seconds: float = 0.2

    def handle(self) -> None:
        mark(self.tag, "start")
        time.sleep(self.seconds)
        mark(self.tag, "run")

    def failed(self, error: BaseException) -> None:
        mark(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class Tick(Job):
    """A periodic job: marks the tick it was enqueued for (``current_job().tick``)."""

    job_name = "test.tick"
    tag: str = "tick"

    def handle(self) -> None:
        tick = current_job().tick
        mark(self.tag, "none" if tick is None else tick.strftime("%Y-%m-%dT%H:%M:%S"))
