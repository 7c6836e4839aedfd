"""The head claim: a limited claim's common case decided by the database in one statement.

Where limits exist but do not bind (the usual state of a limit meant for bursts), the limited
claim (:mod:`ferroq_core.storage.claimplan`) would take exactly the head of the queue: the first
jobs in claim order. The head claim takes that head in one statement, after the limited claims'
lock, and only when the database finds, in that statement, that every concurrency limit over
the head's jobs holds with the head added to the live leases, and that no rate limit or fair
turn governs them. Otherwise it takes nothing and says why (:data:`Verdict`), and the backend
runs the limited claim. Both take the same jobs when the head fits.

:class:`HeadFirst` remembers where the head claim failed, so a queue whose limit binds (or that
a rate limit governs) does not pay a failed statement before every limited claim.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ferroq_core.records import JobRow
    from ferroq_core.storage.claimplan import ClaimPlan

__all__ = ["BINDS", "FITS", "OTHER", "RETRY_OTHER", "HeadFirst", "Verdict", "head_first_claim"]

#: What a head claim found: ``fits`` (it claimed the head), ``binds`` (a concurrency limit
#: would be exceeded: nothing claimed), ``other`` (a rate limit or a fair queue governs the
#: head: nothing claimed; only the limited claim counts starts and turns).
Verdict = Literal["fits", "binds", "other"]
FITS: Verdict = "fits"
BINDS: Verdict = "binds"
OTHER: Verdict = "other"

#: Seconds a queue list whose head a rate limit or a fair turn governed goes without a head
#: claim (such rules rarely go away; when one does, its queues go back to the head claim then).
RETRY_OTHER = 5.0


class HeadFirst:
    """For each queue list, whether its next limited claim tries the head claim first: not
    after the head bound a limit, until a limited claim holds nothing back (the limit no
    longer binds at the head); not for :data:`RETRY_OTHER` seconds after a rate limit or a
    fair turn governed it. Shared by a backend's claims; a lost update costs one claim."""

    def __init__(self) -> None:
        self._not_before: dict[tuple[str, ...], float] = {}

    def worth_trying(self, queues: Sequence[str]) -> bool:
        until = self._not_before.get(tuple(queues))
        return until is None or time.monotonic() >= until

    def tried(self, queues: Sequence[str], verdict: Verdict) -> None:
        key = tuple(queues)
        if verdict == BINDS:
            self._not_before[key] = math.inf
        elif verdict == OTHER:
            self._not_before[key] = time.monotonic() + RETRY_OTHER
        else:
            self._not_before.pop(key, None)

    def planned(self, queues: Sequence[str], plan: ClaimPlan) -> None:
        """A limited claim of ``queues`` ran: when it held nothing back, the head may fit."""
        key = tuple(queues)
        if not plan.blocked and self._not_before.get(key) == math.inf:
            del self._not_before[key]


def head_first_claim(
    queues: Sequence[str],
    wanted: int,
    head_first: HeadFirst,
    head: Callable[[str, int], tuple[Verdict, list[JobRow]]],
    limited: Callable[[Sequence[str], int], tuple[list[JobRow], ClaimPlan]],
) -> tuple[list[JobRow], ClaimPlan | None]:
    """Up to ``wanted`` jobs of ``queues`` (strict queue order): queue by queue the head claim
    ``head(queue, n)`` while it fits, and the limited claim ``limited(rest, n)`` of the queues
    left once one does not (or when :class:`HeadFirst` says not to try). The plan is the
    limited claim's, None when the head claims took every job."""
    order = list(dict.fromkeys(queues))
    jobs: list[JobRow] = []
    for i, queue in enumerate(order):
        left = wanted - len(jobs)
        if left <= 0:
            break
        if not head_first.worth_trying(queues):
            return _limited(queues, order[i:], left, jobs, head_first, limited)
        verdict, got = head(queue, left)
        head_first.tried(queues, verdict)
        if verdict != FITS:
            return _limited(queues, order[i:], left, jobs, head_first, limited)
        jobs += got
    return jobs, None


def _limited(
    queues: Sequence[str],
    rest: Sequence[str],
    left: int,
    jobs: list[JobRow],
    head_first: HeadFirst,
    limited: Callable[[Sequence[str], int], tuple[list[JobRow], ClaimPlan]],
) -> tuple[list[JobRow], ClaimPlan]:
    more, plan = limited(rest, left)
    head_first.planned(queues, plan)
    return jobs + more, plan
