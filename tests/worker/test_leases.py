"""Leases with real processes: a killed worker's job comes back; a live one keeps its job."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.worker.conftest import wait_for
from tests.worker.jobs import Held, LastTry, Sleep

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow

LEASE = ("--sleep", "0.1", "--visibility-timeout", "1", "--heartbeat-interval", "0.2")


@pytest.mark.timing
def test_kill_9_mid_job_runs_again_on_another_worker_once(
    runtime: Runtime, start_worker, marks: Marks, tmp_path: Path
) -> None:
    # Both jobs run until the kill, however long the survivor takes to start; the re-run of
    # "k" ends at once (released after the kill).
    release = tmp_path / "release"
    Held(tag="k", release=str(release)).dispatch()
    last_try = LastTry(tag="last", seconds=60).dispatch()
    doomed = start_worker(*LEASE)
    wait_for(lambda: marks.events("k") == ["start"] and marks.events("last") == ["start"])
    # The survivor starts while the first still lives, so the job comes back through its
    # reaper's passes (not through the start-up check of dead pids); a pass finds the dead
    # pid on this host before the lease expires.
    survivor = start_worker(*LEASE, "--reaper-interval", "0.3", "--max-jobs", "1")
    wait_for(lambda: "started: queues=" in survivor.output())
    assert marks.events("k") == ["start"], "the job ended before the kill"
    doomed.kill()
    killed_at = time.monotonic()
    release.touch()
    rerun = wait_for(
        lambda: [
            when for tag, ev, pid, when in marks.lines() if ev == "start" and pid == survivor.pid
        ]
    )
    assert rerun
    # Visibility timeout (1 s) + reaper interval (0.3 s) + poll and scheduling slack.
    assert time.monotonic() - killed_at < 1.0 + 0.3 + 3.0
    assert survivor.wait(15) == 0, survivor.output()
    assert marks.events("k") == ["start", "start", "end"]
    stats = runtime.backend.get_stats()
    assert (stats.total, stats.failed) == (1, 0)
    assert "returned 2 job(s) of dead workers on this host to pending" in survivor.output()
    assert "orphaned by a dead worker, running it alone" in survivor.output()
    # The killed worker held two jobs: its death is charged to neither. The job on its last
    # attempt got it back and waits, orphaned, to run alone (the survivor ran one job).
    assert marks.events("last") == ["start"]
    row = runtime.backend.get_job(last_try)
    assert row is not None
    assert (row.status, row.attempts) == ("pending", 0)
    assert "the worker process running it died" in (row.error or "")


def test_job_longer_than_visibility_timeout_on_live_worker_runs_once(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    lease = ("--sleep", "0.1", "--visibility-timeout", "1.5", "--heartbeat-interval", "0.3")
    Sleep(tag="long", seconds=4.5).dispatch()
    runner = start_worker(*lease, "--stop-when-empty")
    wait_for(lambda: marks.events("long") == ["start"])
    # A second worker reaps aggressively the whole time.
    watcher = start_worker(*lease, "--reaper-interval", "0.2", "--max-time", "5")
    assert runner.wait(20) == 0, runner.output()
    assert watcher.wait(20) == 0, watcher.output()
    assert marks.events("long") == ["start", "end"]
    assert runtime.backend.get_stats().total == 0
    assert "lease expired" not in watcher.output()
