"""The backend contract suite on both of ferroq's backends (temp-file SQLite and Postgres)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from ferroq_core import make_plugin_manager
from ferroq_core.runtime import open_backend
from ferroq_core.testing.contract import BackendContract
from ferroq_core.testing.databases import empty_tables

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ferroq_core.storage.protocol import Backend


def _open(url_or_engine: object) -> Backend:
    return open_backend(url_or_engine, make_plugin_manager())


def _emptied(url: str) -> Iterator[Backend]:
    """A migrated Postgres backend on ``url`` with no jobs, closed after."""
    backend = _open(url)
    backend.migrate()
    with backend.engine.begin() as conn:  # type: ignore[attr-defined]
        empty_tables(conn)
    yield backend
    backend.close()


class TestSqliteContract(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        backend = _open(f"sqlite:///{tmp_path / 'jobs.db'}")
        backend.migrate()
        yield backend
        backend.close()

    @pytest.fixture
    def unmigrated_backend(self, tmp_path: Path) -> Iterator[Backend]:
        backend = _open(f"sqlite:///{tmp_path / 'empty.db'}")
        yield backend
        backend.close()


@pytest.mark.postgres
class TestPostgresContract(BackendContract):
    @pytest.fixture
    def backend(self, pg_url: str) -> Iterator[Backend]:
        yield from _emptied(pg_url)

    @pytest.fixture
    def unmigrated_backend(self, pg_url: str) -> Iterator[Backend]:
        # A schema of its own on the run's database: search_path makes it the only one seen.
        schema = f"ferroq_empty_{uuid.uuid4().hex[:8]}"
        url = sa.engine.make_url(pg_url).set(drivername="postgresql+psycopg")
        admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            conn.execute(sa.schema.CreateSchema(schema))
        engine = sa.create_engine(url, connect_args={"options": f"-c search_path={schema}"})
        backend = _open(engine)
        yield backend
        backend.close()
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


@pytest.mark.postgres
class TestPgBouncerContract(BackendContract):
    """Through PgBouncer in transaction mode (``?pgbouncer=true``): idle waits poll, or
    LISTEN on a direct connection (``listen_url``)."""

    @pytest.fixture(params=["polling", "listen_url"])
    def backend(
        self, request: pytest.FixtureRequest, pg_url: str, pgbouncer_url: str
    ) -> Iterator[Backend]:
        url = f"{pgbouncer_url}?pgbouncer=true"
        if request.param == "listen_url":
            url += f"&listen_url={quote(pg_url, safe='')}"
        yield from _emptied(url)

    @pytest.fixture
    def unmigrated_backend(self, pg_url: str, pgbouncer_url: str) -> Iterator[Backend]:
        # A database of its own (a search_path in the startup packet does not pass PgBouncer).
        name = f"ferroq_empty_{uuid.uuid4().hex[:8]}"
        direct = sa.engine.make_url(pg_url).set(drivername="postgresql+psycopg")
        admin = sa.create_engine(direct, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # name is generated, not input
        pooled = sa.engine.make_url(pgbouncer_url).set(database=name)
        backend = _open(f"{pooled.render_as_string(hide_password=False)}?pgbouncer=true")
        yield backend
        backend.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
