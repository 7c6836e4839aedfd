"""Flow control on SQLite: the limited claim's statements (see
:mod:`ferroq_core.storage.claimplan`), run inside the claim's ``BEGIN IMMEDIATE`` transaction
(the write lock serializes it with every other claim), and the limits' admin."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.storage.claimplan import Candidate, limited_claim
from ferroq_core.storage.flow import limit_usage, rule_from_row, rule_params
from ferroq_core.storage.headclaim import FITS, head_first_claim
from ferroq_sqlite.groups_index import scan_candidates, scan_groups
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import claimed_rows

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from ferroq_core.flowlimits import LimitRule, LimitUsage
    from ferroq_core.records import JobRow
    from ferroq_core.storage.claimplan import ClaimPlan, GroupsSeen, Look, Size
    from ferroq_core.storage.headclaim import HeadFirst, Verdict
    from ferroq_sqlite.groups_index import GroupsIndex

__all__ = ["claim", "delete_limit", "list_limits", "scopes", "set_limit", "typed_queues", "usage"]


def scopes(db: sqlite3.Connection) -> list[Any]:
    return db.execute(sql("limits_scopes")).fetchall()


def typed_queues(db: sqlite3.Connection, queues: list[str], types: list[str]) -> list[str]:
    """Which of ``queues`` hold pending jobs of the job types ``types``."""
    params = {"queues": json.dumps(queues), "types": json.dumps(types)}
    return [str(q) for (q,) in db.execute(sql("limits_typed_queues"), params)]


@attrs.define
class _Ops:
    """One limited claim's statements at ``now`` (epoch microseconds)
    (:class:`LimitedClaimOps`)."""

    db: sqlite3.Connection
    worker: str
    now: int
    seen: GroupsSeen
    index: GroupsIndex
    #: Whether this claim reads its groups through the index (GroupsIndex.ready).
    indexed: bool = False

    def begin(self, queue: str, n: int) -> tuple[list[LimitRule], Look]:
        # The claim's BEGIN IMMEDIATE holds the write lock already.
        rules = [rule_from_row(r) for r in self.db.execute(sql("limits_all"))]
        started = []
        if any(r.rate is not None for r in rules):
            started = self.db.execute(sql("limit_starts_window"), {"now": self.now}).fetchall()
        running = self.db.execute(sql("limits_running")).fetchall()
        return rules, (running, started, self.head(queue, n))

    def head(self, queue: str, n: int) -> list[Candidate]:
        params = {"queue": queue, "n": n, "now": self.now}
        return [Candidate(*r) for r in self.db.execute(sql("limit_head"), params)]

    def groups(self, queue: str, *, fresh: bool) -> list[Any]:
        self.indexed = self.index.ready(self.db, queue)

        def read() -> list[Any]:
            if not self.indexed:
                return scan_groups(self.db, queue)
            return self.db.execute(sql("limit_groups"), {"queue": queue}).fetchall()

        return self.seen.get(queue, fresh, read)

    def candidates(self, queue: str, sizes: list[Size]) -> list[Candidate]:
        if not self.indexed:
            return scan_candidates(self.db, queue, sizes, self.now)
        found: list[Candidate] = []
        for job_type, limit_key, n in sizes:
            params = {"queue": queue, "job_type": job_type, "n": n, "now": self.now}
            if limit_key is None:
                rows = self.db.execute(sql("limit_candidates_unkeyed"), params)
            else:
                rows = self.db.execute(sql("limit_candidates"), dict(params, limit_key=limit_key))
            found += [Candidate(*row) for row in rows]
        return found

    def take(self, ids: list[int], starts: list[tuple[str, str, str, float]]) -> list[JobRow]:
        jobs = _claim_ids(self.db, json.dumps(ids), self.worker, self.now)
        if starts:
            self._add_starts(starts)
        return jobs

    def _add_starts(self, starts: list[tuple[str, str, str, float]]) -> None:
        self.db.execute(sql("limit_starts_prune"), {"now": self.now})
        self.db.executemany(
            sql("limit_starts_add"),
            [
                {"scope": s, "name": n, "key": k, "expires_at": self.now + round(per * 1e6)}
                for s, n, k, per in starts
            ],
        )


def _claim_ids(db: sqlite3.Connection, ids: str, worker: str, now: int) -> list[JobRow]:
    """Claim the jobs of ``ids`` (a JSON array) that are still pending, in claim order."""
    params = {"ids": ids, "worker": worker, "now": now}
    return claimed_rows(db.execute(sql("limit_claim"), params).fetchall(), worker, now)


def claim(
    db: sqlite3.Connection,
    seen: GroupsSeen,
    index: GroupsIndex,
    head_first: HeadFirst,
    queues: Sequence[str],
    worker: str,
    wanted: int,
    now: int,
) -> tuple[list[JobRow], ClaimPlan | None]:
    """Up to ``wanted`` due jobs of ``queues`` within every limit, at ``now``, in the caller's
    write transaction: the head claim while it fits, else the limited claim
    (:func:`~ferroq_core.storage.headclaim.head_first_claim`)."""

    def head(queue: str, n: int) -> tuple[Verdict, list[JobRow]]:
        params = {"queue": queue, "limit": n, "now": now}
        verdict, ids = db.execute(sql("limit_head_verdict"), params).fetchone()
        if verdict != FITS or ids == "[]":
            return verdict, []
        return verdict, _claim_ids(db, ids, worker, now)

    def limited(rest: Sequence[str], n: int) -> tuple[list[JobRow], ClaimPlan]:
        return limited_claim(_Ops(db, worker, now, seen, index), rest, n)

    return head_first_claim(queues, wanted, head_first, head, limited)


def set_limit(db: sqlite3.Connection, rule: LimitRule, now: int) -> None:
    """Write ``rule``. The limited claim's index is not made here but when limited claims
    keep reading past a queue's head (:mod:`ferroq_sqlite.groups_index`)."""
    db.execute(sql("limit_set"), dict(rule_params(rule), now=now))


def delete_limit(db: sqlite3.Connection, scope: str, name: str) -> bool:
    """Remove a scope and name's limits; with the last limit, the limited claim's index goes
    too (every claim pays for it; the next limits make it again when they need it)."""
    deleted = db.execute(sql("limit_delete"), {"scope": scope, "name": name}).rowcount
    if deleted and db.execute(sql("limits_any")).fetchone() is None:
        db.execute(sql("groups_index_drop"))
    return bool(deleted)


def list_limits(db: sqlite3.Connection) -> list[LimitRule]:
    return [rule_from_row(r) for r in db.execute(sql("limits_all"))]


def usage(db: sqlite3.Connection, now: int) -> list[LimitUsage]:
    rules = [rule_from_row(r) for r in db.execute(sql("limits_all"))]
    if not rules:
        return []
    return limit_usage(
        rules,
        db.execute(sql("limits_running")).fetchall(),
        [r[:4] for r in db.execute(sql("limit_starts_window"), {"now": now})],
        db.execute(sql("limit_waiting"), {"now": now}).fetchall(),
    )
