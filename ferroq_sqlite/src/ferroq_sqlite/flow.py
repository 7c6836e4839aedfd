"""Flow control on SQLite: the limited claim (inside the claim's ``BEGIN IMMEDIATE``
transaction, which the write lock serializes with every other claim) and the limits' admin
(see :mod:`ferroq_core.storage.flow`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ferroq_core.storage.flow import Candidate, ClaimPlan, limit_usage, rule_from_row, rule_params
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import claimed_rows

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from ferroq_core.flowlimits import LimitRule, LimitUsage
    from ferroq_core.records import JobRow

__all__ = ["claim", "list_limits", "scopes", "set_limit", "usage"]


def scopes(db: sqlite3.Connection) -> list[Any]:
    return db.execute(sql("limits_scopes")).fetchall()


def _plan(db: sqlite3.Connection, now: int, wanted: int) -> ClaimPlan:
    return ClaimPlan(
        [rule_from_row(r) for r in db.execute(sql("limits_all"))],
        db.execute(sql("limits_running")).fetchall(),
        db.execute(sql("limit_starts_window"), {"now": now}).fetchall(),
        wanted,
    )


def claim(
    db: sqlite3.Connection, queues: Sequence[str], worker: str, wanted: int, now: int
) -> tuple[list[JobRow], ClaimPlan]:
    """Up to ``wanted`` due jobs of ``queues`` (strict queue order) within every limit, at
    ``now`` (epoch microseconds), in the caller's write transaction."""
    db.execute(sql("limit_starts_prune"), {"now": now})
    plan = _plan(db, now, wanted)
    jobs: list[JobRow] = []
    for queue in dict.fromkeys(queues):
        if plan.remaining <= 0:
            break
        groups = db.execute(sql("limit_groups"), {"queue": queue}).fetchall()
        found: list[Candidate] = []
        for job_type, tenant, n in plan.group_sizes(queue, groups):
            params = {"queue": queue, "job_type": job_type, "n": n, "now": now}
            if tenant is None:
                rows = db.execute(sql("limit_candidates_untenanted"), params)
            else:
                rows = db.execute(sql("limit_candidates"), dict(params, tenant=tenant))
            found += [Candidate(*row) for row in rows]
        ids = plan.choose(queue, found)
        if not ids:
            continue
        params = {"ids": json.dumps(ids), "worker": worker, "now": now}
        done = db.execute(sql("limit_claim"), params).fetchall()
        claimed = claimed_rows(sorted(done, key=lambda r: (r[4], r[9], r[0])), worker, now)
        jobs += claimed
        db.executemany(
            sql("limit_starts_add"),
            [
                {"scope": s, "name": n, "key": k, "expires_at": now + round(per * 1e6)}
                for s, n, k, per in plan.rate_starts(job.id for job in claimed)
            ],
        )
    return jobs, plan


def set_limit(db: sqlite3.Connection, rule: LimitRule, now: int) -> None:
    db.execute(sql("limit_set"), dict(rule_params(rule), now=now))


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
