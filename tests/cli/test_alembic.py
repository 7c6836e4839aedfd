"""The Alembic path the docs promise, with the real tools in subprocesses, on both backends.

An application merges ``ferroq_core.schema.metadata`` into its ``target_metadata``, runs
``alembic revision --autogenerate`` and ``alembic upgrade head``, then one ``ferroq migrate``
adopts the tables (creating nothing again); ``ferroq health`` passes, a second autogenerate
finds nothing to change, and a ``ferroq worker --stop-when-empty`` drains jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ferroq_core import QueueConfig, Runtime, dispatch_many
from ferroq_core.flowlimits import LimitRule
from ferroq_core.schema import SCHEMA_VERSION
from tests.cli.conftest import new_pg_database
from tests.cli.test_executable import ferroq_command
from tests.worker.jobs import Record

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]

APP_MODELS = """\
import sqlalchemy as sa

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False),
)
"""

#: What the docs tell an application to put in its env.py.
TARGET_METADATA = """\
import app_models
import ferroq_core.schema

target_metadata = [app_models.metadata, ferroq_core.schema.metadata]
"""
#: ... and in its context.configure() (the index ferroq makes where limits exist).
CONFIGURE = "include_object=ferroq_core.schema.include_object"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], code: int = 0) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == code, (cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def _alembic_project(tmp_path: Path, url: str, env: dict[str, str]) -> Path:
    """``alembic init`` plus the two edits an application makes: its URL and its metadata."""
    project = tmp_path / "app"
    project.mkdir()
    _run([sys.executable, "-m", "alembic", "init", "migrations"], project, env)
    (project / "app_models.py").write_text(APP_MODELS)
    ini = project / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("driver://user:pass@localhost/dbname", url.replace("%", "%%"))
    )
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    assert "target_metadata = None\n" in text
    # compare_server_default is off by default; many applications turn it on.
    text = text.replace("target_metadata = None\n", TARGET_METADATA).replace(
        "target_metadata=target_metadata",
        f"target_metadata=target_metadata, compare_server_default=True, {CONFIGURE}",
    )
    env_py.write_text(text)
    return project


def _shape(engine: sa.engine.Engine) -> dict[str, object]:
    """What a re-creation would change: the ferroq tables' identities and their indexes."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        indexes = sorted(i["name"] or "" for i in inspector.get_indexes("ferroq_jobs"))
        if engine.dialect.name == "sqlite":
            made = conn.execute(
                # Triggers are not in the metadata: ferroq migrate makes them (settle).
                sa.text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE name LIKE 'ferroq%' AND type <> 'trigger'"
                )
            ).all()
        else:
            made = conn.execute(
                sa.text("SELECT relname, oid::int FROM pg_class WHERE relname LIKE 'ferroq%'")
            ).all()
    return {"indexes": indexes, "objects": sorted(tuple(r) for r in made)}


def _reloptions(engine: sa.engine.Engine) -> list[str]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = 'ferroq_jobs'")
        ).scalar()
    return list(found or [])


def _claim_past_a_held_head(url: str) -> None:
    """Limited claims of queues q and q2 that must read their groups, one after the other (the
    index exists by then: on Postgres since the limit, on SQLite made by the second); the jobs
    are finished unrun (not in the ledger) and q2's limit deleted."""
    runtime = Runtime.build(url, QueueConfig(connection="db"))
    backend = runtime.backend
    try:
        backend.set_limit(LimitRule("queue", "q2", concurrency=1, per_key=True))
        for queue in ("q", "q2"):
            backlog = [Record(tag="held").on_queue(queue).with_limit_key("a") for _ in range(30)]
            other = Record(tag="other").on_queue(queue).with_limit_key("b")
            dispatch_many([*backlog, other], runtime=runtime)
            rows = [*backend.claim([queue], "host:1:test", 1)]
            rows += backend.claim([queue], "host:1:test", 1)
            assert [json.loads(r.payload)["tag"] for r in rows] == ["held", "other"]
            backend.complete([r.lease for r in rows])
        # q's limit stays: on SQLite the index goes with the last limit.
        backend.delete_limit("queue", "q2")
        with backend.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.text("DELETE FROM ferroq_jobs WHERE queue IN ('q', 'q2')"))
    finally:
        runtime.close()


@contextlib.contextmanager
def _database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    with new_pg_database(request.getfixturevalue("pg_server_url")) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_alembic_creates_the_tables_and_ferroq_adopts_them(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _database(kind, request, tmp_path) as url:
        ledger = tmp_path / "ledger.txt"
        env = {**os.environ, "FERROQ_DATABASE_URL": url, "FERROQ_TEST_LOG": str(ledger)}
        alembic_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        project = _alembic_project(tmp_path, alembic_url, env)
        alembic = [sys.executable, "-m", "alembic"]

        _run([*alembic, "revision", "--autogenerate", "-m", "init"], project, env)
        _run([*alembic, "upgrade", "head"], project, env)

        # The tables are there, but ferroq has recorded no version: health says what to do.
        health = _run([*ferroq_command(), "health", "--skip-workers"], REPO, env, code=4)
        assert "run `ferroq migrate` to adopt" in health, health

        engine = sa.create_engine(alembic_url, poolclass=sa.pool.NullPool)
        try:
            before = _shape(engine)
            adopted = _run([*ferroq_command(), "migrate"], REPO, env)
            assert adopted.startswith("adopted: create_jobs_table"), adopted
            assert _shape(engine) == before, "ferroq migrate re-created what Alembic made"
            if kind == "postgres":
                assert "autovacuum_vacuum_scale_factor=0.01" in _reloptions(engine)
                assert "fillfactor=80" in _reloptions(engine)
        finally:
            engine.dispose()
        again = _run([*ferroq_command(), "migrate"], REPO, env)
        assert again.strip() == f"up to date (schema version {SCHEMA_VERSION})"
        health = _run([*ferroq_command(), "health", "--skip-workers"], REPO, env)
        assert health.splitlines()[-1] == "healthy", health

        # A second autogenerate finds nothing to change (`alembic check` fails on any op),
        # also once a limit made the groups index, which is not in the metadata.
        check = _run([*alembic, "check"], project, env)
        assert "No new upgrade operations detected" in check, check
        _run(
            [*ferroq_command(), "limits", "set", "--queue", "q", "--concurrency", "1", "--per-key"],
            REPO,
            env,
        )
        _claim_past_a_held_head(url)
        engine = sa.create_engine(alembic_url, poolclass=sa.pool.NullPool)
        try:
            assert "ferroq_jobs_groups" in str(_shape(engine)["indexes"])
        finally:
            engine.dispose()
        check = _run([*alembic, "check"], project, env)
        assert "No new upgrade operations detected" in check, check

        runtime = Runtime.build(url, QueueConfig(connection="db"))
        try:
            dispatch_many([Record(tag=f"alembic-{i}") for i in range(20)], runtime=runtime)
        finally:
            runtime.close()
        _run(
            [*ferroq_command(), "worker", "--import", "tests.worker.jobs", "--stop-when-empty"],
            REPO,
            env,
        )
        ran = sorted(line.split()[0] for line in ledger.read_text().splitlines())
        assert ran == sorted(f"alembic-{i}" for i in range(20))
