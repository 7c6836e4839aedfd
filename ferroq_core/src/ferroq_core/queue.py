"""``Queue``: the process-wide handle that dispatch and the storage functions use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, final

from ferroq_core.errors import NotInitialized
from ferroq_core.runtime import Runtime, fire

if TYPE_CHECKING:
    from datetime import datetime

    import pluggy

    from ferroq_core.config import QueueConfig
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
        with cls._lock:
            old, cls._runtime = cls._runtime, runtime
        if old is not None:
            old.close()
        return runtime

    @classmethod
    def use(cls, runtime: Runtime | None) -> None:
        """Install an already built runtime (or None to uninstall it without closing)."""
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
