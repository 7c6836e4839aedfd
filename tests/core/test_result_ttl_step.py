"""Migration step 9 (``add_result_ttl``): the nullable ``ferroq_jobs.result_ttl`` column that
carries one dispatch's stored result to its worker, added to a database made before it,
applied (not adopted) on a new database, adopted from tables made from ``metadata``, and
refused, with the difference named, when the column has another type."""

from __future__ import annotations

import attrs
import pytest
import sqlalchemy as sa

from ferroq_core import Job, QueueConfig, Runtime, dispatch
from ferroq_core.clock import utcnow
from ferroq_core.errors import SchemaMismatch
from ferroq_core.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from ferroq_core.tables.result_ttl import AddResultTtl
from tests.core.conftest import engine_for


@attrs.define
class Square(Job):
    job_name = "result_ttl_step.square"
    n: int

    def handle(self) -> int:
        return self.n * self.n


def test_it_is_step_9() -> None:
    step = MIGRATIONS[8]
    assert isinstance(step, AddResultTtl)
    assert (step.version, step.name) == (9, "add_result_ttl")
    assert SCHEMA_VERSION >= 9


def test_the_step_adds_the_column_to_a_database_made_before_it(empty_db_url: str) -> None:
    engine = engine_for(empty_db_url)
    with engine.begin() as conn:
        migrate(conn, now=utcnow(), migrations=MIGRATIONS[:8])
        # The shape the jobs table had before this step.
        conn.exec_driver_sql("ALTER TABLE ferroq_jobs DROP COLUMN result_ttl")
    with engine.begin() as conn:
        applied = migrate(conn, now=utcnow())
    assert [(a.version, a.name, a.adopted) for a in applied][:1] == [(9, "add_result_ttl", False)]
    with engine.connect() as conn:
        names = [c["name"] for c in sa.inspect(conn).get_columns("ferroq_jobs")]
    assert "result_ttl" in names
    engine.dispose()
    runtime = Runtime.build(empty_db_url, QueueConfig(connection="db"))
    try:
        runtime.backend.check_schema()
        job_id = dispatch(Square(n=3).with_stored_result(ttl=10), runtime=runtime)
        row = runtime.backend.get_job(job_id)
        assert row is not None
        assert row.result_ttl == 10.0
    finally:
        runtime.close()


def test_a_new_database_gets_the_step_applied_not_adopted(empty_db_url: str) -> None:
    engine = engine_for(empty_db_url)
    try:
        with engine.begin() as conn:
            applied = migrate(conn, now=utcnow())
        assert [(a.name, a.adopted) for a in applied] == [(m.name, False) for m in MIGRATIONS]
    finally:
        engine.dispose()


def test_a_column_of_another_type_is_named_and_nothing_recorded(empty_db_url: str) -> None:
    engine = engine_for(empty_db_url)
    try:
        with engine.begin() as conn:
            migrate(conn, now=utcnow(), migrations=MIGRATIONS[:8])
            conn.exec_driver_sql("ALTER TABLE ferroq_jobs DROP COLUMN result_ttl")
            conn.exec_driver_sql("ALTER TABLE ferroq_jobs ADD COLUMN result_ttl TEXT")
        with engine.begin() as conn, pytest.raises(SchemaMismatch) as caught:
            migrate(conn, now=utcnow())
        message = str(caught.value)
        assert "step 9 (add_result_ttl)" in message
        assert "column ferroq_jobs.result_ttl is TEXT" in message
    finally:
        engine.dispose()
