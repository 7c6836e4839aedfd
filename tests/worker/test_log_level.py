"""The worker's log level: one INFO line per job by default, none under ``-q``,
``--log-level`` or ``FERROQ_LOG_LEVEL`` (also for supervised children), and every job still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.worker.conftest import BOOT, ROOT
from tests.worker.jobs import Record

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

JOBS = 20


def _drain(url: str, marks: Marks, options: list[str], env: dict[str, str], args: list[str]) -> str:
    """Run ``ferroq [options] worker [args]`` until the queue is empty; its stderr."""
    base = {k: v for k, v in os.environ.items() if k != "FERROQ_LOG_LEVEL"}
    cmd = [sys.executable, "-c", BOOT, "--database-url", url, *options, "worker"]
    cmd += ["--import", "tests.worker.jobs", "--stop-when-empty", *args]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**base, "FERROQ_TEST_LOG": str(marks.path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "env", "args", "per_job"),
    [
        ([], {}, [], True),
        (["-q"], {}, [], False),
        (["--quiet"], {}, ["--processes", "1"], False),  # the supervised child is quiet too
        (["--log-level", "warning"], {}, [], False),
        ([], {"FERROQ_LOG_LEVEL": "ERROR"}, [], False),
        ([], {"FERROQ_LOG_LEVEL": "ERROR"}, ["--processes", "1"], False),
        (["-v"], {}, [], True),
    ],
)
def test_the_per_job_lines_follow_the_log_level(
    runtime: Runtime,
    marks: Marks,
    options: list[str],
    env: dict[str, str],
    args: list[str],
    per_job: bool,
) -> None:
    for i in range(JOBS):
        Record(tag=f"r{i}").dispatch()
    err = _drain(runtime.config.database_url, marks, options, env, args)
    assert all(marks.events(f"r{i}") == ["run"] for i in range(JOBS)), marks.lines()
    succeeded = [line for line in err.splitlines() if ": succeeded in " in line]
    assert len(succeeded) == (JOBS if per_job else 0), err


def test_quiet_and_verbose_together_is_a_usage_error(runtime: Runtime, marks: Marks) -> None:
    cmd = [sys.executable, "-c", BOOT, "--database-url", runtime.config.database_url]
    done = subprocess.run(
        [*cmd, "-q", "-v", "worker", "--stop-when-empty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "-q and -v" in done.stderr


def test_a_bad_log_level_is_a_usage_error(runtime: Runtime) -> None:
    cmd = [sys.executable, "-c", BOOT, "--database-url", runtime.config.database_url]
    done = subprocess.run(
        [*cmd, "stats"],
        cwd=ROOT,
        env={**os.environ, "FERROQ_LOG_LEVEL": "loud"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FERROQ_LOG_LEVEL" in done.stderr
    assert "Traceback" not in done.stderr
