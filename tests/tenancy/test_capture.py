"""Capture at dispatch: for_tenant() wins, else the capture hook (default: the current
tenant), else none; ids are stored as text."""

from __future__ import annotations

import sqlalchemy as sa

from ferroq_core import Job, Runtime, dispatch_many
from ferroq_tenancy import register_tenant_capture_hook, tenant_scope
from tests.tenancy.jobs import RecordTenant


def _tenant_of(runtime: Runtime, job_id: int) -> str | None:
    row = runtime.backend.get_job(job_id)
    assert row is not None
    return row.tenant_id


def test_dispatch_stores_the_current_tenant(db_runtime: Runtime) -> None:
    with tenant_scope("acme"):
        inside = RecordTenant(key="a").dispatch()
    outside = RecordTenant(key="b").dispatch()
    assert _tenant_of(db_runtime, inside) == "acme"
    assert _tenant_of(db_runtime, outside) is None


def test_for_tenant_wins_over_the_current_tenant(db_runtime: Runtime) -> None:
    with tenant_scope("acme"):
        explicit = RecordTenant(key="a").for_tenant(7).dispatch()
    assert _tenant_of(db_runtime, explicit) == "7"


def test_int_ids_are_stored_as_text(db_runtime: Runtime) -> None:
    with tenant_scope(1234):
        job_id = RecordTenant(key="a").dispatch()
    assert _tenant_of(db_runtime, job_id) == "1234"


def test_bulk_and_transactional_dispatch_capture_too(db_runtime: Runtime) -> None:
    engine = db_runtime.backend.engine  # type: ignore[attr-defined]
    with tenant_scope("acme"):
        many = dispatch_many([RecordTenant(key="a"), RecordTenant(key="b").for_tenant("x")])
        with engine.begin() as conn:
            in_tx = RecordTenant(key="c").dispatch(connection=conn)
    assert [_tenant_of(db_runtime, i) for i in [*many, in_tx]] == ["acme", "x", "acme"]


def test_a_registered_capture_hook_replaces_the_default(db_runtime: Runtime) -> None:
    # A framework that keeps the tenant on its own request object, not in tenant_scope.
    request = {"tenant": "from-request"}
    got: list[Job] = []

    def from_request(job: Job) -> str | int | None:
        got.append(job)
        return request["tenant"]

    assert register_tenant_capture_hook(from_request) is None
    job = RecordTenant(key="a")
    with tenant_scope("ignored"):
        first = job.dispatch()
    request["tenant"] = None  # type: ignore[assignment]
    with tenant_scope("ignored"):
        second = RecordTenant(key="b").dispatch()
    assert register_tenant_capture_hook(None) is from_request
    with tenant_scope("default-again"):
        third = RecordTenant(key="c").dispatch()

    assert got[0] is job
    assert [_tenant_of(db_runtime, i) for i in (first, second, third)] == [
        "from-request",
        None,
        "default-again",
    ]


def test_a_capture_hook_returning_an_int(db_runtime: Runtime) -> None:
    register_tenant_capture_hook(lambda job: 99)
    assert _tenant_of(db_runtime, RecordTenant(key="a").dispatch()) == "99"


def test_stored_tenant_is_queryable(db_runtime: Runtime) -> None:
    with tenant_scope("acme"):
        RecordTenant(key="a").dispatch()
    RecordTenant(key="b").dispatch()
    engine = db_runtime.backend.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT tenant_id FROM ferroq_jobs ORDER BY id")).all()
    assert [r[0] for r in rows] == ["acme", None]
    assert [r.tenant_id for r in db_runtime.backend.list_jobs(tenant_id="acme")] == ["acme"]
