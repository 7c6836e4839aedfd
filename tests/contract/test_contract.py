"""The backend contract suite on both of ferroq's backends (temp-file SQLite and Postgres)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ferroq_core import make_plugin_manager
from ferroq_core.runtime import open_backend
from ferroq_core.testing.contract import BackendContract

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ferroq_core.storage.protocol import Backend


def _open(url_or_engine: object) -> Backend:
    return open_backend(url_or_engine, make_plugin_manager())


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
        backend = _open(pg_url)
        backend.migrate()
        with backend.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql("TRUNCATE ferroq_jobs RESTART IDENTITY")
        yield backend
        backend.close()

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
