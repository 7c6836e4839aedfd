"""What the Postgres backend can do beyond the storage protocol, importable without psycopg:
every plugin manager loads the plugin, which names this record, and an application on
SQLite must not import the Postgres driver."""

from __future__ import annotations

from ferroq_core.records import Capabilities

__all__ = ["CAPABILITIES"]

#: Declared once: :class:`~ferroq_postgres.PostgresBackend` and the plugin's ``BackendSpec``.
CAPABILITIES = Capabilities(remote=True, listens=True, caller_connection=True, database_clock=True)
