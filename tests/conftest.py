"""Shared fixtures: fresh databases on both backends.

Postgres tests use the server named by ``FERROQ_TEST_POSTGRES_URL`` (for example
``postgresql://postgres@127.0.0.1:5432/postgres``): the run creates its own database there and
drops it at the end. Without the variable they run against a throwaway cluster when ``initdb`` is
installed (not as root), else skip; under ``FERROQ_REQUIRE_POSTGRES=1`` a missing variable fails
the run (CI sets both).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ferroq_core import QueueConfig, Runtime, make_plugin_manager
from ferroq_core.queue import Queue
from ferroq_core.testing.databases import empty_tables
from tests import timing_first

if TYPE_CHECKING:
    from collections.abc import Iterator

_BARRIER = pytest.StashKey[timing_first.Barrier]()

PG_ENV = "FERROQ_TEST_POSTGRES_URL"
REQUIRE_ENV = "FERROQ_REQUIRE_POSTGRES"


def _require_postgres() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


@pytest.hookimpl(trylast=True)  # after -k / -m deselected what they do
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``scripts/test``): ``timing`` tests first and alone, then ``slow``
    ones first (tests/timing_first.py)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not config.option.basetemp:
        return
    timing_first.order(items)
    total = sum(1 for item in items if item.get_closest_marker("timing") is not None)
    # The parent of this process's base temp is the run's, shared by its processes.
    shared = Path(config.option.basetemp).parent
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    config.stash[_BARRIER] = timing_first.Barrier(shared, run_id, total)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    barrier = item.config.stash.get(_BARRIER, None)
    if barrier is None:
        yield
        return
    with barrier.hold(item):
        yield


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get(PG_ENV)
    if url:
        yield url
        return
    if _require_postgres():
        pytest.fail(f"{REQUIRE_ENV}=1 but {PG_ENV} is not set")
    # No server named: start a private one when initdb is installed (tests/postgres/throwaway.py).
    from tests.postgres.throwaway import throwaway_cluster

    with throwaway_cluster(tmp_path_factory.mktemp("pg", numbered=True)) as (started, why):
        if started is None:
            pytest.skip(
                f"set {PG_ENV}=postgresql://user@host:5432/postgres to run Postgres tests "
                f"(no throwaway cluster: {why})"
            )
        yield started


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own for this test run, dropped at the end. Under pytest-xdist each
    worker process runs its own session, so each gets its own database (named after it)."""
    admin_url = sa.engine.make_url(pg_server_url).set(drivername="postgresql+psycopg")
    xdist = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1... under pytest-xdist
    name = f"ferroq_test_{xdist}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = sa.create_engine(
            admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # name is generated, not input
            # A commit need not wait for its WAL flush: nothing here outlives a crash of the
            # server (the tests that crash one start their own, with fsync off). Under 4 xdist
            # processes the flushes queue up: a commit took 3-4 ms instead of 0.1 ms.
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    except sa.exc.OperationalError as exc:
        if _require_postgres():
            pytest.fail(f"cannot reach Postgres at {PG_ENV}: {exc}")
        pytest.skip(f"cannot reach Postgres at {PG_ENV}: {exc}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pgbouncer_port(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port on 127.0.0.1 of a PgBouncer in transaction mode in front of the test server,
    for the whole run (reliability/pgbouncer.py). Without the ``pgbouncer`` program the
    tests skip, or fail under ``FERROQ_REQUIRE_POSTGRES=1`` (``.ci/run`` installs it)."""
    from reliability.pgbouncer import find_pgbouncer, running_pgbouncer

    program = find_pgbouncer()
    if program is None:
        why = "the pgbouncer program is not installed (apt-get install pgbouncer)"
        if _require_postgres():
            pytest.fail(f"{REQUIRE_ENV}=1 but {why}")
        pytest.skip(why)
    with running_pgbouncer(program, tmp_path_factory.mktemp("pgbouncer"), pg_server_url) as port:
        yield port


@pytest.fixture(scope="session")
def pgbouncer_url(pg_url: str, pgbouncer_port: int) -> str:
    """This run's database (``pg_url``) through PgBouncer, without ferroq's options."""
    url = sa.engine.make_url(pg_url).set(host="127.0.0.1", port=pgbouncer_port, query={})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def _fresh_runtime(url: str) -> Runtime:
    config = QueueConfig(connection="db", database_url=url)
    runtime = Runtime.build(url, config, make_plugin_manager())
    runtime.backend.migrate()
    if url.startswith("postgresql"):
        engine = runtime.backend.engine  # type: ignore[attr-defined]
        with engine.begin() as conn:
            empty_tables(conn)
    return runtime


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend (the Postgres one is emptied per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def runtime(db_url: str) -> Iterator[Runtime]:
    """A migrated, empty runtime on each backend, installed as the process-wide Queue."""
    rt = _fresh_runtime(db_url)
    Queue.use(rt)
    try:
        yield rt
    finally:
        Queue.use(None)
        rt.close()


@pytest.fixture(autouse=True)
def _no_global_queue() -> Iterator[None]:
    yield
    Queue.reset()
