"""The channel from a supervised worker process to its supervisor.

A child started by ``ferroq worker --processes N`` gets the write end of a pipe (its number in
``FERROQ_SUPERVISOR_FD``) and writes one short line per job it starts and ends::

    R 0                                     (started: schema checked, ready to claim)
    S <job id> <deadline as Unix time, or ->
    C <job id>                              (asked to stop: cancelled while running)
    E <job id>

With that the supervisor can kill a child whose job overran its timeout, or ignored a cancel
request, by the grace period (a thread cannot be killed, a process can). Lines are shorter
than ``PIPE_BUF``, so each write is atomic. The pipe is non-blocking: a supervisor that stops
reading never stalls a worker.
"""

from __future__ import annotations

import logging
import os
import time

__all__ = ["SUPERVISOR_FD_ENV", "SUPERVISOR_ID_ENV", "Reporter", "parse_line"]

SUPERVISOR_FD_ENV = "FERROQ_SUPERVISOR_FD"
#: The supervisor's id in the worker registry, which its children's rows name.
SUPERVISOR_ID_ENV = "FERROQ_SUPERVISOR_ID"

log = logging.getLogger("ferroq.worker")


class Reporter:
    """The child's end: reports started and ended jobs.

    :param fd: the pipe's write end.
    :param supervisor_id: the supervisor's registry id (``FERROQ_SUPERVISOR_ID``), if given.
    """

    def __init__(self, fd: int, supervisor_id: str | None = None) -> None:
        self._fd = fd
        self.supervisor_id = supervisor_id
        os.set_blocking(fd, False)

    @classmethod
    def from_env(cls) -> Reporter | None:
        raw = os.environ.pop(SUPERVISOR_FD_ENV, None)
        supervisor_id = os.environ.pop(SUPERVISOR_ID_ENV, None) or None
        if not raw or not raw.isdigit():
            return None
        try:
            return cls(int(raw), supervisor_id)
        except OSError:
            return None

    def ready(self) -> None:
        self._send("R 0\n")

    def started(self, job_id: int, timeout: float | None) -> None:
        deadline = "-" if timeout is None else f"{time.time() + timeout:.3f}"
        self._send(f"S {job_id} {deadline}\n")

    def cancelling(self, job_id: int) -> None:
        self._send(f"C {job_id}\n")

    def ended(self, job_id: int) -> None:
        self._send(f"E {job_id}\n")

    def _send(self, line: str) -> None:
        try:
            os.write(self._fd, line.encode("ascii"))
        except BlockingIOError:
            log.warning("supervisor channel full; dropped: %s", line.strip())
        except OSError:
            pass  # the supervisor is gone; the worker goes on


def parse_line(line: str) -> tuple[str, int, float | None] | None:
    """``("S", id, deadline)``, ``("C", id, None)``, ``("E", id, None)`` or
    ``("R", 0, None)``; None for a malformed line."""
    parts = line.split()
    try:
        if len(parts) == 3 and parts[0] == "S":
            return "S", int(parts[1]), None if parts[2] == "-" else float(parts[2])
        if len(parts) == 2 and parts[0] in ("C", "E", "R"):
            return parts[0], int(parts[1]), None
    except ValueError:
        return None
    return None
