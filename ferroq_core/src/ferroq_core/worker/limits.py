"""Process limits the worker watches: resident memory."""

from __future__ import annotations

import os
import sys

__all__ = ["rss_mb"]


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
