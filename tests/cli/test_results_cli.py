"""``ferroq result``, ``ferroq prune`` and ``ferroq show`` of a succeeded job, on both
backends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import attrs

from ferroq_core import Job
from ferroq_core.testing import drain

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke


@attrs.define
class Total(Job):
    job_name = "cli.total"
    store_result = True
    max_attempts = 1
    items: list[int]

    def handle(self) -> dict[str, int]:
        if not self.items:
            raise ValueError("nothing to add")
        return {"total": sum(self.items)}


@attrs.define
class Expiring(Job):
    job_name = "cli.expiring"
    store_result = True
    result_ttl = 0.0

    def handle(self) -> str:
        return "gone soon"


def test_result_prints_the_stored_value_and_json(runtime: Runtime, ferroq: Invoke) -> None:
    job_id = Total(items=[1, 2, 3]).dispatch()
    pending = ferroq("result", str(job_id))
    assert pending.exit_code == 1
    assert f"job {job_id} is pending: no result yet (try --wait)" in pending.output
    drain()
    shown = ferroq("result", str(job_id))
    assert (shown.exit_code, shown.stdout) == (0, '{"total":6}\n')
    data = json.loads(ferroq("result", str(job_id), "--json").stdout)
    assert data["result"] == {"total": 6}
    assert (data["id"], data["state"], data["type"]) == (job_id, "succeeded", "cli.total")
    assert data["expires_at"] > data["succeeded_at"]


def test_result_of_a_failed_or_unknown_job_exits_1(runtime: Runtime, ferroq: Invoke) -> None:
    job_id = Total(items=[]).dispatch()
    drain()
    failed = ferroq("result", str(job_id))
    assert failed.exit_code == 1
    assert failed.output.strip() == f"Error: job {job_id} failed: ValueError: nothing to add"
    data = json.loads(ferroq("result", str(job_id), "--json").stdout)
    assert (data["state"], data["result"]) == ("failed", None)
    assert data["error"].startswith("ValueError: nothing to add")
    unknown = ferroq("result", "999999", "--wait", "0.1")
    assert unknown.exit_code == 1
    assert "no stored result and no job with id 999999" in unknown.output


def test_show_of_a_succeeded_job_shows_its_result(runtime: Runtime, ferroq: Invoke) -> None:
    job_id = Total(items=[4, 5]).dispatch()
    drain()
    text = ferroq("show", str(job_id))
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["id:", str(job_id)]
    assert lines[1].split() == ["state:", "succeeded"]
    assert lines[-2:] == ["result:", '  {"total":9}']
    assert json.loads(ferroq("show", str(job_id), "--json").stdout)["result"] == {"total": 9}


def test_prune_deletes_expired_results(runtime: Runtime, ferroq: Invoke) -> None:
    Expiring().dispatch()
    kept = Total(items=[1]).dispatch()
    drain()
    assert json.loads(ferroq("prune", "--json").stdout) == {"results": 1}
    assert ferroq("prune").stdout == "deleted 0 expired results\n"
    assert ferroq("result", str(kept)).exit_code == 0
