"""``ferroq bench`` measures every workload on the configured database and leaves no row."""

from __future__ import annotations

import json

import click.testing
import sqlalchemy as sa

from ferroq_core import QueueConfig, Runtime, make_plugin_manager
from ferroq_core.cli import make_cli
from ferroq_core.testing.databases import empty_tables


def test_bench_reports_each_workload_and_leaves_nothing_behind(db_url: str) -> None:
    rt = Runtime.build(db_url, QueueConfig(connection="db", database_url=db_url))
    rt.backend.migrate()
    engine: sa.engine.Engine = rt.backend.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # The run's database: a schedule an earlier test left would have the bench's
            # worker enqueue its ticks.
            empty_tables(conn)
        before = conn.execute(sa.text("SELECT count(*) FROM ferroq_jobs")).scalar()
    result = click.testing.CliRunner().invoke(
        make_cli(make_plugin_manager()),
        ["--database-url", db_url, "bench", "-n", "300", "--probes", "5", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "enqueue_bulk_jobs_per_s",
        "enqueue_single_jobs_per_s",
        "drain_jobs_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
    ):
        assert report[key] > 0, key
    assert report["queue"].startswith("ferroq-bench-")
    with engine.begin() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM ferroq_jobs")).scalar()
    assert after == before
    rt.close()


def test_bench_refuses_an_unmigrated_database(sqlite_url: str) -> None:
    result = click.testing.CliRunner().invoke(
        make_cli(make_plugin_manager()), ["--database-url", sqlite_url, "bench", "-n", "10"]
    )
    assert result.exit_code == 1
    assert "ferroq migrate" in result.output
