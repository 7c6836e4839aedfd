"""The limited claim's index on Postgres, made when a limit is set (see
:mod:`ferroq_core.tables.limitkeys`): ``CREATE INDEX CONCURRENTLY`` outside any transaction,
so dispatches and claims go on while it builds.

Of several processes setting limits at once (workers starting together, each declaring its job
types' limits) the one that takes the builders' session lock builds it; the others go on at
once, without the index until it is built (the limited claim is correct without it, only
slower). Behind a pooler in transaction mode the session is not ours: no lock, and a build
that meets another's ends there. A build that cannot run (a role that does not own the table)
is a warning, not an error: the limit is stored all the same.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import psycopg

from ferroq_postgres.connections import QUERIES, autocommit, fetch

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["ensure_groups_index"]

log = logging.getLogger("ferroq.postgres")


def ensure_groups_index(engine: Engine, *, pooled: bool) -> None:
    """Make the groups index unless it exists and is valid; idempotent, never blocks on
    another builder, and never raises for the index (it logs a warning)."""
    try:
        with autocommit(engine) as conn:
            if _valid(conn):
                return
            if pooled:
                _create(conn)
                return
            if not fetch(conn, "groups_index_try_lock", prepare=False)[0][0]:
                return  # another process is building it
            try:
                # Holding the lock, an invalid index is no one's build in progress: it is what
                # a build cut short left behind (IF NOT EXISTS would keep it for good).
                if _valid(conn) is False:
                    conn.execute(QUERIES["groups_index_drop"], prepare=False)
                _create(conn)
            finally:
                fetch(conn, "groups_index_unlock", prepare=False)
    except psycopg.Error as exc:
        log.warning(
            "ferroq: could not create the index ferroq_jobs_groups (%s): limited claims work "
            "without it, slower; it is tried again at the next `ferroq limits set` or worker "
            "start that declares limits (it needs the role that owns ferroq_jobs)",
            str(exc).strip(),
        )


def _valid(conn: psycopg.Connection[Any]) -> bool | None:
    """Whether the index is usable; None when there is none."""
    rows = fetch(conn, "groups_index_valid", prepare=False)
    return bool(rows[0][0]) if rows else None


def _create(conn: psycopg.Connection[Any]) -> None:
    # UniqueViolation: another build (behind a pooler, without the lock) made it meanwhile.
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        conn.execute(QUERIES["groups_index_create"], prepare=False)
