"""Isolation, timeouts, permanent failures, retries and backoff, with real worker processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ferroq_core import EnqueueRequest, JobState
from tests.worker.jobs import AsyncHang, Backoff, Exit, Flaky, Hang, Raise, Record

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow


def _raw(runtime: Runtime, job_type: str, payload: str) -> int:
    request = EnqueueRequest(queue="default", job_type=job_type, payload=payload, max_attempts=3)
    return runtime.backend.enqueue([request])[0].id


def test_every_kind_of_failure_ends_as_documented_and_the_worker_keeps_serving(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    ids: dict[str, int] = {}
    Record(tag="r0").dispatch()
    ids["hang"] = Hang(tag="hang").dispatch()
    Record(tag="r1").dispatch()
    ids["async"] = AsyncHang(tag="async").dispatch()
    ids["exit"] = Exit(tag="exit").dispatch()
    ids["ki"] = Raise(tag="ki", kind="KeyboardInterrupt").dispatch()
    ids["mem"] = Raise(tag="mem", kind="MemoryError").dispatch()
    ids["bad"] = _raw(runtime, "test.record", '{"tag": ')
    ids["wrong"] = _raw(runtime, "test.record", '{"label": "x"}')
    ids["unknown"] = _raw(runtime, "nope.missing", '{"tag": "x"}')
    for i in range(2, 6):
        Record(tag=f"r{i}").dispatch()

    worker = start_worker("--sleep", "0.1", "--concurrency", "2", "--stop-when-empty")
    assert worker.wait(30) == 0, worker.output()
    out = worker.output()

    # Every other job ran, before and after each failure.
    assert sorted(t for t in marks.order("run") if t.startswith("r")) == [f"r{i}" for i in range(6)]
    unknown = runtime.backend.get_job(ids.pop("unknown"))
    failed = {row.id: row for row in runtime.backend.list_jobs(state=JobState.FAILED)}
    assert set(failed) == set(ids.values()), out
    assert runtime.backend.get_stats().failed == runtime.backend.get_stats().total - 1

    def error(name: str) -> str:
        return failed[ids[name]].error or ""

    # Timeouts: a failed attempt (JobTimeout); the async one was cancelled, the sync one's
    # thread was given up and never finished in time.
    assert error("hang").startswith("JobTimeout: job ")
    assert error("async").startswith("JobTimeout: job ")
    assert marks.events("hang") == ["start", "failed:JobTimeout"]
    events = marks.events("async")
    assert events[0] == "start"
    assert sorted(events[1:]) == ["cancelled", "failed:JobTimeout"]
    # BaseExceptions raised by a job fail only that job.
    assert error("exit").startswith("SystemExit: 3")
    assert marks.events("exit") == ["run", "failed"]
    assert error("ki").startswith("KeyboardInterrupt")
    assert error("mem").startswith("MemoryError")
    assert marks.events("ki") == ["run", "failed:KeyboardInterrupt"]
    # Undecodable payloads fail at once, naming the type and the reason, with the raw payload
    # kept for inspection; an unknown type is a failed attempt, retried after a backoff.
    for name in ("bad", "wrong"):
        assert failed[ids[name]].attempts == 1, name
    assert "test.record" in error("bad")
    assert "not valid JSON" in error("bad")
    assert failed[ids["bad"]].payload == '{"tag": '
    assert "test.record" in error("wrong")
    assert "tag" in error("wrong")
    assert unknown is not None
    assert (unknown.status, unknown.attempts) == ("pending", 1)
    assert "nope.missing" in (unknown.error or "")
    assert "--import" in (unknown.error or "")
    for name, job_id in ids.items():
        row = failed[job_id]
        assert row.failed_at is not None
        if name != "async":
            # A traceback, or for a stuck thread the place it is stuck in.
            assert "Traceback" in (row.error or "") or "the handler was at" in (row.error or "")
    assert "in handle" in error("hang")
    assert "time.sleep" in error("hang")
    # Logs name the job, never the payload.
    assert "test.hang" in out
    assert '{"tag"' not in out


def test_retries_then_failed_runs_once(runtime: Runtime, start_worker, marks: Marks) -> None:
    job_id = Flaky(tag="f").dispatch()
    worker = start_worker("--sleep", "0.1", "--stop-when-empty")
    assert worker.wait(20) == 0, worker.output()
    assert marks.events("f") == ["run", "run", "run", "failed"]
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert row.status == "failed"
    assert row.attempts == 3
    assert (row.error or "").startswith("ValueError: flaky f")
    out = worker.output()
    assert out.count("retrying in") == 2
    assert "attempt=3/3: failed after" in out


def test_backoff_delays_fall_within_full_jitter_bounds(runtime: Runtime, start_worker) -> None:
    n = 20
    for i in range(n):
        Backoff(tag=f"b{i}").dispatch()
    before = runtime.backend.now()
    worker = start_worker("--queue", "backoff", "--concurrency", str(n), "--max-jobs", str(n))
    assert worker.wait(20) == 0, worker.output()
    after = runtime.backend.now()
    rows = runtime.backend.list_jobs(queue="backoff", limit=100)
    assert len(rows) == n
    assert all(r.status == "pending" and r.attempts == 1 for r in rows)
    # First retry: uniform(0, min(cap 10, base 1 * 2**1)) seconds after the failure.
    delays = [(r.available_at - before).total_seconds() for r in rows]
    window = (after - before).total_seconds()
    assert all(0.0 <= d <= 2.0 + window for d in delays), delays
    assert max(delays) - min(delays) > 0.3, f"no jitter: {delays}"
