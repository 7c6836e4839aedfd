"""The claim's fast row path (plain SQL text, ``ferroq_sqlite.rows``) gives exactly the records
the SQLAlchemy path gives, and its fenced acknowledgement keeps the full lease fence."""

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


def test_claimed_rows_equal_what_get_job_reads(backend: SqliteBackend) -> None:
    backend.enqueue(
        [
            EnqueueRequest(queue="q", job_type="a", payload='{"x": 1}', priority=2),
            EnqueueRequest(
                queue="q", job_type="b", payload="{}", idempotency_key="k", tenant_id="t1"
            ),
            EnqueueRequest(queue="q", job_type="c", payload="[]", max_attempts=7),
        ]
    )
    claimed = backend.claim(["q"], "w1", 10)
    # Claim order: priority first, then age and id.
    assert [r.job_type for r in claimed][-1] == "a"
    assert claimed == sorted(claimed, key=lambda r: (r.priority, r.available_at, r.id))
    for row in claimed:
        assert row == backend.get_job(row.id)  # every field, timestamps included
        assert row.claimed_at is not None
        assert row.claimed_at.tzinfo is not None
        assert row.heartbeat_at == row.claimed_at
    # The per-call conversion cache must not make distinct values share a datetime.
    assert claimed[0].created_at <= claimed[0].claimed_at


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
