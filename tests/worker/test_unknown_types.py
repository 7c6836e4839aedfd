"""Job types a worker does not know: a warning at start when it knows none, and an unknown
type is a failed attempt retried with the normal backoff (a rolling deploy catches up), with
real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from ferroq_core import EnqueueRequest
from tests.worker.conftest import BOOT, ROOT

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow

NO_TYPES = "no job types are registered"


def test_an_unknown_type_is_retried_with_backoff_until_a_worker_knows_it(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    request = EnqueueRequest("default", "test.late_deployed", '{"tag": "late"}', max_attempts=3)
    job_id = runtime.backend.enqueue([request])[0].id
    old = start_worker("--sleep", "0.1", "--stop-when-empty")
    assert old.wait(30) == 0, old.output()
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert (row.status, row.attempts) == ("pending", 1), old.output()
    assert "no job type is registered under 'test.late_deployed'" in (row.error or "")
    # The normal backoff: full jitter over the first step (default base 5 s, up to 10 s).
    assert row.claimed_at is None
    delay = row.available_at - row.created_at
    assert timedelta(0) <= delay <= timedelta(seconds=15)
    assert "retrying in" in old.output()
    assert NO_TYPES not in old.output(), "tests.worker.jobs registers types"

    runtime.backend.make_due()  # type: ignore[attr-defined]
    new = start_worker("--sleep", "0.1", "--stop-when-empty", "--import", "tests.worker.late_jobs")
    assert new.wait(30) == 0, new.output()
    assert marks.events("late") == ["run"]
    assert runtime.backend.get_job(job_id) is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("processes", [None, 2])
def test_a_worker_without_job_types_warns_once_at_start(
    runtime: Runtime, db_url: str, processes: int | None
) -> None:
    cmd = [sys.executable, "-c", BOOT, "--database-url", db_url, "worker", "--stop-when-empty"]
    if processes is not None:
        cmd += ["--processes", str(processes)]
    env = {k: v for k, v in os.environ.items() if k != "FERROQ_APP"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if NO_TYPES in line]
    assert len(lines) == 1, done.stderr
    assert "--import" in lines[0]
    assert "WARNING" in lines[0]
