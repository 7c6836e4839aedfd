"""The ``tenancy`` plugin: capture the tenant at dispatch, enter its scope around execution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import hookimpl
from ferroq_tenancy.capture import capture_tenants
from ferroq_tenancy.provider import enter_tenant

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from ferroq_core import Job


@hookimpl
def ferroq_capture_tenants(jobs: Sequence[Job]) -> list[str | None]:
    """Each job's tenant from the registered capture hook, by default ``current_tenant()``."""
    return capture_tenants(jobs)


@hookimpl
def ferroq_tenant_scope(tenant_id: str) -> AbstractContextManager[Any] | None:
    """``tenant_scope(tenant_id)`` plus the configured provider's context."""
    return enter_tenant(tenant_id)
