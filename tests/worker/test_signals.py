"""Signal handling asks for a stop through a callback: graceful on the first SIGTERM/SIGINT,
forced on the second. It needs no worker."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from ferroq_core.worker.signals import SignalHandlers


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
def test_first_signal_stops_gracefully_and_the_second_forces() -> None:
    calls: list[tuple[str, bool]] = []
    arrived = threading.Semaphore(0)

    def request_stop(reason: str, *, force: bool = False) -> None:
        calls.append((reason, force))
        arrived.release()

    before = signal.getsignal(signal.SIGTERM)
    handlers = SignalHandlers(request_stop, shutdown_timeout=3.0)
    handlers.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert arrived.acquire(timeout=5)
        os.kill(os.getpid(), signal.SIGINT)
        assert arrived.acquire(timeout=5)
    finally:
        handlers.restore()
    assert calls == [("SIGTERM", False), ("SIGINT", True)]
    assert signal.getsignal(signal.SIGTERM) == before
