"""``TenantScopeProvider``: resolve a job's tenant id and enter the application's own context.

Configure one per process, either in code (``set_tenant_scope_provider(provider)``) or with
``FERROQ_TENANT_PROVIDER=module:attr`` (read the first time a tenant job runs, so a plain
``ferroq worker`` process needs no start-up code). Code wins over the environment.
"""

from __future__ import annotations

import importlib
import os
import threading
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ferroq_core.errors import ConfigError, TenantNotFound
from ferroq_tenancy.context import tenant_scope

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "PROVIDER_ENV",
    "TenantScopeProvider",
    "enter_tenant",
    "get_tenant_scope_provider",
    "set_tenant_scope_provider",
]

#: ``module:attr`` naming a provider, or a class / zero-argument factory that returns one.
PROVIDER_ENV = "FERROQ_TENANT_PROVIDER"

T = TypeVar("T")


@runtime_checkable
class TenantScopeProvider(Protocol[T]):
    """Turns a stored tenant id into the application's tenant and its context.

    Example (an app whose models are filtered by a ``tenant`` context of its own)::

        class AppTenants:
            def resolve(self, tenant_id: str) -> Tenant | None:
                return Tenant.get_or_none(slug=tenant_id)

            def scope(self, tenant: Tenant) -> AbstractContextManager[object]:
                return app.tenant_context(tenant)

        set_tenant_scope_provider(AppTenants())
    """

    def resolve(self, tenant_id: str) -> T | None:
        """The application's tenant for ``tenant_id``.

        Runs inside ``tenant_scope(tenant_id)`` (so ``current_tenant()`` and the RLS setting
        already hold the id). Return None (or raise ``TenantNotFound``) when there is no such
        tenant: the attempt then fails with ``TenantNotFound`` and the handler does not run.
        """

    def scope(self, tenant: T) -> AbstractContextManager[Any]:
        """The application's own context for ``tenant``, entered around the handler."""


_lock = threading.Lock()
_explicit: TenantScopeProvider[Any] | None = None
# (env value, provider loaded from it): re-read when the variable changes.
_from_env: tuple[str, TenantScopeProvider[Any]] | None = None


def set_tenant_scope_provider(
    provider: TenantScopeProvider[Any] | None,
) -> TenantScopeProvider[Any] | None:
    """Use ``provider`` for every tenant job of this process (None: back to
    ``FERROQ_TENANT_PROVIDER``, or to the plain tenant scope when that is unset).

    :param provider: an object with ``resolve(tenant_id)`` and ``scope(tenant)``.
    :return: the provider set in code before (None when there was none).
    """
    global _explicit
    if provider is not None and not isinstance(provider, TenantScopeProvider):
        raise TypeError(
            f"{provider!r} is not a TenantScopeProvider: it needs resolve(tenant_id) and "
            "scope(tenant) methods"
        )
    with _lock:
        previous, _explicit = _explicit, provider
    return previous


def _load(spec: str) -> TenantScopeProvider[Any]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{PROVIDER_ENV} must look like 'package.module:name', got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{PROVIDER_ENV}={spec!r} cannot be loaded ({exc}): check the module is importable "
            "from the worker's working directory and the name exists"
        ) from exc
    if isinstance(target, type) or (
        callable(target) and not isinstance(target, TenantScopeProvider)
    ):
        target = target()
    if not isinstance(target, TenantScopeProvider):
        raise ConfigError(
            f"{PROVIDER_ENV}={spec!r} is not a TenantScopeProvider (needs resolve(tenant_id) "
            "and scope(tenant) methods)"
        )
    return target


def get_tenant_scope_provider() -> TenantScopeProvider[Any] | None:
    """The provider in use: the one set in code, else the one ``FERROQ_TENANT_PROVIDER``
    names, else None (tenant jobs then run in the plain ``tenant_scope``).

    :raises ConfigError: ``FERROQ_TENANT_PROVIDER`` is set but cannot be loaded.
    """
    global _from_env
    if _explicit is not None:
        return _explicit
    spec = os.environ.get(PROVIDER_ENV, "").strip()
    if not spec:
        return None
    cached = _from_env
    if cached is not None and cached[0] == spec:
        return cached[1]
    with _lock:
        if _from_env is None or _from_env[0] != spec:
            _from_env = (spec, _load(spec))
        return _from_env[1]


@contextmanager
def enter_tenant(tenant_id: str) -> Iterator[str]:
    """The scope a tenant job runs in: ``tenant_scope(tenant_id)``, then the provider's own
    context for the resolved tenant. Fails, before the handler can run, with
    ``TenantNotFound`` when the provider cannot resolve the id."""
    provider = get_tenant_scope_provider()
    with tenant_scope(tenant_id) as tid:
        assert tid is not None  # tenant_id is not None
        if provider is None:
            yield tid
            return
        tenant = provider.resolve(tid)
        if tenant is None:
            raise TenantNotFound(
                f"tenant {tid!r} was not found by {type(provider).__qualname__}: check that the "
                "tenant still exists; the job is retried and parked as failed when its "
                "attempts are spent (then `ferroq retry ID` once the tenant is back)"
            )
        with provider.scope(tenant):
            yield tid
