"""Orphaned jobs run alone: a job whose last attempt ended with its worker (the process died,
or its lease expired) may be the one that killed it, so a worker runs it with nothing else
claimed beside it. If it kills the process again, it is the only job lost with it, and its
attempt counts against it alone (see :func:`~ferroq_core.storage.rules.dead_worker_error`).

A worker that claims an orphan while it holds other jobs hands the orphan back and claims
nothing more until it holds none; a worker that holds none keeps the first orphan of its
claim, hands back the rest, and claims nothing more until that job is settled and written
back. A handler abandoned after its timeout counts as held until it really ends: it may still
take the process down. Rows handed back get their attempt back and keep their place in line.

Isolation is per worker: an application that runs several ``WorkerLoop`` in one process
shares the process between them (``ferroq worker`` runs one per process).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, final

from ferroq_core.storage.rules import ORPHANED, is_orphaned
from ferroq_core.worker.outcome import describe_row

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import WorkerStore
    from ferroq_core.worker.running import Running

__all__ = ["Isolation"]

log = logging.getLogger("ferroq.worker")


@final
class Isolation:
    """Keeps orphaned jobs alone in their worker (used by the worker's main thread only).

    :param store: where rows are handed back.
    :param alone: whether the worker holds no job now (none running, no outcome unwritten).
    """

    def __init__(self, store: WorkerStore, alone: Callable[[], bool]) -> None:
        self._store = store
        self._held = alone
        #: An orphan was seen: claim nothing until the worker holds no job.
        self._waiting = False
        #: Handlers given up after their timeout that still run (their rows are settled, but
        #: they may yet take the process down, or get it killed by the supervisor).
        self._strays: set[Running] = set()

    def stray(self, running: Running) -> None:
        """``running`` timed out and its handler was abandoned, still running."""
        self._strays.add(running)

    def ended(self, running: Running) -> None:
        """A late result came back: ``running``'s handler is no longer running."""
        self._strays.discard(running)

    def _alone(self) -> bool:
        return not self._strays and self._held()

    def may_claim(self) -> bool:
        """False while the worker waits to hold nothing (an orphan was seen or runs)."""
        if self._waiting and self._alone():
            self._waiting = False
        return not self._waiting

    def admit(self, rows: list[JobRow]) -> list[JobRow]:
        """The claimed rows this worker runs now; the others are handed back."""
        for row in rows:  # the common case, no orphan, costs one test per row
            error = row.error
            if error is not None and error.startswith(ORPHANED):
                break
        else:
            return rows
        self._waiting = True
        if self._alone():
            orphan = next(r for r in rows if is_orphaned(r.error))
            keep = [orphan]
            log.warning("%s: orphaned by a dead worker, running it alone", describe_row(orphan))
        else:
            keep = [r for r in rows if not is_orphaned(r.error)]
        kept = {r.id for r in keep}
        back = [r for r in rows if r.id not in kept]
        for row in back:
            if is_orphaned(row.error):
                log.info("%s: orphaned, handed back to run alone", describe_row(row))
        try:
            self._store.requeue([r.lease for r in back], count_attempt=False)
        except Exception as exc:
            # They stay claimed by this worker: run them rather than strand them until the
            # reaper finds them.
            log.warning("could not hand back %d job(s), running them here: %s", len(back), exc)
            return rows
        return keep
