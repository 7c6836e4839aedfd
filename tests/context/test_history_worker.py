"""History on real worker processes, on both backends: a record per succeeded job with
``FERROQ_KEEP_HISTORY`` on, none with it off; ``ferroq jobs --state succeeded`` and
``ferroq show`` read it; a job type's ``keep_history`` wins over the setting."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import attrs
import pytest

from ferroq_core.testing import drain
from tests.context.jobs import Attempts
from tests.context.test_actions_worker import IMPORT, cli
from tests.worker.jobs import Record

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.worker.conftest import Marks

pytestmark = pytest.mark.slow


def test_history_off_leaves_no_record(runtime: Runtime, db_url: str, start_worker) -> None:
    ids = [Record(tag=f"off{i}").dispatch() for i in range(20)]
    worker = start_worker(*IMPORT, "--sleep", "0.1", "--stop-when-empty")
    assert worker.wait(60) == 0, worker.output()
    assert all(runtime.backend.get_job(i) is None for i in ids)
    assert runtime.backend.list_history() == []
    assert "no succeeded jobs" in cli(db_url, "jobs", "--state", "succeeded")


def test_history_on_records_every_succeeded_job(
    runtime: Runtime, db_url: str, start_worker, marks: Marks
) -> None:
    ids = [Record(tag=f"on{i}").dispatch() for i in range(20)]
    flaky = Attempts(tag="flaky").dispatch()
    worker = start_worker(
        *IMPORT,
        "--sleep",
        "0.1",
        "--concurrency",
        "4",
        "--stop-when-empty",
        extra_env={"FERROQ_KEEP_HISTORY": "1"},
    )
    assert worker.wait(60) == 0, worker.output()
    backend = runtime.backend
    records = {r.job_id: r for r in backend.list_history(limit=100)}
    assert set(records) == {*ids, flaky}
    record = records[flaky]
    assert (record.job_type, record.queue, record.attempts, record.max_attempts) == (
        "test.ctx.attempts",
        "default",
        3,
        3,
    )
    assert record.worker is not None
    assert record.created_at <= record.finished_at
    assert record.claimed_at is not None
    assert record.duration >= 0

    listed = json.loads(cli(db_url, "jobs", "--state", "succeeded", "--json", "--limit", "100"))
    assert {j["id"] for j in listed["jobs"]} == {*ids, flaky}
    assert all(j["state"] == "succeeded" for j in listed["jobs"])
    shown = cli(db_url, "show", str(flaky))
    assert "succeeded (history)" in shown
    assert "#1 " in shown
    assert "#2 " in shown
    assert "RuntimeError: failure of attempt 2" in shown
    data = json.loads(cli(db_url, "show", str(flaky), "--json"))
    assert [e["attempt"] for e in data["attempt_errors"]] == [1, 2]
    assert marks.events("flaky") == ["attempt1", "attempt2", "attempt3"]


def test_pruning_deletes_records_past_the_retention_in_batches(runtime: Runtime) -> None:
    job_id = Attempts(tag="prune").dispatch()
    keeping = attrs.evolve(runtime, config=attrs.evolve(runtime.config, keep_history=True))
    drain(runtime=keeping, advance_time=True)
    backend = runtime.backend
    assert backend.get_history(job_id) is not None
    assert len(backend.attempt_errors(job_id)) == 2
    assert backend.prune_history(3600.0) == 0  # within the window: kept
    assert backend.prune_history(0.0, limit=1) >= 1  # one batch of at most 1 per table
    while backend.prune_history(0.0, limit=1):
        pass
    assert backend.get_history(job_id) is None
    assert backend.attempt_errors(job_id) == []
