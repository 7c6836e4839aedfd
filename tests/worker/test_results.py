"""Stored results with real ``ferroq worker`` processes on both backends: a result is stored
by the acknowledgement and only by it (kill -9 before it, a zombie after its lease was taken),
and ``JobId.result()`` reads it from other processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa

from ferroq_core import JobFailed, JobId, dispatch_many
from tests.worker.conftest import ROOT, wait_for
from tests.worker.result_jobs import Broken, Square, WhoRan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks, WorkerProcess

pytestmark = pytest.mark.slow

RESULTS = ("--import", "tests.worker.result_jobs")
LEASE = ("--sleep", "0.1", "--visibility-timeout", "1", "--heartbeat-interval", "0.2")


@contextmanager
def acknowledgements_held(url: str, job_id: int) -> Iterator[None]:
    """Block writes to the job's row (its acknowledgement among them) for the block, so a
    worker can be killed while its acknowledgement waits. On PostgreSQL the statements still
    waiting when the block ends are ended with their sessions (their client was killed: they
    would otherwise commit once the lock is released, as an acknowledgement that reached the
    server does)."""
    if url.startswith("sqlite"):
        db = sqlite3.connect(sa.engine.make_url(url).database or "", timeout=10)
        db.isolation_level = None
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as admin:
        holder.execute("SELECT 1 FROM ferroq_jobs WHERE id = %s FOR UPDATE", (job_id,))
        try:
            yield
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND pid <> pg_backend_pid()"
            )
            holder.rollback()


def _waiting_acknowledgement(url: str) -> bool:
    """Whether an acknowledgement that stores results waits on a lock (Postgres only)."""
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO ferroq_results%%'"
        ).fetchone()
    return bool(row and row[0])


def test_kill_9_before_the_acknowledgement_stores_nothing_and_the_rerun_stores_its_own(
    runtime: Runtime, db_url: str, start_worker, marks: Marks
) -> None:
    job_id = WhoRan(tag="k", seconds=[0.5, 0.0]).dispatch()
    doomed = start_worker(*RESULTS, *LEASE)
    wait_for(lambda: marks.events("k") == ["start1"])
    with acknowledgements_held(db_url, job_id):
        wait_for(lambda: "returned1" in marks.events("k"))
        if db_url.startswith("postgresql"):
            wait_for(lambda: _waiting_acknowledgement(db_url))
        else:
            time.sleep(0.5)  # the acknowledgement is due 20 ms after the return
        doomed.kill()
    state = runtime.backend.read_result(job_id)
    assert (state.result, state.status) == (None, "claimed"), "killed before its ack"
    survivor = start_worker(*RESULTS, *LEASE, "--reaper-interval", "0.3")
    value = JobId(job_id).result(timeout=30)
    assert value == {"attempt": 2, "pid": survivor.pid}
    assert marks.events("k") == ["start1", "returned1", "start2", "returned2"]
    assert runtime.backend.get_job(job_id) is None


def zombie_then_taker(
    start_worker: Callable[..., WorkerProcess], marks: Marks, tag: str
) -> tuple[WorkerProcess, WorkerProcess]:
    """A first attempt of the job marked ``tag`` (a :class:`WhoRan`) stopped mid-run past its
    lease (the zombie), the job taken and run again by a second worker (the taker), the zombie
    resumed until its late acknowledgement was refused."""
    zombie = start_worker(*RESULTS, *LEASE)
    wait_for(lambda: marks.events(tag) == ["start1"])
    zombie.signal(signal.SIGSTOP)
    try:
        taker = start_worker(*RESULTS, *LEASE, "--reaper-interval", "0.3")
        wait_for(lambda: "start2" in marks.events(tag), timeout=30)
    finally:
        zombie.signal(signal.SIGCONT)
    wait_for(lambda: "returned1" in marks.events(tag))
    wait_for(lambda: "completion rejected, lease lost" in zombie.output(), timeout=30)
    return zombie, taker


def test_a_zombie_whose_lease_was_taken_cannot_store_its_result(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    # The first attempt is stopped mid-run past its lease; the second outlasts the first's
    # remaining second, so the zombie tries to acknowledge while the job is claimed again.
    job_id = WhoRan(tag="z", seconds=[1.0, 4.0]).dispatch()
    _zombie, taker = zombie_then_taker(start_worker, marks, "z")
    state = runtime.backend.read_result(job_id)
    assert (state.result, state.status) == (None, "claimed"), "the zombie stored its result"
    assert JobId(job_id).result(timeout=30) == {"attempt": 2, "pid": taker.pid}
    assert marks.events("z").count("returned2") == 1


WAITER = """
import json, sys
from ferroq_core import JobFailed, JobId, Queue, QueueConfig
url, ids = sys.argv[1], json.loads(sys.argv[2])
Queue.init(url, QueueConfig(connection="db", database_url=url))
out = {}
for job_id in ids:
    try:
        out[job_id] = JobId(job_id).result(timeout=120)
    except JobFailed as exc:
        out[job_id] = {"failed": exc.error.splitlines()[0]}
print(json.dumps(out))
"""


def test_result_from_another_process_for_1000_jobs(
    runtime: Runtime, db_url: str, start_worker
) -> None:
    ids = [int(i) for i in dispatch_many([Square(n=n) for n in range(1000)])]
    broken = int(Broken(code=7).dispatch())
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAITER, db_url, json.dumps([*ids, broken])],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # the waiter waits before any job ran
        start_worker(*RESULTS, "--concurrency", "4", "--stop-when-empty")
        out, err = waiter.communicate(timeout=180)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    values = json.loads(out)
    assert len(values) == 1001
    assert [values[str(i)] for i in ids] == [{"n": n, "square": n * n} for n in range(1000)]
    assert values[str(broken)] == {"failed": "ValueError: broken 7"}


def test_failed_job_raises_job_failed_and_an_unfinished_one_times_out(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    broken = Broken(code=3).dispatch()
    slow = WhoRan(tag="slow", seconds=[3.0]).dispatch()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"job {slow} is still pending"):
        slow.result(timeout=0.3)
    assert time.monotonic() - started < 5.0
    start_worker(*RESULTS, "--concurrency", "2")
    with pytest.raises(JobFailed, match="broken 3") as caught:
        broken.result(timeout=30)
    assert caught.value.job_id == broken
    assert (caught.value.error or "").startswith("ValueError: broken 3")
    wait_for(lambda: "start1" in marks.events("slow"))
    with pytest.raises(TimeoutError, match="is still claimed"):
        slow.result(timeout=0.2)
    assert slow.result(timeout=30)["attempt"] == 1
