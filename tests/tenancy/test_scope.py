"""Scope at execution: sync mode, worker attempts, the provider, TenantNotFound, no bleed."""

from __future__ import annotations

import pytest

from ferroq_core import ConfigError, Runtime, TenantNotFound
from ferroq_tenancy import (
    PROVIDER_ENV,
    current_tenant,
    get_tenant_scope_provider,
    set_tenant_scope_provider,
    tenant_scope,
)
from tests.tenancy import jobs
from tests.tenancy.conftest import run_available
from tests.tenancy.jobs import AppTenants, AsyncRecordTenant, NeedsTenant, RecordTenant

# -- sync mode ---------------------------------------------------------------------------------


def test_sync_mode_runs_in_the_callers_tenant(sync_runtime: Runtime) -> None:
    RecordTenant(key="none").dispatch()
    with tenant_scope("acme"):
        RecordTenant(key="caller").dispatch()
        AsyncRecordTenant(key="caller-async").dispatch()
        RecordTenant(key="explicit").for_tenant("t1").dispatch()
        assert current_tenant() == "acme"
    assert jobs.SEEN == [
        ("none", None),
        ("caller", "acme"),
        ("caller-async", "acme"),
        ("explicit", "t1"),
    ]


def test_sync_mode_enters_the_providers_scope(sync_runtime: Runtime) -> None:
    provider = AppTenants()
    set_tenant_scope_provider(provider)
    RecordTenant(key="a").for_tenant(7).dispatch()
    assert jobs.SEEN == [("a", "7")]  # seen_tenant() checks the app context agrees
    assert provider.resolved == ["7"]
    assert jobs.APP_TENANT.get() is None


def test_sync_mode_unknown_tenant_raises_and_never_runs_the_handler(
    sync_runtime: Runtime,
) -> None:
    set_tenant_scope_provider(AppTenants())
    with pytest.raises(TenantNotFound, match="'nobody' was not found by AppTenants"):
        NeedsTenant(key="a").for_tenant("nobody").dispatch()
    assert jobs.SEEN == []
    assert [(k, type(e)) for k, e in jobs.FAILED_CALLS] == [("a", TenantNotFound)]
    assert current_tenant() is None


# -- worker attempts -----------------------------------------------------------------------------


def test_tenantless_job_after_a_tenant_job_sees_none(db_runtime: Runtime) -> None:
    RecordTenant(key="t").for_tenant("acme").dispatch()
    RecordTenant(key="none").dispatch()
    AsyncRecordTenant(key="t-async").for_tenant("t2").dispatch()
    AsyncRecordTenant(key="none-async").dispatch()
    outcomes = run_available(db_runtime)
    assert [o for _, o in outcomes] == ["succeeded"] * 4
    assert jobs.SEEN == [("t", "acme"), ("none", None), ("t-async", "t2"), ("none-async", None)]


def test_tenantless_job_sees_none_even_if_the_thread_leaked_a_scope(
    db_runtime: Runtime,
) -> None:
    # Application code that entered a scope and never left it (a leaked context manager)
    # must not hand its tenant to the next tenant-less job on this thread.
    RecordTenant(key="none").dispatch()
    leaked = tenant_scope("leaked")
    leaked.__enter__()
    try:
        run_available(db_runtime)
    finally:
        leaked.__exit__(None, None, None)
    assert jobs.SEEN == [("none", None)]


def test_worker_enters_the_providers_scope(db_runtime: Runtime) -> None:
    provider = AppTenants()
    set_tenant_scope_provider(provider)
    RecordTenant(key="a").for_tenant("acme").dispatch()
    AsyncRecordTenant(key="b").for_tenant("t3").dispatch()
    run_available(db_runtime)
    assert jobs.SEEN == [("a", "acme"), ("b", "t3")]
    assert provider.resolved == ["acme", "t3"]


@pytest.mark.parametrize("raises", [False, True])
def test_unknown_tenant_fails_each_attempt_then_parks(db_runtime: Runtime, raises: bool) -> None:
    class Strict(AppTenants):
        def resolve(self, tenant_id: str) -> dict[str, str] | None:
            found = super().resolve(tenant_id)
            if found is None and raises:
                raise TenantNotFound(f"no tenant {tenant_id!r} in the tenants table")
            return found

    set_tenant_scope_provider(Strict())
    job_id = NeedsTenant(key="a").for_tenant("gone").dispatch()
    outcomes = run_available(db_runtime)
    assert [o for _, o in outcomes] == ["retrying", "failed"]
    row = db_runtime.backend.get_job(job_id)
    assert row is not None
    assert (row.status, row.attempts, row.tenant_id) == ("failed", 2, "gone")
    assert row.error is not None
    assert row.error.startswith("TenantNotFound: ")
    assert jobs.SEEN == []  # the handler never ran, in or outside a scope
    assert [(k, type(e)) for k, e in jobs.FAILED_CALLS] == [("a", TenantNotFound)]


# -- configuring the provider ------------------------------------------------------------------


def test_provider_from_the_environment(
    db_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROVIDER_ENV, "tests.tenancy.jobs:AppTenants")
    provider = get_tenant_scope_provider()
    assert isinstance(provider, AppTenants)
    assert get_tenant_scope_provider() is provider  # loaded once
    RecordTenant(key="a").for_tenant("acme").dispatch()
    run_available(db_runtime)
    assert jobs.SEEN == [("a", "acme")]
    assert provider.resolved == ["acme"]
    code = AppTenants()
    set_tenant_scope_provider(code)
    assert get_tenant_scope_provider() is code  # code wins over the environment


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_colon", "must look like"),
        ("tests.tenancy.nope:X", "cannot be loaded"),
        ("tests.tenancy.jobs:Missing", "cannot be loaded"),
        ("tests.tenancy.jobs:KNOWN", "is not a TenantScopeProvider"),
    ],
)
def test_a_bad_provider_setting_fails_clearly(
    db_runtime: Runtime, monkeypatch: pytest.MonkeyPatch, spec: str, match: str
) -> None:
    monkeypatch.setenv(PROVIDER_ENV, spec)
    with pytest.raises(ConfigError, match=match):
        get_tenant_scope_provider()
    job_id = RecordTenant(key="a").for_tenant("acme").dispatch()
    run_available(db_runtime)
    row = db_runtime.backend.get_job(job_id)
    assert row is not None
    assert row.error is not None
    assert "ConfigError" in row.error
    assert jobs.SEEN == []


def test_set_provider_rejects_objects_without_the_protocol() -> None:
    with pytest.raises(TypeError, match="resolve"):
        set_tenant_scope_provider(object())  # type: ignore[arg-type]
