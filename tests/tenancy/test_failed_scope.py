"""``failed()`` runs inside the job's tenant scope: on a real worker (where it runs on the
callbacks thread), in sync mode, and for a job failed because its worker died. A job it
dispatches is stored with the tenant, the way the handler's own dispatches are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ferroq_core import JobState, TenantNotFound
from ferroq_core.worker.attempt import settle_reaped
from ferroq_tenancy import PROVIDER_ENV, current_tenant, set_tenant_scope_provider, tenant_scope
from tests.tenancy import jobs
from tests.tenancy.conftest import run_available
from tests.tenancy.jobs import AppTenants, FailsThenFollowsUp, NeedsTenant

if TYPE_CHECKING:
    from ferroq_core import Runtime

REPO = Path(__file__).resolve().parents[2]


def _ledger(path: Path) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        key, tenant, _thread = line.split("\t")
        seen[key] = None if tenant == "-" else tenant
    return seen


def _followups(runtime: Runtime) -> dict[str, str | None]:
    rows = runtime.backend.list_jobs(queue="followups", limit=100)
    return {json.loads(r.payload)["key"]: r.tenant_id for r in rows}


@pytest.mark.slow
def test_failed_runs_in_the_jobs_tenant_on_a_worker(runtime: Runtime, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.tsv"
    FailsThenFollowsUp(key="acme-job", ledger=str(ledger)).for_tenant("acme").dispatch()
    FailsThenFollowsUp(key="t7-job", ledger=str(ledger)).for_tenant("t7").dispatch()
    FailsThenFollowsUp(key="plain-job", ledger=str(ledger)).dispatch()
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, **{PROVIDER_ENV: "tests.tenancy.jobs:AppTenants"})
    env["TENANCY_TESTS_DATABASE_URL"] = runtime.config.database_url
    env.pop("FERROQ_LOAD_PLUGINS", None)
    cmd = [sys.executable, "-m", "ferroq_core.cli", "--database-url"]
    cmd += [runtime.config.database_url, "worker", "--concurrency", "4", "--stop-when-empty"]
    cmd += ["--sleep", "0.1", "--import", "tests.tenancy.jobs"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "raised" not in proc.stderr, proc.stderr[-3000:]
    # seen_tenant() also checks that the provider's own context agrees with ferroq's.
    assert _ledger(ledger) == {
        "acme-job:failed": "acme",
        "t7-job:failed": "t7",
        "plain-job:failed": None,
    }
    assert _followups(runtime) == {
        "acme-job:followup": "acme",
        "t7-job:followup": "t7",
        "plain-job:followup": None,
    }
    failed = runtime.backend.list_jobs(state=JobState.FAILED)
    assert sorted(r.tenant_id or "" for r in failed) == ["", "acme", "t7"]


def test_failed_runs_in_the_jobs_tenant_in_sync_mode(sync_runtime: Runtime) -> None:
    with pytest.raises(RuntimeError, match="explicit fails"):
        FailsThenFollowsUp(key="explicit").for_tenant("t1").dispatch()
    with tenant_scope("acme"), pytest.raises(RuntimeError, match="captured fails"):
        FailsThenFollowsUp(key="captured").dispatch()
    assert jobs.SEEN == [
        ("explicit:failed", "t1"),
        ("explicit:followup", "t1"),
        ("captured:failed", "acme"),
        ("captured:followup", "acme"),
    ]
    assert current_tenant() is None


def test_failed_of_a_job_whose_worker_died_runs_in_its_tenant(db_runtime: Runtime) -> None:
    job_id = FailsThenFollowsUp(key="orphan").for_tenant("t2").dispatch()
    dead = "test-host:1:tenancy"
    (row,) = db_runtime.backend.claim(["default"], dead, 1)
    (failed,) = db_runtime.backend.reap_worker(dead).failed
    assert failed.id == job_id
    settle_reaped(db_runtime, failed)
    assert jobs.SEEN == [("orphan:failed", "t2")]
    (followup,) = db_runtime.backend.list_jobs(queue="followups")
    assert followup.tenant_id == "t2"
    assert row.tenant_id == "t2"


def test_failed_runs_outside_a_scope_that_cannot_be_entered(db_runtime: Runtime) -> None:
    # The tenant is unknown (TenantNotFound): failed() still runs, once, and says so.
    set_tenant_scope_provider(AppTenants())
    NeedsTenant(key="gone").for_tenant("gone").dispatch()
    outcomes = run_available(db_runtime)
    assert [o for _, o in outcomes] == ["retrying", "failed"]
    assert [(k, type(e)) for k, e in jobs.FAILED_CALLS] == [("gone", TenantNotFound)]
