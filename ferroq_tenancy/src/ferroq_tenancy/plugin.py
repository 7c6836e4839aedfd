"""The ``tenancy`` plugin: capture the tenant at dispatch, enter its scope around execution."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ferroq_core import hookimpl
from ferroq_tenancy.context import current_tenant, tenant_scope

if TYPE_CHECKING:
    from ferroq_core import Job


@hookimpl
def ferroq_capture_tenant(job: Job) -> str | None:
    return current_tenant()


@hookimpl
def ferroq_tenant_scope(tenant_id: str) -> AbstractContextManager[Any] | None:
    return tenant_scope(tenant_id)
