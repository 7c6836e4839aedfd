"""``Queue``: the process-wide handle that dispatch and the storage functions use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, final

from ferroq_core import controlling, results
from ferroq_core.errors import NotInitialized
from ferroq_core.jobmodel import set_result_source
from ferroq_core.runtime import Runtime, fire

if TYPE_CHECKING:
    from datetime import datetime

    import pluggy

    from ferroq_core.config import QueueConfig
    from ferroq_core.control_records import CancelResult, Pause
    from ferroq_core.fleet import WorkerInfo
    from ferroq_core.storage.protocol import Backend

__all__ = ["Queue"]


@final
class Queue:
    """Process-wide queue handle. Call :meth:`init` once at start-up::

    Queue.init("sqlite:///jobs.db", QueueConfig(connection="db"))
    Queue.init()  # everything from the environment (FERROQ_DATABASE_URL, QUEUE_CONNECTION)
    """

    _runtime: Runtime | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        raise TypeError("Queue is a process-wide handle: use Queue.init(...), not Queue()")

    @classmethod
    def init(
        cls,
        url_or_engine: Any = None,
        config: QueueConfig | None = None,
        *,
        pm: pluggy.PluginManager | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> Runtime:
        """Connect the queue to a database (a URL or a SQLAlchemy ``Engine``).

        :param url_or_engine: where the jobs live; default ``config.database_url``.
        :param config: dispatch settings; default :meth:`QueueConfig.from_env`.
        :param pm: a plugin manager; default a new one with every installed plugin.
        :param backend_options: passed to the backend factory (e.g. ``pool_size``).
        :return: the runtime now in use. Calling ``init`` again replaces it.
        """
        runtime = Runtime.build(url_or_engine, config, pm, backend_options)
        _install_results()
        with cls._lock:
            old, cls._runtime = cls._runtime, runtime
        if old is not None:
            old.close()
        return runtime

    @classmethod
    def use(cls, runtime: Runtime | None) -> None:
        """Install an already built runtime (or None to uninstall it without closing)."""
        _install_results()
        with cls._lock:
            cls._runtime = runtime

    @classmethod
    def is_initialized(cls) -> bool:
        return cls._runtime is not None

    @classmethod
    def runtime(cls) -> Runtime:
        runtime = cls._runtime
        if runtime is None:
            raise NotInitialized()
        return runtime

    @classmethod
    def backend(cls) -> Backend:
        return cls.runtime().backend

    @classmethod
    def config(cls) -> QueueConfig:
        return cls.runtime().config

    @classmethod
    def workers(cls) -> list[WorkerInfo]:
        """The live workers (``ferroq workers``): every worker, supervised child and
        supervisor whose heartbeat is within its visibility timeout, with the jobs each holds."""
        return cls.backend().list_workers()

    @classmethod
    def restart_workers(cls) -> datetime:
        """Ask every worker started before now to finish its current jobs and exit 0
        (``ferroq restart``), so its process manager starts it on new code; supervisors
        restart their children in turn. Each worker sees it at its next heartbeat.

        :return: the restart's time on the backend's clock.
        """
        runtime = cls.runtime()
        requested_at = runtime.backend.request_restart()
        fire(runtime.pm, "ferroq_restart_requested", requested_at=requested_at)
        return requested_at

    @classmethod
    def reset(cls) -> None:
        """Close the backend and forget the runtime (tests, application shutdown)."""
        with cls._lock:
            old, cls._runtime = cls._runtime, None
        if old is not None:
            old.close()

    # -- control plane (ferroq_core.controlling) ---------------------------------------------
    @classmethod
    def pause(
        cls,
        queue: str | None = None,
        *,
        job_type: str | None = None,
        tenant: str | None = None,
        reason: str | None = None,
    ) -> Pause | None:
        """Stop every worker, on every host, from claiming jobs of one queue, job type or
        tenant (give exactly one); running jobs finish. Stored: it holds across restarts
        until :meth:`resume`. Returns the pause, or None when it was in force already."""
        scope, name = controlling.pause_target(queue, job_type, tenant)
        return controlling.pause(cls.runtime(), scope, name, reason=reason)

    @classmethod
    def resume(
        cls, queue: str | None = None, *, job_type: str | None = None, tenant: str | None = None
    ) -> Pause | None:
        """Remove a pause made by :meth:`pause`; return it, or None when there was none."""
        scope, name = controlling.pause_target(queue, job_type, tenant)
        return controlling.resume(cls.runtime(), scope, name)

    @classmethod
    def pauses(cls) -> list[Pause]:
        """Every pause in force."""
        return controlling.pauses(cls.runtime())

    @classmethod
    def cancel(
        cls, *ids: int, queue: str | None = None, job_type: str | None = None
    ) -> CancelResult:
        """Cancel jobs by id (or every job of ``queue`` and/or ``job_type``): pending and
        delayed ones are removed; running ones are asked to stop at their worker's next
        heartbeat. A cancelled job is never retried; its ``cancelled()`` runs, not
        ``failed()``."""
        return controlling.cancel(cls.runtime(), ids or None, queue=queue, job_type=job_type)


@final
class _QueueResults:
    """How :class:`~ferroq_core.JobId` reads results: on the runtime it is given, else on the
    process-wide queue's (:mod:`ferroq_core.results`)."""

    def result(self, job_id: int, timeout: float | None, runtime: Runtime | None) -> Any:
        return results.result(job_id, timeout, runtime or Queue.runtime())

    async def aresult(self, job_id: int, timeout: float | None, runtime: Runtime | None) -> Any:
        return await results.aresult(job_id, timeout, runtime or Queue.runtime())


def _install_results() -> None:
    set_result_source(_QueueResults())
