"""Tenant-scoped jobs for ferroq."""

from __future__ import annotations

from ferroq_tenancy.context import current_tenant, tenant_scope

__all__ = ["current_tenant", "tenant_scope"]
