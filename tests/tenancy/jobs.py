"""Job types and an application-style tenant provider for the tenancy tests.

Importable by worker subprocesses (``--import tests.tenancy.jobs``), so every handler records
what it saw either in this process (``SEEN``) or in a ledger file shared with the test.
"""

from __future__ import annotations

import asyncio
import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import attrs

from ferroq_core import Job, Queue, QueueConfig
from ferroq_tenancy import current_tenant

if TYPE_CHECKING:
    from collections.abc import Iterator

#: (key, tenant seen) of every handler run in this process.
SEEN: list[tuple[str, str | None]] = []
_seen_lock = threading.Lock()

#: The "application's" own notion of the active tenant, set by :class:`AppTenants`.
APP_TENANT: ContextVar[dict[str, str] | None] = ContextVar("app_tenant", default=None)
#: Tenants the application knows; ids outside it are unknown.
KNOWN = {
    tid: {"id": tid, "name": f"Tenant {tid}"}
    for tid in [f"t{i}" for i in range(40)] + [str(100 + i) for i in range(40)]
} | {
    "acme": {"id": "acme", "name": "Acme"},
    "7": {"id": "7", "name": "Seven"},
}


def record(key: str, seen: str | None, ledger: str | None) -> None:
    if ledger is None:
        with _seen_lock:
            SEEN.append((key, seen))
        return
    # One short O_APPEND write per line: lines from many threads and processes never interleave.
    thread = threading.current_thread().name
    line = f"{key}\t{'-' if seen is None else seen}\t{thread}\n".encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def seen_tenant() -> str | None:
    """The tenant as the handler sees it; with a provider active, its app context must agree."""
    tid = current_tenant()
    app = APP_TENANT.get()
    if app is not None and app["id"] != tid:
        return f"MISMATCH app={app['id']} ferroq={tid}"
    return tid


@attrs.define
class RecordTenant(Job):
    job_name = "tenancy-tests.record"

    key: str
    ledger: str | None = None

    def retry_delay(self, attempt: int) -> float | None:
        return 0.0

    def handle(self) -> None:
        record(self.key, seen_tenant(), self.ledger)


@attrs.define
class AsyncRecordTenant(RecordTenant):
    job_name = "tenancy-tests.record-async"

    async def handle(self) -> None:
        before = seen_tenant()
        # Yield to the loop a few times: other tasks with other tenants run in between.
        for _ in range(3):
            await asyncio.sleep(0)
        after = seen_tenant()
        seen = before if before == after else f"MISMATCH before={before} after={after}"
        record(self.key, seen, self.ledger)


FAILED_CALLS: list[tuple[str, BaseException]] = []


@attrs.define
class NeedsTenant(RecordTenant):
    """Fails over two attempts when its tenant is unknown; records ``failed()``."""

    job_name = "tenancy-tests.needs-tenant"
    max_attempts = 2

    def failed(self, error: BaseException) -> None:
        FAILED_CALLS.append((self.key, error))


class AppTenants:
    """A provider in the shape a framework integration takes: look up, then enter."""

    def __init__(self) -> None:
        self.resolved: list[str] = []

    def resolve(self, tenant_id: str) -> dict[str, str] | None:
        self.resolved.append(tenant_id)
        return KNOWN.get(tenant_id)

    @contextmanager
    def scope(self, tenant: dict[str, str]) -> Iterator[dict[str, str]]:
        token = APP_TENANT.set(tenant)
        try:
            yield tenant
        finally:
            APP_TENANT.reset(token)


@attrs.define
class RecordTenantFiveTimes(RecordTenant):
    """Room for every kind of return to pending before the last attempt."""

    job_name = "tenancy-tests.record-5"
    max_attempts = 5


@attrs.define
class FailsThenFollowsUp(RecordTenant):
    """Fails its only attempt; ``failed()`` records the tenant it sees and dispatches a
    follow-up job (queue ``followups``) the way an application reports a failure."""

    job_name = "tenancy-tests.fails-then-follows-up"
    max_attempts = 1

    def handle(self) -> None:
        raise RuntimeError(f"{self.key} fails")

    def failed(self, error: BaseException) -> None:
        record(f"{self.key}:failed", seen_tenant(), self.ledger)
        if not Queue.is_initialized():  # in a worker process, as an application's module does
            url = os.environ["TENANCY_TESTS_DATABASE_URL"]
            Queue.init(url, QueueConfig(connection="db", database_url=url))
        RecordTenant(key=f"{self.key}:followup").on_queue("followups").dispatch()
