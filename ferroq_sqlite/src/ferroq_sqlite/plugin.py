"""The ``sqlite`` plugin: registers the SQLite backend for ``sqlite://`` URLs.

Kept light: reading the backend's capabilities (here, or through its ``BackendSpec``) does
not import the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import BackendSpec, hookimpl
from ferroq_core.records import Capabilities

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.storage.protocol import Backend

__all__ = ["CAPABILITIES", "ferroq_backends"]

#: What the SQLite backend can do beyond the protocol: it is embedded (a write waits on this
#: host only), idle workers poll ``PRAGMA data_version`` instead of listening, it dispatches
#: inside a caller's SQLAlchemy transaction, and its clock is the host's.
CAPABILITIES = Capabilities(
    remote=False, listens=False, caller_connection=True, database_clock=False
)


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
