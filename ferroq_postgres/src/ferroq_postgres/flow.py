"""Flow control on Postgres: the limited claim's statements (see
:mod:`ferroq_core.storage.claimplan`) and the limits' admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.storage.claimplan import Candidate, limited_claim
from ferroq_core.storage.flow import limit_usage, rule_from_row, rule_params
from ferroq_core.storage.headclaim import head_first_claim
from ferroq_core.storage.rules import claim_order, job_from_row
from ferroq_postgres.connections import QUERIES, fetch, rowcount
from ferroq_postgres.groups_index import ensure_groups_index

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from ferroq_core.flowlimits import LimitRule, LimitScope, LimitUsage
    from ferroq_core.records import JobRow
    from ferroq_core.storage.claimplan import ClaimPlan, GroupsSeen, Look, Size
    from ferroq_core.storage.headclaim import HeadFirst, Verdict
    from ferroq_postgres.connections import Connections, Row

__all__ = [
    "claim",
    "delete_limit",
    "list_limits",
    "scopes",
    "set_limit",
    "typed_queues",
    "usage",
]


def scopes(connections: Connections) -> list[Row]:
    return connections.rows("limits_scopes")


def typed_queues(connections: Connections, queues: list[str], types: list[str]) -> list[str]:
    """Which of ``queues`` hold pending jobs of the job types ``types``."""
    rows = connections.rows("limits_typed_queues", {"queues": queues, "types": types})
    return [str(q) for (q,) in rows]


@attrs.define
class _Ops:
    """One limited claim's statements on ``conn`` (:class:`LimitedClaimOps`)."""

    conn: psycopg.Connection[Any]
    worker: str
    seen: GroupsSeen

    def begin(self, queue: str, n: int) -> tuple[list[LimitRule], Look]:
        # One round trip for BEGIN, the lock and the look: pipelined, the server still runs
        # the look after the lock is granted, with a snapshot of its own.
        conn = self.conn
        with conn.pipeline():
            locked = conn.execute(QUERIES["limits_lock"], prepare=True)
            params = {"queue": queue, "n": n}
            looked = conn.execute(QUERIES["limits_look"], params, prepare=True)
        rules = [rule_from_row(r) for r in locked.fetchall() if r[0] is not None]
        running: list[tuple[str, str, str | None, int]] = []
        started: list[tuple[str, str, str, int, float]] = []
        head: list[Candidate] = []
        for kind, a, b, c, count, priority, at, frees in looked.fetchall():
            if kind == "r":
                running.append((str(a), str(b), c, int(count)))
            elif kind == "s":
                started.append((str(a), str(b), str(c), int(count), float(frees)))
            else:
                head.append(Candidate(int(count), str(b), c, int(priority), at))
        return rules, (running, started, head)

    def head(self, queue: str, n: int) -> list[Candidate]:
        return [Candidate(*r) for r in fetch(self.conn, "limit_head", {"queue": queue, "n": n})]

    def groups(self, queue: str, *, fresh: bool) -> list[tuple[str, str | None, int]]:
        def read() -> list[tuple[str, str | None, int]]:
            rows = fetch(self.conn, "limit_groups", {"queue": queue})
            return [(str(t), k, int(p)) for t, k, p in rows]

        return self.seen.get(queue, fresh, read)

    def candidates(self, queue: str, sizes: list[Size]) -> list[Candidate]:
        params = {
            "queue": queue,
            "job_types": [t for t, _, _ in sizes],
            "limit_keys": [k for _, k, _ in sizes],
            "sizes": [n for _, _, n in sizes],
        }
        return [Candidate(*row) for row in fetch(self.conn, "limit_candidates", params)]

    def take(self, ids: list[int], starts: list[tuple[str, str, str, float]]) -> list[JobRow]:
        # The claim, the starts and COMMIT in one round trip (Connections.committing).
        conn = self.conn
        with conn.pipeline():
            params = {"ids": ids, "worker": self.worker, "pending": "pending"}
            claimed = conn.execute(QUERIES["limit_claim"], params, prepare=True)
            if starts:
                added = {
                    "scopes": [s[0] for s in starts],
                    "names": [s[1] for s in starts],
                    "keys": [s[2] for s in starts],
                    "pers": [s[3] for s in starts],
                }
                conn.execute(QUERIES["limit_starts_add"], added, prepare=False)
            conn.execute("COMMIT")
        return sorted((job_from_row(r) for r in claimed.fetchall()), key=claim_order)


def claim(
    connections: Connections,
    seen: GroupsSeen,
    head_first: HeadFirst,
    queues: Sequence[str],
    worker: str,
    wanted: int,
) -> tuple[list[JobRow], ClaimPlan | None]:
    """Up to ``wanted`` due jobs of ``queues`` within every limit: the head claim while it
    fits, else the limited claim (:func:`~ferroq_core.storage.headclaim.head_first_claim`);
    each one transaction serialized with every other limited claim (``limits_lock``)."""

    def limited(rest: Sequence[str], n: int) -> tuple[list[JobRow], ClaimPlan]:
        return connections.committing(lambda conn: limited_claim(_Ops(conn, worker, seen), rest, n))

    def head(queue: str, n: int) -> tuple[Verdict, list[JobRow]]:
        return connections.committing(lambda conn: _head(conn, queue, worker, n))

    return head_first_claim(queues, wanted, head_first, head, limited)


def _head(
    conn: psycopg.Connection[Any], queue: str, worker: str, n: int
) -> tuple[Verdict, list[JobRow]]:
    """One head claim: the lock, the claim and COMMIT in one round trip."""
    with conn.pipeline():
        conn.execute(QUERIES["limits_lock"], prepare=True)
        params = {"queue": queue, "limit": n, "worker": worker}
        claimed = conn.execute(QUERIES["limit_claim_head"], params, prepare=True)
        conn.execute("COMMIT")
    rows = claimed.fetchall()
    verdict: Verdict = rows[0][0]
    jobs = [job_from_row(r[1:]) for r in rows if r[1] is not None]
    return verdict, sorted(jobs, key=claim_order)


def set_limit(connections: Connections, rule: LimitRule, *, pooled: bool) -> None:
    """Write ``rule``, then make the limited claim's index if there is none yet."""
    connections.transaction(lambda conn: rowcount(conn, "limit_set", rule_params(rule)))
    ensure_groups_index(connections.engine, pooled=pooled)


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
            [(s, n, k, c) for s, n, k, c, _ in fetch(conn, "limit_starts_window")],
            [(str(q), str(t), k, int(n)) for q, t, k, n in fetch(conn, "limit_waiting")],
        )

    return connections.transaction(run)
