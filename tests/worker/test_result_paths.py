"""The other ways into a stored result, with real ``ferroq worker`` processes on both backends:
a type with ``store_result`` and ``keep_history`` leaves its result and its history record
(a zombie whose lease was taken writes neither), one dispatch of a type without
``store_result`` stores its result (``.with_stored_result()``), and a failure wakes a waiter
in another process."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from ferroq_core import JobId, ResultMissing, dispatch_many
from tests.worker.conftest import ROOT
from tests.worker.result_jobs import Broken, Echo, KeptWhoRan
from tests.worker.test_results import RESULTS, zombie_then_taker

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow


def test_a_result_with_history_leaves_both(runtime: Runtime, start_worker) -> None:
    ids = dispatch_many([KeptWhoRan(tag=f"h{i}", seconds=[0.0]) for i in range(10)])
    worker = start_worker(*RESULTS, "--concurrency", "4", "--stop-when-empty")
    assert worker.wait(60) == 0, worker.output()
    backend = runtime.backend
    for job_id in ids:
        assert JobId(job_id).result(timeout=0) == {"attempt": 1, "pid": worker.pid}
        record = backend.get_history(job_id)
        assert record is not None, job_id
        assert (record.job_type, record.attempts) == ("test.kept_who_ran", 1)
        assert f":{worker.pid}:" in (record.worker or "")
    assert len(backend.list_history(limit=100)) == 10


def test_a_zombie_with_history_writes_neither_result_nor_record(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    # As tests/worker/test_results.py's zombie: the first attempt is stopped past its lease,
    # the second outlasts the first's remaining second.
    job_id = KeptWhoRan(tag="zh", seconds=[1.0, 4.0]).dispatch()
    _zombie, taker = zombie_then_taker(start_worker, marks, "zh")
    backend = runtime.backend
    state = backend.read_result(job_id)
    assert (state.result, state.status) == (None, "claimed"), "the zombie stored its result"
    assert backend.get_history(job_id) is None, "the zombie wrote a history record"
    assert JobId(job_id).result(timeout=30) == {"attempt": 2, "pid": taker.pid}
    record = backend.get_history(job_id)
    assert record is not None
    assert record.attempts == 2
    assert f":{taker.pid}:" in (record.worker or "")
    assert [r.job_id for r in backend.list_history()] == [job_id]


def test_one_dispatch_stores_its_result_the_others_do_not(runtime: Runtime, start_worker) -> None:
    ids = dispatch_many(
        [
            Echo(n=0),
            Echo(n=1).with_stored_result(ttl=600),
            Echo(n=2),
            Echo(n=3).with_stored_result(),
        ]
    )
    single = Echo(n=4).with_stored_result(ttl=30).dispatch()
    worker = start_worker(*RESULTS, "--stop-when-empty")
    assert worker.wait(60) == 0, worker.output()
    assert [ids[1].result(timeout=0), ids[3].result(timeout=0)] == [{"echo": 1}, {"echo": 3}]
    assert single.result(timeout=0) == {"echo": 4}
    for plain in (ids[0], ids[2]):
        with pytest.raises(ResultMissing):
            plain.result(timeout=0)
    state = runtime.backend.read_result(single)
    assert state.result is not None
    kept = (state.result.expires_at - state.result.created_at).total_seconds()
    assert abs(kept - 30) < 1.0


WAIT_FAILED = """
import sys, time
from ferroq_core import JobFailed, JobId, Queue, QueueConfig
url, job_id = sys.argv[1], int(sys.argv[2])
Queue.init(url, QueueConfig(connection="db", database_url=url))
try:
    JobId(job_id).result(timeout=60)
except JobFailed as exc:
    print(exc.error.splitlines()[0])
"""


def test_a_failure_wakes_a_waiter_in_another_process(
    runtime: Runtime, db_url: str, start_worker
) -> None:
    broken = int(Broken(code=11).dispatch())
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAIT_FAILED, db_url, str(broken)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # waiting before the job runs
        start_worker(*RESULTS)
        out, err = waiter.communicate(timeout=90)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert out.strip() == "ValueError: broken 11"
