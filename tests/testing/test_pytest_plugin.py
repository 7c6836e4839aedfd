"""The pytest plugin: registered through ``pytest11``; its fixtures reset between tests."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import sqlalchemy as sa

pytest_plugins = ["pytester"]

_APP_TESTS = """
from __future__ import annotations

import json
import os

import attrs

from ferroq_core import Job, Queue
from ferroq_core.testing import drain

@attrs.define
class Ping(Job):
    n: int
    def handle(self) -> None:
        pass

def _record(name, runtime):
    with open(os.environ["RECORD_TO"], "a") as f:
        f.write(json.dumps([name, str(runtime.backend.engine.url)]) + "\\n")

def test_first(QUEUE_FIXTURE):
    assert Queue.runtime() is QUEUE_FIXTURE
    assert QUEUE_FIXTURE.config.connection == "db"
    Ping(n=1).dispatch()
    Ping(n=2).dispatch()
    assert QUEUE_FIXTURE.backend.get_stats().total == 2
    _record("first", QUEUE_FIXTURE)

def test_second_starts_empty(QUEUE_FIXTURE):
    assert QUEUE_FIXTURE.backend.get_stats().total == 0
    first_id = Ping(n=3).dispatch()
    assert int(first_id) == 1
    assert drain().succeeded == 1
    _record("second", QUEUE_FIXTURE)

def test_fake(ferroq_fake):
    Ping(n=4).dispatch()
    ferroq_fake.assert_dispatched(Ping, where={"n": 4})
"""


def test_registered_through_the_pytest11_entry_point() -> None:
    (ep,) = [ep for ep in entry_points(group="pytest11") if ep.name == "ferroq"]
    assert ep.value == "ferroq_core.testing.pytest_plugin"
    assert ep.dist is not None
    assert ep.dist.metadata["Name"] == "ferroq-core"


def test_sqlite_fixture_resets_between_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("RECORD_TO", str(record))
    pytester.makepyfile(test_app=_APP_TESTS.replace("QUEUE_FIXTURE", "ferroq_sqlite_queue"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    urls = [line.split('"')[3] for line in record.read_text().splitlines()]
    assert len(urls) == 2
    assert urls[0] != urls[1], "each test gets a new SQLite file"


@pytest.mark.postgres
def test_postgres_fixture_uses_its_own_schema_and_drops_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pg_server_url: str
) -> None:
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("RECORD_TO", str(record))
    monkeypatch.setenv("FERROQ_TEST_POSTGRES_URL", pg_server_url)
    tests = _APP_TESTS.replace("QUEUE_FIXTURE", "ferroq_postgres_queue")
    tests += """
def test_schema(ferroq_postgres_queue, _ferroq_postgres_schema):
    with open(os.environ["RECORD_TO"] + ".schema", "w") as f:
        f.write(_ferroq_postgres_schema.schema)
    with ferroq_postgres_queue.backend.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT current_schema()").scalar() == (
            _ferroq_postgres_schema.schema
        )
"""
    pytester.makepyfile(test_app=tests)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    schema = (pytester.path / "record.jsonl.schema").read_text()
    assert schema.startswith("ferroq_test_")
    engine = sa.create_engine(
        sa.engine.make_url(pg_server_url).set(drivername="postgresql+psycopg"),
        poolclass=sa.pool.NullPool,
    )
    try:
        with engine.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"),
                {"name": schema},
            ).scalar()
    finally:
        engine.dispose()
    assert left == 0, "the session's schema is dropped after the run"


def test_postgres_fixture_skips_without_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERROQ_TEST_POSTGRES_URL", raising=False)
    monkeypatch.delenv("FERROQ_REQUIRE_POSTGRES", raising=False)
    pytester.makepyfile(test_pg="def test_pg(ferroq_postgres_queue):\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv("FERROQ_REQUIRE_POSTGRES", "1")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(errors=1)


@pytest.mark.slow
def test_plugin_module_does_not_import_a_database_driver() -> None:
    """Every pytest run in an environment with ferroq-core imports the plugin module: it must
    not pull in psycopg (or open anything) for projects that never use the fixtures."""
    code = (
        "import sys; import ferroq_core.testing.pytest_plugin; "
        "print('psycopg' in sys.modules, 'ferroq_postgres' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.split() == ["False", "False"]
