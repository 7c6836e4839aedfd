"""Per-test reset of the tenancy plugin's process-wide settings, and helpers."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from ferroq_core import QueueConfig, Runtime, make_plugin_manager
from ferroq_core.queue import Queue
from ferroq_core.worker.attempt import execute, settle
from ferroq_tenancy import (
    PROVIDER_ENV,
    register_tenant_capture_hook,
    set_tenant_scope_provider,
)
from tests.tenancy import jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_core.records import JobRow


@pytest.fixture(autouse=True)
def _clean_tenancy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(PROVIDER_ENV, raising=False)
    register_tenant_capture_hook(None)
    set_tenant_scope_provider(None)
    jobs.SEEN.clear()
    jobs.FAILED_CALLS.clear()
    yield
    register_tenant_capture_hook(None)
    set_tenant_scope_provider(None)


def run_available(runtime: Runtime, queue: str = "default") -> list[tuple[JobRow, str]]:
    """Claim and run every eligible job one at a time on this thread, as a worker slot does;
    returns each claimed row with how its attempt settled."""
    done: list[tuple[JobRow, str]] = []
    while True:
        rows = runtime.backend.claim([queue], "test-host:1:tenancy", 1)
        if not rows:
            return done
        done.append((rows[0], settle(runtime, execute(runtime, rows[0]))))


def build_runtime(url: str, connection: str) -> Runtime:
    rt = Runtime.build(
        url, QueueConfig(connection=connection, database_url=url), make_plugin_manager()
    )
    rt.backend.migrate()
    return rt


@contextmanager
def installed_runtime(url: str, connection: str) -> Iterator[Runtime]:
    """A migrated runtime installed as the process-wide Queue for the block."""
    rt = build_runtime(url, connection)
    Queue.use(rt)
    try:
        yield rt
    finally:
        Queue.use(None)
        rt.close()


@pytest.fixture
def db_runtime(sqlite_url: str) -> Iterator[Runtime]:
    """A db-mode runtime on a fresh SQLite file."""
    with installed_runtime(sqlite_url, "db") as rt:
        yield rt


@pytest.fixture
def sync_runtime(sqlite_url: str) -> Iterator[Runtime]:
    """A sync-mode runtime (jobs run inline in the caller)."""
    with installed_runtime(sqlite_url, "sync") as rt:
        yield rt
