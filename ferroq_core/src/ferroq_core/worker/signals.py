"""SIGTERM/SIGINT handling for a worker: the first signal stops gracefully, the second exits
within a second after returning what it can.

Python runs signal handlers on the main thread only between bytecodes, so a handler waits as
long as the main thread is inside a C call (a SQLite busy wait, a database round trip). The
promise "a second signal exits within a second" cannot depend on that. So the C-level signal
handler's wake-up byte (:func:`signal.set_wakeup_fd`) is read by a small watcher thread, which
reacts at once; the Python-level handler does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any, Protocol, final

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["FORCE_EXIT_AFTER", "SignalHandlers", "StopRequest"]

log = logging.getLogger("ferroq.worker")

#: After a second signal the process exits within this many seconds, whatever still runs.
FORCE_EXIT_AFTER = 0.9
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest(Protocol):
    """What a signal asks of the worker (:meth:`~ferroq_core.worker.WorkerLoop.request_stop`
    has this shape)."""

    def __call__(self, reason: str, *, force: bool = ...) -> None:
        """Stop gracefully, or with ``force`` return every job and exit.

        :param reason: why (the signal's name).
        :param force: the second signal: exit now.
        """


@final
class SignalHandlers:
    """Installs the handlers on :meth:`install` (main thread only) and restores the old ones.

    :param request_stop: called with the signal's name on the first signal, and with
        ``force=True`` on the second.
    :param shutdown_timeout: how long running jobs may finish after the first signal (for the
        log line).
    :param hard_exit: after a second signal, end the process within :data:`FORCE_EXIT_AFTER`
        seconds even when a job thread is stuck.
    """

    def __init__(
        self, request_stop: StopRequest, *, shutdown_timeout: float, hard_exit: bool = False
    ) -> None:
        self._request_stop = request_stop
        self._shutdown_timeout = shutdown_timeout
        self._hard_exit = hard_exit
        self._old: dict[int, Any] = {}
        self._old_fd = -1
        self._pair: tuple[socket.socket, socket.socket] | None = None
        self._count = 0

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        reader, writer = socket.socketpair()
        reader.setblocking(True)
        writer.setblocking(False)
        self._pair = (reader, writer)
        for sig in _STOP_SIGNALS:
            self._old[sig] = signal.signal(sig, _noop)
        self._old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="ferroq-signals", daemon=True).start()

    def restore(self) -> None:
        if self._pair is None:
            return
        signal.set_wakeup_fd(self._old_fd)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        reader, writer = self._pair
        self._pair = None
        with contextlib.suppress(OSError):
            writer.close()
            reader.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            reader.close()

    def _watch(self) -> None:
        pair = self._pair
        if pair is None:
            return
        reader = pair[0]
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in _STOP_SIGNALS:
                    self._handle(signum)

    def _handle(self, signum: int) -> None:
        self._count += 1
        name = signal.Signals(signum).name
        if self._count == 1:
            log.warning(
                "%s received: finishing running jobs (up to %gs); send it again to exit now",
                name,
                self._shutdown_timeout,
            )
            self._request_stop(name)
            return
        log.warning("second %s: returning running jobs to pending and exiting now", name)
        if self._hard_exit:
            threading.Thread(target=_exit_later, name="ferroq-force-exit", daemon=True).start()
        self._request_stop(name, force=True)


def _noop(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: the watcher thread does the work (see the module doc)."""


def _exit_later() -> None:
    threading.Event().wait(FORCE_EXIT_AFTER)
    logging.shutdown()
    os._exit(0)
