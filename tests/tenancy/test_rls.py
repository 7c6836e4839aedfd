"""Postgres row-level security through install_rls(), against a real policy.

The application connects as a role of its own: superusers (and table owners without FORCE
ROW LEVEL SECURITY) bypass every policy, so a test as ``postgres`` would prove nothing.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ferroq_core import ConfigError, Job, WorkerConfig
from ferroq_core.worker import WorkerLoop
from ferroq_tenancy import install_rls, tenant_scope, uninstall_rls
from tests.tenancy import jobs
from tests.tenancy.conftest import installed_runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.postgres

DOCS = [("acme", "acme-1"), ("acme", "acme-2"), ("globex", "globex-1"), ("o'brien", "quote-1")]
SELECT_DOCS = sa.text("SELECT body FROM tenant_docs ORDER BY body")


@pytest.fixture
def app_engine(pg_url: str) -> Iterator[sa.Engine]:
    """An engine connected as a fresh non-superuser role, over a table with an RLS policy."""
    admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    role = f"ferroq_rls_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    # DDL cannot bind identifiers: the role name is generated here, never input.
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(
            "CREATE TABLE tenant_docs (id serial PRIMARY KEY, tenant_id text NOT NULL, "
            "body text NOT NULL)"
        )
        conn.exec_driver_sql("ALTER TABLE tenant_docs ENABLE ROW LEVEL SECURITY")
        conn.exec_driver_sql(
            "CREATE POLICY tenant_isolation ON tenant_docs "
            "USING (tenant_id = current_setting('ferroq.tenant_id', true))"
        )
        conn.exec_driver_sql(f'GRANT SELECT ON tenant_docs TO "{role}"')
        conn.execute(
            sa.text("INSERT INTO tenant_docs (tenant_id, body) VALUES (:t, :b)"),
            [{"t": t, "b": b} for t, b in DOCS],
        )
    # One pooled connection: every transaction reuses it, so a setting that outlived its
    # transaction would show.
    engine = sa.create_engine(
        sa.engine.make_url(pg_url).set(username=role), pool_size=1, max_overflow=0
    )
    try:
        yield engine
    finally:
        uninstall_rls(engine)
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql("DROP TABLE tenant_docs")
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def _bodies(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(SELECT_DOCS)]


def test_transactions_in_a_scope_see_only_their_tenant(app_engine: sa.Engine) -> None:
    install_rls(app_engine)
    assert _bodies(app_engine) == []  # no tenant: the policy matches nothing
    with tenant_scope("acme"):
        assert _bodies(app_engine) == ["acme-1", "acme-2"]
        with Session(app_engine) as session:
            assert list(session.scalars(SELECT_DOCS)) == ["acme-1", "acme-2"]
        with tenant_scope("globex"):
            assert _bodies(app_engine) == ["globex-1"]
    assert _bodies(app_engine) == []  # the same pooled connection kept nothing
    with tenant_scope("o'brien"):  # a bound parameter: quotes are just data
        assert _bodies(app_engine) == ["quote-1"]
    install_rls(app_engine, setting="app.tenant")  # replaces: the policy reads another name
    with tenant_scope("acme"):
        assert _bodies(app_engine) == []
    assert uninstall_rls(app_engine) is True
    assert uninstall_rls(app_engine) is False
    with tenant_scope("acme"):
        assert _bodies(app_engine) == []


def test_an_async_engine_is_served_through_its_sync_engine(app_engine: sa.Engine) -> None:
    # An AsyncEngine begins its transactions on the sync engine it wraps (``sync_engine``).
    install_rls(SimpleNamespace(sync_engine=app_engine))
    with tenant_scope("globex"):
        assert _bodies(app_engine) == ["globex-1"]
    assert uninstall_rls(SimpleNamespace(sync_engine=app_engine)) is True


@attrs.define
class ReadDocs(Job):
    job_name = "tenancy-tests.read-docs"
    queue = "tenancy-rls"
    engine: ClassVar[sa.Engine | None] = None

    key: str

    def handle(self) -> None:
        assert ReadDocs.engine is not None
        jobs.record(self.key, ",".join(_bodies(ReadDocs.engine)), None)


@attrs.define
class ReadDocsAsync(ReadDocs):
    job_name = "tenancy-tests.read-docs-async"

    async def handle(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().handle()


def test_worker_jobs_read_only_their_tenants_rows(app_engine: sa.Engine, pg_url: str) -> None:
    install_rls(app_engine)
    ReadDocs.engine = app_engine
    try:
        with installed_runtime(pg_url, "db") as runtime:
            for kind in (ReadDocs, ReadDocsAsync):
                suffix = "" if kind is ReadDocs else "-async"
                kind(key="acme" + suffix).for_tenant("acme").dispatch()
                kind(key="none" + suffix).dispatch()
                with tenant_scope("globex"):
                    kind(key="globex" + suffix).dispatch()
                kind(key="quote" + suffix).for_tenant("o'brien").dispatch()
                kind(key="unknown" + suffix).for_tenant("initech").dispatch()
            config = WorkerConfig(queues=("tenancy-rls",), concurrency=4, stop_when_empty=True)
            assert WorkerLoop(runtime, config, handle_signals=False).run() == 0
            assert runtime.backend.get_stats().for_queue("tenancy-rls").pending == 0
    finally:
        ReadDocs.engine = None
    expected = {
        "acme": "acme-1,acme-2",
        "none": "",
        "globex": "globex-1",
        "quote": "quote-1",
        "unknown": "",
    }
    assert dict(jobs.SEEN) == expected | {f"{k}-async": v for k, v in expected.items()}
    assert len(jobs.SEEN) == 10


def test_install_rls_refuses_what_cannot_work(sqlite_url: str, app_engine: sa.Engine) -> None:
    sqlite_engine = sa.create_engine(sqlite_url)
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        install_rls(sqlite_engine)
    sqlite_engine.dispose()
    for bad in ("tenant", "ferroq.tenant id", "x.y'; DROP TABLE tenant_docs; --"):
        with pytest.raises(ConfigError, match="dotted name"):
            install_rls(app_engine, setting=bad)
    with pytest.raises(TypeError, match="Engine"):
        install_rls("postgresql://nope")
