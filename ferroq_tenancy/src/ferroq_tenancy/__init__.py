"""Tenant-scoped jobs for ferroq: capture the tenant at dispatch, run the job in its scope."""

from __future__ import annotations

from ferroq_tenancy.capture import register_tenant_capture_hook
from ferroq_tenancy.context import current_tenant, tenant_scope
from ferroq_tenancy.provider import (
    PROVIDER_ENV,
    TenantScopeProvider,
    get_tenant_scope_provider,
    set_tenant_scope_provider,
)
from ferroq_tenancy.rls import install_rls, uninstall_rls

__all__ = [
    "PROVIDER_ENV",
    "TenantScopeProvider",
    "current_tenant",
    "get_tenant_scope_provider",
    "install_rls",
    "register_tenant_capture_hook",
    "set_tenant_scope_provider",
    "tenant_scope",
    "uninstall_rls",
]
