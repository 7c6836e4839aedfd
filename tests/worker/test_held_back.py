"""A worker whose claims flow limits hold back: it waits for the held jobs instead of taking
them for an empty queue, and writes its own finished jobs back before it claims again."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from ferroq_core.flowlimits import LimitRule
from tests.worker.jobs import Record

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow


def test_stop_when_empty_waits_for_jobs_a_rate_limit_holds_back(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    runtime.backend.set_limit(LimitRule("queue", "default", rate=(2, 0.5)))
    for i in range(6):
        Record(tag=f"r{i}").dispatch()
    began = time.monotonic()
    worker = start_worker("--sleep", "0.1", "--concurrency", "4", "--stop-when-empty")
    assert worker.wait(30) == 0, worker.output()
    # Every job ran (the first claim took 2 and left 4 for the window: not an empty queue),
    # two per half second.
    assert sorted(marks.order("run")) == [f"r{i}" for i in range(6)]
    assert time.monotonic() - began >= 1.0
    assert runtime.backend.get_stats().total == 0


@pytest.mark.timing  # a wall-clock bound
def test_one_slot_per_key_is_reused_as_soon_as_its_job_is_written_back(
    runtime: Runtime, start_worker, marks: Marks
) -> None:
    # One running job per tenant, 4 tenants, a worker with 8 slots: each claim can take one
    # job per tenant, and only once the tenant's last job was written back.
    runtime.backend.set_limit(LimitRule("queue", "default", concurrency=1, per_tenant=True))
    for i in range(80):
        Record(tag=f"r{i}").for_tenant(f"t{i % 4}").dispatch()
    began = time.monotonic()
    worker = start_worker("--sleep", "1", "--concurrency", "8", "--stop-when-empty")
    assert worker.wait(60) == 0, worker.output()
    assert len(marks.order("run")) == 80
    # 20 rounds of 4: with a slot given back only at the next poll (--sleep 1) or after the
    # write-back window of the claim after it, this took 20 s and more.
    assert time.monotonic() - began < 10, worker.output()
