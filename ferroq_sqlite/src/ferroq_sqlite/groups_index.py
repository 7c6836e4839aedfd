"""The limited claim's groups index on SQLite, made when limited claims keep needing it (see
:mod:`ferroq_core.tables.limitkeys`).

On SQLite the index costs a claim of jobs of many keys about as much as the claim itself: each
key's entry is on its own page, and each page a write transaction touches is a frame written to
the WAL (docs/performance.md). It serves only the limited claims that must read past a queue's
head (its groups, then the rows of the groups with room). Without it those reads are one pass
over the queue's pending rows, which costs more than the index once they repeat, but less than
an index that one such read made and every claim after it pays for (a binding limit whose freed
keys' next jobs are at the head needs the groups about once, when it starts).

So the first read of a queue's groups goes without the index, and the index is made by the next
one within :data:`GROUPS_INDEX_AFTER` seconds, in that claim's write transaction (so it is made
once); a database where it exists (made here, by an earlier ferroq, or by hand) uses it. A
queue of more than :data:`SCAN_LIMIT` pending jobs makes it at the first read: a pass over it
would hold the write lock longer than the index takes to pay off.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING

from ferroq_core.storage.claimplan import Candidate
from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    import sqlite3

    from ferroq_core.storage.claimplan import Size

__all__ = ["GROUPS_INDEX_AFTER", "GroupsIndex", "scan_candidates", "scan_groups"]

#: Seconds within which a second limited claim that must read a queue's groups makes the index.
GROUPS_INDEX_AFTER = 60.0

#: Pending jobs of a queue beyond which its first group read makes the index instead of a pass
#: over them (a pass over 50,000 reads the groups in about 30 ms).
SCAN_LIMIT = 50_000


class GroupsIndex:
    """A backend's record of when its limited claims last needed the groups index."""

    def __init__(self) -> None:
        self._last_need = -math.inf

    def ready(self, db: sqlite3.Connection, queue: str) -> bool:
        """Whether the index exists for this read of ``queue``'s groups; made now when this
        need follows another within :data:`GROUPS_INDEX_AFTER` seconds, or the queue holds
        more than :data:`SCAN_LIMIT` pending jobs (``db`` holds the write lock)."""
        if db.execute(sql("groups_index_exists")).fetchone() is not None:
            return True
        now = time.monotonic()
        again = now - self._last_need <= GROUPS_INDEX_AFTER
        self._last_need = now
        if not again:
            params = {"queue": queue, "limit": SCAN_LIMIT + 1}
            again = db.execute(sql("pending_beyond"), params).fetchone()[0] > SCAN_LIMIT
        if again:
            db.execute(sql("groups_index_create"))
        return again


def scan_groups(db: sqlite3.Connection, queue: str) -> list[tuple[str, str | None, int]]:
    """The (job type, limit key, best priority) groups of ``queue``'s pending jobs, read
    without the index (one pass over them)."""
    rows = db.execute(sql("limit_groups_scan"), {"queue": queue})
    return [(str(t), k, int(p)) for t, k, p in rows]


def scan_candidates(
    db: sqlite3.Connection, queue: str, sizes: list[Size], now: int
) -> list[Candidate]:
    """Up to n due pending jobs of each group of ``sizes``, in claim order, read without the
    index: ``queue``'s due jobs in claim order until every group has its n (or none is left)."""
    wanted = {(job_type, limit_key): n for job_type, limit_key, n in sizes}
    left = sum(wanted.values())
    found: list[Candidate] = []
    params = {"queue": queue, "now": now}
    with contextlib.closing(db.execute(sql("limit_candidates_scan"), params)) as rows:
        for row in rows:
            group = (row[1], row[2])
            n = wanted.get(group, 0)
            if n <= 0:
                continue
            wanted[group] = n - 1
            found.append(Candidate(*row))
            left -= 1
            if left <= 0:
                break
    return found
