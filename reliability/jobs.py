"""Job types of the reliability suite; workers load them with ``--import reliability.jobs``.

Every body writes a ``start`` and an ``end`` line to the effects ledger, so the checker can see
what really ran, where and how often, whatever the queue believes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, ClassVar

import attrs

from ferroq_core import Job, JobRow, current_job
from ferroq_core.schedule_rules import tick_of
from reliability.ledger import Ledger

if TYPE_CHECKING:
    from types import FrameType

__all__ = [
    "AsyncHang",
    "Carry",
    "Keyed",
    "KnownTenants",
    "Misbehave",
    "ScheduledTick",
    "Work",
]

_ledger: Ledger | None = None


def current_row() -> JobRow | None:
    """The claimed row the calling handler runs for, found in the worker's frames.

    Job handlers are not told their row; the worker's ``execute`` holds it in a local named
    ``row``. A test harness may look (production code should not), so the ledger can record
    the job id, attempt and worker id the queue believes it is running.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(30):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            return None
        row = frame.f_locals.get("row")
        if isinstance(row, JobRow):
            return row
    return None


def ledger() -> Ledger:
    global _ledger
    if _ledger is None:
        _ledger = Ledger.from_env()
    return _ledger


class DeliberateFailure(Exception):
    """A chaos job failing on purpose (its first attempt only)."""


@attrs.define
class Work(Job):
    """A well-behaved job: sleeps ``duration`` seconds; with ``fail_once`` its first attempt
    raises. Many attempts are allowed so repeated kills never exhaust it."""

    job_name: ClassVar[str | None] = "chaos.work"
    max_attempts: ClassVar[int] = 25

    token: int
    duration: float = 0.0
    fail_once: bool = False

    def retry_delay(self, attempt: int) -> float | None:
        return 0.05

    def handle(self) -> None:
        led = ledger()
        led.start(self.token, current_row())
        try:
            if self.duration:
                time.sleep(self.duration)
            if self.fail_once and led.first_failure(self.token):
                raise DeliberateFailure(f"token {self.token} fails its first attempt")
        except BaseException as exc:
            led.end(self.token, ok=False, error=type(exc).__name__)
            raise
        led.end(self.token, ok=True)


@attrs.define
class Misbehave(Job):
    """A poison job: ends its one attempt in one of the ways a handler can go wrong."""

    job_name: ClassVar[str | None] = "chaos.misbehave"
    max_attempts: ClassVar[int] = 1
    timeout: ClassVar[float | None] = 1.0

    token: int
    kind: str

    def handle(self) -> None:
        ledger().start(self.token, current_row())
        if self.kind == "system_exit":
            raise SystemExit(3)
        if self.kind == "keyboard_interrupt":
            raise KeyboardInterrupt
        if self.kind == "memory_error":
            raise MemoryError("chaos: simulated out-of-memory")
        if self.kind == "hang":
            time.sleep(4.0)  # past the 1 s timeout; the worker must stop waiting for it
            return
        if self.kind == "os_exit":
            os._exit(17)
        raise ValueError(f"chaos: unknown misbehaviour {self.kind!r}")


@attrs.define
class AsyncHang(Job):
    """An ``async def`` handler that never finishes on its own: the timeout must cancel it."""

    job_name: ClassVar[str | None] = "chaos.async_hang"
    max_attempts: ClassVar[int] = 1
    timeout: ClassVar[float | None] = 1.0

    token: int

    async def handle(self) -> None:
        ledger().start(self.token, current_row())
        await asyncio.sleep(3600)


@attrs.define
class Keyed(Job):
    """A job deduplicated by its key (idempotency under contention)."""

    job_name: ClassVar[str | None] = "chaos.keyed"

    key: str

    def idempotency_key(self) -> str | None:
        return self.key

    def handle(self) -> None:
        pass


@attrs.define
class Carry(Job):
    """Carries arbitrary data, to test what dispatch refuses (oversized payloads, NaN)."""

    job_name: ClassVar[str | None] = "chaos.carry"

    data: str = ""
    value: float = 0.0

    def handle(self) -> None:
        pass


class KnownTenants:
    """Tenant provider of the poison scenario (``FERROQ_TENANT_PROVIDER``): only ``acme``
    exists, so a job for any other tenant fails with ``TenantNotFound``."""

    def resolve(self, tenant_id: str) -> str | None:
        return tenant_id if tenant_id == "acme" else None

    def scope(self, tenant: str) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()


@attrs.define
class ScheduledTick(Job):
    """The job of the schedules scenario's schedule: its token is its tick (epoch seconds),
    read with ``current_job().tick``, which must be the tick its idempotency key names."""

    job_name: ClassVar[str | None] = "chaos.tick"
    max_attempts: ClassVar[int] = 25

    def retry_delay(self, attempt: int) -> float | None:
        return 0.05

    def handle(self) -> None:
        tick = current_job().tick
        row = current_row()
        if tick is None or row is None or tick_of(row.idempotency_key) != tick:
            raise AssertionError(f"tick {tick} is not the one its key names ({row})")
        token = int(tick.timestamp())
        ledger().start(token, row)
        ledger().end(token, ok=True)
