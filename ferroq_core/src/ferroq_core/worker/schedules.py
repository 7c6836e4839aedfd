"""The worker's part in periodic jobs: enqueue the due ticks of the stored schedules.

There is no leader. Every worker looks at the earliest next run of the active schedules (one
indexed read) at most every :data:`LOOK_EVERY` seconds, or when that run comes due, and does
nothing else until one is due. A due schedule's ticks are enqueued by
:meth:`~ferroq_core.storage.schedules.ScheduleStore.advance_schedule`: a compare-and-set on
the schedule's row and the inserts in one transaction, so of several workers (or a worker
that restarts, or one whose clock is ahead) exactly one enqueues each tick; the tick's
idempotency key is a second guard while its job is active. The worker loop calls
:meth:`Scheduler.run` once per turn and bounds its idle waits with :meth:`Scheduler.bound`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ferroq_core.errors import FerroqError
from ferroq_core.schedule_records import ScheduleAdvance
from ferroq_core.schedule_rules import plan_ticks, tick_request
from ferroq_core.schedules import sync_declared
from ferroq_core.worker.trouble import Trouble

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.runtime import Runtime
    from ferroq_core.storage.protocol import Backend

__all__ = ["LOOK_EVERY", "Scheduler", "enqueue_due"]

log = logging.getLogger("ferroq.worker")

#: Seconds between two looks at the schedules when none is due sooner: how long a schedule
#: added or edited elsewhere may wait to be seen (a second: the finest cron step).
LOOK_EVERY = 1.0
#: Due schedules handled per look (more are handled by the next look, at once).
BATCH = 100


def enqueue_due(
    backend: Backend, now: datetime, *, broken: set[str] | None = None
) -> tuple[int, int]:
    """Enqueue the due ticks of the schedules due at ``now``; return (schedules looked at,
    jobs enqueued). A schedule another worker or an edit moved on meanwhile is skipped.

    :param broken: names already reported as unusable here (a timezone this host lacks):
        each is logged once.
    """
    seen = enqueued = 0
    for schedule in backend.due_schedules(now, BATCH):
        seen += 1
        assert schedule.next_run_at is not None  # due: not paused
        try:
            ticks, next_run = plan_ticks(schedule.spec.parsed(), schedule, now)
        except (FerroqError, ValueError, OverflowError) as exc:
            if broken is None or schedule.name not in broken:
                log.error("schedule %r is skipped: %s", schedule.name, exc)
                if broken is not None:
                    broken.add(schedule.name)
            continue
        step = ScheduleAdvance(
            schedule.name, schedule.revision, schedule.next_run_at, next_run, ticks
        )
        results = backend.advance_schedule(step, [tick_request(schedule.spec, t) for t in ticks])
        if results:
            enqueued += sum(1 for r in results if not r.duplicate)
            log.info(
                "schedule %r: enqueued %d tick(s), the last %s; next %s",
                schedule.name,
                len(results),
                ticks[-1].isoformat(),
                next_run.isoformat(),
            )
    return seen, enqueued


class Scheduler:
    """One worker's scheduling: :meth:`start` once, :meth:`run` every turn."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._backend = runtime.backend
        #: ``time.monotonic()`` of the next look at the table.
        self._next_look = 0.0
        self._broken: set[str] = set()
        self._trouble = Trouble(
            "schedules: enqueueing due ticks failed (will retry every %gs): %s",
            "schedules: enqueueing due ticks again",
        )

    def start(self) -> None:
        """Write the schedules this process declares in code to the table.

        :raises InvalidSchedule: a declared schedule cannot be stored.
        """
        outcomes = sync_declared(self._runtime)
        changed = {n: o for n, o in outcomes.items() if o != "unchanged"}
        if changed:
            log.info("declared schedules stored: %s", changed)

    def run(self) -> bool:
        """Enqueue what is due, if a look is due; cheap otherwise (a clock read). True when
        jobs were enqueued."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        try:
            enqueued = 0
            due_in = self._backend.schedule_due_in()
            if due_in is not None and due_in <= 0:
                seen, enqueued = enqueue_due(
                    self._backend, self._backend.now(), broken=self._broken
                )
                # Several due, or a full batch: more may be due at once; look again now.
                due_in = 0.0 if seen >= BATCH else self._backend.schedule_due_in()
        except Exception as exc:  # scheduling never takes the worker down: retried
            self._trouble.failed(exc, LOOK_EVERY)
            self._next_look = time.monotonic() + LOOK_EVERY
            return False
        self._trouble.worked()
        wait = LOOK_EVERY if due_in is None else min(LOOK_EVERY, max(0.0, due_in))
        if self._broken and due_in is not None and due_in <= 0:
            wait = LOOK_EVERY  # only unusable schedules are due: do not spin on them
        self._next_look = time.monotonic() + wait
        return enqueued > 0

    def bound(self, timeout: float) -> float:
        """``timeout``, shortened so that an idle wait ends when the next look is due: a due
        tick is enqueued on time and an edit made elsewhere is seen within a second, also by
        a worker idle with a long ``--sleep`` (which then polls its queues once a second)."""
        left = self._next_look - time.monotonic()
        # Overdue: the loop is not looking now (stopping); never turn a wait into a spin.
        return timeout if left <= 0 else min(timeout, left)
