"""Throw-away queues on real databases, for tests (the pytest fixtures are built on these).

Usable without pytest (``unittest``, scripts)::

    with sqlite_queue(tmpdir) as runtime:      # installed as the process-wide Queue
        SendEmail(to="a@example.com").dispatch()
        assert drain().succeeded == 1
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.config import QueueConfig
from ferroq_core.queue import Queue
from ferroq_core.runtime import Runtime
from ferroq_core.schema import metadata

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    import pluggy

__all__ = ["PostgresTestSchema", "empty_tables", "installed", "sqlite_queue"]

#: Server for ``ferroq_postgres_queue`` (any database on it; a schema is created there).
POSTGRES_URL_ENV = "FERROQ_TEST_POSTGRES_URL"


def _config(url: str) -> QueueConfig:
    return attrs.evolve(QueueConfig.from_env(), connection="db", database_url=url)


@contextmanager
def installed(runtime: Runtime) -> Iterator[Runtime]:
    """Install ``runtime`` as the process-wide ``Queue`` for the block, then put back the one
    that was there before (and close ``runtime``)."""
    previous = Queue.runtime() if Queue.is_initialized() else None
    Queue.use(runtime)
    try:
        yield runtime
    finally:
        Queue.use(previous)
        runtime.close()


@contextmanager
def sqlite_queue(
    directory: str | os.PathLike[str], *, pm: pluggy.PluginManager | None = None
) -> Iterator[Runtime]:
    """A migrated SQLite queue in a new file under ``directory``, in ``db`` mode, installed as
    the process-wide ``Queue`` for the block."""
    path = Path(directory) / f"ferroq-{uuid.uuid4().hex[:8]}.sqlite3"
    url = f"sqlite:///{path}"
    runtime = Runtime.build(url, _config(url), pm)
    try:
        runtime.backend.migrate()
    except BaseException:
        runtime.close()
        raise
    with installed(runtime):
        yield runtime


@attrs.define
class PostgresTestSchema:
    """A schema of its own on a PostgreSQL server, migrated once, emptied per :meth:`queue`.

    :param server_url: any database on the server (``postgresql://user@host:5432/postgres``).
    """

    server_url: str
    #: Generated name of the schema (never user input).
    schema: str = attrs.field(factory=lambda: f"ferroq_test_{uuid.uuid4().hex[:12]}")
    _admin: sa.engine.Engine | None = None

    def _url(self) -> sa.engine.URL:
        return sa.engine.make_url(self.server_url).set(drivername="postgresql+psycopg")

    def _engine(self) -> sa.engine.Engine:
        # Every connection of the queue works in the test schema only.
        return sa.create_engine(
            self._url(),
            connect_args={"options": f"-c search_path={self.schema}"},
            pool_size=5,
            max_overflow=10,
        )

    def create(self) -> None:
        """Create and migrate the schema."""
        self._admin = sa.create_engine(self._url(), poolclass=sa.pool.NullPool)
        with self._admin.begin() as conn:
            conn.execute(sa.schema.CreateSchema(self.schema))
        runtime = Runtime.build(self._engine(), _config(self.server_url))
        try:
            runtime.backend.migrate()
        finally:
            runtime.close()

    def drop(self) -> None:
        """Drop the schema and everything in it."""
        if self._admin is None:
            return
        with self._admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(self.schema, cascade=True, if_exists=True))
        self._admin.dispose()
        self._admin = None

    @contextmanager
    def queue(self, *, pm: pluggy.PluginManager | None = None) -> Iterator[Runtime]:
        """An empty queue in the schema, in ``db`` mode, installed as the process-wide
        ``Queue`` for the block."""
        if self._admin is None:
            self.create()
        engine = self._engine()
        with engine.begin() as conn:
            empty_tables(conn)
        runtime = Runtime.build(engine, _config(self.server_url), pm)
        with installed(runtime):
            yield runtime

    def __enter__(self) -> PostgresTestSchema:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


def empty_tables(conn: sa.Connection) -> None:
    """Empty every ferroq table of a migrated Postgres database in ``conn``'s transaction, the
    schema's version aside: the jobs table with its id sequence restarted, and every table a
    feature added (a result left by an earlier test would name a new job, a schedule left
    would have this test's workers enqueue its ticks)."""
    conn.execute(sa.text("TRUNCATE ferroq_jobs RESTART IDENTITY"))
    for table in metadata.sorted_tables:
        if table.name not in ("ferroq_jobs", "ferroq_schema"):
            conn.execute(table.delete())
