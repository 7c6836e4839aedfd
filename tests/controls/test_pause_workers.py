"""Pause with real worker processes, on both backends: three workers on two queues; once the
pause of one queue is acknowledged (``Queue.pause()`` returned) no job of it is claimed or
started (the ledger), the other queue keeps its rate, the pause holds across ``kill -9`` of
every worker, and ``resume`` starts the queue again."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import pytest

from ferroq_core import Queue, dispatch_many
from tests.controls.jobs import Work
from tests.worker.conftest import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core import Runtime
    from tests.controls.conftest import Ledger
    from tests.worker.conftest import WorkerProcess

pytestmark = pytest.mark.slow

JOBS = 4000
WINDOW = 3.0


def _starts(ledger: Ledger, tag: str, since: float, until: float | None = None) -> int:
    return sum(
        1 for e in ledger.of(tag, "start") if e.at >= since and (until is None or e.at < until)
    )


def _three_workers(start_worker: Callable[..., WorkerProcess]) -> list[WorkerProcess]:
    common = ("--concurrency", "2", "--sleep", "0.2", "--heartbeat-interval", "0.5")
    return [
        start_worker("--queue", "a", *common),
        start_worker("--queue", "b", *common),
        start_worker("--queue", "b,a", *common),
    ]


def test_pause_stops_one_queue_across_restarts_and_resume_starts_it(
    runtime: Runtime, ledger: Ledger, start_worker: Callable[..., WorkerProcess]
) -> None:
    dispatch_many([Work(tag="a").on_queue("a") for _ in range(JOBS)])
    dispatch_many([Work(tag="b").on_queue("b") for _ in range(JOBS)])
    workers = _three_workers(start_worker)
    wait_for(lambda: _starts(ledger, "a", 0) >= 20 and _starts(ledger, "b", 0) >= 20, timeout=90)
    before = time.time()
    time.sleep(WINDOW)
    rate_before = _starts(ledger, "b", before) / (time.time() - before)

    assert Queue.pause("a", reason="test") is not None
    acked = time.time()
    time.sleep(WINDOW)
    # Nothing of the paused queue was claimed after the pause committed; jobs claimed just
    # before it may start just after (the handler starts after the claim returns).
    late = [e for e in ledger.of("a", "start") if e.claimed is not None and e.claimed > acked]
    assert late == []
    assert _starts(ledger, "a", acked + 1.0) == 0
    rate_after = _starts(ledger, "b", acked + 0.5) / (time.time() - acked - 0.5)
    # Generous: the machine is shared; the worker serving b,a now serves only b.
    assert rate_after >= 0.5 * rate_before, (rate_before, rate_after)
    assert runtime.backend.get_stats().for_queue("a").pending > 0

    for worker in workers:
        worker.signal(signal.SIGKILL)
    for worker in workers:
        worker.wait(10)
    restarted = time.time()
    _three_workers(start_worker)
    wait_for(lambda: _starts(ledger, "b", restarted) >= 20, timeout=90)
    time.sleep(1.0)
    assert _starts(ledger, "a", acked + 1.0) == 0, "still paused after kill -9 and restart"
    assert [p.name for p in Queue.pauses()] == ["a"]

    assert Queue.resume("a") is not None
    resumed = time.time()
    wait_for(lambda: _starts(ledger, "a", resumed) >= 20, timeout=30)
    assert Queue.pauses() == []
