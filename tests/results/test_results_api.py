"""Stored results through the public API on both backends: what a handler returns (sync or
async) comes back decoded from ``result()`` and ``aresult()``; jobs without ``store_result``
store nothing; a value the serializer refuses fails the attempt; expiry, pruning, the reaper's
bounded pruning, and the errors a caller can get."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from ferroq_core import (
    Job,
    JobFailed,
    JobId,
    NotInitialized,
    Queue,
    ResultMissing,
    WorkerConfig,
    dispatch_many,
)
from ferroq_core.errors import ConfigError
from ferroq_core.storage import results as results_module
from ferroq_core.storage.results import PRUNE_BATCH, prune_expired
from ferroq_core.testing import drain
from ferroq_core.worker.leases import LeaseKeeper

if TYPE_CHECKING:
    from ferroq_core import Runtime


@attrs.define
class Point:
    x: int
    y: int


@attrs.define
class Compute(Job):
    job_name = "results.compute"
    store_result = True
    n: int

    def handle(self) -> dict[str, Any]:
        return {"n": self.n, "point": Point(self.n, -self.n), "day": date(2026, 1, self.n)}


@attrs.define
class ComputeAsync(Job):
    job_name = "results.compute_async"
    store_result = True
    n: int

    async def handle(self) -> list[Any]:
        await asyncio.sleep(0)
        return [self.n, Decimal("1.10"), None]


@attrs.define
class Plain(Job):
    job_name = "results.plain"
    n: int

    def handle(self) -> int:
        return self.n


@attrs.define
class Unencodable(Job):
    job_name = "results.unencodable"
    store_result = True
    max_attempts = 1

    def handle(self) -> object:
        return object()


@attrs.define
class Fleeting(Job):
    job_name = "results.fleeting"
    store_result = True
    result_ttl = 0.0
    n: int

    def handle(self) -> int:
        return self.n


def test_sync_and_async_return_values_come_back_decoded(runtime: Runtime) -> None:
    first, second = Compute(n=3).dispatch(), ComputeAsync(n=4).dispatch()
    assert drain().succeeded == 2
    assert first.result(timeout=0) == {"n": 3, "point": {"x": 3, "y": -3}, "day": "2026-01-03"}
    assert second.result() == [4, "1.10", None]
    assert asyncio.run(second.aresult(timeout=1)) == [4, "1.10", None]
    assert runtime.backend.get_job(first) is None


def test_a_batch_with_and_without_results_acknowledges_both(runtime: Runtime) -> None:
    ids = [Compute(n=i + 1).dispatch() for i in range(3)]
    plain = [Plain(n=i).dispatch() for i in range(3)]
    assert drain().succeeded == 6
    assert [i.result(0)["n"] for i in ids] == [1, 2, 3]
    for job_id in plain:
        with pytest.raises(ResultMissing, match="without store_result"):
            job_id.result(timeout=0)
    assert runtime.backend.get_stats().total == 0


def test_a_value_the_serializer_refuses_fails_the_attempt(runtime: Runtime) -> None:
    job_id = Unencodable().dispatch()
    assert drain().failed == 1
    with pytest.raises(JobFailed, match="cannot encode the job's return value") as caught:
        job_id.result(timeout=5)
    assert caught.value.job_id == job_id
    assert runtime.backend.read_result(job_id).result is None


def test_aresult_waits_without_blocking_the_loop_and_times_out(runtime: Runtime) -> None:
    job_id = Compute(n=5).dispatch()

    async def scenario() -> tuple[Any, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        with pytest.raises(TimeoutError):
            await job_id.aresult(timeout=0.3)
        loop = asyncio.get_running_loop()
        later = loop.run_in_executor(None, drain)
        value = await job_id.aresult(timeout=30)
        await later
        ticker.cancel()
        return value, ticks

    value, ticks = asyncio.run(scenario())
    assert value["n"] == 5
    assert ticks >= 5, "the event loop ran while aresult() waited"


def test_expired_results_are_gone_and_pruned(runtime: Runtime) -> None:
    job_id = Fleeting(n=1).dispatch()
    kept = Compute(n=1).dispatch()
    drain()
    with pytest.raises(ResultMissing, match="expired"):
        job_id.result(timeout=0)
    assert prune_expired(runtime.backend) == 1
    assert runtime.backend.prune_results() == 0
    assert kept.result(timeout=0)["n"] == 1


@pytest.mark.slow
def test_the_reaper_pass_prunes_a_bounded_number(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_module, "PRUNE_STATEMENTS", 2)
    total = 2 * PRUNE_BATCH + 7
    dispatch_many([Fleeting(n=i) for i in range(total)])
    assert drain(max_jobs=total).succeeded == total
    keeper = LeaseKeeper(runtime, WorkerConfig(), lambda: [])
    keeper.reap()  # one pass: two statements of PRUNE_BATCH
    assert runtime.backend.prune_results() == 7


def test_unknown_ids_bad_timeouts_and_no_queue(runtime: Runtime) -> None:
    with pytest.raises(ResultMissing, match="never existed"):
        JobId(10**9).result(timeout=0)
    with pytest.raises(ConfigError, match="timeout"):
        JobId(1).result(timeout=-1)
    pending = Compute(n=2).dispatch()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still pending"):
        pending.result(timeout=0.2)
    assert time.monotonic() - started < 5
    drain()
    assert pending.result(timeout=0, runtime=runtime)["n"] == 2


def test_result_before_queue_init_says_so() -> None:
    Queue.reset()
    with pytest.raises(NotInitialized):
        JobId(1).result(timeout=0)
