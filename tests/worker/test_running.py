"""A claim's ``Running`` records: each job type's timeout and async-ness follow the class the
registry holds now."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ferroq_core import Job
from ferroq_core.worker.running import RunningRecords, RunningSet

if TYPE_CHECKING:
    from ferroq_core import Runtime


def _reloadable(timeout: float) -> type[Job]:
    # Each call defines the "same" class again (same module and qualname), as reloading the
    # module that defines it would: the registry keeps the newest.
    @attrs.define
    class Reloaded(Job):
        job_name = "test.slots_reloaded"

        def handle(self) -> None:
            pass

    Reloaded.timeout = timeout
    return Reloaded


def test_running_records_follow_a_job_type_registered_again(runtime: Runtime) -> None:
    first = runtime.registry.register(_reloadable(5.0))
    first().dispatch()
    first().dispatch()
    one, two = runtime.backend.claim(["default"], "h:1:a", 2)
    records = RunningRecords(runtime, default_timeout=None)
    assert [r.timeout for r in records.records([one])] == [5.0]
    runtime.registry.register(_reloadable(7.0))
    assert [r.timeout for r in records.records([one, two])] == [7.0, 7.0]


def test_the_running_set_settles_each_job_once(runtime: Runtime) -> None:
    first = runtime.registry.register(_reloadable(5.0))
    for _ in range(3):
        first().dispatch()
    rows = runtime.backend.claim(["default"], "h:1:a", 3)
    started, unstarted, overdue = RunningRecords(runtime, default_timeout=None).records(rows)
    running = RunningSet()
    running.add_all([started, unstarted, overdue])
    assert running.begin(started)
    assert running.begin(overdue)
    overdue.deadline = 0.0
    assert running.take_overdue(now=1.0) == [overdue]
    assert running.take_overdue(now=1.0) == []  # settled: never taken twice
    assert running.take_unstarted() == [unstarted]
    assert not running.begin(unstarted)  # handed back: a runner must skip it
    assert {row.id for row in running.held_rows()} == {started.row.id}
    assert running.take_all() == [started]
    assert len(running) == 0
