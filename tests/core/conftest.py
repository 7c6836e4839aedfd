from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL where ferroq was never migrated: a new SQLite file, or a new empty
    Postgres schema (selected through the connection's search_path)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = sa.engine.make_url(str(request.getfixturevalue("pg_url")))
    schema = f"ferroq_empty_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    try:
        yield server.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


def engine_for(url: str) -> sa.engine.Engine:
    """A SQLAlchemy engine on ``url`` (an ``empty_db_url``), without pooling, on psycopg 3 for
    a plain postgresql:// URL."""
    made = sa.engine.make_url(url)
    if made.drivername == "postgresql":
        made = made.set(drivername="postgresql+psycopg")
    return sa.create_engine(made, poolclass=sa.pool.NullPool)
