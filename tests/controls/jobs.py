"""Job types the control-plane tests run in real worker processes (``--import
tests.controls.jobs``). Each writes ledger lines to the file named by ``FERROQ_TEST_LOG``:
``<tag> <event> <pid> <time> <claimed_at>`` (times as Unix seconds; O_APPEND writes of one
short line are atomic)."""

from __future__ import annotations

import asyncio
import os
import time

import attrs

from ferroq_core import Job, current_job


def ledger(tag: str, event: str) -> None:
    path = os.environ.get("FERROQ_TEST_LOG")
    if not path:
        return
    try:
        claimed = current_job().claimed_at
    except Exception:
        claimed = None  # cancelled() of a job removed before it ran has no claim
    at = "-" if claimed is None else f"{claimed.timestamp():.3f}"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{tag} {event} {os.getpid()} {time.time():.3f} {at}\n".encode())
    finally:
        os.close(fd)


class Marked(Job):
    """What every job here records when it is cancelled or fails."""

    tag: str

    def cancelled(self) -> None:
        ledger(self.tag, "cancelled")

    def failed(self, error: BaseException) -> None:
        ledger(self.tag, f"failed:{type(error).__name__}")


@attrs.define
class Work(Marked):
    """A short job: records its start (with when it was claimed)."""

    job_name = "controls.work"
    tag: str
    seconds: float = 0.02

    def handle(self) -> None:
        ledger(self.tag, "start")
        time.sleep(self.seconds)


@attrs.define
class Polite(Marked):
    """A long sync job that checks ``should_stop()`` between steps."""

    job_name = "controls.polite"
    max_attempts = 3
    tag: str
    seconds: float = 60.0

    def handle(self) -> None:
        ledger(self.tag, "start")
        ctx = current_job()
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            if ctx.should_stop():
                ledger(self.tag, "stopping")
                ctx.raise_if_cancelled()
            time.sleep(0.05)
        ledger(self.tag, "end")


@attrs.define
class Stubborn(Marked):
    """A long sync job that never checks; one attempt (a plain reap would fail it)."""

    job_name = "controls.stubborn"
    max_attempts = 1
    tag: str
    seconds: float = 60.0

    def handle(self) -> None:
        ledger(self.tag, "start")
        time.sleep(self.seconds)
        ledger(self.tag, "end")


@attrs.define
class Sleepy(Marked):
    """A long async job."""

    job_name = "controls.sleepy"
    tag: str
    seconds: float = 60.0

    async def handle(self) -> None:
        ledger(self.tag, "start")
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            ledger(self.tag, "task-cancelled")
            raise
        ledger(self.tag, "end")
