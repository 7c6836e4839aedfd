"""A caller's SQLAlchemy ``Connection`` or ``Session``, for transactional dispatch.

A backend runs its own named queries on the driver connection underneath, inside the
caller's open transaction: the jobs commit or roll back with the caller's own rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["as_connection", "driver_connection"]


def as_connection(connection: Any) -> sa.engine.Connection:
    """``connection`` (a SQLAlchemy ``Connection`` or ``Session``) as a ``Connection``.

    :raises TypeError: anything else.
    """
    if isinstance(connection, sa.engine.Connection):
        return connection
    get = getattr(connection, "connection", None)
    if callable(get):
        conn = get()
        if isinstance(conn, sa.engine.Connection):
            return conn
    raise TypeError(
        "dispatch(connection=...) takes a SQLAlchemy Connection or Session, "
        f"not {type(connection).__name__}"
    )


def driver_connection(connection: Any, dialect: str) -> tuple[sa.engine.Connection, Any]:
    """The caller's ``Connection`` and its driver (DBAPI) connection, after checking that it
    talks to a ``dialect`` database. Starts the caller's transaction if none is open
    (SQLAlchemy's autobegin), so the driver connection is inside it.

    :raises TypeError: not a ``Connection``/``Session``, or one of another database.
    """
    conn = as_connection(connection)
    if conn.dialect.name != dialect:
        raise TypeError(
            f"dispatch(connection=...) got a {conn.dialect.name} connection, but the queue's "
            f"database is {dialect}"
        )
    if not conn.in_transaction():
        conn.begin()
    return conn, conn.connection.driver_connection
