"""The claim's fast row path (plain SQL text, ``ferroq_sqlite.rows``) returns JobRow's fields in
order, and its fenced acknowledgement keeps the full lease fence for leases of several owners.
That claimed records equal what ``get_job`` reads is part of the contract suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ferroq_core.records import EnqueueRequest, JobRow, Lease
from ferroq_sqlite.rows import JOB_ROW_COLUMNS

if TYPE_CHECKING:
    from ferroq_sqlite.backend import SqliteBackend


def test_columns_follow_the_record_fields() -> None:
    names = [name.strip() for name in JOB_ROW_COLUMNS.split(",")]
    assert names == [f.name for f in attrs.fields(JobRow)]


def test_complete_fences_on_attempts_and_owner(backend: SqliteBackend) -> None:
    backend.enqueue([EnqueueRequest(queue="q", job_type="a", payload="{}") for _ in range(3)])
    rows = backend.claim(["q"], "w1", 3)
    first, second, third = (r.lease for r in rows)
    stale = Lease(first.id, first.claimed_by, first.attempts + 1)
    foreign = Lease(second.id, "w2", second.attempts)
    assert backend.complete([stale, foreign]) == set()
    # Leases of several owners in one call: each owner's are fenced on their own.
    assert backend.complete([first, second, third, foreign]) == {first.id, second.id, third.id}
    assert all(backend.get_job(x.id) is None for x in (first, second, third))
