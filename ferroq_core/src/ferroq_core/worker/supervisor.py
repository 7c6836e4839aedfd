"""``ferroq worker --processes N``: a supervisor that keeps N worker processes running.

The supervisor runs no job and claims nothing (its row in the worker registry is kept by
``ferroq worker`` around it, :class:`~ferroq_core.worker.presence.SupervisorPresence`). It
starts each child as ``ferroq ... worker``
(without ``--processes``), reads the jobs each child reports starting and ending (see
:mod:`ferroq_core.worker.report`), and:

- restarts a child that dies, at most ``max_restarts`` times per ``restart_window`` seconds
  per slot (beyond that it waits before the next restart, so a crash loop cannot spin);
- kills a child whose job overran its timeout, or was cancelled and has not stopped, by the
  grace period: a thread cannot be killed, a process can. The child's own timeout has already
  written the failed attempt (a cancelled job is removed when the child's claims are taken
  back); the jobs it still held come back when its replacement starts
  (``reap_startup_claims``) or by the reaper;
- forwards SIGTERM/SIGINT to every child and exits 0 once all have exited. A second signal is
  forwarded too (children then exit within a second);
- on :meth:`Supervisor.request_restart` (``ferroq restart``, which ``ferroq worker`` reads in
  the supervisor's registry heartbeat, :mod:`ferroq_core.worker.presence`) restarts its
  children one at a time: SIGTERM to one (it finishes its jobs and exits 0), a fresh one in its
  slot, and the next only once that one is ready. It keeps running itself.

Children run in their own session so a terminal's Ctrl-C reaches them once, through the
supervisor, not twice.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.worker.report import SUPERVISOR_FD_ENV, parse_line

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["Supervisor"]

log = logging.getLogger("ferroq.supervisor")

#: How a child is started: the ferroq CLI in this interpreter.
CHILD_BOOT = "from ferroq_core.cli import main; main()"


@attrs.define(eq=False)
class Child:
    """One worker slot and the process currently filling it."""

    #: Slot number (1..N), stable across restarts.
    slot: int
    #: The running process, or None while a restart is pending.
    proc: subprocess.Popen[bytes] | None = None
    #: Read end of the report pipe.
    fd: int | None = None
    #: Unparsed tail of the report stream.
    buffer: str = ""
    #: Jobs running in the child: id -> Unix-time deadline (None: no timeout).
    jobs: dict[int, float | None] = attrs.Factory(dict)
    #: Recent restart times (monotonic), for the rate limit.
    restarts: collections.deque[float] = attrs.Factory(collections.deque)
    #: Monotonic time before which it must not be restarted.
    restart_at: float = 0.0
    #: Set when the supervisor killed it for a hard timeout.
    killed_for: int | None = None
    #: Jobs of the child that were cancelled while running (their deadline is the cancel).
    cancelled: set[int] = attrs.Factory(set)
    #: The process reported that it started up (schema checked, claiming).
    ready: bool = False
    #: Some process in this slot has been ready once (later start-up failures are crashes,
    #: e.g. a database outage, and are retried).
    was_ready: bool = False
    #: The slot finished for good (a clean exit that is not restarted).
    done: bool = False
    #: The last exit was a crash (counts against the restart limit).
    crashed: bool = False
    #: Being restarted for ``ferroq restart``: the pid stopped, until its replacement is ready.
    rolling_from: int | None = None


class Supervisor:
    """Runs ``processes`` copies of ``ferroq <argv>`` and keeps them alive.

    :param argv: the children's ``ferroq`` arguments (see ``cli.worker.worker_argv``).
    :param processes: how many children.
    :param hard_timeout_grace: seconds past a job's deadline before its child is killed.
    :param max_restarts: crash restarts allowed per slot within ``restart_window`` seconds.
    :param restart_clean_exits: replace children that exit 0 (recycling by limits).
    :param env: extra environment for the children (the database URL travels here, not on
        the command line where every user of the host could read it).
    """

    def __init__(
        self,
        argv: list[str],
        processes: int,
        *,
        hard_timeout_grace: float = 5.0,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        restart_clean_exits: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = argv
        self.env = dict(env or {})
        self.restart_clean_exits = restart_clean_exits
        #: Exit code of a child that failed before it was ready: the supervisor gives up.
        self._fatal: int | None = None
        self.children = [Child(slot=i + 1) for i in range(processes)]
        self.grace = hard_timeout_grace
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self._signals = 0
        self._selector = selectors.DefaultSelector()
        #: Set from another thread by :meth:`request_restart`.
        self._restart_requested = False
        #: Children still to restart for ``ferroq restart``, in turn.
        self._to_roll: list[Child] = []

    def request_restart(self) -> None:
        """Restart every child in turn (safe from any thread): each finishes its jobs and
        exits 0, and the next is stopped once its replacement is ready."""
        self._restart_requested = True

    def _roll(self) -> None:
        """One step of a rolling restart: wait for the child being restarted to be ready
        again, then stop the next."""
        if self._restart_requested:
            self._restart_requested = False
            self._to_roll = [c for c in self.children if c.proc is not None and not c.done]
            log.warning("restart requested: restarting %d worker(s) in turn", len(self._to_roll))
        busy = [c for c in self.children if c.rolling_from is not None]
        if busy:
            child = busy[0]
            proc = child.proc
            if proc is None or proc.pid == child.rolling_from or not child.ready:
                return  # still stopping, or its replacement not ready yet
            child.rolling_from = None
            log.info("worker %d restarted (pid %d)", child.slot, proc.pid)
        while self._to_roll:
            child = self._to_roll.pop(0)
            if child.proc is None or child.proc.poll() is not None:
                continue  # gone meanwhile: its replacement starts on the new code anyway
            child.rolling_from = child.proc.pid
            log.info("worker %d: stopping it for the restart (pid %d)", child.slot, child.proc.pid)
            with contextlib.suppress(OSError):
                child.proc.send_signal(signal.SIGTERM)
            return

    # -- signals -----------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        log.warning(
            "%s received (%d): forwarding to workers",
            signal.Signals(signum).name,
            self._signals,
        )
        self._stop_children()

    def _stop_children(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(OSError):
                    child.proc.send_signal(signal.SIGTERM)

    # -- children ----------------------------------------------------------------------------
    def _spawn(self, child: Child) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, **self.env)
        env[SUPERVISOR_FD_ENV] = str(write_fd)
        kwargs: dict[str, Any] = {}
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent
        try:
            child.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD_BOOT, *self.argv],
                env=env,
                pass_fds=(write_fd,),
                start_new_session=True,
                **kwargs,
            )
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        child.fd = read_fd
        child.buffer = ""
        child.jobs.clear()
        child.cancelled.clear()
        child.killed_for = None
        child.ready = False
        self._selector.register(read_fd, selectors.EVENT_READ, child)
        log.info("worker %d started (pid %d)", child.slot, child.proc.pid)

    def _close_pipe(self, child: Child) -> None:
        if child.fd is not None:
            self._read(child)
            self._selector.unregister(child.fd)
            os.close(child.fd)
            child.fd = None

    def _read(self, child: Child) -> None:
        if child.fd is None:
            return
        while True:
            try:
                chunk = os.read(child.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            child.buffer += chunk.decode("ascii", "replace")
        *lines, child.buffer = child.buffer.split("\n")
        for line in lines:
            parsed = parse_line(line)
            if parsed is None:
                continue
            kind, job_id, deadline = parsed
            if kind == "R":
                child.ready = child.was_ready = True
            elif kind == "S":
                child.jobs[job_id] = deadline
            elif kind == "C":
                if job_id in child.jobs:
                    # Cancelled while running: killed unless it stops within the grace.
                    child.jobs[job_id] = min(time.time(), child.jobs[job_id] or float("inf"))
                    child.cancelled.add(job_id)
            else:
                child.jobs.pop(job_id, None)
                child.cancelled.discard(job_id)

    def _reap_exited(self, now: float) -> None:
        for child in self.children:
            proc = child.proc
            if proc is None or proc.poll() is None:
                continue
            self._close_pipe(child)
            code = proc.returncode
            child.proc = None
            if self._signals:
                log.info("worker %d exited (code %s)", child.slot, code)
                continue
            if not child.was_ready and code != 0:
                # The first start failed before claiming (bad URL, missing schema, failed
                # --import): every restart would fail the same way, so stop and pass its exit
                # code on.
                log.error(
                    "worker %d failed to start (exit code %s); stopping",
                    child.slot,
                    code,
                )
                self._fatal = code
                self._signals += 1
                self._stop_children()
                continue
            if code == 0:
                # A clean exit (--max-jobs, --max-time, --memory, a restart): recycle it at
                # once; it does not count against the crash-restart limit.
                child.crashed = False
                if self.restart_clean_exits or child.rolling_from is not None:
                    log.info("worker %d exited cleanly; starting a fresh one", child.slot)
                    child.restart_at = now
                else:
                    log.info("worker %d finished", child.slot)
                    child.done = True
                continue
            child.crashed = True
            why = (
                f"killed after job {child.killed_for} {_overran(child)}"
                if (child.killed_for is not None)
                else f"died (exit code {code})"
            )
            while child.restarts and now - child.restarts[0] > self.restart_window:
                child.restarts.popleft()
            if len(child.restarts) >= self.max_restarts:
                child.restart_at = child.restarts[0] + self.restart_window
                log.error(
                    "worker %d %s; restarted %d times in %gs, next restart in %.0fs",
                    child.slot,
                    why,
                    len(child.restarts),
                    self.restart_window,
                    child.restart_at - now,
                )
            else:
                child.restart_at = now
                log.warning("worker %d %s; restarting", child.slot, why)

    def _enforce_timeouts(self) -> None:
        wall = time.time()
        for child in self.children:
            if child.proc is None or child.killed_for is not None:
                continue
            for job_id, deadline in child.jobs.items():
                if deadline is not None and wall > deadline + self.grace:
                    log.error(
                        "job %s %s by more than %gs: killing worker %d (pid %d)",
                        job_id,
                        _overran(child, job_id),
                        self.grace,
                        child.slot,
                        child.proc.pid,
                    )
                    child.killed_for = job_id
                    child.proc.kill()
                    break

    # -- main --------------------------------------------------------------------------------
    def run(self) -> int:
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                self._spawn(child)
            while True:
                for key, _ in self._selector.select(timeout=0.2):
                    self._read(key.data)
                now = time.monotonic()
                self._reap_exited(now)
                if self._signals or all(c.done for c in self.children):
                    if all(c.proc is None for c in self.children):
                        log.info("all workers stopped")
                        return self._fatal or 0
                    continue
                self._enforce_timeouts()
                self._roll()
                for child in self.children:
                    if child.proc is None and not child.done and now >= child.restart_at:
                        if child.crashed:
                            child.restarts.append(now)
                        self._spawn(child)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            for child in self.children:
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.kill()
                self._close_pipe(child)
            self._selector.close()


def _overran(child: Child, job_id: int | None = None) -> str:
    """What the job the supervisor kills ``child`` for did wrong."""
    job = child.killed_for if job_id is None else job_id
    return "outlived its cancel" if job in child.cancelled else "overran its timeout"


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # best effort: without it an orphan keeps working until stopped
        return
