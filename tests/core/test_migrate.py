"""``ferroq migrate`` (twice), the recorded schema version, and the missing-table error."""

from __future__ import annotations

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ferroq_core import Job, QueueConfig, Runtime, SchemaMissing, dispatch, dispatch_many
from ferroq_core.cli import make_cli
from ferroq_core.schema import SCHEMA_VERSION, schema_table


@attrs.define
class Noop(Job):
    def handle(self) -> None:
        pass


def _migrate(url: str) -> str:
    result = CliRunner().invoke(make_cli(), ["--database-url", url, "migrate"])
    assert result.exit_code == 0, result.output
    return result.output


def test_migrate_twice_is_idempotent_and_records_the_version(empty_db_url: str) -> None:
    first = _migrate(empty_db_url)
    assert first == f"applied: create_jobs_table (schema version {SCHEMA_VERSION})\n"
    second = _migrate(empty_db_url)
    assert second == f"up to date (schema version {SCHEMA_VERSION})\n"

    runtime = Runtime.build(empty_db_url, QueueConfig(connection="db"))
    try:
        assert runtime.backend.schema_version() == SCHEMA_VERSION
        runtime.backend.check_schema()
        engine = runtime.backend.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(schema_table.c.version, schema_table.c.name)).all()
        assert [tuple(r) for r in rows] == [(1, "create_jobs_table")]
        dispatch(Noop(), runtime=runtime)
        assert runtime.backend.get_stats().pending == 1
    finally:
        runtime.close()


def test_migrate_reads_the_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("FERROQ_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(make_cli(), ["migrate"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("applied: create_jobs_table")


def test_a_database_without_the_table_says_run_ferroq_migrate(empty_db_url: str) -> None:
    runtime = Runtime.build(empty_db_url, QueueConfig(connection="db"))
    try:
        backend = runtime.backend
        attempts = [
            lambda: backend.check_schema(),
            lambda: dispatch(Noop(), runtime=runtime),
            lambda: dispatch_many([Noop(), Noop()], runtime=runtime),
            lambda: backend.claim(["default"], "host:1:abc", 5),
            lambda: backend.get_stats(),
            lambda: backend.reap(30.0),
        ]
        for attempt in attempts:
            with pytest.raises(SchemaMissing) as info:
                attempt()
            assert "run `ferroq migrate`" in str(info.value)
    finally:
        runtime.close()


def test_cli_errors_are_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(make_cli(), ["--database-url", "mysql://a@b/c", "migrate"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no installed ferroq backend serves 'mysql'")
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_lists_the_core_commands() -> None:
    result = CliRunner().invoke(make_cli(), ["--help"])
    assert result.exit_code == 0
    assert "migrate" in result.output
    assert "plugins" in result.output
    assert "FERROQ_DATABASE_URL" in result.output
