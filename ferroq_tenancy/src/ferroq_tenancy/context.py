"""The current tenant, kept in a ``ContextVar`` (so threads and asyncio tasks each see their
own)."""

from __future__ import annotations

from contextlib import ContextDecorator
from contextvars import ContextVar, Token

__all__ = ["current_tenant", "tenant_id_text", "tenant_scope"]

# A new thread starts with an empty context (it does not inherit its creator's tenant); an
# asyncio task starts with a copy of its creator's context, so tasks created inside a scope
# stay in it and sibling tasks cannot see each other's scopes.
_current: ContextVar[str | None] = ContextVar("ferroq_tenant", default=None)


def tenant_id_text(tenant_id: object) -> str:
    """``tenant_id`` as the text stored in ``ferroq_jobs.tenant_id``.

    :param tenant_id: a ``str`` or an ``int`` (``42`` and ``"42"`` are the same tenant).
    :raises TypeError: for any other type (``bool`` included: ``True`` is no tenant id).
    :raises ValueError: for an empty string.
    """
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, (str, int)):
        raise TypeError(
            f"a tenant id must be a str or an int, got {type(tenant_id).__name__}: {tenant_id!r}"
        )
    text = str(tenant_id)
    if not text:
        raise ValueError("a tenant id must not be empty")
    return text


def current_tenant() -> str | None:
    """The tenant id of the running code, or None outside any tenant scope."""
    return _current.get()


class tenant_scope(ContextDecorator):  # lower case: it replaced a function of that name
    """Make ``tenant_id`` current until the block ends, then restore the previous one.

    Usable in threads and asyncio tasks; scopes nest. ``tenant_scope(None)`` runs a block with
    no tenant. Yields the id as text::

        with tenant_scope(42) as tid:
            assert current_tenant() == tid == "42"
            ReportJob().dispatch()  # stored with tenant_id "42"

    A class rather than a generator function: the worker enters one per job, and a
    generator-based context manager adds a generator and its wrapper to each.
    """

    __slots__ = ("_tenant", "_tokens")

    def __init__(self, tenant_id: str | int | None) -> None:
        # A bad id raises here, before any scope is entered.
        self._tenant = None if tenant_id is None else tenant_id_text(tenant_id)
        self._tokens: list[Token[str | None]] = []

    def __enter__(self) -> str | None:
        self._tokens.append(_current.set(self._tenant))
        return self._tenant

    def __exit__(self, *_exc: object) -> None:
        _current.reset(self._tokens.pop())
