"""A worker's row in the registry (``ferroq workers``), and ``ferroq restart`` as it reaches
a worker.

:class:`Presence` registers the worker at start, beats its row on the lease heartbeat's tick
and in its transaction (``WorkerRegistry.beat_worker``: no polling of its own), reads the
restart signal from that beat, and deregisters at a clean exit. The reaper passes remove the
rows of dead workers: those silent for longer than their own visibility timeout, and sooner
those on this host whose process is gone. :class:`SupervisorPresence` is the same row for the
supervisor of ``ferroq worker --processes N``, beaten from a thread of its own (the supervisor
holds no lease) and passing the restart to the supervisor, which restarts its children in turn.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, final

import attrs

from ferroq_core.fleet import WorkerRegistration
from ferroq_core.runtime import fire
from ferroq_core.storage.controls import Beat
from ferroq_core.storage.rules import workers_on_host
from ferroq_core.worker.identity import hostname
from ferroq_core.worker.leases import dead_here
from ferroq_core.worker.trouble import Trouble

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from datetime import datetime

    from ferroq_core.config import WorkerConfig
    from ferroq_core.records import Lease
    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.report import Reporter

__all__ = [
    "Presence",
    "SupervisorPresence",
    "registration",
    "supervisor_presence",
    "worker_presence",
]

log = logging.getLogger("ferroq.worker")


def registration(
    worker_id: str,
    role: str,
    queues: Sequence[str],
    concurrency: int,
    visibility_timeout: float,
    supervisor: str | None = None,
) -> WorkerRegistration:
    """This process's registration under ``worker_id`` (``host:pid:uuid``)."""
    return WorkerRegistration(
        id=worker_id,
        role=role,
        host=hostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        concurrency=concurrency,
        visibility_timeout=visibility_timeout,
        supervisor=supervisor,
    )


def worker_presence(
    runtime: Runtime,
    worker_id: str,
    config: WorkerConfig,
    reporter: Reporter | None,
    on_restart: Callable[[datetime], None],
) -> Presence:
    """A worker's row: role ``worker``, or ``child`` under a supervisor (``reporter``), whose
    restarts the supervisor makes, one child at a time, so ``on_restart`` is not called."""
    if reporter is None:
        mine = registration(
            worker_id, "worker", config.queues, config.concurrency, config.visibility_timeout
        )
        return Presence(runtime, mine, on_restart)
    child = registration(
        worker_id,
        "child",
        config.queues,
        config.concurrency,
        config.visibility_timeout,
        supervisor=reporter.supervisor_id,
    )
    return Presence(runtime, child)


def supervisor_presence(
    runtime: Runtime,
    supervisor_id: str,
    config: WorkerConfig,
    on_restart: Callable[[], None],
) -> SupervisorPresence:
    """The row of a supervisor whose children run with ``config``, beaten at their heartbeat
    interval; ``on_restart`` asks the supervisor to restart them in turn."""
    mine = registration(
        supervisor_id,
        "supervisor",
        config.queues,
        0,  # it runs no job: its children's rows carry their concurrency
        config.visibility_timeout,
    )
    presence = Presence(runtime, mine, lambda _at: on_restart())
    return SupervisorPresence(presence, config.effective_heartbeat_interval)


@final
class Presence:
    """One process's row in the registry.

    :param runtime: the queue runtime (its backend stores the row, its plugins hear of it).
    :param registration: what the row says.
    :param on_restart: called from the heartbeat thread with the time of each ``ferroq
        restart`` sent after this process started and after the one it was last called
        for; None: restarts are someone else's (a supervised child's supervisor).
    """

    def __init__(
        self,
        runtime: Runtime,
        registration: WorkerRegistration,
        on_restart: Callable[[datetime], None] | None = None,
    ) -> None:
        self._runtime = runtime
        self.registration = registration
        self._on_restart = on_restart
        #: When it started on the backend's clock (set by :meth:`register`).
        self.started_at: datetime | None = None
        #: The restart this worker is stopping for, once one arrived.
        self.restart_at: datetime | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def worker_id(self) -> str:
        return self.registration.id

    def check_schema(self) -> None:
        """Raise ``SchemaMissing``/``SchemaOutdated`` unless the registry's table is there."""
        self._runtime.backend.check_schema()

    def register(self) -> None:
        """Write the row (at start; again after a reaper removed it as dead)."""
        backend = self._runtime.backend
        started = backend.register_worker(
            attrs.evolve(self.registration, started_at=self.started_at)
        )
        first = self.started_at is None
        self.started_at = started
        self.registration = attrs.evolve(self.registration, started_at=started)
        if first:
            fire(self._runtime.pm, "ferroq_worker_registered", worker=self.registration)

    def beat(self, leases: Collection[Lease]) -> Beat:
        """One heartbeat: the leases and the row, in one transaction; return the ids of the
        leases still held and of those with a cancel request. Registers again if the row was
        removed; notices a restart."""
        beat = self._runtime.backend.beat_worker(self.worker_id, leases)
        with self._lock:
            closed = self._closed
        if not beat.registered and not closed:
            log.warning(
                "worker %s: its registry row was removed as dead (no heartbeat for longer than "
                "its visibility timeout): registering again",
                self.worker_id,
            )
            self.register()
        self._notice(beat.restart_at)
        return Beat(held=beat.held, stop=beat.stop)

    def _notice(self, restart_at: datetime | None) -> None:
        started = self.started_at
        if restart_at is None or started is None or restart_at <= started:
            return
        if self.restart_at is not None and restart_at <= self.restart_at:
            return
        self.restart_at = restart_at
        if self._on_restart is not None:
            self._on_restart(restart_at)

    def deregister(self, reason: str) -> None:
        """Remove the row at a clean exit (``reason``: ``stopped`` or ``restart``); a failure
        is logged (the reaper removes the row after the visibility timeout)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._runtime.backend.deregister_worker(self.worker_id)
        except Exception as exc:
            log.warning(
                "worker %s: could not deregister (the reaper will remove it): %s",
                self.worker_id,
                exc,
            )
            return
        fire(
            self._runtime.pm, "ferroq_worker_deregistered", worker_id=self.worker_id, reason=reason
        )

    def reap(self, quiet_for: float) -> None:
        """Remove dead workers' rows: those on this host whose process is gone and whose
        last beat is older than ``quiet_for`` seconds, then every row silent for longer than
        its own visibility timeout. Errors propagate (the reaper's pass logs them)."""
        backend = self._runtime.backend
        beats = backend.registered_heartbeats()
        cutoff = backend.now() - timedelta(seconds=quiet_for)
        here = [w for w in workers_on_host(beats, hostname()) if beats[w] < cutoff]
        gone = [w for w in here if w != self.worker_id and dead_here(w)]
        for worker in gone:
            if backend.deregister_worker(worker):
                self._removed(worker, "its process is gone")
        for info in backend.reap_workers():
            self._removed(info.id, f"no heartbeat for over {info.visibility_timeout:g}s")

    def _removed(self, worker_id: str, why: str) -> None:
        log.warning("worker %s removed from the registry: %s", worker_id, why)
        fire(self._runtime.pm, "ferroq_worker_deregistered", worker_id=worker_id, reason="dead")


@final
class SupervisorPresence:
    """The supervisor's row, beaten every ``interval`` seconds from a thread of its own.

    :param presence: the row (role ``supervisor``); its ``on_restart`` asks the supervisor to
        restart its children.
    :param interval: seconds between beats (the workers' heartbeat interval).
    """

    def __init__(self, presence: Presence, interval: float) -> None:
        self.presence = presence
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trouble = Trouble(
            "supervisor heartbeat failed (will retry): %s", "supervisor heartbeat recovered"
        )

    def __enter__(self) -> SupervisorPresence:
        self.presence.check_schema()
        self.presence.register()
        self._thread = threading.Thread(
            target=self._loop, name="ferroq-supervisor-heartbeat", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.presence.deregister("stopped")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.presence.beat(())
            except Exception as exc:
                self._trouble.failed(exc)
            else:
                self._trouble.worked()
