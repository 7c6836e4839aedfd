"""Waking this process's idle workers: a counter of wake-ups under a condition variable.

A waiter notes the generation before it looks at the database, then waits for it to change:
a wake-up that comes while it is looking is not slept through.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["WakeSignal"]


class WakeSignal:
    """Thread-safe; one per backend instance."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        """How many wake-ups happened so far."""
        with self.condition:
            return self._generation

    def wake(self) -> None:
        """End every current :meth:`wait_since` (and those that start from an older mark)."""
        with self.condition:
            self._generation += 1
            self.condition.notify_all()

    def wait_since(self, generation: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the generation differs from ``generation``;
        True when it does."""
        with self.condition:
            return self.condition.wait_for(
                lambda: self._generation != generation, max(0.0, timeout)
            )

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``predicate`` (checked under the lock, after
        every wake-up or :meth:`notify`)."""
        with self.condition:
            return self.condition.wait_for(predicate, max(0.0, timeout))

    def notify(self) -> None:
        """Let waiters in :meth:`wait_for` check their predicate again."""
        with self.condition:
            self.condition.notify_all()
