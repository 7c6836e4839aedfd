"""Lease upkeep on background threads: the heartbeat and the reaper.

The heartbeat extends every lease the worker holds (running jobs and finished jobs whose
acknowledgement is not written yet) every heartbeat interval, in one statement. The reaper
runs on its own timer (never on every loop turn) and returns other workers' expired claims.
They are separate threads so a slow reaper pass can never delay a heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, final

from ferroq_core.storage.history import PRUNE_BATCH, PRUNE_BATCHES
from ferroq_core.storage.results import prune_expired
from ferroq_core.storage.rules import merge_reaped, worker_pid, workers_on_host
from ferroq_core.worker.cancels import Sweeper
from ferroq_core.worker.channel import WorkerChannel
from ferroq_core.worker.identity import hostname, pid_alive
from ferroq_core.worker.outcome import describe_row
from ferroq_core.worker.settle import settle_reaped
from ferroq_core.worker.trouble import Trouble

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from ferroq_core.config import WorkerConfig
    from ferroq_core.records import Lease, ReapResult
    from ferroq_core.runtime import Runtime
    from ferroq_core.storage.protocol import Backend
    from ferroq_core.worker.presence import Presence

__all__ = [
    "LeaseKeeper",
    "dead_here",
    "forget_worker",
    "reap_dead_workers",
    "reap_startup_claims",
]

log = logging.getLogger("ferroq.worker")

#: Ids of the workers running in this process (see :func:`reap_startup_claims`).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


def reap_startup_claims(
    backend: Backend, worker_id: str, *, before: Callable[[list[str]], None] | None = None
) -> ReapResult:
    """Register ``worker_id`` as running here and take back the claims of dead workers on
    this host (:func:`reap_dead_workers`)."""
    with _LIVE_LOCK:
        _LIVE.add(worker_id)
    return reap_dead_workers(backend, before=before)


def reap_dead_workers(
    backend: Backend,
    *,
    quiet_for: float | None = None,
    before: Callable[[list[str]], None] | None = None,
) -> ReapResult:
    """Take back the claims of dead workers on this host (``WorkerStore.reap_worker``). A
    dead worker with *our* pid (a container restarted as pid 1 again) looks alive to a pid
    check, so claims under our pid are judged by the ids of the workers this process really
    runs.

    :param quiet_for: only workers whose last heartbeat is older than this many seconds (the
        reaper's passes: a live worker in another pid namespace under the same host name
        looks dead to a pid check, but it heartbeats).
    :param before: called with the dead workers' ids before their claims are taken back
        (the worker removes their cancelled jobs first: :class:`~.cancels.Sweeper`).
    """
    host = hostname()
    if quiet_for is None:
        holders = backend.claimed_by_host(host)
    else:
        cutoff = backend.now() - timedelta(seconds=quiet_for)
        beats = backend.worker_heartbeats()
        holders = [w for w in workers_on_host(beats, host) if beats[w] < cutoff]
    dead = [holder for holder in holders if dead_here(holder)]
    if dead and before is not None:
        before(dead)
    return merge_reaped(backend.reap_worker(holder) for holder in dead)


def dead_here(worker_id: str) -> bool:
    """Whether ``worker_id``, a worker on this host, is dead: under our pid, when this
    process does not run it; under another pid, when that process is gone."""
    if worker_id.startswith(f"{hostname()}:{os.getpid()}:"):
        with _LIVE_LOCK:
            return worker_id not in _LIVE
    return _pid_gone(worker_id)


def _pid_gone(worker_id: str) -> bool:
    pid = worker_pid(worker_id)
    return pid is not None and not pid_alive(pid)


def forget_worker(worker_id: str) -> None:
    """``worker_id`` stopped running in this process."""
    with _LIVE_LOCK:
        _LIVE.discard(worker_id)


@final
class LeaseKeeper:
    """Runs the heartbeat and reaper threads of one worker.

    :param runtime: the queue runtime (its backend heartbeats and reaps).
    :param config: the worker's options (intervals, visibility timeout).
    :param leases: returns every lease the worker holds now (called on the heartbeat thread).
    :param on_lost: called with the ids of jobs whose lease a heartbeat found reaped; default
        log them.
    :param on_stop: called with the ids of held jobs a heartbeat found cancelled (every
        heartbeat until they end).
    :param channel: what the running jobs ask of the heartbeat thread (``ctx.heartbeat()``,
        ``ctx.progress()``); default a channel of its own.
    :param presence: the worker's registry row, beaten with the leases (every tick, even
        holding none) and cleaned of dead workers by the reaper passes; None: no row.
    """

    def __init__(
        self,
        runtime: Runtime,
        config: WorkerConfig,
        leases: Callable[[], list[Lease]],
        on_lost: Callable[[set[int]], None] | None = None,
        on_stop: Callable[[frozenset[int]], None] | None = None,
        channel: WorkerChannel | None = None,
        presence: Presence | None = None,
    ) -> None:
        self._runtime = runtime
        self._on_stop = on_stop
        #: The jobs' requests: a beat now, progress to store.
        self.channel = channel or WorkerChannel()
        self._presence = presence
        self._config = config
        self._leases = leases
        self._on_lost = on_lost or _log_lost
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: monotonic time of the last heartbeat that reached the database.
        self.last_ok = time.monotonic()
        self._beats = Trouble("heartbeat failed (will retry): %s", "heartbeat recovered")
        self._reaps = Trouble(
            "reaper pass failed (will retry every pass): %s", "reaper passes succeed again"
        )
        #: Leases a heartbeat found reaped: not beaten (nor reported) again while still held.
        self._lost: set[Lease] = set()
        #: Claiming paused because heartbeats fail (see :meth:`may_claim`).
        self._paused = False
        self._sweeper = Sweeper(runtime)
        #: What failed in this reaper pass's housekeeping (the sweep, the registry, pruning):
        #: each step runs whatever the others do, and the pass reports once (``_reaps``).
        self._pass_failures: list[Exception] = []

    def start(self) -> None:
        for name, target in (("heartbeat", self._heartbeat_loop), ("reaper", self._reaper_loop)):
            thread = threading.Thread(target=target, name=f"ferroq-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.channel.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def healthy(self) -> bool:
        """False once heartbeats have failed for longer than the visibility timeout: by then
        other workers may have reaped our jobs, so claiming more would only pile up risk."""
        return time.monotonic() - self.last_ok <= self._config.visibility_timeout

    def may_claim(self) -> bool:
        """:attr:`healthy`, logging when claiming pauses and resumes (main thread only)."""
        healthy = self.healthy
        if healthy == self._paused:
            self._paused = not healthy
            if self._paused:
                log.warning(
                    "heartbeats failing for more than %gs: not claiming until they succeed",
                    self._config.visibility_timeout,
                )
            else:
                log.warning("heartbeats succeed again: claiming")
        return healthy

    # -- heartbeat ---------------------------------------------------------------------------
    def beat(self) -> None:
        """One heartbeat over every lease held now; the jobs waiting in ``ctx.heartbeat()``
        are told how it went."""
        served = self.channel.beat_starts()
        lost: set[int] = set()
        try:
            lost = self._beat()
        finally:
            self.channel.beat_done(served, lost)

    def _beat(self) -> set[int]:
        """:meth:`beat`; returns the ids whose lease it found lost."""
        current = self._leases()
        # Forget lost leases whose jobs have ended; a lost one still running stays skipped.
        self._lost &= set(current)
        leases = [lease for lease in current if lease not in self._lost]
        presence = self._presence
        if not leases:
            self.last_ok = time.monotonic()  # nothing at risk: a failed beat changes nothing
            if presence is None:
                return set()
        try:
            # The reply also names the held jobs with a cancel request (docs/pause-and-cancel);
            # with a registry row, the row rides the leases' transaction (worker.presence).
            if presence is not None:
                reply = presence.beat(leases)
            else:
                reply = self._runtime.backend.heartbeat_cancels(leases)
        except Exception as exc:
            self._beats.failed(exc)
            return set()
        held = reply.held
        if reply.stop and self._on_stop is not None:
            self._on_stop(reply.stop)
        self._beats.worked()
        self.last_ok = time.monotonic()
        lost = {lease.id for lease in leases} - held
        if lost:
            # A job settled while the heartbeat was on its way (its row deleted or released)
            # is not lost: only leases still held now are.
            still = set(self._leases())
            lost = {lease.id for lease in leases if lease.id in lost and lease in still}
        if lost:
            self._lost.update(lease for lease in leases if lease.id in lost)
            self._on_lost(lost)
        return lost

    def _heartbeat_loop(self) -> None:
        interval = self._config.effective_heartbeat_interval
        channel = self.channel
        next_beat = time.monotonic() + self._next_wait(interval)
        while not self._stop.is_set():
            wait = next_beat - time.monotonic()
            # --- jobs' requests: a beat now (ctx.heartbeat), progress due (ctx.progress) ---
            progress_in = channel.progress_due_in()
            if progress_in is not None:
                wait = min(wait, progress_in)
            if wait > 0:
                channel.wake.wait(wait)
            channel.wake.clear()
            if self._stop.is_set():
                self._write_progress()  # the last reports of jobs that just ended
                channel.beat_done(channel.beat_starts(), set())  # no job waits past the end
                return
            if channel.beat_wanted() or time.monotonic() >= next_beat:
                self.beat()
                next_beat = time.monotonic() + self._next_wait(interval)
            if channel.progress_due_in() == 0.0:
                self._write_progress()

    def _write_progress(self) -> None:
        """Store the running jobs' latest progress (one statement; a failure drops it: the
        next report replaces it anyway)."""
        updates = self.channel.take_progress()
        if not updates:
            return
        try:
            self._runtime.backend.write_progress(updates)
        except Exception as exc:
            log.debug("progress of %d job(s) not stored: %s", len(updates), exc)

    def _next_wait(self, interval: float) -> float:
        # While failing, retry sooner than the interval so the lease is saved if the database
        # comes back before it expires.
        return min(interval, 1.0) if self._beats.failing else interval

    # -- reaper ------------------------------------------------------------------------------
    def reap_dead(self, worker_id: str) -> None:
        """At start-up: take back the claims of dead workers on this host
        (:func:`reap_startup_claims`). This worker runs the ``failed()`` of the jobs failed
        (each is failed by one statement, so by one worker: called once)."""
        self._pass_failures = []
        self._settle_dead(reap_startup_claims(self._runtime.backend, worker_id, before=self._sweep))
        self._sweep()
        self._report_pass()

    def _settle_dead(self, result: ReapResult) -> None:
        if result.requeued:
            log.warning(
                "returned %d job(s) of dead workers on this host to pending (each runs alone "
                "next): %s",
                len(result.requeued),
                ", ".join(map(str, result.requeued)),
            )
        for row in result.failed:
            log.warning("%s: its worker died on the last attempt, failed", describe_row(row))
            settle_reaped(self._runtime, row)

    def reap(self) -> None:
        """One reaper pass: the claims of dead workers on this host first (their pid gone and
        two heartbeats missed, so before their leases expire), then every expired lease; rows
        parked as failed get their ``failed()`` and hooks. Then expired results are pruned,
        a bounded number per pass (:func:`~ferroq_core.storage.results.prune_expired`), and
        cancelled jobs that lost their worker are swept (:class:`~.cancels.Sweeper`)."""
        self._pass_failures = []
        try:
            quiet = 2 * self._config.effective_heartbeat_interval
            backend = self._runtime.backend
            self._settle_dead(reap_dead_workers(backend, quiet_for=quiet, before=self._sweep))
            result = backend.reap(self._config.visibility_timeout)
            prune_expired(backend)
        except Exception as exc:
            self._reaps.failed(exc)
            return
        for job_id in result.requeued:
            log.warning("job %s: lease expired, returned to pending by the reaper", job_id)
        for row in result.failed:
            log.warning("%s: lease expired on the last attempt, failed", describe_row(row))
            settle_reaped(self._runtime, row)
        self._sweep()
        if self._presence is not None:
            try:
                self._presence.reap(quiet_for=quiet)
            except Exception as exc:
                self._pass_failures.append(exc)
        self.prune()
        self._report_pass()

    def _sweep(self, holders: Collection[str] = ()) -> None:
        """Sweep cancelled jobs (:class:`~.cancels.Sweeper`); a failure is the pass's."""
        try:
            self._sweeper.sweep(holders)
        except Exception as exc:
            self._pass_failures.append(exc)

    def _report_pass(self) -> None:
        """One warning when passes start failing (the first failure of this one), one when a
        whole pass works again."""
        if self._pass_failures:
            self._reaps.failed(self._pass_failures[0])
        else:
            self._reaps.worked()

    def prune(self) -> int:
        """Delete history, attempt errors and progress past the retention window: a few small
        batches per reaper pass (a backlog is worked off over passes). Returns how many."""
        backend = self._runtime.backend
        retention = self._runtime.config.history_retention
        total = 0
        try:
            for _ in range(PRUNE_BATCHES):
                deleted = backend.prune_history(retention)
                total += deleted
                if deleted < PRUNE_BATCH:
                    break
        except Exception as exc:  # retried next pass; reported with the pass
            self._pass_failures.append(exc)
        return total

    def _reaper_loop(self) -> None:
        interval = self._config.effective_reaper_interval
        while not self._stop.wait(interval):
            self.reap()


def _log_lost(ids: set[int]) -> None:
    for job_id in sorted(ids):
        log.warning(
            "job %s: lease lost (reaped after missed heartbeats); its result will be discarded",
            job_id,
        )
