"""Exactly-once claiming under real processes on one SQLite file.

4 processes x 4 threads, each thread with its own backend and connections, drain 5,000 jobs
with batch claims of random size. Every job must be claimed exactly once, no batch may exceed
its limit, and no busy/locked error may reach a caller.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from ferroq_core.records import EnqueueRequest
from ferroq_sqlite.backend import SqliteBackend
from tests.sqlite.race_proc import QUEUE, run_process

if TYPE_CHECKING:
    from pathlib import Path

PROCESSES = 4
THREADS = 4
JOBS = 5_000
LIMIT_MAX = 16


@pytest.mark.slow
@pytest.mark.parametrize(
    ("private_locks", "query", "jobs"),
    [
        pytest.param(False, "", JOBS, id="process-lock"),
        pytest.param(True, "", JOBS, id="sqlite-locks-only"),
        # A busy timeout far shorter than the wait for the lock: ferroq's own retries must
        # absorb every busy error (fewer jobs: the backoff makes this run slow).
        pytest.param(True, "?busy_timeout=0.01&busy_retries=200", 1000, id="retries"),
    ],
)
def test_each_job_claimed_exactly_once(
    tmp_path: Path, private_locks: bool, query: str, jobs: int
) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}{query}"
    backend = SqliteBackend.from_url(url)
    backend.migrate()
    results = backend.enqueue(
        [EnqueueRequest(queue=QUEUE, job_type="race:Job", payload="{}") for _ in range(jobs)]
    )
    expected = {r.id for r in results}
    assert len(expected) == jobs

    ctx = multiprocessing.get_context("spawn")
    # Every process is ready (imports done) before any claims: otherwise the first one up
    # can drain the queue alone before the others have imported ferroq.
    start = ctx.Barrier(PROCESSES + 1)
    procs = [
        ctx.Process(
            target=run_process,
            args=(url, str(tmp_path), i, THREADS, LIMIT_MAX, start, private_locks),
        )
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    start.wait(120)
    for p in procs:
        p.join(240)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    reports = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(PROCESSES)]
    errors = [e for r in reports for e in r["errors"]]
    assert errors == [], "\n".join(errors)
    assert [x for r in reports for x in r["over_limit"]] == []
    claims = Counter(i for r in reports for i in r["claimed"])
    twice = sorted(i for i, n in claims.items() if n > 1)
    assert twice == [], f"claimed more than once: {twice[:20]}"
    assert set(claims) == expected, f"never claimed: {sorted(expected - set(claims))[:20]}"
    assert sum(1 for r in reports if r["claimed"]) >= 2, "the work was shared between processes"
    assert backend.get_stats().total == 0
    print(f"busy retries absorbed: {sum(r['busy_retried'] for r in reports)}")
    backend.close()
