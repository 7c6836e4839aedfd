"""Rows of jobs become :class:`JobRow` records positionally: the column list of every query
that returns jobs (``queries.sql``), ``JOB_COLUMNS`` and the record's fields must agree. That a
claimed record equals what ``get_job`` reads is part of the contract suite."""

from __future__ import annotations

import re

import attrs
import pytest

from ferroq_core.records import JobRow
from ferroq_core.storage.rules import JOB_COLUMNS
from ferroq_postgres.connections import QUERIES

pytestmark = pytest.mark.postgres

JOB_QUERIES = (
    "claim",
    "reap_fail",
    "get_job",
    "list_jobs",
    "list_claimed_jobs",
    "list_failed_jobs",
)


def _columns(sql: str) -> list[str]:
    found = re.search(r"(?:RETURNING|^SELECT)\s+(.*?)(?:\s+FROM\s|\Z)", sql, re.S | re.M)
    assert found is not None, sql
    return [c.strip().removeprefix("ferroq_jobs.") for c in found.group(1).split(",")]


def test_claim_columns_follow_the_record_fields() -> None:
    assert list(JOB_COLUMNS) == [f.name for f in attrs.fields(JobRow)]
    for name in JOB_QUERIES:
        assert _columns(QUERIES[name]) == list(JOB_COLUMNS), name
