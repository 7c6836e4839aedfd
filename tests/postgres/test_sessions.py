"""Sessions ferroq opens run in UTC, whatever the server's zone: psycopg reads timestamps
fastest there, and records then carry UTC datetimes on every backend. An engine the
application passes in keeps its own sessions."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ferroq_postgres import PostgresBackend
from tests.postgres.conftest import request, worker_id

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def zoned_database(pg_url: str, pg_admin: sa.engine.Engine) -> Iterator[str]:
    """New sessions of the test database start in UTC-3 (no daylight saving time)."""
    name = sa.engine.make_url(pg_url).database
    quoted = pg_admin.dialect.identifier_preparer.quote(str(name))
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {quoted} SET timezone = 'America/Sao_Paulo'")
    try:
        yield pg_url
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {quoted} RESET timezone")


def test_records_carry_utc_whatever_the_server_zone(zoned_database: str) -> None:
    backend = PostgresBackend.from_url(zoned_database, pool_size=2, max_overflow=0)
    try:
        backend.migrate()
        [job] = backend.enqueue([request("tz")])
        [row] = backend.claim(["tz"], worker_id(), 1)
        listed = backend.get_job(job.id)
        assert listed is not None
        for stamp in (row.available_at, row.claimed_at, listed.created_at, backend.now()):
            assert stamp is not None
            assert stamp.tzinfo is timezone.utc
        assert abs(backend.now() - row.claimed_at) < timedelta(minutes=5)  # type: ignore[operator]
    finally:
        backend.close()


def test_an_engine_passed_in_keeps_its_session_zone(zoned_database: str) -> None:
    engine = sa.create_engine(
        sa.engine.make_url(zoned_database).set(drivername="postgresql+psycopg"), pool_size=1
    )
    backend = PostgresBackend.from_url(engine)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "America/Sao_Paulo"
    finally:
        backend.close()
        engine.dispose()
