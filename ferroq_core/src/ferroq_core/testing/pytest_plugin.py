"""ferroq's pytest plugin, registered through the ``pytest11`` entry point of ferroq-core.

Fixtures:

- ``ferroq_fake``: a :class:`~ferroq_core.testing.FakeQueue` capturing every dispatch.
- ``ferroq_sqlite_queue``: a migrated SQLite queue in a temporary file, installed as the
  process-wide ``Queue`` (``db`` mode); a new file per test.
- ``ferroq_postgres_queue``: the same on the PostgreSQL server named by
  ``FERROQ_TEST_POSTGRES_URL``, in a schema created for the session and dropped after it,
  emptied before each test. Skips when the variable is unset (fails under
  ``FERROQ_REQUIRE_POSTGRES=1``).

This module is imported by every pytest run in an environment with ferroq-core installed, so
it imports no database driver and builds nothing until a fixture is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from ferroq_core.testing.databases import POSTGRES_URL_ENV, PostgresTestSchema, sqlite_queue
from ferroq_core.testing.fake import fake_queue

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ferroq_core.runtime import Runtime
    from ferroq_core.testing.fake import FakeQueue

_REQUIRE_ENV = "FERROQ_REQUIRE_POSTGRES"


@pytest.fixture
def ferroq_fake() -> Iterator[FakeQueue]:
    """Capture every dispatch of the test instead of storing or running it."""
    with fake_queue() as fake:
        yield fake


@pytest.fixture
def ferroq_sqlite_queue(tmp_path: Path) -> Iterator[Runtime]:
    """A migrated SQLite queue (temporary file), installed as the process-wide Queue."""
    with sqlite_queue(tmp_path) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def _ferroq_postgres_schema() -> Iterator[PostgresTestSchema]:
    url = os.environ.get(POSTGRES_URL_ENV)
    required = os.environ.get(_REQUIRE_ENV, "") not in ("", "0", "false", "no")
    if not url:
        message = f"set {POSTGRES_URL_ENV}=postgresql://user@host:5432/dbname"
        if required:
            pytest.fail(f"{_REQUIRE_ENV}=1 but {POSTGRES_URL_ENV} is not set")
        pytest.skip(message)
    schema = PostgresTestSchema(url)
    try:
        schema.create()
    except Exception as exc:
        schema.drop()
        if required:
            pytest.fail(f"cannot prepare a test schema on {POSTGRES_URL_ENV}: {exc}")
        pytest.skip(f"cannot prepare a test schema on {POSTGRES_URL_ENV}: {exc}")
    try:
        yield schema
    finally:
        schema.drop()


@pytest.fixture
def ferroq_postgres_queue(_ferroq_postgres_schema: PostgresTestSchema) -> Iterator[Runtime]:
    """An empty PostgreSQL queue (own schema), installed as the process-wide Queue."""
    with _ferroq_postgres_schema.queue() as runtime:
        yield runtime
