"""Fixtures for the CLI tests: a runner bound to the test database, and ways to seed it."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click.testing
import pytest
import sqlalchemy as sa

from ferroq_core import Job, Runtime, make_plugin_manager
from ferroq_core.cli import make_cli
from ferroq_core.dispatching import enqueue_pending
from ferroq_core.job import PendingDispatch

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core.records import JobRow

Invoke = Callable[..., click.testing.Result]

#: The worker id the tests claim with (host:pid:uuid form).
WORKER = "test-host:1:0123abcd"


def make_invoke(url: str) -> Invoke:
    cli = make_cli(make_plugin_manager())
    runner = click.testing.CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(cli, ["--database-url", url, *args], input=input, env=env)

    return invoke


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--import`` puts the working directory on ``sys.path``; undo it after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def ferroq(runtime: Runtime) -> Invoke:
    """``ferroq(*args)`` runs the CLI against the (migrated, empty) test database."""
    return make_invoke(runtime.config.database_url)


def enqueue(runtime: Runtime, job: Job | PendingDispatch) -> int:
    pending = job if isinstance(job, PendingDispatch) else job.pending()
    return int(enqueue_pending([pending], runtime)[0])


def claim(runtime: Runtime, queue: str, worker: str = WORKER) -> list[JobRow]:
    return runtime.backend.claim([queue], worker, 100)


def fail_all(runtime: Runtime, queue: str, error: str = "ValueError: boom") -> list[int]:
    """Claim every eligible job of ``queue`` and park it as failed with ``error``."""
    rows = claim(runtime, queue)
    for row in rows:
        assert runtime.backend.fail(row.lease, error=error)
    return [r.id for r in rows]


@contextlib.contextmanager
def new_pg_database(server_url: str) -> Iterator[str]:
    """A Postgres database of its own, ferroq never migrated in it; dropped at the end."""
    admin_url = sa.engine.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"ferroq_cli_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # name is generated, not input
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_empty_url(pg_server_url: str) -> Iterator[str]:
    """An unmigrated Postgres database shared by the tests that only read it."""
    with new_pg_database(pg_server_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A reachable database in which ferroq was never migrated."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_empty_url"))
    path = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()  # creates the file only
    return f"sqlite:///{path}"
