"""SQLite makes the limited claim's groups index when limited claims keep needing it, not when
a limit is declared (ferroq_sqlite.groups_index): the first claim that must read a queue's
groups reads them without it, the next one within a minute makes it; and the reads without it
take the same jobs as the reads through it."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ferroq_core.flowlimits import LimitRule
from ferroq_core.tables.limitkeys import GROUPS_INDEX
from ferroq_core.testing.contract import enqueue_one, worker_id
from ferroq_sqlite import groups_index
from ferroq_sqlite.backend import SqliteBackend

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _has_index(db_path: str) -> bool:
    with sqlite3.connect(db_path) as db:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (GROUPS_INDEX,))
        return found.fetchone() is not None


def _held_head(backend: SqliteBackend, queue: str) -> list[int]:
    """Key k1's backlog, longer than a claim of one reads at the head, before key k9's job;
    returns [k1's first, k9's]."""
    backlog = [enqueue_one(backend, queue, limit_key="k1") for _ in range(30)]
    return [backlog[0], enqueue_one(backend, queue, limit_key="k9")]


def test_the_index_is_made_by_the_second_read_past_a_head_within_a_minute(
    backend: SqliteBackend, db_path: str
) -> None:
    backend.set_limit(LimitRule("queue", "q", concurrency=1, per_key=True))
    backend.set_limit(LimitRule("queue", "r", concurrency=1, per_key=True))
    assert not _has_index(db_path)
    keyed = [enqueue_one(backend, "q", limit_key=f"k{n}") for n in range(5)]
    # A head within the limit (one job per key), then a limit that binds on a head that was
    # every due job: no read past a head, no index.
    assert [r.id for r in backend.claim(["q"], worker_id(), 5)] == keyed
    enqueue_one(backend, "q", limit_key="k0")
    assert backend.claim(["q"], worker_id(), 5) == []
    assert not _has_index(db_path)
    # k1 is busy: its backlog fills the head; k9's job is found past it, without the index.
    first, other = _held_head(backend, "q")
    assert first in {r.id for r in backend.list_jobs(limit=100)}
    assert [r.id for r in backend.claim(["q"], worker_id(), 1)] == [other]
    assert not _has_index(db_path)
    # The next read past a head (another queue) makes it, and reads through it.
    first, other = _held_head(backend, "r")
    assert [r.id for r in backend.claim(["r"], worker_id(), 1)] == [first]
    assert [r.id for r in backend.claim(["r"], worker_id(), 1)] == [other]
    assert _has_index(db_path)


def _claims(tmp_path: Path, name: str, *, indexed: bool) -> list[list[str]]:
    """The limit keys each claim takes, in a fair queue and past held heads."""
    backend = SqliteBackend.from_url(f"sqlite:///{tmp_path / name}")
    try:
        backend.migrate()
        if indexed:
            with sqlite3.connect(tmp_path / name) as db:
                db.execute(
                    "CREATE INDEX ferroq_jobs_groups ON ferroq_jobs "
                    "(queue, job_type, limit_key, priority, available_at, id) "
                    "WHERE status = 'pending'"
                )
        backend.set_limit(LimitRule("queue", "fair", concurrency=2, per_key=True, fair=True))
        backend.set_limit(LimitRule("queue", "held", concurrency=1, per_key=True))
        for n in range(40):
            key = "a" if n < 30 else f"k{n % 4}"
            enqueue_one(backend, "fair", limit_key=key, priority=n % 2)
            enqueue_one(backend, "held", limit_key=key, job_type=f"t{n % 2}")
        taken = []
        for queue, n in [("fair", 3), ("fair", 4), ("held", 1), ("held", 2), ("held", 3)]:
            rows = backend.claim([queue], worker_id(), n)
            taken.append(sorted(str(r.limit_key) for r in rows))
        return taken
    finally:
        backend.close()


def test_reads_without_the_index_take_what_reads_through_it_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = _claims(tmp_path, "indexed.db", indexed=True)
    monkeypatch.setattr(groups_index, "GROUPS_INDEX_AFTER", -1.0)  # never made
    scanned = _claims(tmp_path, "scanned.db", indexed=False)
    assert not _has_index(str(tmp_path / "scanned.db"))
    assert scanned == indexed
    assert all(taken for taken in indexed), indexed


def test_the_index_goes_with_the_last_limit(backend: SqliteBackend, db_path: str) -> None:
    backend.set_limit(LimitRule("queue", "q", concurrency=1, per_key=True))
    backend.set_limit(LimitRule("type", "t", concurrency=3))
    for queue in ("q", "r"):
        backend.set_limit(LimitRule("queue", queue, concurrency=1, per_key=True))
        first, other = _held_head(backend, queue)
        rows = backend.claim([queue], worker_id(), 1)
        rows += backend.claim([queue], worker_id(), 1)
        assert [r.id for r in rows] == [first, other]
        assert backend.complete([r.lease for r in rows]) == {first, other}
    assert _has_index(db_path)
    assert backend.delete_limit("queue", "q") is True
    assert backend.delete_limit("queue", "r") is True
    assert _has_index(db_path), "a limit is left: the index stays"
    assert backend.delete_limit("queue", "r") is False
    assert backend.delete_limit("type", "t") is True
    assert not _has_index(db_path)
    # Claims go on as plain claims, and a new limit works without it.
    rows = backend.claim(["q", "r"], worker_id(), 100)
    assert len(rows) == 58
    assert len(backend.complete([r.lease for r in rows])) == 58
    backend.set_limit(LimitRule("queue", "q", concurrency=1, per_key=True))
    first, other = _held_head(backend, "q")
    assert [r.id for r in backend.claim(["q"], worker_id(), 1)] == [first]


def test_a_large_queue_makes_the_index_at_its_first_read_past_a_head(
    backend: SqliteBackend, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups_index, "SCAN_LIMIT", 20)  # fewer than the held head's 31 jobs
    backend.set_limit(LimitRule("queue", "q", concurrency=1, per_key=True))
    first, other = _held_head(backend, "q")
    assert [r.id for r in backend.claim(["q"], worker_id(), 1)] == [first]
    assert [r.id for r in backend.claim(["q"], worker_id(), 1)] == [other]
    assert _has_index(db_path)
