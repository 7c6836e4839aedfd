"""What the SQLite backend can do beyond the storage protocol, importable without the backend:
the plugin (loaded by every plugin manager) names this record in its ``BackendSpec``."""

from __future__ import annotations

from ferroq_core.records import Capabilities

__all__ = ["CAPABILITIES"]

#: Declared once, for :class:`~ferroq_sqlite.SqliteBackend` and the plugin's ``BackendSpec``:
#: it is embedded (a write waits on this host only), idle workers poll ``PRAGMA data_version``
#: instead of listening, it dispatches inside a caller's SQLAlchemy transaction, and its clock
#: is the host's.
CAPABILITIES = Capabilities(
    remote=False, listens=False, caller_connection=True, database_clock=False
)
