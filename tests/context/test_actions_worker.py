"""The job context's actions on real worker processes, on both backends: attempt numbers over
retries, ``ctx.release()`` (no attempt counted), ``ctx.fail()`` (parked at once, ``failed()``
once), progress shown by the CLI while the job runs, every failed attempt's error listed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.context.jobs import (
    AsyncProgressThenGiveUp,
    Attempts,
    GiveUp,
    Progressing,
    ReleaseOnce,
)
from tests.worker.conftest import BOOT, ROOT, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow

IMPORT = ("--import", "tests.context.jobs")


def cli(url: str, *args: str) -> str:
    """``ferroq --database-url URL ARGS...``'s output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-c", BOOT, "--database-url", url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_attempts_release_and_fail_on_a_worker(
    runtime: Runtime, db_url: str, start_worker, marks: Marks, tmp_path: Path
) -> None:
    retried = Attempts(tag="a").dispatch()
    released = ReleaseOnce(tag="r", flag=str(tmp_path / "released")).dispatch()
    given_up = GiveUp(tag="g").dispatch()
    async_given_up = AsyncProgressThenGiveUp(tag="ag").dispatch()
    worker = start_worker(*IMPORT, "--sleep", "0.1", "--concurrency", "2", "--stop-when-empty")
    assert worker.wait(60) == 0, worker.output()
    backend = runtime.backend

    # Attempts over retries: 1, 2, 3; each failure kept, not only the last.
    assert marks.events("a") == ["attempt1", "attempt2", "attempt3"]
    assert backend.get_job(retried) is None
    errors = backend.attempt_errors(retried)
    assert [(e.attempt, e.error.splitlines()[0]) for e in errors] == [
        (1, "RuntimeError: failure of attempt 1"),
        (2, "RuntimeError: failure of attempt 2"),
    ]
    assert all(e.worker and e.worker.count(":") == 2 for e in errors)

    # The release counted no attempt: with max_attempts = 1 the job ran twice, as attempt 1
    # both times, and succeeded; the handler catching JobReleased changed nothing.
    assert marks.events("r") == ["run-attempt1", "caught", "run-attempt1"]
    assert backend.get_job(released) is None
    assert backend.attempt_errors(released) == []

    # ctx.fail(): parked at once with 4 attempts left, failed() called exactly once.
    assert marks.events("g") == ["run", "failed:JobGivenUp"]
    row = backend.get_job(given_up)
    assert row is not None
    assert (row.status, row.attempts) == ("failed", 1)
    assert (row.error or "").startswith("JobGivenUp: bad input: cannot be retried")
    # The same from an async handler on the worker's event loop; its progress was stored.
    assert marks.events("ag") == ["run1", "failed:JobGivenUp"]
    async_row = backend.get_job(async_given_up)
    assert async_row is not None
    assert (async_row.status, async_row.attempts) == ("failed", 1)
    progress = backend.get_progress([async_given_up])
    assert progress[async_given_up].message == "almost"

    shown = cli(db_url, "show", str(given_up))
    assert "failed attempts:" in shown
    assert "#1 " in shown
    assert "JobGivenUp: bad input" in shown


def test_progress_shows_in_the_cli_while_the_job_runs_and_heartbeat_extends_the_lease(
    runtime: Runtime, db_url: str, start_worker, marks: Marks, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    job_id = Progressing(tag="p", stop=str(stop)).dispatch()
    # No periodic heartbeat before a minute: the one the handler asks for is the only one.
    slow_beats = ("--heartbeat-interval", "60", "--visibility-timeout", "300")
    worker = start_worker(*IMPORT, *slow_beats, "--sleep", "0.1", "--stop-when-empty")
    try:
        wait_for(lambda: marks.events("p") == ["beat", "reported"], timeout=30)
        row = runtime.backend.get_job(job_id)
        assert row is not None
        assert row.claimed_at is not None
        assert row.heartbeat_at is not None
        assert row.heartbeat_at > row.claimed_at  # ctx.heartbeat() extended the lease

        def listed() -> dict[str, object] | None:
            (job,) = json.loads(cli(db_url, "jobs", "--json"))["jobs"]
            progress = job["progress"]
            return progress if progress and progress["fraction"] == 0.4 else None

        progress = wait_for(listed, timeout=30, interval=0.2)
        assert progress["message"] == "pages 40/100"
        assert progress["updated_at"]
        table = cli(db_url, "jobs")
        assert "PROGRESS" in table
        assert "40% pages 40/100" in table
        shown = cli(db_url, "show", str(job_id))
        assert "progress:" in shown
        assert "40% pages 40/100" in shown
    finally:
        stop.touch()
    assert worker.wait(60) == 0, worker.output()
    assert marks.events("p") == ["beat", "reported", "done"]
