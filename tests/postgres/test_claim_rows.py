"""The prepared claim's rows become :class:`JobRow` records positionally: its RETURNING list,
``CLAIM_COLUMNS`` and the record's fields must agree. That a claimed record equals what
``get_job`` reads through SQLAlchemy is part of the contract suite."""

from __future__ import annotations

import attrs
import pytest

from ferroq_core.records import JobRow
from ferroq_postgres.statements import CLAIM_COLUMNS, CLAIM_SQL

pytestmark = pytest.mark.postgres


def test_claim_columns_follow_the_record_fields() -> None:
    assert list(CLAIM_COLUMNS) == [f.name for f in attrs.fields(JobRow)]
    returning = CLAIM_SQL.split(" RETURNING ", 1)[1]
    names = [c.strip().removeprefix("ferroq_jobs.") for c in returning.split(",")]
    assert names == list(CLAIM_COLUMNS)
