"""The prepared claim's rows become :class:`JobRow` records positionally: its RETURNING list,
``CLAIM_COLUMNS`` and the record's fields must agree, and a claimed record must equal what
``get_job`` reads through SQLAlchemy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest

from ferroq_core.records import EnqueueRequest, JobRow
from ferroq_postgres.statements import CLAIM_COLUMNS, CLAIM_SQL
from tests.postgres.conftest import worker_id

if TYPE_CHECKING:
    from ferroq_postgres import PostgresBackend

pytestmark = pytest.mark.postgres


def test_claim_columns_follow_the_record_fields() -> None:
    assert list(CLAIM_COLUMNS) == [f.name for f in attrs.fields(JobRow)]
    returning = CLAIM_SQL.split(" RETURNING ", 1)[1]
    names = [c.strip().removeprefix("ferroq_jobs.") for c in returning.split(",")]
    assert names == list(CLAIM_COLUMNS)


def test_claimed_rows_equal_what_get_job_reads(pg_backend: PostgresBackend) -> None:
    pg_backend.enqueue(
        [
            EnqueueRequest(queue="rows", job_type="a", payload='{"x": 1}', priority=2),
            EnqueueRequest(queue="rows", job_type="b", payload="{}", tenant_id="t1"),
            EnqueueRequest(queue="rows", job_type="c", payload="[]", max_attempts=7),
        ]
    )
    claimed = pg_backend.claim(["rows"], worker_id(), 10)
    assert len(claimed) == 3
    assert claimed == sorted(claimed, key=lambda r: (r.priority, r.available_at, r.id))
    for row in claimed:
        assert row == pg_backend.get_job(row.id)
        assert row.status == "claimed"
        assert row.claimed_at is not None
        assert row.created_at <= row.claimed_at
