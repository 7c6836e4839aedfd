"""Flow control in the claim: the storage role for limits, and the rules every backend shares.

A backend whose ``ferroq_limits`` table has rows claims with its *limited claim* instead of the
plain one (which stays exactly as it was, so a queue without limits pays nothing): in one
transaction, serialized with every other limited claim (an advisory lock on Postgres, SQLite's
write lock), it reads the limits, the live leases (claimed rows: a killed worker's slot frees
when its lease is reaped) and the starts inside each rate window, steps through the (job type,
tenant) groups of each queue's pending jobs, asks :class:`ClaimPlan` how many rows to read from
each and which of them to take, claims those, and records their starts. Jobs over a limit stay
pending: they spend no attempt.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from ferroq_core.flowlimits import LimitRule, LimitUsage

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ferroq_core.flowlimits import LimitScope

__all__ = [
    "LIMITS_REFRESH",
    "Blocked",
    "Candidate",
    "ClaimPlan",
    "FlowStore",
    "LimitsSeen",
    "limit_usage",
    "rule_from_row",
    "rule_params",
]

#: Seconds a backend trusts its last look at whether any limit exists (the plain claim runs
#: meanwhile); a limit declared while workers run binds them within this time.
LIMITS_REFRESH = 2.0

#: (scope, name, key): one counter of one limit.
Counter = tuple[str, str, str]


@runtime_checkable
class FlowStore(Protocol):
    """Declaring limits and reading where they stand (``ferroq limits``, worker start-up)."""

    def set_limit(self, rule: LimitRule) -> None:
        """Write ``rule`` (replacing the scope and name's previous one); every worker's claim
        follows it from its next claim (within :data:`LIMITS_REFRESH` seconds)."""

    def delete_limit(self, scope: LimitScope, name: str) -> bool:
        """Remove a scope and name's limits; True if there were some."""

    def list_limits(self) -> list[LimitRule]:
        """Every declared limit, by scope and name."""

    def limit_usage(self) -> list[LimitUsage]:
        """For every limit and every key with running, recently started or waiting jobs: the
        running and started counts and the due jobs waiting."""


def rule_params(rule: LimitRule) -> dict[str, object]:
    """A rule as the named queries' parameters (``set_limit``)."""
    return {
        "scope": rule.scope,
        "name": rule.name,
        "per_tenant": int(rule.per_tenant),
        "concurrency": rule.concurrency,
        "rate": rule.rate[0] if rule.rate else None,
        "per": rule.rate[1] if rule.rate else None,
        "fair": int(rule.fair),
    }


def rule_from_row(row: Sequence[object]) -> LimitRule:
    """A ``ferroq_limits`` row (scope, name, per_tenant, concurrency, rate, per, fair)."""
    scope, name, per_tenant, concurrency, rate, per, fair = row
    return LimitRule(
        scope="queue" if scope == "queue" else "type",
        name=str(name),
        concurrency=None if concurrency is None else int(str(concurrency)),
        rate=None if rate is None else (int(str(rate)), float(str(per))),
        per_tenant=bool(per_tenant),
        fair=bool(fair),
    )


@attrs.frozen
class Candidate:
    """A due pending job the limited claim may take."""

    id: int
    job_type: str
    tenant_id: str | None
    priority: int
    #: Any value ordered like ``available_at`` (the backends pass what they store).
    available_at: object


def _key(rule: LimitRule, tenant: str | None) -> Counter:
    return (rule.scope, rule.name, (tenant or "") if rule.per_tenant else "")


class ClaimPlan:
    """One limited claim's bookkeeping: the room left under every limit, what to read and what
    to take, queue after queue, and the starts to record.

    :param rules: every row of ``ferroq_limits``.
    :param running: (queue, job type, tenant, claimed count) for the claimed rows.
    :param started: (scope, name, key, starts in the window, seconds until the oldest leaves).
    :param wanted: the most jobs to take in all.
    """

    def __init__(
        self,
        rules: Iterable[LimitRule],
        running: Iterable[tuple[str, str, str | None, int]],
        started: Iterable[tuple[str, str, str, int, float]],
        wanted: int,
    ) -> None:
        self.rules: dict[tuple[str, str], LimitRule] = {(r.scope, r.name): r for r in rules}
        self.remaining = wanted
        self._running: dict[Counter, int] = defaultdict(int)
        self._started: dict[Counter, int] = defaultdict(int)
        self._frees_in: dict[Counter, float] = {}
        #: Claimed jobs per (queue, tenant): a fair queue serves the tenant with the fewest
        #: running first, so turns carry over from one claim to the next.
        self._share: dict[tuple[str, str | None], int] = defaultdict(int)
        for queue, job_type, tenant, count in running:
            self._share[(queue, tenant)] += count
            for rule in self._rules_for(queue, job_type):
                if rule.concurrency is not None:
                    self._running[_key(rule, tenant)] += count
        for scope, name, key, count, frees_in in started:
            self._started[(scope, name, key)] += count
            self._frees_in[(scope, name, key)] = frees_in
        #: Per claimed id, the rate counters its start is recorded under.
        self.starts: dict[int, list[Counter]] = {}
        #: Whether a due job was left for a limit; and when (seconds) the first rate window
        #: that held one back frees (None: only concurrency held jobs back).
        self.blocked = False
        self.retry_in: float | None = None

    def _rules_for(self, queue: str, job_type: str) -> list[LimitRule]:
        found = []
        for key in (("type", job_type), ("queue", queue)):
            rule = self.rules.get(key)
            if rule is not None and rule.limits:
                found.append(rule)
        return found

    def fair(self, queue: str) -> bool:
        """Whether ``queue``'s tenants take turns."""
        rule = self.rules.get(("queue", queue))
        return rule is not None and rule.fair

    def room(self, queue: str, job_type: str, tenant: str | None) -> int:
        """How many more jobs of this group the limits allow now (at most :attr:`remaining`)."""
        room = self.remaining
        for rule in self._rules_for(queue, job_type):
            key = _key(rule, tenant)
            if rule.concurrency is not None:
                room = min(room, rule.concurrency - self._running[key])
            if rule.rate is not None:
                room = min(room, rule.rate[0] - self._started[key])
        return max(0, room)

    def group_sizes(
        self, queue: str, groups: Iterable[tuple[str, str | None]]
    ) -> list[tuple[str, str | None, int]]:
        """How many rows to read from each (job type, tenant) group of ``queue``: as many as
        its limits leave room for; groups with no room are left out (and noted as blocked)."""
        sizes = []
        for job_type, tenant in groups:
            n = self.room(queue, job_type, tenant)
            if n > 0:
                sizes.append((job_type, tenant, n))
            else:
                self._hold(queue, job_type, tenant)
        return sizes

    def choose(self, queue: str, candidates: Iterable[Candidate]) -> list[int]:
        """The ids to claim from ``queue``'s candidates, in claim order (round-robin by tenant
        within a priority level when the queue is fair), each within every limit."""
        ordered = sorted(candidates, key=lambda c: (c.priority, c.available_at, c.id))
        if self.fair(queue):
            # A tenant's n-th job here has turn n + its jobs running now; lower turns first.
            # Counting the running jobs makes the turns go round across claims: a worker
            # claiming one job at a time still alternates (and a tenant with a backlog never
            # starts a second job ahead of another tenant's first).
            turn: dict[tuple[int, str | None], int] = {}
            ranked = []
            for c in ordered:
                key = (c.priority, c.tenant_id)
                turn[key] = turn.get(key, self._share[(queue, c.tenant_id)]) + 1
                ranked.append((c.priority, turn[key], c))
            ordered = [c for _, _, c in sorted(ranked, key=lambda r: (r[0], r[1]))]
        chosen: list[int] = []
        for c in ordered:
            if self.remaining <= 0:
                break
            if self.room(queue, c.job_type, c.tenant_id) <= 0:
                self._hold(queue, c.job_type, c.tenant_id)
                continue
            self._take(queue, c)
            chosen.append(c.id)
        return chosen

    def _take(self, queue: str, c: Candidate) -> None:
        self.remaining -= 1
        self._share[(queue, c.tenant_id)] += 1
        rated = []
        for rule in self._rules_for(queue, c.job_type):
            key = _key(rule, c.tenant_id)
            if rule.concurrency is not None:
                self._running[key] += 1
            if rule.rate is not None:
                self._started[key] += 1
                rated.append(key)
        if rated:
            self.starts[c.id] = rated

    def _hold(self, queue: str, job_type: str, tenant: str | None) -> None:
        """Note that a group's due jobs wait for a limit, and when a rate window frees."""
        self.blocked = True
        for rule in self._rules_for(queue, job_type):
            key = _key(rule, tenant)
            if rule.rate is not None and self._started[key] >= rule.rate[0]:
                frees = self._frees_in.get(key, rule.rate[1])
                self.retry_in = frees if self.retry_in is None else min(self.retry_in, frees)

    def rate_starts(self, claimed: Iterable[int]) -> list[tuple[str, str, str, float]]:
        """(scope, name, key, window seconds) per rate-limited start among ``claimed``."""
        out = []
        for job_id in claimed:
            for scope, name, key in self.starts.get(job_id, ()):
                rule = self.rules[(scope, name)]
                assert rule.rate is not None  # only rate rules record starts
                out.append((scope, name, key, rule.rate[1]))
        return out


def limit_usage(
    rules: Iterable[LimitRule],
    running: Iterable[tuple[str, str, str | None, int]],
    started: Iterable[tuple[str, str, str, int]],
    waiting: Iterable[tuple[str, str, str | None, int]],
) -> list[LimitUsage]:
    """Where every limit stands per key: running (claimed) jobs, starts inside the rate window
    and due jobs waiting, from the per-group counts of the claimed and due pending rows."""
    rules = [r for r in rules if r.limits or r.fair]
    counts: dict[tuple[LimitRule, str], list[int]] = {}

    def add(queue: str, job_type: str, tenant: str | None, n: int, at: int) -> None:
        for rule in rules:
            if (rule.scope, rule.name) in (("type", job_type), ("queue", queue)):
                key = (tenant or "") if rule.per_tenant else ""
                counts.setdefault((rule, key), [0, 0, 0])[at] += n

    for queue, job_type, tenant, n in running:
        add(queue, job_type, tenant, n, 0)
    for queue, job_type, tenant, n in waiting:
        add(queue, job_type, tenant, n, 2)
    by_name: dict[tuple[str, str], LimitRule] = {(r.scope, r.name): r for r in rules}
    for scope, name, key, n in started:
        rule = by_name.get((scope, name))
        if rule is not None:
            counts.setdefault((rule, key), [0, 0, 0])[1] += n
    for rule in rules:
        if not any(r is rule for r, _ in counts):
            counts[(rule, "")] = [0, 0, 0]
    found = [
        LimitUsage(rule=rule, key=key, running=c[0], started=c[1], waiting=c[2])
        for (rule, key), c in counts.items()
    ]
    found.sort(key=lambda u: (u.rule.scope, u.rule.name, u.key))
    return found


class LimitsSeen:
    """Which claims the limits are in play for, as a backend last saw ``ferroq_limits``
    (refreshed every :data:`LIMITS_REFRESH` seconds, or at once after :meth:`changed`): every
    claim when a job type has limits (its jobs may be in any queue), else claims of a queue
    with limits or fair turns. Thread-safe enough: a lost update only costs one more look."""

    def __init__(self) -> None:
        self._types = False
        self._queues: frozenset[str] = frozenset()
        self._at = -math.inf

    def stale(self) -> bool:
        return time.monotonic() - self._at > LIMITS_REFRESH

    def saw(self, scopes: Iterable[Sequence[object]]) -> None:
        """Record the (scope, name) of every row of ``ferroq_limits``."""
        rows = [(str(scope), str(name)) for scope, name in scopes]
        self._types = any(scope == "type" for scope, _ in rows)
        self._queues = frozenset(name for scope, name in rows if scope == "queue")
        self._at = time.monotonic()

    def changed(self) -> None:
        self._at = -math.inf

    def in_play(self, queues: Sequence[str]) -> bool:
        """Whether a claim of ``queues`` must be the limited one."""
        return self._types or any(q in self._queues for q in queues)


class Blocked:
    """What the last limited claim of each queue list left waiting for a limit, so an idle
    wait ends when a rate window frees rather than at once (the held jobs are overdue), and
    otherwise waits for a notification or its timeout (a concurrency slot frees when a job
    ends, which the worker that ran it sees first)."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, ...], float | None] = {}

    def note(self, queues: Sequence[str], plan: ClaimPlan | None) -> None:
        key = tuple(queues)
        if plan is None or not plan.blocked:
            self._until.pop(key, None)
        else:
            retry = plan.retry_in
            self._until[key] = None if retry is None else time.monotonic() + max(0.0, retry)

    def due_in(self, queues: Sequence[str], due_in: float | None) -> float | None:
        """``due_in`` (seconds until the earliest pending job is due) corrected for held
        jobs: when the last claim left jobs for a limit and none is due later than now, the
        time until a rate window frees (None: none will; wait for the timeout)."""
        key = tuple(queues)
        if key not in self._until or due_in is None or due_in > 0:
            return due_in
        until = self._until[key]
        return None if until is None else until - time.monotonic()
