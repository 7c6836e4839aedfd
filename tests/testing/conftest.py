from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferroq_core.runtime import Runtime
from tests.testing import jobs


@pytest.fixture(autouse=True)
def _clear_job_records() -> Iterator[None]:
    jobs.ran.clear()
    jobs.calls.clear()
    jobs.failed_calls.clear()
    yield


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def queue(request: pytest.FixtureRequest) -> Runtime:
    """The kit's own fixtures on each backend: a migrated, empty queue installed as Queue."""
    fixture = "ferroq_sqlite_queue" if request.param == "sqlite" else "ferroq_postgres_queue"
    runtime: Runtime = request.getfixturevalue(fixture)
    return runtime
