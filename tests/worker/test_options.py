"""Worker options: priority order, exit conditions, environment, and rejected values."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from ferroq_core import make_plugin_manager
from ferroq_core.cli import make_cli
from tests.worker.conftest import BOOT, ROOT
from tests.worker.jobs import Allocate, Record

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks


@pytest.mark.slow
def test_high_drains_before_default_before_low(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    for queue in ("low", "default", "high"):
        for i in range(3):
            Record(tag=f"{queue}{i}").on_queue(queue).dispatch()
    worker = start_worker(
        "--queue", "high,default", "--queue", "low", "--concurrency", "1", "--stop-when-empty"
    )
    assert worker.wait(20) == 0, worker.output()
    assert marks.order() == [f"{q}{i}" for q in ("high", "default", "low") for i in range(3)]


@pytest.mark.slow
def test_max_jobs_once_and_stop_when_empty(runtime: Runtime, start_worker, marks: Marks) -> None:
    for i in range(5):
        Record(tag=f"r{i}").dispatch()
    worker = start_worker("--max-jobs", "3", "--concurrency", "10")
    assert worker.wait(20) == 0, worker.output()
    assert len(marks.order()) == 3
    assert runtime.backend.get_stats().pending == 2

    once = start_worker("--once")
    assert once.wait(20) == 0, once.output()
    assert len(marks.order()) == 4
    assert runtime.backend.get_stats().pending == 1

    empty = start_worker("--stop-when-empty", "--sleep", "0.1")
    assert empty.wait(20) == 0, empty.output()
    assert sorted(marks.order()) == [f"r{i}" for i in range(5)]
    assert runtime.backend.get_stats().total == 0
    # Nothing to do at all: --once and --stop-when-empty still exit.
    assert start_worker("--once").wait(20) == 0


@pytest.mark.slow
def test_memory_limit_finishes_current_work_then_exits(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    Allocate(tag="big", mb=200).dispatch()
    Record(tag="later").dispatch()
    worker = start_worker("--concurrency", "1", "--memory", "150", "--sleep", "0.1")
    assert worker.wait(20) == 0, worker.output()
    assert marks.order() == ["big"]
    assert "over --memory 150" in worker.output()
    assert runtime.backend.get_stats().pending == 1


@pytest.mark.timing
@pytest.mark.slow
def test_max_time_exits(runtime: Runtime, start_worker) -> None:
    began = time.monotonic()
    worker = start_worker("--max-time", "0.5", "--sleep", "5")
    assert worker.wait(20) == 0, worker.output()
    assert time.monotonic() - began < 5.0
    assert "--max-time 0.5s reached" in worker.output()


@pytest.mark.slow
def test_environment_sets_queue_concurrency_visibility_and_app(
    runtime: Runtime, db_url: str, marks: Marks, tmp_path: Path
) -> None:
    Record(tag="env").on_queue("mail").dispatch()
    env = dict(
        os.environ,
        QUEUE_DEFAULT="mail",
        QUEUE_MAX_CONCURRENT="3",
        QUEUE_VISIBILITY_TIMEOUT_SECS="7",
        FERROQ_APP="tests.worker.jobs",
        FERROQ_TEST_LOG=str(marks.path),
    )
    cmd = [sys.executable, "-c", BOOT, "--database-url", db_url, "worker", "--stop-when-empty"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "queues=mail concurrency=3 visibility-timeout=7s" in done.stderr
    assert marks.order() == ["env"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--concurrency", "0"], {}, "concurrency must be greater than 0"),
        ([], {"QUEUE_MAX_CONCURRENT": "0"}, "concurrency must be greater than 0"),
        (["--timeout", "-1"], {}, "timeout must be greater than 0"),
        (["--visibility-timeout", "0"], {}, "visibility_timeout must be greater than 0"),
        (["--shutdown-timeout", "-5"], {}, "shutdown_timeout must not be negative"),
        (["--heartbeat-interval", "10", "--visibility-timeout", "5"], {}, "must be shorter"),
        (["--queue", ""], {}, "queue list must name at least one queue"),
        (["--queue", "high,,low"], {}, "no empty names"),
        (["--queue", "a,a"], {}, "names a queue twice"),
        (["--max-jobs", "0"], {}, "max_jobs must be greater than 0"),
        (["--memory", "-1"], {}, "memory_limit_mb must be greater than 0"),
        (["--processes", "0"], {}, "--processes must be at least 1"),
        (["--import", "tests.worker.no_such_module"], {}, "cannot import"),
    ],
)
def test_invalid_values_are_rejected_before_anything_starts(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    # A database that cannot exist: reaching it would be a different error.
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'jobs.db'}"
    result = CliRunner().invoke(
        make_cli(make_plugin_manager()), ["--database-url", url, "worker", *args], env=env
    )
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert not (tmp_path / "missing").exists()
