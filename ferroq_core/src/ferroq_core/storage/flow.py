"""Flow control in the claim: the storage role for limits, and the rules every backend shares.

A claim of queues where limits are in play (:class:`LimitsSeen`) is the backend's *limited
claim* (:mod:`ferroq_core.storage.claimplan`) instead of the plain one, which stays exactly as
it was, so a queue without limits pays nothing. Jobs over a limit stay pending: they spend no
attempt. :class:`Blocked` keeps an idle worker behind a limit from spinning.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ferroq_core.flowlimits import LimitRule, LimitUsage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ferroq_core.flowlimits import LimitScope
    from ferroq_core.storage.claimplan import ClaimPlan

__all__ = [
    "LIMITS_REFRESH",
    "SLOT_POLL",
    "Blocked",
    "FlowStore",
    "LimitsSeen",
    "limit_usage",
    "rule_from_row",
    "rule_params",
]

#: Seconds an idle worker whose due jobs a concurrency limit holds waits before it looks again
#: (a slot freed by another process; its own finished jobs end the wait at once).
SLOT_POLL = 0.25

#: Seconds a backend trusts its last look at whether any limit exists (the plain claim runs
#: meanwhile); a limit declared while workers run binds them within this time.
LIMITS_REFRESH = 2.0


@runtime_checkable
class FlowStore(Protocol):
    """Declaring limits and reading where they stand (``ferroq limits``, worker start-up)."""

    def set_limit(self, rule: LimitRule) -> None:
        """Write ``rule`` (replacing the scope and name's previous one); every worker's claim
        follows it from its next claim (within :data:`LIMITS_REFRESH` seconds). A backend
        makes the limited claim's index by the time a limited claim must read past a queue's
        head (:mod:`ferroq_core.tables.limitkeys`): Postgres here, if there is none yet,
        without blocking dispatches; SQLite in the first claim that needs it. Idempotent, and
        safe when several processes declare limits at once."""

    def delete_limit(self, scope: LimitScope, name: str) -> bool:
        """Remove a scope and name's limits; True if there were some."""

    def list_limits(self) -> list[LimitRule]:
        """Every declared limit, by scope and name."""

    def limit_usage(self) -> list[LimitUsage]:
        """For every limit and every key with running, recently started or waiting jobs: the
        running and started counts and the due jobs waiting."""

    def held_back(self, queues: Sequence[str]) -> bool:
        """Whether this process's last claim of ``queues`` left due jobs pending for a limit,
        and no job of this process finished since (a worker then writes its finished jobs
        back before it claims again: their slots are what the held jobs may wait for)."""


def rule_params(rule: LimitRule) -> dict[str, object]:
    """A rule as the named queries' parameters (``set_limit``)."""
    return {
        "scope": rule.scope,
        "name": rule.name,
        "per_tenant": int(rule.per_key),
        "concurrency": rule.concurrency,
        "rate": rule.rate[0] if rule.rate else None,
        "per": rule.rate[1] if rule.rate else None,
        "fair": int(rule.fair),
    }


def rule_from_row(row: Sequence[object]) -> LimitRule:
    """A ``ferroq_limits`` row (scope, name, per_tenant, concurrency, rate, per, fair); the
    ``per_tenant`` column is :attr:`LimitRule.per_key`."""
    scope, name, per_key, concurrency, rate, per, fair = row
    return LimitRule(
        scope="queue" if scope == "queue" else "type",
        name=str(name),
        concurrency=None if concurrency is None else int(str(concurrency)),
        rate=None if rate is None else (int(str(rate)), float(str(per))),
        per_key=bool(per_key),
        fair=bool(fair),
    )


def limit_usage(
    rules: Iterable[LimitRule],
    running: Iterable[tuple[str, str, str | None, int]],
    started: Iterable[tuple[str, str, str, int]],
    waiting: Iterable[tuple[str, str, str | None, int]],
) -> list[LimitUsage]:
    """Where every limit stands per key: running (claimed) jobs, starts inside the rate window
    and due jobs waiting, from the per-group counts (queue, job type, limit key, count) of
    the claimed and due pending rows."""
    rules = [r for r in rules if r.limits or r.fair]
    counts: dict[tuple[LimitRule, str], list[int]] = {}

    def add(queue: str, job_type: str, limit_key: str | None, n: int, at: int) -> None:
        for rule in rules:
            if (rule.scope, rule.name) in (("type", job_type), ("queue", queue)):
                key = (limit_key or "") if rule.per_key else ""
                counts.setdefault((rule, key), [0, 0, 0])[at] += n

    for queue, job_type, limit_key, n in running:
        add(queue, job_type, limit_key, n, 0)
    for queue, job_type, limit_key, n in waiting:
        add(queue, job_type, limit_key, n, 2)
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
    (refreshed every :data:`LIMITS_REFRESH` seconds, or at once after :meth:`changed`): claims
    of a queue with limits or fair turns, and, when a job type has limits (its jobs may be in
    any queue), the claims of the queues holding its pending jobs (:meth:`typed_queues`).
    Thread-safe enough: a lost update only costs one more look."""

    def __init__(self) -> None:
        self._types: tuple[str, ...] = ()
        self._queues: frozenset[str] = frozenset()
        self._at = -math.inf
        #: Queues looked at since the last refresh: whether they hold pending jobs of a
        #: limited type (:meth:`typed_queues`).
        self._typed: dict[str, bool] = {}

    def stale(self) -> bool:
        return time.monotonic() - self._at > LIMITS_REFRESH

    def saw(self, scopes: Iterable[Sequence[object]]) -> None:
        """Record the (scope, name) of every row of ``ferroq_limits``."""
        rows = [(str(scope), str(name)) for scope, name in scopes]
        self._types = tuple(sorted({name for scope, name in rows if scope == "type"}))
        self._queues = frozenset(name for scope, name in rows if scope == "queue")
        self._typed = {}
        self._at = time.monotonic()

    def changed(self) -> None:
        self._at = -math.inf

    @property
    def types(self) -> tuple[str, ...]:
        """The job types with limits, sorted."""
        return self._types

    def typed_queues(
        self, queues: Sequence[str], look: Callable[[list[str], list[str]], Iterable[str]]
    ) -> bool:
        """Whether a claim of ``queues`` must be the limited one, type limits scoped to the
        queues that hold pending jobs of a limited type: ``look(queues, types)`` names those
        among the queues not looked at since the last refresh. A claim that is not limited
        must then leave the limited types' jobs (:attr:`types`) alone: one that lands in such
        a queue waits for the next look, which :meth:`short` brings forward."""
        if any(q in self._queues for q in queues):
            return True
        if not self._types:
            return False
        unseen = [q for q in queues if q not in self._typed]
        if unseen:
            found = set(look(unseen, list(self._types)))
            for q in unseen:
                self._typed[q] = q in found
        return any(self._typed[q] for q in queues)

    def short(self, queues: Sequence[str]) -> None:
        """A claim of ``queues`` that left the limited types alone came back short: look at
        them again at the next claim (a job of a limited type may have arrived)."""
        for q in queues:
            self._typed.pop(q, None)


class Blocked:
    """What the last limited claim of each queue list left waiting for a limit, so an idle
    wait behind a limit neither spins on the held jobs (they are overdue) nor sleeps through
    the moment they may go: it ends when a rate window frees, after :data:`SLOT_POLL` seconds
    when a concurrency limit held them (a slot another process frees is seen then), and at
    once when this process finishes a job (:meth:`freed`: a slot of its own came free)."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, ...], float] = {}

    def note(self, queues: Sequence[str], plan: ClaimPlan | None) -> None:
        key = tuple(queues)
        if plan is None or not plan.blocked:
            self._until.pop(key, None)
        else:
            retry = SLOT_POLL if plan.retry_in is None else max(0.0, plan.retry_in)
            self._until[key] = time.monotonic() + retry

    def held(self, queues: Sequence[str]) -> bool:
        """Whether the last limited claim of ``queues`` left jobs for a limit, and no job of
        this process finished since."""
        return tuple(queues) in self._until

    def freed(self) -> None:
        """A job of this process finished: the next claim may find room at once."""
        if self._until:
            self._until.clear()

    def due_in(self, queues: Sequence[str], due_in: float | None) -> float | None:
        """``due_in`` (seconds until the earliest pending job is due) corrected for held
        jobs: when the last claim left jobs for a limit and none is due later than now, the
        time until a limit may let them go."""
        until = self._until.get(tuple(queues))
        if until is None or due_in is None or due_in > 0:
            return due_in
        return until - time.monotonic()
