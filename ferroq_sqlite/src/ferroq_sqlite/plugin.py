"""The ``sqlite`` plugin: registers the SQLite backend for ``sqlite://`` URLs.

Kept light: every plugin manager imports it, and reading the backend's capabilities through
its ``BackendSpec`` does not import the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import BackendSpec, hookimpl
from ferroq_sqlite.capabilities import CAPABILITIES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.storage.protocol import Backend

__all__ = ["ferroq_backends"]


def _factory(url_or_engine: Any, options: dict[str, Any]) -> Backend:
    from ferroq_sqlite.backend import SqliteBackend

    return SqliteBackend.from_url(url_or_engine, **options)


@hookimpl
def ferroq_backends() -> Sequence[BackendSpec]:
    return [
        BackendSpec(
            name="sqlite",
            schemes=("sqlite",),
            factory=_factory,
            distribution="ferroq-sqlite",
            capabilities=CAPABILITIES,
        )
    ]
