"""SQLite makes the limited claim's groups index when a claim first needs it, not when a limit
is declared: every claim pays for the index (a claim of jobs of many keys touches a page of it
per key), and a limit whose claims take the head of the queue never reads it."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ferroq_core.flowlimits import LimitRule
from ferroq_core.tables.limitkeys import GROUPS_INDEX
from ferroq_core.testing.contract import enqueue_one, worker_id

if TYPE_CHECKING:
    from ferroq_sqlite.backend import SqliteBackend


def _has_index(db_path: str) -> bool:
    with sqlite3.connect(db_path) as db:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (GROUPS_INDEX,))
        return found.fetchone() is not None


def test_a_limit_makes_no_index_until_a_claim_looks_past_a_head(
    backend: SqliteBackend, db_path: str
) -> None:
    backend.set_limit(LimitRule("queue", "q", concurrency=1, per_key=True))
    assert not _has_index(db_path)
    keyed = [enqueue_one(backend, "q", limit_key=f"k{n}") for n in range(5)]
    # Heads within the limit (one job per key), then a limit that binds on a head that
    # was every due job: no look past a head, no index.
    assert [r.id for r in backend.claim(["q"], worker_id(), 5)] == keyed
    again = [enqueue_one(backend, "q", limit_key="k0") for _ in range(2)]
    assert backend.claim(["q"], worker_id(), 5) == []
    assert not _has_index(db_path)
    # A backlog of a busy key longer than the head the claim reads: the groups are read,
    # through the index made for them.
    backlog = [enqueue_one(backend, "q", limit_key="k1") for _ in range(30)]
    other = enqueue_one(backend, "q", limit_key="k9")
    assert [r.id for r in backend.claim(["q"], worker_id(), 1)] == [other]
    assert _has_index(db_path)
    assert {r.id for r in backend.list_jobs(limit=100)} >= {*again, *backlog}
