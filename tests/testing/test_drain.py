"""drain(): every eligible job of a real backend runs in-process, like under a worker."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from ferroq_core import (
    EnqueueRequest,
    JobDecodeError,
    JobRow,
    JobState,
    Queue,
    UnknownJobType,
    dispatch_many,
    hookimpl,
)
from ferroq_core.testing import drain
from tests.testing.jobs import (
    AlwaysFails,
    AsyncJob,
    Chain,
    Flaky,
    Forever,
    SendEmail,
    failed_calls,
    ran,
)

if TYPE_CHECKING:
    from ferroq_core.runtime import Runtime


def test_runs_jobs_and_the_jobs_they_dispatch(queue: Runtime) -> None:
    Chain(n=1, until=4).dispatch()
    AsyncJob(value=5).dispatch()
    result = drain()
    assert (result.succeeded, result.retried, result.failed) == (5, 0, 0)
    assert sorted(ran) == [("async", 5), ("chain", 1), ("chain", 2), ("chain", 3), ("chain", 4)]
    assert queue.backend.get_stats().total == 0, "succeeded jobs are deleted"
    assert drain().attempts == 0, "nothing left"


def test_retries_wait_for_their_delay_unless_time_advances(queue: Runtime) -> None:
    Flaky(name="f").dispatch()
    first = drain()
    assert (first.succeeded, first.retried, first.failed) == (0, 1, 0)
    (row,) = queue.backend.list_jobs(state=JobState.DELAYED)
    assert row.attempts == 1
    assert row.error is not None
    assert "f attempt 1 fails" in row.error

    second = drain(advance_time=True)
    assert (second.succeeded, second.retried, second.failed) == (1, 1, 0)
    assert [str(e) for _, e in second.errors] == ["f attempt 2 fails"]
    assert ran == [("flaky", "f")]
    assert queue.backend.get_stats().total == 0


def test_a_job_out_of_attempts_is_failed_once(queue: Runtime) -> None:
    AlwaysFails(reason="bad input").dispatch()
    result = drain(advance_time=True)
    assert (result.succeeded, result.retried, result.failed) == (0, 1, 1)
    assert failed_calls == [("always-fails", "bad input")]
    (row,) = queue.backend.list_jobs(state=JobState.FAILED)
    assert row.attempts == 2
    assert row.error is not None
    assert row.error.startswith("ValueError: bad input")


def test_advance_time_moves_only_as_far_as_asked(queue: Runtime) -> None:
    SendEmail(to="soon").delay(60).dispatch()
    SendEmail(to="later").delay(timedelta(hours=1)).dispatch()
    assert drain().attempts == 0
    assert drain(advance_time=timedelta(minutes=5)).succeeded == 1
    assert ran == [("email", "soon")]
    assert drain(advance_time=True).succeeded == 1
    assert ran == [("email", "soon"), ("email", "later")]
    with pytest.raises(ValueError, match="negative"):
        drain(advance_time=-1)


def test_queues_are_drained_in_the_order_given(queue: Runtime) -> None:
    dispatch_many(
        [
            SendEmail(to="low").on_queue("low"),
            SendEmail(to="high").on_queue("high"),
            SendEmail(to="other").on_queue("other"),
        ]
    )
    assert drain(["high", "low"]).succeeded == 2
    assert ran == [("email", "high"), ("email", "low")]
    assert drain("other").succeeded == 1
    assert queue.backend.get_stats().total == 0


def test_a_job_that_never_stops_dispatching_hits_max_jobs(queue: Runtime) -> None:
    Forever().dispatch()
    with pytest.raises(AssertionError, match="drain\\(\\) ran 5 attempts"):
        drain(max_jobs=5)
    (row,) = queue.backend.list_jobs(state=JobState.PENDING)
    assert row.attempts == 0, "the job claimed past the limit is given back untouched"
    assert row.job_type == Forever.type_name()


def test_raise_errors_reraises_after_writing_the_outcome(queue: Runtime) -> None:
    AlwaysFails(reason="loud").dispatch()
    with pytest.raises(ValueError, match="loud"):
        drain(raise_errors=True)
    (row,) = queue.backend.list_jobs(state=JobState.DELAYED)
    assert row.attempts == 1


def test_undecodable_jobs_fail_at_once_and_unknown_ones_are_retried(queue: Runtime) -> None:
    queue.backend.enqueue(
        [
            EnqueueRequest(queue="default", job_type="no.such:Job", payload="{}"),
            EnqueueRequest(queue="default", job_type=SendEmail.type_name(), payload='{"to": 5'),
        ]
    )
    result = drain()
    assert (result.succeeded, result.retried, result.failed) == (0, 1, 1)
    kinds = sorted(type(e).__name__ for _, e in result.errors)
    assert kinds == [JobDecodeError.__name__, UnknownJobType.__name__]
    (unknown,) = queue.backend.list_jobs(state=JobState.DELAYED)
    assert (unknown.job_type, unknown.attempts) == ("no.such:Job", 1)


def test_lifecycle_hooks_fire_as_under_a_worker(queue: Runtime) -> None:
    events: list[tuple[str, Any]] = []

    class Recorder:
        @hookimpl
        def ferroq_job_started(self, row: JobRow, worker_id: str) -> None:
            events.append(("started", row.attempts))

        @hookimpl
        def ferroq_job_succeeded(self, row: JobRow, duration: float) -> None:
            events.append(("succeeded", row.job_type))

        @hookimpl
        def ferroq_job_retrying(self, row: JobRow, error: BaseException, delay: float) -> None:
            events.append(("retrying", delay))

    queue.pm.register(Recorder())
    Flaky(name="hooks", fail_times=1).dispatch()
    drain(advance_time=True)
    assert events == [
        ("started", 1),
        ("retrying", 30.0),
        ("started", 2),
        ("succeeded", Flaky.type_name()),
    ]


def test_drain_a_backend_without_the_process_wide_queue(queue: Runtime) -> None:
    SendEmail(to="direct").dispatch()
    Queue.use(None)
    try:
        result = drain(backend=queue.backend)
    finally:
        Queue.use(queue)
    assert result.succeeded == 1
    assert ran == [("email", "direct")]


def test_drain_needs_a_queue() -> None:
    from ferroq_core import NotInitialized

    with pytest.raises(NotInitialized):
        drain()


def test_drain_with_an_explicit_runtime(queue: Runtime) -> None:
    config = attrs.evolve(queue.config, default_queue="elsewhere")
    SendEmail(to="x").on_queue("elsewhere").dispatch()
    assert drain("elsewhere", runtime=attrs.evolve(queue, config=config)).succeeded == 1
