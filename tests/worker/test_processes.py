"""``ferroq worker --processes N``: restarts, hard timeouts, signal forwarding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ferroq_core import JobState
from tests.worker.conftest import BOOT, ROOT, wait_for
from tests.worker.jobs import AsyncBlock, Good, Hang, HardExit, LastTry, Poison, Record

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow

SUPERVISED = ("--processes", "2", "--concurrency", "1", "--sleep", "0.1")


def _children_pids(marks: Marks) -> set[int]:
    return {pid for _, _, pid, _ in marks.lines()}


def test_os_exit_kills_only_a_child_which_is_restarted_and_the_job_ends_failed(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    job_id = HardExit(tag="boom").dispatch()
    for i in range(6):
        Record(tag=f"r{i}").dispatch()
    supervisor = start_worker(*SUPERVISED)
    # Each os._exit kills a child; its replacement returns the job (start-up check of dead
    # pids) and, once the job has used all its attempts, parks it failed instead of running it.
    wait_for(lambda: marks.events("boom").count("failed") == 1, timeout=30)
    wait_for(lambda: len([t for t in marks.order() if t.startswith("r")]) == 6)
    assert marks.events("boom") == ["run", "run", "failed"]
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert row.status == "failed"
    assert "worker process running it died" in (row.error or "")
    assert row.attempts == row.max_attempts == 2
    out = supervisor.output()
    assert out.count("died (exit code 7); restarting") == 2, out
    # The database URL (maybe with a password) is not on the children's command lines.
    alive = [pid for pid in _children_pids(marks) if Path(f"/proc/{pid}/cmdline").exists()]
    assert alive
    for pid in alive:
        assert "database-url" not in Path(f"/proc/{pid}/cmdline").read_text()
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0, supervisor.output()
    assert "all workers stopped" in supervisor.output()
    assert runtime.backend.get_stats().claimed == 0


def test_a_poison_job_fails_alone_and_its_neighbours_succeed(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    # Each crash kills whatever its process was running. Jobs orphaned by a dead process run
    # again alone in theirs, so the neighbour's attempt is not charged and the crasher is the
    # only job that ends failed.
    poison_id = Poison(tag="poison").dispatch()
    good = [Good(tag=f"g{i}").dispatch() for i in range(30)]
    supervisor = start_worker("--processes", "2", "--concurrency", "2", "--sleep", "0.1")
    wait_for(lambda: marks.events("poison").count("failed:LeaseExpired") == 1, timeout=90)
    wait_for(lambda: len(set(marks.order()) - {"poison"}) == 30, timeout=90)
    wait_for(lambda: runtime.backend.get_stats().claimed == 0, timeout=30)
    # Three runs alone (each counted), after at most one beside a neighbour (not counted).
    runs = marks.events("poison")
    assert runs[-1] == "failed:LeaseExpired", supervisor.output()
    assert runs[:-1] in (["run"] * 3, ["run"] * 4), supervisor.output()
    row = runtime.backend.get_job(poison_id)
    assert row is not None
    assert (row.status, row.attempts, row.max_attempts) == ("failed", 3, 3)
    assert "worker process running it died" in (row.error or "")
    for i, job_id in enumerate(good):
        assert not [e for e in marks.events(f"g{i}") if e.startswith("failed")]
        assert runtime.backend.get_job(job_id) is None, f"g{i} is still stored"
    assert supervisor.output().count("died (exit code 9); restarting") == len(runs) - 1
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0, supervisor.output()


def test_a_neighbour_on_its_last_attempt_is_not_charged_for_a_crash(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    # One attempt only, and its process dies under it because of another job: the attempt is
    # given back and it runs again, alone, to success; it never fails as LeaseExpired.
    only_try = LastTry(tag="only", seconds=1.0).dispatch()
    Poison(tag="poison", after=0.3).dispatch()
    supervisor = start_worker("--processes", "1", "--concurrency", "2", "--sleep", "0.1")
    wait_for(lambda: marks.events("only")[-1:] == ["end"], timeout=60)
    assert marks.events("only") == ["start", "start", "end"], supervisor.output()
    assert runtime.backend.get_job(only_try) is None
    wait_for(lambda: marks.events("poison")[-1:] == ["failed:LeaseExpired"], timeout=60)
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0, supervisor.output()


def test_supervisor_kills_a_child_whose_sync_job_overruns_its_timeout(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    Hang(tag="stuck").dispatch()  # timeout 0.5 s, sleeps 30 s in a thread
    supervisor = start_worker("--processes", "1", "--sleep", "0.1", "--hard-timeout-grace", "0.5")
    wait_for(lambda: "killing worker 1" in supervisor.output(), timeout=20)
    first = _children_pids(marks)
    # The replacement serves new work.
    Record(tag="after").dispatch()
    wait_for(lambda: marks.order() == ["after"], timeout=20)
    assert _children_pids(marks) - first, "the job ran on the killed child"
    assert marks.events("stuck") == ["start", "failed:JobTimeout"]
    failed = runtime.backend.list_jobs(state=JobState.FAILED)
    assert [r.job_type for r in failed] == ["test.hang"]
    supervisor.signal(signal.SIGINT)
    assert supervisor.wait(15) == 0, supervisor.output()


def test_supervisor_stops_when_workers_cannot_start(sqlite_url: str, tmp_path) -> None:
    # No `ferroq migrate`: the supervisor cannot register itself, and says why.
    cmd = [sys.executable, "-c", BOOT, "--database-url", sqlite_url, "worker", "--processes", "2"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    assert "run `ferroq migrate`" in done.stderr
    # Migrated, but every child fails before claiming (a module that does not exist):
    # restarting cannot help.
    migrated = subprocess.run(
        [sys.executable, "-c", BOOT, "--database-url", sqlite_url, "migrate"], cwd=ROOT
    )
    assert migrated.returncode == 0
    cmd += ["--import", "tests.worker.no_such_module"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    assert "failed to start (exit code 1); stopping" in done.stderr


# The supervisor never touches the database: one backend is enough here.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stop_when_empty_children_are_not_restarted(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    for i in range(4):
        Record(tag=f"r{i}").dispatch()
    supervisor = start_worker("--processes", "2", "--stop-when-empty", "--sleep", "0.1")
    assert supervisor.wait(20) == 0, supervisor.output()
    assert sorted(marks.order()) == [f"r{i}" for i in range(4)]
    assert "restarting" not in supervisor.output()


# The supervisor never touches the database: one backend is enough here.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_restart_rate_limit_holds_back_a_crash_looping_slot(
    runtime: Runtime, db_url: str, marks: Marks, tmp_path
) -> None:
    for i in range(4):
        HardExit(tag=f"x{i}").dispatch()
    argv = ["--database-url", db_url, "worker", "--concurrency", "1", "--sleep", "0.1"]
    argv += ["--import", "tests.worker.jobs"]
    script = (
        "import logging, sys; from ferroq_core.worker.supervisor import Supervisor; "
        "logging.basicConfig(level=logging.INFO); "
        f"sys.exit(Supervisor({argv!r}, 1, max_restarts=2, restart_window=60).run())"
    )
    log = tmp_path / "supervisor.log"
    env = dict(os.environ, FERROQ_TEST_LOG=str(marks.path))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stderr=out)
        try:
            wait_for(lambda: "next restart in" in log.read_text(), timeout=30)
            # Held back: no third restart while the window lasts.
            runs = len(marks.order())
            assert runs == 3, log.read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            proc.kill()
    assert len(marks.order()) == runs


# The supervisor never touches the database: one backend is enough here.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_children_recycled_by_max_jobs_are_restarted_without_limit(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    for i in range(7):
        Record(tag=f"r{i}").dispatch()
    # Each child runs one job and exits cleanly: more recycles than the crash limit (5).
    supervisor = start_worker("--processes", "1", "--max-jobs", "1", "--sleep", "0.1")
    wait_for(lambda: len(marks.order()) == 7, timeout=40)
    assert len(_children_pids(marks)) == 7
    assert "next restart in" not in supervisor.output()
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0, supervisor.output()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_supervisor_kills_a_child_whose_async_handler_blocks_the_event_loop(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    job_id = AsyncBlock(tag="wedged").dispatch()
    supervisor = start_worker("--processes", "1", "--sleep", "0.1", "--hard-timeout-grace", "0.5")
    wait_for(lambda: "killing worker 1" in supervisor.output(), timeout=20)
    Record(tag="after").dispatch()
    wait_for(lambda: marks.order() == ["after"], timeout=20)
    assert marks.events("wedged") == ["start"]
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert row.status == "failed"
    assert (row.error or "").startswith("JobTimeout")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0, supervisor.output()
