"""The tenant stays with its job through every way a job goes back to pending, on both
backends: release (retry), requeue (shutdown), requeue_claimed_by and startup reaping,
the lease reaper (to pending and to failed) and retry of a failed job."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from click.testing import CliRunner

from ferroq_core.cli import make_cli
from ferroq_core.storage.rules import reap_dead_on_host
from ferroq_core.worker.attempt import execute, settle
from ferroq_tenancy import set_tenant_scope_provider
from tests.tenancy import jobs
from tests.tenancy.conftest import run_available
from tests.tenancy.jobs import (
    KNOWN,
    AppTenants,
    NeedsTenant,
    RecordTenant,
    RecordTenantFiveTimes,
)

if TYPE_CHECKING:
    from ferroq_core import JobRow, Runtime

WORKER = "tenancy-host:4242:w1"


def _claim_one(runtime: Runtime) -> JobRow:
    rows = runtime.backend.claim(["default"], WORKER, 1)
    assert len(rows) == 1
    return rows[0]


def _reap_until(runtime: Runtime, job_id: int) -> None:
    # reap(0) takes claims whose heartbeat is older than "now": wait out a clock tick.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = runtime.backend.reap(0.0)
        if job_id in result.requeued or any(r.id == job_id for r in result.failed):
            return
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} was never reaped")


def test_tenant_survives_every_return_to_pending(runtime: Runtime) -> None:
    backend = runtime.backend
    job_id = RecordTenantFiveTimes(key="a").for_tenant("acme").dispatch()
    other = RecordTenant(key="none").with_priority(10).dispatch()

    def tenant() -> tuple[str, str | None]:
        row = backend.get_job(job_id)
        assert row is not None
        return row.status, row.tenant_id

    row = _claim_one(runtime)
    assert (row.id, row.tenant_id) == (job_id, "acme")
    assert backend.release(row.lease, delay=0.0, error="retry me")
    assert tenant() == ("pending", "acme")

    row = _claim_one(runtime)
    assert backend.requeue([row.lease], count_attempt=False) == {job_id}  # shutdown requeue
    assert tenant() == ("pending", "acme")

    row = _claim_one(runtime)
    assert backend.requeue_claimed_by(WORKER, count_attempt=False) == 1
    assert tenant() == ("pending", "acme")

    row = _claim_one(runtime)
    assert len(reap_dead_on_host(backend, "tenancy-host", lambda pid: False).requeued) == 1
    assert tenant() == ("pending", "acme")

    row = _claim_one(runtime)
    assert row.attempts < row.max_attempts
    _reap_until(runtime, job_id)  # attempts left: back to pending
    assert tenant() == ("pending", "acme")

    while (row := _claim_one(runtime)).attempts < row.max_attempts:
        assert backend.release(row.lease, delay=0.0, error="again")
    _reap_until(runtime, job_id)  # no attempts left: parked as failed
    assert tenant() == ("failed", "acme")
    [failed] = backend.list_jobs(tenant_id="acme")
    assert failed.id == job_id
    assert failed.status == "failed"

    assert backend.retry_failed([job_id]) == 1
    assert tenant() == ("pending", "acme")

    # The job finally runs, in its tenant; the tenant-less job after it sees none.
    for _ in range(2):
        row = _claim_one(runtime)
        assert settle(runtime, execute(runtime, row)) == "succeeded"
    assert jobs.SEEN == [("a", "acme"), ("none", None)]
    assert backend.get_job(other) is None


def test_ferroq_retry_keeps_the_tenant(db_runtime: Runtime, sqlite_url: str) -> None:
    set_tenant_scope_provider(AppTenants())
    job_id = NeedsTenant(key="a").for_tenant("t5").dispatch()
    provider_knows = dict(KNOWN)
    KNOWN.pop("t5")  # the tenant is gone while the job runs: it is parked
    try:
        assert [o for _, o in run_available(db_runtime)] == ["retrying", "failed"]
    finally:
        KNOWN.clear()
        KNOWN.update(provider_knows)
    result = CliRunner().invoke(
        make_cli(db_runtime.pm), ["--database-url", sqlite_url, "retry", str(job_id)]
    )
    assert result.exit_code == 0, result.output
    row = db_runtime.backend.get_job(job_id)
    assert row is not None
    assert (row.status, row.tenant_id) == ("pending", "t5")
    assert [o for _, o in run_available(db_runtime)] == ["succeeded"]  # the tenant is back
    assert jobs.SEEN == [("a", "t5")]
