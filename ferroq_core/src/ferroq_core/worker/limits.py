"""The limits a worker stops at: ``--max-jobs``, ``--once``, ``--max-time`` and ``--memory``
(resident memory, read by :func:`rss_mb`)."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from ferroq_core.config import WorkerConfig

__all__ = ["Limits", "rss_mb"]


@final
class Limits:
    """One worker's limits. ``--max-jobs`` and ``--once`` also cap each claim
    (:meth:`claimable`), so nothing claimed under them is handed back unstarted: the worker
    stops once the jobs they let it claim are settled.

    :param config: the worker's options.
    :param started: ``time.monotonic()`` when the worker started (for ``--max-time``).
    """

    def __init__(self, config: WorkerConfig, started: float) -> None:
        self._config = config
        self._started = started

    def claimable(self, free: int, *, running: int, processed: int, claims: int) -> int:
        """How many of ``free`` slots may be claimed into now.

        :param free: slots not taken by a running job.
        :param running: jobs claimed and not settled yet.
        :param processed: attempts settled so far.
        :param claims: claims made so far.
        """
        cfg = self._config
        if cfg.once:
            free = 0 if claims else min(free, 1)
        if cfg.max_jobs is not None:
            free = min(free, cfg.max_jobs - processed - running)
        return free

    def reached(self, *, running: int, processed: int, claims: int) -> str | None:
        """Why the worker must stop now, or None while no limit is reached.

        :param running: jobs claimed and not settled yet.
        :param processed: attempts settled so far.
        :param claims: claims made so far.
        """
        cfg = self._config
        if cfg.max_jobs is not None and processed >= cfg.max_jobs:
            return f"--max-jobs {cfg.max_jobs} reached"
        if cfg.once and claims and not running:
            return "--once"
        if cfg.max_time is not None and time.monotonic() - self._started >= cfg.max_time:
            return f"--max-time {cfg.max_time:g}s reached"
        if cfg.memory_limit_mb is not None:
            used = rss_mb()
            if used is not None and used > cfg.memory_limit_mb:
                return f"memory {used:.0f} MB over --memory {cfg.memory_limit_mb:g}"
        return None


def rss_mb() -> float | None:
    """This process's resident set size in MB (None when it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    # No /proc (macOS): the peak RSS is the best available figure (bytes there, KB on Linux).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
