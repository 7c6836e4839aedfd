"""SIGTERM/SIGINT on a real worker process: graceful stop, shutdown timeout, second signal."""

from __future__ import annotations

import signal
import sqlite3
import time
from typing import TYPE_CHECKING

import pytest

from tests.worker.conftest import wait_for
from tests.worker.jobs import Sleep

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow

FAST = ("--sleep", "0.1")


def test_sigterm_lets_the_running_job_finish(runtime: Runtime, start_worker, marks: Marks) -> None:
    Sleep(tag="s", seconds=2.0).dispatch()
    worker = start_worker(*FAST)
    wait_for(lambda: marks.events("s") == ["start"])
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0, worker.output()
    assert marks.events("s") == ["start", "end"]
    stats = runtime.backend.get_stats()
    assert (stats.claimed, stats.total) == (0, 0), worker.output()


def test_shutdown_timeout_returns_the_job_and_another_worker_runs_it(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    job_id = Sleep(tag="s", seconds=2.0).dispatch()
    worker = start_worker(*FAST, "--shutdown-timeout", "0.3")
    wait_for(lambda: marks.events("s") == ["start"])
    began = time.monotonic()
    worker.signal(signal.SIGINT)
    assert worker.wait(15) == 0, worker.output()
    assert time.monotonic() - began < 5.0
    row = runtime.backend.get_job(job_id)
    assert row is not None
    # Still running at the deadline: back to pending, the attempt counted.
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 1, None)
    assert "returned to pending (still running at shutdown)" in worker.output()

    second = start_worker(*FAST, "--stop-when-empty")
    assert second.wait(15) == 0, second.output()
    assert marks.events("s") == ["start", "start", "end"]
    assert runtime.backend.get_stats().total == 0


@pytest.mark.timing
def test_second_signal_exits_within_a_second(runtime: Runtime, start_worker, marks: Marks) -> None:
    job_id = Sleep(tag="s", seconds=30.0).dispatch()
    worker = start_worker(*FAST, "--shutdown-timeout", "60")
    wait_for(lambda: marks.events("s") == ["start"])
    worker.signal(signal.SIGTERM)
    wait_for(lambda: "send it again to exit now" in worker.output())
    began = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0, worker.output()
    # "Within a second", plus scheduling slack on a busy machine.
    assert time.monotonic() - began < 2.0, worker.output()
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert (row.status, row.attempts) == ("pending", 1), worker.output()


@pytest.mark.timing
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_second_signal_exits_even_while_blocked_on_a_locked_database(
    runtime: Runtime, db_url: str, start_worker
) -> None:
    # Another connection holds SQLite's write lock: the worker's claim waits inside the
    # driver (a C call, where Python-level signal handlers cannot run).
    path = db_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        worker = start_worker(*FAST)
        wait_for(lambda: "started: queues=" in worker.output())
        holder.execute("BEGIN EXCLUSIVE")
        time.sleep(0.3)  # let the worker's next claim block on the lock
        worker.signal(signal.SIGTERM)
        wait_for(lambda: "send it again to exit now" in worker.output())
        began = time.monotonic()
        worker.signal(signal.SIGTERM)
        assert worker.wait(10) == 0, worker.output()
        # "Within a second", plus scheduling slack on a busy machine.
        assert time.monotonic() - began < 2.0, worker.output()
    finally:
        holder.close()
