"""The claim's fast row path (the ``claim`` query, ``ferroq_sqlite.rows``) returns JobRow's
fields in order, and its fenced acknowledgement keeps the full lease fence for leases of
several owners.
That claimed records equal what ``get_job`` reads is part of the contract suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ferroq_core.records import EnqueueRequest, JobRow, Lease
from ferroq_core.storage.queries import load_queries
from ferroq_sqlite.rows import SET_BY_CLAIM

if TYPE_CHECKING:
    from ferroq_sqlite.backend import SqliteBackend


def test_columns_follow_the_record_fields() -> None:
    returning = load_queries("ferroq_sqlite")["claim"].split("RETURNING", 1)[1]
    names = [name.strip() for name in returning.split(",")]
    assert names == [f.name for f in attrs.fields(JobRow) if f.name not in SET_BY_CLAIM]


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


def test_complete_of_one_owner_with_some_leases_lost(backend: SqliteBackend) -> None:
    # One owner's statement deletes fewer rows than it has leases: the matching ones are
    # still acknowledged, and only they.
    backend.enqueue([EnqueueRequest(queue="q", job_type="a", payload="{}") for _ in range(4)])
    leases = [r.lease for r in backend.claim(["q"], "w1", 4)]
    stale = Lease(leases[0].id, "w1", leases[0].attempts + 1)
    assert backend.complete([stale, leases[1], leases[2], leases[2]]) == {
        leases[1].id,
        leases[2].id,
    }
    assert backend.get_job(leases[0].id) is not None, "the stale lease deleted nothing"
    assert backend.get_job(leases[3].id) is not None, "a lease not given is untouched"
    assert backend.complete([leases[0], leases[3]]) == {leases[0].id, leases[3].id}


def test_complete_of_one_owner_at_several_attempts_counts(backend: SqliteBackend) -> None:
    # One statement per (owner, attempts): a batch mixing first attempts and retries is
    # acknowledged whole, and a lease one attempt behind its row still matches nothing.
    backend.enqueue([EnqueueRequest(queue="q", job_type="a", payload="{}") for _ in range(3)])
    retried, *_ = backend.claim(["q"], "w1", 1)
    assert backend.release(retried.lease, delay=0.0, error="boom")
    rows = backend.claim(["q"], "w1", 3)
    assert sorted(r.attempts for r in rows) == [1, 1, 2]
    behind = Lease(retried.id, "w1", retried.attempts)
    assert backend.complete([behind]) == set()
    assert backend.complete([r.lease for r in rows]) == {r.id for r in rows}
    assert all(backend.get_job(r.id) is None for r in rows)
