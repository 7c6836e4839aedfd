"""ferroq's SQLite backend: ``sqlite:///path/to/file.db``."""

from __future__ import annotations

from ferroq_sqlite.backend import SqliteBackend
from ferroq_sqlite.options import SqliteOptions

__all__ = ["SqliteBackend", "SqliteOptions"]
