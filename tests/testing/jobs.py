"""Job types the testing-kit tests dispatch (module level, so they register by name)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import attrs

from ferroq_core import Job

#: What the handlers did, for the tests to inspect (cleared by the autouse fixture).
ran: list[tuple[str, object]] = []
calls: Counter[str] = Counter()
failed_calls: list[tuple[str, str]] = []
lock = threading.Lock()


def record(kind: str, value: object) -> None:
    with lock:
        ran.append((kind, value))


@attrs.define
class SendEmail(Job):
    queue = "emails"

    to: str
    subject: str = "Hi"

    def handle(self) -> None:
        record("email", self.to)


@attrs.define
class Chain(Job):
    """Dispatches the next link until ``n`` reaches ``until``."""

    n: int
    until: int = 3

    def handle(self) -> None:
        record("chain", self.n)
        if self.n < self.until:
            Chain(n=self.n + 1, until=self.until).dispatch()


@attrs.define
class Flaky(Job):
    """Fails until it has run ``fail_times`` times (per ``name``), then succeeds."""

    max_attempts = 3

    name: str
    fail_times: int = 2

    def handle(self) -> None:
        with lock:
            calls[self.name] += 1
            count = calls[self.name]
        if count <= self.fail_times:
            raise RuntimeError(f"{self.name} attempt {count} fails")
        record("flaky", self.name)

    def retry_delay(self, attempt: int) -> float:
        return 30.0


@attrs.define
class AlwaysFails(Job):
    max_attempts = 2

    reason: str = "nope"

    def handle(self) -> None:
        raise ValueError(self.reason)

    def failed(self, error: BaseException) -> None:
        with lock:
            failed_calls.append(("always-fails", str(error)))


@attrs.define
class Forever(Job):
    """Dispatches itself again, forever."""

    n: int = 0

    def handle(self) -> None:
        Forever(n=self.n + 1).dispatch()


@attrs.define
class AsyncJob(Job):
    value: int

    async def handle(self) -> None:
        await asyncio.sleep(0)
        record("async", self.value)


@attrs.define
class Keyed(Job):
    """Deduplicated by its ``order_id``."""

    order_id: int
    note: str = ""

    def idempotency_key(self) -> str:
        return f"order-{self.order_id}"
