"""Cancel with real worker processes, on both backends: a pending job never runs; a running
async job stops within one heartbeat interval; a sync job that checks ``should_stop()``
stops; under ``--processes`` one that ignores it is killed after the grace period. None is
retried, none gets ``failed()``: each gets ``cancelled()`` once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from ferroq_core import Queue
from tests.controls.jobs import Polite, Sleepy, Stubborn, Work
from tests.worker.conftest import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core import Runtime
    from tests.controls.conftest import Ledger
    from tests.worker.conftest import WorkerProcess

pytestmark = pytest.mark.slow

#: Heartbeat interval of the workers here: a cancel reaches a worker within one.
BEAT = 0.5


def _gone(runtime: Runtime, job_id: int) -> bool:
    return runtime.backend.get_job(job_id) is None


def test_a_pending_job_never_runs(
    runtime: Runtime, ledger: Ledger, start_worker: Callable[..., WorkerProcess]
) -> None:
    doomed = Work(tag="doomed").dispatch()
    later = Work(tag="later").delay(3600).dispatch()
    kept = Work(tag="kept").dispatch()
    result = Queue.cancel(doomed, later)
    assert sorted(r.id for r in result.removed) == [doomed, later]
    assert ledger.events("doomed") == ["cancelled"], "cancelled() ran in the cancelling process"
    worker = start_worker("--queue", "default", "--stop-when-empty")
    assert worker.wait(60) == 0, worker.output()
    assert ledger.events("kept") == ["start"]
    assert ledger.events("doomed") == ["cancelled"], "never ran"
    assert ledger.events("later") == ["cancelled"]
    assert _gone(runtime, kept)
    assert _gone(runtime, doomed)


def test_a_running_async_job_stops_within_a_heartbeat(
    runtime: Runtime, ledger: Ledger, start_worker: Callable[..., WorkerProcess]
) -> None:
    job = Sleepy(tag="async").dispatch()
    worker = start_worker("--queue", "default", "--heartbeat-interval", str(BEAT))
    wait_for(lambda: ledger.of("async", "start"), timeout=60)
    asked = time.time()
    assert Queue.cancel(job).requested == (job,)
    wait_for(lambda: ledger.of("async", "cancelled"), timeout=30)
    stopped = ledger.of("async", "task-cancelled")[0].at
    # One heartbeat interval, plus a generous margin for a loaded machine.
    assert stopped - asked < BEAT + 3.0, f"took {stopped - asked:.2f}s"
    wait_for(lambda: _gone(runtime, job), timeout=10)
    time.sleep(2 * BEAT)
    assert ledger.events("async") == ["start", "task-cancelled", "cancelled"], "no retry"
    worker.signal()
    assert worker.wait(30) == 0, worker.output()


def test_a_sync_job_that_checks_should_stop_stops(
    runtime: Runtime, ledger: Ledger, start_worker: Callable[..., WorkerProcess]
) -> None:
    job = Polite(tag="polite").dispatch()
    other = Polite(tag="other", seconds=1.0).dispatch()
    worker = start_worker(
        "--queue", "default", "--concurrency", "2", "--heartbeat-interval", str(BEAT)
    )
    wait_for(lambda: ledger.of("polite", "start") and ledger.of("other", "start"), timeout=60)
    asked = time.time()
    Queue.cancel(job)
    wait_for(lambda: ledger.of("polite", "cancelled"), timeout=30)
    assert ledger.of("polite", "stopping")[0].at - asked < BEAT + 3.0
    wait_for(lambda: _gone(runtime, job) and _gone(runtime, other), timeout=30)
    assert ledger.events("polite") == ["start", "stopping", "cancelled"], "not retried"
    assert ledger.events("other") == ["start", "end"], "the other job ran on untouched"
    worker.signal()
    assert worker.wait(30) == 0, worker.output()


def test_under_processes_a_job_that_ignores_its_cancel_is_killed_after_the_grace(
    runtime: Runtime, ledger: Ledger, start_worker: Callable[..., WorkerProcess]
) -> None:
    job = Stubborn(tag="stubborn").dispatch()
    supervisor = start_worker(
        "--queue",
        "default",
        "--processes",
        "1",
        "--hard-timeout-grace",
        "1",
        "--heartbeat-interval",
        str(BEAT),
    )
    wait_for(lambda: ledger.of("stubborn", "start"), timeout=60)
    first = ledger.of("stubborn", "start")[0].pid
    Queue.cancel(job)
    # Killed after the grace; its replacement removes the job as cancelled before it takes
    # back the dead child's claims (a plain take-back would fail this one-attempt job).
    wait_for(lambda: ledger.of("stubborn", "cancelled"), timeout=60)
    assert _gone(runtime, job)
    Work(tag="after").dispatch()
    wait_for(lambda: ledger.of("after", "start"), timeout=60)
    assert ledger.events("stubborn") == ["start", "cancelled"], "not retried, no failed()"
    assert ledger.of("stubborn", "cancelled")[0].pid != first, "the replacement child"
    assert "outlived its cancel" in supervisor.output()
    supervisor.signal()
    assert supervisor.wait(30) == 0, supervisor.output()
