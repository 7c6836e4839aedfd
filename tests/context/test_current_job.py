"""current_job(): a handler sees its own job, attempt by attempt, on every way a job runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest

from ferroq_core import (
    CurrentJob,
    Job,
    NoCurrentJob,
    Queue,
    QueueConfig,
    WorkerConfig,
    WorkerLoop,
    current_job,
)
from ferroq_core.testing import drain, run_job

if TYPE_CHECKING:
    from pathlib import Path

    from ferroq_core import Runtime

SEEN: list[CurrentJob] = []


@attrs.define
class FailsTwice(Job):
    """Fails on its first two attempts, reading the attempt from its context (no file)."""

    job_name = "test.context.fails_twice"
    max_attempts = 3
    timeout = 30.0
    backoff_base: ClassVar[float] = 0.0
    tag: str

    def handle(self) -> None:
        ctx = current_job()
        SEEN.append(ctx)
        if ctx.attempt < 3:
            raise RuntimeError(f"attempt {ctx.attempt}")


@attrs.define
class AsyncSees(Job):
    job_name = "test.context.async_sees"
    queue = "ctx"
    priority = 7

    async def handle(self) -> None:
        SEEN.append(current_job())


@attrs.define
class Outer(Job):
    """Dispatches Inner in sync mode from inside its own handler."""

    job_name = "test.context.outer"

    def handle(self) -> None:
        SEEN.append(current_job())
        Inner().dispatch()
        SEEN.append(current_job())


@attrs.define
class Inner(Job):
    job_name = "test.context.inner"

    def handle(self) -> None:
        SEEN.append(current_job())


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def test_outside_a_job_there_is_no_current_job() -> None:
    with pytest.raises(NoCurrentJob, match="outside a job"):
        current_job()


def test_a_worker_gives_attempts_1_2_3_and_the_rows_facts(runtime: Runtime) -> None:
    job_id = FailsTwice(tag="x").dispatch()
    AsyncSees().dispatch()
    config = WorkerConfig(queues=["default", "ctx"], stop_when_empty=True, sleep=0.05)
    assert WorkerLoop(runtime, config).run() == 0
    retries = [c for c in SEEN if c.job_type == "test.context.fails_twice"]
    assert [c.attempt for c in retries] == [1, 2, 3]
    assert {c.id for c in retries} == {job_id}
    assert [c.is_last_attempt for c in retries] == [False, False, True]
    first = retries[0]
    assert (first.queue, first.max_attempts, first.timeout, first.tick) == (
        "default",
        3,
        30.0,
        None,
    )
    assert first.deadline is not None
    assert first.claimed_at is not None
    assert first.enqueued_at is not None
    assert first.enqueued_at <= first.claimed_at
    left = first.time_left()
    assert left is not None
    assert 0 < left <= 30.0
    (seen_async,) = [c for c in SEEN if c.job_type == "test.context.async_sees"]
    assert (seen_async.queue, seen_async.priority, seen_async.attempt) == ("ctx", 7, 1)
    assert seen_async.timeout is None
    assert seen_async.time_left() is None
    with pytest.raises(NoCurrentJob):
        current_job()


def test_drain_and_run_job_give_the_same_context(runtime: Runtime) -> None:
    FailsTwice(tag="d").dispatch()
    drain(advance_time=True)
    assert [c.attempt for c in SEEN] == [1, 2, 3]
    SEEN.clear()
    run_job(AsyncSees())
    (ctx,) = SEEN
    assert (ctx.job_type, ctx.attempt) == ("test.context.async_sees", 1)


def test_sync_mode_restores_the_outer_job_after_an_inline_dispatch(tmp_path: Path) -> None:
    Queue.init(f"sqlite:///{tmp_path / 'sync.db'}", QueueConfig(connection="sync"))
    try:
        Outer().dispatch()
    finally:
        Queue.reset()
    assert [c.job_type for c in SEEN] == [
        "test.context.outer",
        "test.context.inner",
        "test.context.outer",
    ]
    assert all(c.id == 0 and c.attempt == 1 for c in SEEN)
    with pytest.raises(NoCurrentJob):
        current_job()
