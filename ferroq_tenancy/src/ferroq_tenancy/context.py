"""The current tenant, kept in a ``ContextVar`` (so threads and asyncio tasks each see their
own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_tenant", "tenant_scope"]

_current: ContextVar[str | None] = ContextVar("ferroq_tenant", default=None)


def current_tenant() -> str | None:
    """The tenant id of the running code, or None outside any tenant scope."""
    return _current.get()


@contextmanager
def tenant_scope(tenant_id: str | int | None) -> Iterator[str | None]:
    """Make ``tenant_id`` current until the block ends (ids are stored as text)."""
    token = _current.set(None if tenant_id is None else str(tenant_id))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
