"""Workers vacuum ``ferroq_jobs`` themselves under heavy churn (docs/performance.md: the
sustained drain decayed to half its rate within a minute while autovacuum slept)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ferroq_postgres import PostgresBackend
from ferroq_postgres import vacuum as vacuum_module
from ferroq_postgres.vacuum import Vacuumer
from tests.postgres.conftest import request, wait_until, worker_id

pytestmark = pytest.mark.postgres


def _vacuums(admin: sa.engine.Engine) -> int:
    with admin.connect() as conn:
        count = conn.execute(
            sa.text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'ferroq_jobs'")
        ).scalar()
    return int(count or 0)


@pytest.fixture
def eager_vacuum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vacuum_module, "MIN_INTERVAL", 0.0)


def test_finishing_enough_jobs_vacuums_the_table(
    pg_url: str, pg_admin: sa.engine.Engine, eager_vacuum: None
) -> None:
    backend = PostgresBackend.from_url(pg_url, pool_size=4, max_overflow=4, vacuum_every=20)
    try:
        backend.migrate()
        before = _vacuums(pg_admin)
        backend.enqueue([request("vac") for _ in range(30)])
        rows = backend.claim(["vac"], worker_id(), 30)
        assert len(backend.complete([r.lease for r in rows])) == 30
        wait_until(lambda: _vacuums(pg_admin) > before, what="a VACUUM of ferroq_jobs")
    finally:
        backend.close()


def test_below_the_threshold_or_disabled_nothing_runs(
    pg_backend: PostgresBackend, eager_vacuum: None
) -> None:
    quiet = Vacuumer(pg_backend.engine, every=100)
    quiet.note(99)
    off = Vacuumer(pg_backend.engine, every=0)
    off.note(10_000)
    assert quiet.runs == 0
    assert off.runs == 0
    quiet.note(1)
    wait_until(lambda: quiet.runs == 1, what="the vacuum at the threshold")


def test_the_option_is_read_from_the_url(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url + "?vacuum_every=0")
    try:
        assert backend.options.vacuum_every == 0
    finally:
        backend.close()
