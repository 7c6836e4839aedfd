"""ferroq's PostgreSQL backend: ``postgresql://`` URLs, psycopg 3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferroq_postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]


def __getattr__(name: str) -> Any:
    # Lazy: every plugin manager imports ferroq_postgres.plugin (and so this package), and an
    # application on SQLite must not pay for importing psycopg.
    if name == "PostgresBackend":
        from ferroq_postgres.backend import PostgresBackend

        return PostgresBackend
    raise AttributeError(f"module 'ferroq_postgres' has no attribute {name!r}")
