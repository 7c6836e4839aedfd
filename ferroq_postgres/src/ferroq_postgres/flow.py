"""Flow control on Postgres: the limited claim and the limits' admin (see
:mod:`ferroq_core.storage.flow`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.storage.flow import Candidate, ClaimPlan, limit_usage, rule_from_row, rule_params
from ferroq_core.storage.rules import claim_order, job_from_row
from ferroq_postgres.connections import fetch, rowcount

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from ferroq_core.flowlimits import LimitRule, LimitScope, LimitUsage
    from ferroq_core.records import JobRow
    from ferroq_postgres.connections import Connections, Row

__all__ = ["claim", "delete_limit", "list_limits", "scopes", "set_limit", "usage"]


def scopes(connections: Connections) -> list[Row]:
    return connections.rows("limits_scopes")


def claim(
    connections: Connections, queues: Sequence[str], worker: str, wanted: int
) -> tuple[list[JobRow], ClaimPlan]:
    """Up to ``wanted`` due jobs of ``queues`` (strict queue order) within every limit, in one
    transaction serialized with every other limited claim."""

    def run(conn: psycopg.Connection[Any]) -> tuple[list[JobRow], ClaimPlan]:
        fetch(conn, "limits_lock")
        rowcount(conn, "limit_starts_prune", {})
        plan = ClaimPlan(
            [rule_from_row(r) for r in fetch(conn, "limits_all")],
            [(str(q), str(t), k, int(n)) for q, t, k, n in fetch(conn, "limits_running")],
            [
                (str(s), str(n), str(k), int(c), float(f))
                for s, n, k, c, f in fetch(conn, "limit_starts_window")
            ],
            wanted,
        )
        jobs: list[JobRow] = []
        for queue in dict.fromkeys(queues):
            if plan.remaining <= 0:
                break
            groups = [(str(t), k) for t, k in fetch(conn, "limit_groups", {"queue": queue})]
            sizes = plan.group_sizes(queue, groups)
            if not sizes:
                continue
            params = {
                "queue": queue,
                "job_types": [t for t, _, _ in sizes],
                "tenants": [k for _, k, _ in sizes],
                "sizes": [n for _, _, n in sizes],
            }
            found = [Candidate(*row) for row in fetch(conn, "limit_candidates", params)]
            ids = plan.choose(queue, found)
            if not ids:
                continue
            rows = fetch(conn, "limit_claim", {"ids": ids, "worker": worker})
            claimed = sorted((job_from_row(r) for r in rows), key=claim_order)
            jobs += claimed
            starts = plan.rate_starts(job.id for job in claimed)
            if starts:
                rowcount(
                    conn,
                    "limit_starts_add",
                    {
                        "scopes": [s[0] for s in starts],
                        "names": [s[1] for s in starts],
                        "keys": [s[2] for s in starts],
                        "pers": [s[3] for s in starts],
                    },
                )
        return jobs, plan

    return connections.transaction(run)


def set_limit(connections: Connections, rule: LimitRule) -> None:
    connections.transaction(lambda conn: rowcount(conn, "limit_set", rule_params(rule)))


def delete_limit(connections: Connections, scope: LimitScope, name: str) -> bool:
    return bool(connections.rows_once("limit_delete", {"scope": scope, "name": name}))


def list_limits(connections: Connections) -> list[LimitRule]:
    return [rule_from_row(r) for r in connections.rows("limits_all")]


def usage(connections: Connections) -> list[LimitUsage]:
    def run(conn: psycopg.Connection[Any]) -> list[LimitUsage]:
        rules = [rule_from_row(r) for r in fetch(conn, "limits_all")]
        if not rules:
            return []
        return limit_usage(
            rules,
            [(str(q), str(t), k, int(n)) for q, t, k, n in fetch(conn, "limits_running")],
            [
                (str(s), str(n), str(k), int(c))
                for s, n, k, c, _ in fetch(conn, "limit_starts_window")
            ],
            [(str(q), str(t), k, int(n)) for q, t, k, n in fetch(conn, "limit_waiting")],
        )

    return connections.transaction(run)
