"""Which tenant a job is stored with when it is dispatched without ``for_tenant()``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ferroq_tenancy.context import current_tenant, tenant_id_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core import Job

__all__ = ["CaptureHook", "capture_tenant", "capture_tenants", "register_tenant_capture_hook"]

#: ``fn(job) -> tenant id or None``: where the dispatching code's tenant is found.
CaptureHook = Callable[["Job"], "str | int | None"]

# A process-wide setting, made once at application start-up (like the provider): dispatch can
# happen on any thread, so a per-thread setting would silently capture nothing.
_lock = threading.Lock()
_hook: CaptureHook | None = None


def register_tenant_capture_hook(fn: CaptureHook | None) -> CaptureHook | None:
    """Replace the default capture (``current_tenant()``) with ``fn``.

    For frameworks that keep the tenant elsewhere (a request object, a thread-local, a
    schema name). ``fn(job)`` is called at every dispatch without ``for_tenant()`` and returns
    the tenant id (``str`` or ``int``) or None for a job without a tenant. Pass None to restore
    the default.

    :param fn: the new capture function, or None.
    :return: the function it replaced (None when the default was in use), so tests can
        restore it.

    Example::

        register_tenant_capture_hook(lambda job: getattr(flask.g, "tenant_id", None))
    """
    global _hook
    if fn is not None and not callable(fn):
        raise TypeError(f"the tenant capture hook must be callable, got {fn!r}")
    with _lock:
        previous, _hook = _hook, fn
    return previous


def capture_tenant(job: Job) -> str | None:
    """The tenant to store with ``job``: the registered hook's value, else the current one."""
    hook = _hook
    value = current_tenant() if hook is None else hook(job)
    return None if value is None else tenant_id_text(value)


def capture_tenants(jobs: Sequence[Job]) -> list[str | None]:
    """:func:`capture_tenant` of each job; without a registered hook the current tenant is
    read once for the whole batch (it cannot change while one dispatch call runs)."""
    hook = _hook
    if hook is None:
        value = current_tenant()
        tenant = None if value is None else tenant_id_text(value)
        return [tenant] * len(jobs)
    return [capture_tenant(job) for job in jobs]
