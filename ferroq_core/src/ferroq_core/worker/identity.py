"""Worker ids that operators can read: ``host:pid:short-uuid``."""

from __future__ import annotations

import errno
import os
import socket
import uuid

__all__ = ["hostname", "new_worker_id", "pid_alive"]


def hostname() -> str:
    # A colon would break parsing of the id; hostnames never have one, but be safe.
    return socket.gethostname().replace(":", "_") or "localhost"


def new_worker_id() -> str:
    return f"{hostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
