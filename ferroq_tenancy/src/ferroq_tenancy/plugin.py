"""The ``tenancy`` plugin: capture the tenant at dispatch, enter its scope around execution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import hookimpl
from ferroq_tenancy.capture import capture_tenants
from ferroq_tenancy.context import current_tenant, tenant_scope
from ferroq_tenancy.provider import enter_tenant

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from ferroq_core import Job, JobRow


@hookimpl
def ferroq_capture_tenants(jobs: Sequence[Job]) -> list[str | None]:
    """Each job's tenant from the registered capture hook, by default ``current_tenant()``."""
    return capture_tenants(jobs)


@hookimpl
def ferroq_tenant_scope(tenant_id: str) -> AbstractContextManager[Any] | None:
    """``tenant_scope(tenant_id)`` plus the configured provider's context."""
    return enter_tenant(tenant_id)


@hookimpl
def ferroq_job_scope(job: Job, row: JobRow | None) -> AbstractContextManager[Any] | None:
    """A stored job without a tenant runs explicitly in no tenant, whatever the worker thread
    or event loop ran before (sync mode has no row: it keeps the caller's context).

    Where no tenant is current already (a worker thread between jobs, normally) there is
    nothing to clear, so no scope is returned: the worker then enters nothing around the job.
    """
    if row is not None and row.tenant_id is None and current_tenant() is not None:
        return tenant_scope(None)
    return None
