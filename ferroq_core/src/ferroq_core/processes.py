"""Whether a process on this host is alive, for requeueing the claims of dead workers.

Used by the worker at start-up and by the ``reap_startup_claims`` storage function, so it
lives below both.
"""

from __future__ import annotations

import errno
import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (signal 0 probes without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    # A zombie child still "exists" for kill(0); treat it as dead when we can tell.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
