"""The limited claim, shared by the backends: what to read, what to take, in what order.

One limited claim is one transaction, serialized with every other limited claim (an advisory
lock on Postgres, SQLite's write lock). It reads the limits, the live leases (claimed rows: a
killed worker's slot frees when its lease is reaped, never earlier) and the starts inside each
rate window; then, queue by queue, it reads the head of the queue in
claim order and takes what the limits allow. Only when the head holds jobs back (a busy limit key
or type) does it step through the queue's (job type, limit key) groups, one index probe each, and
read from the groups with room, so a busy key never stalls the others. A fair queue always
reads by group: its limit keys take turns within a priority. A backend supplies the statements
(:class:`LimitedClaimOps`); :func:`limited_claim` runs them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ferroq_core.flowlimits import LimitRule
    from ferroq_core.records import JobRow

__all__ = [
    "GROUPS_TTL",
    "Candidate",
    "ClaimPlan",
    "GroupsSeen",
    "LimitedClaimOps",
    "Look",
    "head_size",
    "limited_claim",
]

#: (scope, name, key): one counter of one limit.
Counter = tuple[str, str, str]
#: (job type, limit key, rows to read): one group's read.
Size = tuple[str, "str | None", int]


@attrs.frozen
class Candidate:
    """A due pending job the limited claim may take."""

    id: int
    job_type: str
    #: Its limit key (the tenant when it was given none).
    limit_key: str | None
    priority: int
    #: Any value ordered like ``available_at`` (the backends pass what they store).
    available_at: object


#: What a limited claim reads first (:meth:`LimitedClaimOps.look`): the claimed rows per group
#: (queue, job type, limit key, count), the starts inside their rate windows (scope, name, key,
#: count, seconds until the oldest leaves) and the head of the first queue.
Look = tuple[
    list[tuple[str, str, "str | None", int]],
    list[tuple[str, str, str, int, float]],
    list[Candidate],
]


class LimitedClaimOps(Protocol):
    """The statements of one limited claim, run in its transaction by a backend."""

    def begin(self, queue: str, n: int) -> tuple[list[LimitRule], Look]:
        """Take the limited claims' lock; then every row of ``ferroq_limits``, and, read after
        the lock was granted, the live leases per group, the starts in their windows and the
        first ``n`` due pending jobs of ``queue`` in claim order."""

    def head(self, queue: str, n: int) -> list[Candidate]:
        """The first ``n`` due pending jobs of ``queue`` in claim order."""

    def groups(self, queue: str, *, fresh: bool) -> Iterable[tuple[str, str | None, int]]:
        """The (job type, limit key, best priority) groups of ``queue``'s pending jobs; unless
        ``fresh``, as seen up to :data:`GROUPS_TTL` seconds ago (:class:`GroupsSeen`)."""

    def candidates(self, queue: str, sizes: list[Size]) -> list[Candidate]:
        """Up to n due pending jobs of each group, in claim order."""

    def take(self, ids: list[int], starts: list[tuple[str, str, str, float]]) -> list[JobRow]:
        """The end of the claim: claim these jobs (those still pending), in claim order; record
        the rate-limited ``starts`` (scope, name, key, window seconds; none: nothing to
        record) and drop the starts whose window passed. A backend may commit here."""


#: Seconds a backend reuses the groups of a queue that is not fair: stepping through them costs
#: an index probe per group, past the index entries of the jobs claimed since the last vacuum
#: (a group new meanwhile is found when its jobs reach the head of the queue, or at the next
#: look). A fair queue looks every time: a new key's job takes its turn at once.
GROUPS_TTL = 1.0


class GroupsSeen:
    """The groups of each queue as last read, shared by a backend's limited claims."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, list[tuple[str, str | None, int]]]] = {}

    def get(
        self,
        queue: str,
        fresh: bool,
        read: Callable[[], list[tuple[str, str | None, int]]],
    ) -> list[tuple[str, str | None, int]]:
        now = time.monotonic()
        seen = self._seen.get(queue)
        if fresh or seen is None or now - seen[0] > GROUPS_TTL:
            seen = self._seen[queue] = (now, read())
        return seen[1]


#: The head read is this many times the jobs wanted, plus a few: enough that a few held jobs
#: among them still leave a full claim.
HEAD_FACTOR, HEAD_EXTRA = 2, 8


def head_size(wanted: int) -> int:
    return HEAD_FACTOR * wanted + HEAD_EXTRA


def limited_claim(
    ops: LimitedClaimOps, queues: Sequence[str], wanted: int
) -> tuple[list[JobRow], ClaimPlan]:
    """Up to ``wanted`` due jobs of ``queues`` (strict queue order) within every limit, and
    the plan (what was held back, and until when)."""
    order = list(dict.fromkeys(queues))
    rules, (running, started, head) = ops.begin(order[0], head_size(wanted))
    plan = ClaimPlan(rules, running, started, wanted)
    ids: list[int] = []
    for queue in order:
        if plan.remaining <= 0:
            break
        ids += plan.pick(queue, ops, head if queue == order[0] else None)
    # One statement claims every queue's picks (the order is each row's own: queue order
    # first, as the picks were made). Starts are recorded for the picks: a pick a plain claim
    # took meanwhile (a worker that had not seen the limits yet) counts against the rate
    # window too, which only errs on the side of the limit.
    jobs = ops.take(ids, plan.rate_starts(ids)) if ids else []
    if len(order) > 1:
        rank = {queue: i for i, queue in enumerate(order)}
        jobs.sort(key=lambda job: rank[job.queue])  # stable: claim order within a queue
    return jobs, plan


def _key(rule: LimitRule, limit_key: str | None) -> Counter:
    return (rule.scope, rule.name, (limit_key or "") if rule.per_key else "")


class ClaimPlan:
    """One limited claim's bookkeeping: the room left under every limit, what to read and what
    to take, queue after queue, and the starts to record.

    :param rules: every row of ``ferroq_limits``.
    :param running: (queue, job type, limit key, claimed count) for the claimed rows.
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
        #: Claimed jobs per (queue, limit key): a fair queue serves the key with the fewest
        #: running first, so turns carry over from one claim to the next.
        self._share: dict[tuple[str, str | None], int] = defaultdict(int)
        for queue, job_type, limit_key, count in running:
            self._share[(queue, limit_key)] += count
            for rule in self._rules_for(queue, job_type):
                if rule.concurrency is not None:
                    self._running[_key(rule, limit_key)] += count
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
        """Whether ``queue``'s limit keys take turns."""
        rule = self.rules.get(("queue", queue))
        return rule is not None and rule.fair

    def room(self, queue: str, job_type: str, limit_key: str | None) -> int:
        """How many more jobs of this group the limits allow now (at most :attr:`remaining`)."""
        room = self.remaining
        for rule in self._rules_for(queue, job_type):
            key = _key(rule, limit_key)
            if rule.concurrency is not None:
                room = min(room, rule.concurrency - self._running[key])
            if rule.rate is not None:
                room = min(room, rule.rate[0] - self._started[key])
        return max(0, room)

    def pick(
        self, queue: str, ops: LimitedClaimOps, head: list[Candidate] | None = None
    ) -> list[int]:
        """The ids to claim from ``queue`` (see the module docstring); ``head``: its head,
        when already read."""
        fair = self.fair(queue)
        chosen: list[int] = []
        if not fair:
            n = head_size(self.remaining)
            if head is None:
                head = ops.head(queue, n)
            chosen = self.choose(queue, head)
            if self.remaining <= 0 or len(head) < n:
                return chosen  # full, or the head was every due job
        sizes = self.group_sizes(queue, ops.groups(queue, fresh=fair), fair=fair)
        if sizes:
            taken = set(chosen)
            more = [c for c in ops.candidates(queue, sizes) if c.id not in taken]
            chosen += self.choose(queue, more)
        return chosen

    def group_sizes(
        self, queue: str, groups: Iterable[tuple[str, str | None, int]], *, fair: bool = False
    ) -> list[Size]:
        """How many rows to read from each (job type, limit key) group of ``queue``: as many as
        its limits leave room for (at most the jobs still wanted); groups with no room are
        left out (and noted as held).

        In a fair queue only as many as the key's turns could take: the groups of the best
        priority (all groups, when those lack the room) are filled up to the lowest turn that
        gives the jobs wanted, so a claim reads about what it takes, however many groups."""
        sizes: list[tuple[Size, int]] = []
        for job_type, limit_key, priority in groups:
            n = self.room(queue, job_type, limit_key)
            if n > 0:
                sizes.append(((job_type, limit_key, n), priority))
            else:
                self._hold(queue, job_type, limit_key)
        if not fair or not sizes:
            return [size for size, _ in sizes]
        best = min(priority for _, priority in sizes)
        top = [size for size, priority in sizes if priority == best]
        if sum(n for _, _, n in top) < self.remaining:
            top = [size for size, _ in sizes]
        share = [self._share[(queue, limit_key)] for _, limit_key, _ in top]

        def total(level: int) -> int:
            return sum(min(n, max(0, level - s)) for (_, _, n), s in zip(top, share, strict=True))

        lo, hi = 0, max(share) + self.remaining
        while lo < hi:
            mid = (lo + hi) // 2
            if total(mid) >= self.remaining:
                hi = mid
            else:
                lo = mid + 1
        found = [(t, k, min(n, max(0, lo - s))) for (t, k, n), s in zip(top, share, strict=True)]
        return [size for size in found if size[2] > 0]

    def choose(self, queue: str, candidates: Iterable[Candidate]) -> list[int]:
        """The ids to claim from ``queue``'s candidates, in claim order (round-robin by limit
        key within a priority level when the queue is fair), each within every limit."""
        ordered = sorted(candidates, key=lambda c: (c.priority, c.available_at, c.id))
        if self.fair(queue):
            # A key's n-th job here has turn n + its jobs running now; lower turns first.
            # Counting the running jobs makes the turns go round across claims: a worker
            # claiming one job at a time still alternates (and a key with a backlog never
            # starts a second job ahead of another key's first).
            turn: dict[tuple[int, str | None], int] = {}
            ranked = []
            for c in ordered:
                key = (c.priority, c.limit_key)
                turn[key] = turn.get(key, self._share[(queue, c.limit_key)]) + 1
                ranked.append((c.priority, turn[key], c))
            ordered = [c for _, _, c in sorted(ranked, key=lambda r: (r[0], r[1]))]
        chosen: list[int] = []
        for c in ordered:
            if self.remaining <= 0:
                break
            if self.room(queue, c.job_type, c.limit_key) <= 0:
                self._hold(queue, c.job_type, c.limit_key)
                continue
            self._take(queue, c)
            chosen.append(c.id)
        return chosen

    def _take(self, queue: str, c: Candidate) -> None:
        self.remaining -= 1
        self._share[(queue, c.limit_key)] += 1
        rated = []
        for rule in self._rules_for(queue, c.job_type):
            key = _key(rule, c.limit_key)
            if rule.concurrency is not None:
                self._running[key] += 1
            if rule.rate is not None:
                self._started[key] += 1
                rated.append(key)
        if rated:
            self.starts[c.id] = rated

    def _hold(self, queue: str, job_type: str, limit_key: str | None) -> None:
        """Note that a group's due jobs wait for a limit, and when a rate window frees."""
        self.blocked = True
        for rule in self._rules_for(queue, job_type):
            key = _key(rule, limit_key)
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
