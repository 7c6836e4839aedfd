"""``WorkerLoop``: claims jobs into free slots, runs them isolated, settles them, and stops
cleanly. It talks to the database only through the storage protocol.

One main thread owns every decision (claim, settle, timeout, shutdown); job threads, the
event loop thread and the lease threads only run things and report back. That keeps the
rules in one place: a job is settled exactly once, by the main thread, fenced by its lease.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ferroq_core.config import WorkerConfig
from ferroq_core.execution import decode_row
from ferroq_core.runtime import fire
from ferroq_core.worker.attempt import attempts_exhausted
from ferroq_core.worker.cancels import ask_to_stop
from ferroq_core.worker.declare import declare_type_limits
from ferroq_core.worker.heldback import HeldBack
from ferroq_core.worker.identity import new_worker_id
from ferroq_core.worker.inbox import Inbox
from ferroq_core.worker.isolation import Isolation
from ferroq_core.worker.leases import LeaseKeeper, forget_worker
from ferroq_core.worker.limits import Limits
from ferroq_core.worker.outcome import Outcome
from ferroq_core.worker.presence import worker_presence
from ferroq_core.worker.runners import Runners
from ferroq_core.worker.running import Running, RunningRecords, RunningSet, expire
from ferroq_core.worker.schedules import Scheduler
from ferroq_core.worker.shutdown import Shutdown
from ferroq_core.worker.signals import SignalHandlers
from ferroq_core.worker.stopping import Stopping
from ferroq_core.worker.trouble import Trouble
from ferroq_core.worker.writeback import Callbacks, WriteBack

if TYPE_CHECKING:
    from ferroq_core.job import Job
    from ferroq_core.records import JobRow, Lease
    from ferroq_core.runtime import Runtime
    from ferroq_core.storage.protocol import Backend
    from ferroq_core.worker.report import Reporter

__all__ = ["Worker", "WorkerLoop"]

log = logging.getLogger("ferroq.worker")


class WorkerLoop:
    """A worker: ``WorkerLoop(runtime, WorkerConfig(...)).run()`` returns the exit code.

    :param runtime: the queue runtime (backend, plugins, registry).
    :param config: worker options; default ``WorkerConfig()``.
    :param worker_id: override the ``host:pid:uuid`` id (tests).
    :param handle_signals: install SIGTERM/SIGINT handlers while :meth:`run` runs (only
        possible on the main thread; ignored elsewhere).
    :param reporter: the channel to a supervisor (``--processes``), if any.
    :param hard_exit: after a second signal, end the process within a second even when a job
        thread is stuck (the ``ferroq worker`` command sets it; embedders usually do not).
    """

    def __init__(
        self,
        runtime: Runtime,
        config: WorkerConfig | None = None,
        *,
        worker_id: str | None = None,
        handle_signals: bool = True,
        reporter: Reporter | None = None,
        hard_exit: bool = False,
    ) -> None:
        self.runtime = runtime
        self.config = cfg = config or WorkerConfig()
        self.worker_id = worker_id or new_worker_id()
        self._handle_signals = handle_signals
        self._reporter = reporter
        self._hard_exit = hard_exit
        backend: Backend = runtime.backend
        #: Attempts settled by this worker (successes, failures, timeouts).
        self.processed = 0
        #: Successful claim calls (``--once`` allows one).
        self._claims = 0
        self._running = RunningSet()
        self._records = RunningRecords(runtime, cfg.timeout)
        self._inbox = Inbox(backend, cfg.queues)
        self._callbacks = Callbacks()
        self._writeback = WriteBack(runtime, cfg.concurrency, self._callbacks.submit)
        shutdown = Shutdown(self._running, backend, reporter, cfg.shutdown_timeout)
        #: Whether, why and how the worker stops (worker/stopping.py).
        self._stop = Stopping(
            self.worker_id, cfg, self._running, self._writeback, shutdown, self._inbox.wake
        )
        #: Its row in the worker registry, beaten with the leases (worker.presence).
        self._presence = worker_presence(runtime, self.worker_id, cfg, reporter, self._stop.restart)
        self._leases = LeaseKeeper(
            runtime,
            cfg,
            self._held_leases,
            on_stop=lambda ids: ask_to_stop(self._running, ids, reporter),
            presence=self._presence,
        )
        self._runners = Runners(
            runtime, self.worker_id, self._running, self._inbox, self._leases.channel
        )
        self._isolation = Isolation(backend, self._alone)
        self._schedules = Scheduler(runtime)  # periodic jobs (worker/schedules.py)
        # Where a write waits on a database server, the jobs just claimed run during the
        # write-back's round trip; where it is work in this process, writing back first is
        # faster (docs/performance.md, "The worker").
        self._claim_first = backend.capabilities.remote
        #: Claims that flow limits held back: write back first then (worker/heldback.py).
        self._held_back = HeldBack(self._claim_first)
        self._claim_trouble = Trouble("claim failed (will retry every %gs): %s", "claiming again")

    # -- control -----------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested", *, force: bool = False) -> None:
        """Stop claiming and let running jobs finish (up to the shutdown timeout). With
        ``force`` return every job to pending at once and exit. Safe from any thread."""
        self._stop.request(reason, force=force)

    @property
    def stopping(self) -> bool:
        return self._stop.requested

    # -- main --------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped (signal, limits, ``stop_when_empty``, ``once``); return 0, or 1
        when it gave up because results could not be written back for longer than the
        visibility timeout."""
        cfg = self.config
        backend = self.runtime.backend
        backend.check_schema()
        declare_type_limits(self.runtime)
        self._leases.reap_dead(self.worker_id)
        self._schedules.start()
        self._presence.register()
        log.info(
            "worker %s started: queues=%s concurrency=%d visibility-timeout=%gs backend=%s",
            self.worker_id,
            ",".join(cfg.queues),
            cfg.concurrency,
            cfg.visibility_timeout,
            backend.name,
        )
        if self._reporter is not None:
            self._reporter.ready()
        self._leases.start()
        signals = None
        if self._handle_signals:
            signals = SignalHandlers(
                self.request_stop, shutdown_timeout=cfg.shutdown_timeout, hard_exit=self._hard_exit
            )
            signals.install()
        try:
            self._main(Limits(cfg, time.monotonic()))
        finally:
            try:
                self._collect()
                self._stop.hand_back()
            finally:
                forget_worker(self.worker_id)
                if signals is not None:
                    signals.restore()
                self._stop_helpers()
                # After the heartbeat thread stopped: a beat would register it again.
                self._presence.deregister("restart" if self._presence.restart_at else "stopped")
        log.info(
            "worker %s stopped (%s): %d job(s) processed",
            self.worker_id,
            self._stop.reason or "done",
            self.processed,
        )
        return self._stop.exit_code

    def _main(self, limits: Limits) -> None:
        """Turn after turn: settle what finished or ran out of time; claim into the free
        slots and start what was claimed, while the runners execute and post the outcomes
        back. Once stopping, claim nothing and return when nothing runs any more."""
        queue_empty = False
        while True:
            self._collect()
            self._expire_overdue()
            if self._held_back.write_first() and self._flush():
                queue_empty = False  # a job went back to pending: it may be claimable at once
            if self._stop.check(limits, processed=self.processed, claims=self._claims):
                left = self._stop.grace_left()
                if left is None:
                    return
                self._wait(left, idle=False)
                continue
            if self._schedules.run():
                queue_empty = False  # ticks were enqueued: they may be ours to claim
            free = self._free_slots(limits)
            pause = self._pause(free, queue_empty)
            if pause is not None:
                timeout, idle = pause
                self._wait(timeout, idle=idle)
                queue_empty = queue_empty and not idle  # an idle wait ends with a fresh look
                continue
            rows = self._claim(free)
            if rows is None:
                self._wait(self.config.sleep, idle=False)
                continue
            self._held_back.claimed(self.runtime.backend.held_back(self.config.queues))
            self._start_all(rows)
            written = self._writeback.written
            if self._claim_first and self._flush():
                continue  # a job went back to pending: it may be claimable at once
            # Held back by a limit, with slots of this worker's own just written back: the
            # held jobs may be claimable now.
            freed = self._held_back.last and self._writeback.written > written
            queue_empty = len(rows) < free and not freed
            if queue_empty:
                self._stop.when_empty(held_back=self._held_back.last)

    def _stop_helpers(self) -> None:
        """Stop the callbacks, lease, job and event loop threads."""
        force = self._stop.force
        # Forced: a second signal promised an exit within a second.
        budget = 0.2 if force else 2.0
        grace = max(1.0, min(10.0, self.config.shutdown_timeout))
        if not self._callbacks.drain(budget if force else grace):
            log.warning("exiting with failed() callbacks still running")
        self._leases.stop(budget)
        self._runners.stop(budget)

    # -- claim and start ---------------------------------------------------------------------
    def _free_slots(self, limits: Limits) -> int:
        """Slots not taken by a running job, less the results waiting to be written beyond
        one batch's worth: a worker whose writes fail stops claiming."""
        running = len(self._running)
        concurrency = self.config.concurrency
        unwritten = max(0, len(self._writeback) - concurrency)
        return limits.claimable(
            concurrency - running - unwritten,
            running=running,
            processed=self.processed,
            claims=self._claims,
        )

    def _pause(self, free: int, queue_empty: bool) -> tuple[float, bool] | None:
        """Why not to claim now, as the wait to make instead (seconds, idle); None: claim."""
        sleep = self.config.sleep
        if not self._leases.may_claim():
            return min(sleep, 0.5), False  # our jobs may be reaped: claim no more until then
        if not self._isolation.may_claim():
            # Waiting to hold nothing, for an orphan: a finished job wakes the wait, but the
            # write-back that follows it does not.
            return (sleep if self._running else min(sleep, 0.05)), False
        if free <= 0:
            return sleep, False
        if queue_empty:
            # Nothing was there at the last look: sleep until notified or the poll is due.
            return sleep, True
        return None

    def _claim(self, limit: int) -> list[JobRow] | None:
        try:
            rows = self.runtime.backend.claim(self.config.queues, self.worker_id, limit)
        except Exception as exc:
            self._claim_trouble.failed(exc, self.config.sleep)
            return None
        self._claim_trouble.worked()
        self._claims += 1
        return rows

    def _start_all(self, rows: list[JobRow]) -> None:
        """Start a claim's jobs: every record is added under one lock and the sync ones are
        handed to the threads in one call."""
        rows = self._isolation.admit(rows)
        runs = self._records.records(rows)
        if rows and self.runtime.pm.hook.ferroq_jobs_claimed.get_hookimpls():
            # Rows whose attempts are spent are failed below without running: not started.
            starting = [r for r in rows if r.attempts <= r.max_attempts]
            if starting:
                fire(
                    self.runtime.pm, "ferroq_jobs_claimed", rows=starting, worker_id=self.worker_id
                )
        self._running.add_all(runs)
        startable: list[Running] = []
        for running in runs:
            row = running.row
            if self._reporter is not None:
                self._reporter.started(row.id, running.timeout)
            if row.attempts > row.max_attempts:
                # Only a job that killed its worker (or was cut off by shutdown) on its last
                # attempt comes back with more attempts than allowed: it must not run again.
                running.settled = True
                error = attempts_exhausted(row)
                self._settle_all([(running, Outcome(row=row, error=error, job=self._decode(row)))])
            else:
                startable.append(running)
        self._runners.start(startable)

    # -- settle ------------------------------------------------------------------------------
    def _collect(self) -> None:
        finished: list[tuple[Running, Outcome]] = []
        for running, outcome in self._inbox.take():
            if running.settled:
                # Timed out or returned at shutdown; the late result is dropped (a write
                # would be rejected by fencing anyway).
                log.info("job %s: late result ignored (timed out or returned)", running.row.id)
                self._isolation.ended(running)
                if running.abandoned and self._reporter is not None:
                    self._reporter.ended(running.row.id)
                continue
            running.settled = True
            finished.append((running, outcome))
        if finished:
            self._settle_all(finished)

    def _expire_overdue(self) -> None:
        """Settle the jobs past their deadline as timed out."""
        now = time.monotonic()
        for running in self._running.take_overdue(now):
            outcome = expire(running, now, self._decode(running.row))
            if running.abandoned:
                self._isolation.stray(running)
            self._settle_all([(running, outcome)])

    def _settle_all(self, finished: list[tuple[Running, Outcome]]) -> None:
        """Queue outcomes for writing back; their records leave the running set under one
        lock (a drain settles a batch per turn)."""
        self._running.discard_all([running for running, _ in finished])
        self.processed += len(finished)
        reporter = self._reporter
        add = self._writeback.add
        for running, outcome in finished:
            if reporter is not None and not running.abandoned:
                reporter.ended(running.row.id)
            add(outcome)

    def _flush(self, *, force: bool = False) -> bool:
        """Write outcomes back; successes are batched while other jobs run. True when a job
        went back to pending."""
        force = force or not self._running or self._stop.requested or self._held_back.active
        return self._writeback.flush(force=force)

    def _decode(self, row: JobRow) -> Job | None:
        try:
            return decode_row(self.runtime, row.job_type, row.payload)
        except Exception:
            return None

    def _alone(self) -> bool:
        """Whether the worker holds no job: none running, no outcome waiting to be written."""
        return not self._running and not self._writeback.rows()

    # -- leases and sleep --------------------------------------------------------------------
    def _held_leases(self) -> list[Lease]:
        rows = self._running.held_rows() + self._writeback.rows()
        return [row.lease for row in rows]

    def _wait(self, timeout: float, *, idle: bool) -> None:
        """Sleep up to ``timeout`` or until woken. Claiming first, the turn has not written
        back yet: that is done here first (and no sleep when a job went back to pending: it
        may be claimable); otherwise the top of the turn already did it."""
        if self._claim_first and self._flush():
            return
        deadline = self._running.next_deadline()
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.monotonic()) + 0.001)
        if self.config.max_time is not None and not self._stop.requested:
            timeout = min(timeout, 0.5)
        ack_wait = self._writeback.ack_wait()
        if ack_wait is not None:
            timeout = min(timeout, ack_wait)
        timeout = self._schedules.bound(timeout)  # wake for the next due tick
        self._inbox.sleep(timeout, idle=idle)


#: The seed crate's name for the worker.
Worker = WorkerLoop
