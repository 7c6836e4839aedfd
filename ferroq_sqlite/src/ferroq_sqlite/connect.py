"""How every connection of a ferroq SQLite engine is set up.

ferroq takes transaction control from :mod:`sqlite3` (``isolation_level = None``): the
backend's own statements begin and commit their transactions explicitly, and a transaction
SQLAlchemy begins on the engine (migrations, a caller's transactional dispatch) starts with
``BEGIN IMMEDIATE``, so it waits for the write lock up front instead of failing at its first
write.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from ferroq_sqlite.options import SqliteOptions

__all__ = ["busy_timeout_pragma", "create_private", "install_connection_setup"]


def busy_timeout_pragma(seconds: float) -> str:
    """``PRAGMA busy_timeout`` set to ``seconds``.

    The one statement built in Python: a PRAGMA takes no bound parameter, and the timeout is
    any whole number of milliseconds, so it cannot be one of a few named queries. The value
    is formatted as an ``int``, which leaves nothing to inject.
    """
    return f"PRAGMA busy_timeout = {int(seconds * 1000):d}"


def create_private(path: str) -> None:
    """Create the database file ``path`` readable and writable by its owner only, unless it
    exists (its mode is then left alone). SQLite gives the -wal and -shm files it creates the
    main file's mode, so they are private too."""
    if path in ("", ":memory:") or os.path.exists(path):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # another process created it first: its mode stands
    except OSError:
        pass  # sqlite3 reports why the file cannot be opened, in its own words


def install_connection_setup(engine: Engine, options: SqliteOptions) -> None:
    """Set up every new connection of ``engine`` (pragmas, transaction control) and start
    every transaction SQLAlchemy begins on it with ``BEGIN IMMEDIATE``."""
    busy_timeout = busy_timeout_pragma(options.busy_timeout)
    synchronous = sql(f"synchronous_{options.synchronous.lower()}")

    @sa.event.listens_for(engine, "do_connect")
    def _before_connect(
        _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        if cargs and not cparams.get("uri"):
            create_private(str(cargs[0]))

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # The busy timeout first: switching to WAL itself may have to wait for a lock.
        cur.execute(busy_timeout)
        cur.execute(sql("journal_mode_wal"))
        cur.execute(synchronous)
        cur.execute(sql("journal_size_limit"))
        cur.execute(sql("foreign_keys_on"))
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred BEGIN that later writes fails at once with SQLITE_BUSY, ignoring the
        # busy timeout; IMMEDIATE takes the write lock up front and waits for it.
        conn.exec_driver_sql(sql("begin_immediate"))
