from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.testing import jobs

if TYPE_CHECKING:
    from ferroq_core.runtime import Runtime


@pytest.fixture(autouse=True)
def _clear_job_records() -> None:
    jobs.ran.clear()
    jobs.calls.clear()
    jobs.failed_calls.clear()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def queue(request: pytest.FixtureRequest) -> Runtime:
    """The kit's own fixtures on each backend: a migrated, empty queue installed as Queue."""
    fixture = "ferroq_sqlite_queue" if request.param == "sqlite" else "ferroq_postgres_queue"
    runtime: Runtime = request.getfixturevalue(fixture)
    return runtime
