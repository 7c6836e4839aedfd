"""The backend's statements: the named queries of ``queries.sql``, in this package.

Every statement the backend runs is one of them (``tests/sqlite/test_queries.py`` prepares
each on a migrated database); no SQL is written or formatted in Python.
"""

from __future__ import annotations

from ferroq_core.storage.queries import load_queries

__all__ = ["sql"]


def sql(name: str) -> str:
    """The text of the named query ``name`` (the file is read once per process).

    :raises KeyError: no query of that name.
    """
    return load_queries("ferroq_sqlite")[name]
