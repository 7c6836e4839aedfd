"""SIGTERM/SIGINT handling for a worker: the first signal stops gracefully, the second exits
within a second after returning what it can."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType

    from ferroq_core.worker.loop import WorkerLoop

__all__ = ["FORCE_EXIT_AFTER", "SignalHandlers"]

log = logging.getLogger("ferroq.worker")

#: After a second signal the process exits within this many seconds, whatever still runs.
FORCE_EXIT_AFTER = 0.9


class SignalHandlers:
    """Installs the handlers on :meth:`install` (main thread only) and restores the old ones."""

    def __init__(self, worker: WorkerLoop, *, hard_exit: bool = False) -> None:
        self._worker = worker
        self._hard_exit = hard_exit
        self._old: dict[int, Any] = {}
        self._count = 0

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._count += 1
        name = signal.Signals(signum).name
        worker = self._worker
        if self._count == 1:
            log.warning(
                "%s received: finishing running jobs (up to %gs); send it again to exit now",
                name,
                worker.config.shutdown_timeout,
            )
            target = worker.request_stop
            kwargs: dict[str, Any] = {"reason": name}
        else:
            log.warning("second %s: returning running jobs to pending and exiting now", name)
            kwargs = {"reason": name, "force": True}
            target = worker.request_stop
            if self._hard_exit:
                threading.Thread(target=_exit_later, name="ferroq-force-exit", daemon=True).start()
        # Waking takes locks the interrupted code may hold: do it from a fresh thread.
        threading.Thread(target=target, kwargs=kwargs, daemon=True).start()


def _exit_later() -> None:
    threading.Event().wait(FORCE_EXIT_AFTER)
    logging.shutdown()
    os._exit(0)
