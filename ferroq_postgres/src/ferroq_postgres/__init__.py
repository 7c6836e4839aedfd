"""ferroq's PostgreSQL backend: ``postgresql://`` URLs, psycopg 3."""

from __future__ import annotations

from ferroq_postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
