"""``ferroq worker --metrics-port`` with ferroq-prometheus installed: what a scrape says
equals what a ledger of the runs saw, on both backends, with and without ``--processes``.

The suite drains 1,000 jobs per case; ``FERROQ_OBS_JOBS=10000`` runs the issue's 10,000
(docs/operations.md gives the times).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from ferroq_core import dispatch_many
from tests.observability.conftest import free_port, installed_env, scrape
from tests.observability.jobs import LEDGER_ENV, Flaky, kind_of, ledger_counts
from tests.worker.conftest import BOOT, ROOT, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime

pytestmark = pytest.mark.slow

JOBS = int(os.environ.get("FERROQ_OBS_JOBS", "1000"))


def _start(db_url: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child holds it; closed with the test's tmp dir
    cmd = [sys.executable, "-c", BOOT, "--database-url", db_url, "worker"]
    cmd += ["--import", "tests.observability.jobs", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("processes", [None, 2], ids=["one-process", "processes-2"])
def test_scraped_counters_equal_what_the_ledger_saw(
    runtime: Runtime, db_url: str, tmp_path: Path, ledger: Path, processes: int | None
) -> None:
    dispatch_many([Flaky(n, kind_of(n)) for n in range(1, JOBS + 1)])
    env = installed_env(tmp_path / "site", "ferroq_prometheus")
    env[LEDGER_ENV] = str(ledger)
    env["FERROQ_LOG_LEVEL"] = "WARNING"
    env["TMPDIR"] = str(tmp_path / "tmp")  # where the supervisor makes its directory
    (tmp_path / "tmp").mkdir()
    port = free_port()
    args = ["--metrics-port", str(port), "--metrics-host", "127.0.0.1", "--concurrency", "20"]
    if processes:
        args += ["--processes", str(processes)]
    log = tmp_path / "worker.log"
    started = time.monotonic()
    proc = _start(db_url, env, log, *args)
    try:

        def drained() -> bool:
            assert proc.poll() is None, log.read_text()
            stats = runtime.backend.get_stats()
            return stats.pending + stats.delayed + stats.claimed == 0

        wait_for(drained, timeout=30 + JOBS / 100, interval=0.2)
        if processes:
            assert [p for p in os.listdir(tmp_path / "tmp") if p.startswith("ferroq-prometheus")]
        elapsed = time.monotonic() - started
        expected = ledger_counts(str(ledger))
        assert expected["started"] >= JOBS  # every job ran at least once
        assert expected["failed"] == JOBS // 10
        names = ("started", "succeeded", "retried", "failed")

        def matches() -> dict[str, float] | None:
            # Every series a settled batch updates (a child process writes its counters and
            # its histograms one after the other: a scrape may fall between them).
            seen = scrape(port)
            got = {k: seen.get(f"ferroq_jobs_{k}_total", 0.0) for k in names}
            got["durations"] = seen.get("ferroq_job_duration_seconds_count", 0.0)
            got["waits"] = seen.get("ferroq_job_wait_seconds_count", 0.0)
            want = {k: float(expected[k]) for k in names}
            want["durations"], want["waits"] = want["succeeded"], want["started"]
            return seen if got == want else None

        try:
            seen = wait_for(matches, timeout=15, interval=0.2)
        except AssertionError:
            seen = scrape(port)
            got = {k: seen.get(f"ferroq_jobs_{k}_total") for k in names}
            raise AssertionError(f"scraped {got}, ledger {expected}") from None
        failed = 'ferroq_queue_jobs{queue="default",state="failed"}'
        assert seen[failed] == JOBS // 10
        assert seen['ferroq_queue_jobs{queue="default",state="pending"}'] == 0
        assert seen["ferroq_queue_state_up"] == 1
        assert seen["ferroq_workers"] == (processes or 1)
        assert seen["ferroq_job_duration_seconds_count"] == expected["succeeded"]
        assert seen["ferroq_job_wait_seconds_count"] == expected["started"]
        print(f"{JOBS} jobs drained in {elapsed:.1f}s ({processes or 1} process(es))")
    finally:
        _stop(proc)
    assert proc.returncode == 0, log.read_text()
    if processes:
        # The supervisor made the multiprocess directory and removed it at exit.
        assert os.listdir(tmp_path / "tmp") == []
