"""Worker ids that operators can read: ``host:pid:short-uuid``."""

from __future__ import annotations

import os
import socket
import uuid

from ferroq_core.processes import pid_alive

__all__ = ["hostname", "new_worker_id", "pid_alive"]


def hostname() -> str:
    # A colon would break parsing of the id; hostnames never have one, but be safe.
    return socket.gethostname().replace(":", "_") or "localhost"


def new_worker_id() -> str:
    return f"{hostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
