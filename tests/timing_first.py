"""Under pytest-xdist, the tests marked ``timing`` run one at a time and before every other test.

They assert tight wall-clock bounds (a lock taken within 15 ms, a worker gone within 2 s of a
second signal). Run beside three other test processes on a 2-core machine, their bounds would
measure the load instead of ferroq, so each xdist process takes them in turn under an exclusive
lock (``flock`` on a file shared by the run's processes), and no other test starts anywhere
until all of them are done: a count in a second file says how many have finished. The other
tests then run in parallel as usual. Without xdist nothing changes (the run is serial anyway).

The order is set by :func:`order`: ``timing`` tests first, then ``slow`` ones, then the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pytest

__all__ = ["Barrier", "order"]

#: Longest a test waits for the timing tests of the other processes (then it runs anyway:
#: a process that died mid-test must not hang the run; pytest-timeout ends a hung test).
WAIT_LIMIT = 900.0


def _rank(item: pytest.Item) -> int:
    if item.get_closest_marker("timing") is not None:
        return 0
    return 1 if item.get_closest_marker("slow") is not None else 2


def order(items: list[pytest.Item]) -> None:
    """``timing`` tests first, then ``slow`` ones, each in their usual order (a stable sort).

    The processes take tests one at a time, so a long test handed out last would keep one
    process busy while the others have finished (tests/worker, last in the usual order, holds
    many of them). Every process collects the same order, as xdist requires."""
    items.sort(key=_rank)


class Barrier:
    """The files shared by one run's xdist processes (in the parent of their base temp)."""

    def __init__(self, shared: Path, run_id: str, total: int) -> None:
        self._lock = shared / f"timing-{run_id}.lock"
        self._done = shared / f"timing-{run_id}.done"
        #: How many ``timing`` tests the run collected (the same in every process).
        self.total = total

    @contextlib.contextmanager
    def hold(self, item: pytest.Item) -> Iterator[None]:
        """Around one test (set-up to teardown): alone if ``timing``, else after all those."""
        if item.get_closest_marker("timing") is None:
            self._wait_for_timing_tests()
            yield
            return
        with open(self._lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                with open(self._done, "a") as done:
                    done.write(".")  # under the lock: one writer at a time
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _wait_for_timing_tests(self) -> None:
        if self.total == 0:
            return
        deadline = time.monotonic() + WAIT_LIMIT
        while self._finished() < self.total and time.monotonic() < deadline:
            time.sleep(0.05)

    def _finished(self) -> int:
        try:
            return os.path.getsize(self._done)
        except FileNotFoundError:
            return 0
