"""When a worker writes its finished jobs back, while flow limits hold its claims back.

A worker on a database server claims before it writes back (the jobs just claimed run during
the write's round trip) and gathers successes for up to ``ACK_WINDOW``. Under a concurrency
limit that order starves it: a finished job holds its key's slot until it is written back, so
the next claim finds the keys of the last batch busy and takes only the others (with one slot
per key, every other claim came back empty and the drain ran at a quarter of the unlimited
rate). Once a claim left due jobs for a limit, the worker writes back first, at once, for
:data:`WRITE_FIRST_FOR` seconds after the last such claim; and when that write freed slots of
its own, it claims again at once instead of waiting.
"""

from __future__ import annotations

import time

__all__ = ["WRITE_FIRST_FOR", "HeldBack"]

#: Seconds after a claim that a limit held back during which write-backs come first: a claim
#: that then takes everything (the limit did not bind, because the slots were written back
#: first) must not switch the order back at once.
WRITE_FIRST_FOR = 2.0


class HeldBack:
    """A worker's record of its claims that limits held back (main thread only).

    :param claim_first: the worker's order without limits (claim, then write back).
    """

    def __init__(self, claim_first: bool) -> None:
        self._claim_first = claim_first
        self._last = False
        self._until = -1.0

    def claimed(self, held: bool) -> None:
        """The claim just made left due jobs for a limit (``held``) or not."""
        self._last = held
        if held:
            self._until = time.monotonic() + WRITE_FIRST_FOR

    @property
    def last(self) -> bool:
        """Whether the last claim left due jobs for a limit."""
        return self._last

    @property
    def active(self) -> bool:
        """Whether a limit held a claim back within :data:`WRITE_FIRST_FOR` seconds: write
        back at once (no gathering) and before claiming."""
        return self._until >= 0 and time.monotonic() < self._until

    def write_first(self) -> bool:
        """Whether to write back at the top of a turn, before the claim."""
        return not self._claim_first or self.active
