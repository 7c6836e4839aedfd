"""The backend contract suite: one set of tests every storage backend must pass.

A backend (ferroq's own or a third party's) runs it by subclassing :class:`BackendContract` in
a test module and providing a ``backend`` fixture that yields a migrated, empty backend::

    import pytest
    from ferroq_core.testing.contract import BackendContract
    from my_backend import MyBackend

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend(self, tmp_path):
            backend = MyBackend.from_url(...)
            backend.migrate()
            yield backend
            backend.close()

        # Optional: an empty database that was never migrated (the schema checks skip without).
        @pytest.fixture
        def unmigrated_backend(self): ...

        # Optional: a SQLAlchemy Engine on the same database (transactional dispatch checks
        # skip without one; the default uses ``backend.engine`` when the backend has one).
        @pytest.fixture
        def sa_engine(self, backend): ...

The checks cover every operation of :class:`~ferroq_core.storage.Backend`: dispatch and
idempotency, the claim's order, limit and isolation, fenced finishing writes, leases and the
reaper, requeues, introspection, operator actions, wake-ups, flow control (limits, limit keys
and fair queues), schedules and their limit keys, the schema, transactional enqueue, stored
results and the worker registry.
Time-dependent checks wait for a condition (bounded) instead of sleeping, so they hold on slow
machines. Every test needs the database to itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ferroq_core.errors import SchemaMissing
from ferroq_core.plugins import make_plugin_manager
from ferroq_core.records import Capabilities
from ferroq_core.schema import MIGRATIONS, SCHEMA_VERSION
from ferroq_core.storage.controls import ControlStore
from ferroq_core.storage.protocol import Admin, Backend, Dispatcher, SchemaStore, WorkerStore
from ferroq_core.testing._contract_admin import AdminContract
from ferroq_core.testing._contract_controls import ControlContract
from ferroq_core.testing._contract_dispatch import DispatchContract
from ferroq_core.testing._contract_flow import FlowContract
from ferroq_core.testing._contract_headclaim import HeadClaimContract
from ferroq_core.testing._contract_history import HistoryContract
from ferroq_core.testing._contract_leases import LeaseContract
from ferroq_core.testing._contract_limitkeys import LimitKeyContract
from ferroq_core.testing._contract_orphans import OrphanContract
from ferroq_core.testing._contract_result_paths import ResultPathContract
from ferroq_core.testing._contract_results import ResultContract
from ferroq_core.testing._contract_schedule_keys import ScheduleKeyContract
from ferroq_core.testing._contract_schedules import ScheduleContract
from ferroq_core.testing._contract_support import (
    claim_one,
    enqueue_one,
    request,
    wait_until,
    worker_id,
)
from ferroq_core.testing._contract_unique import UniqueContract
from ferroq_core.testing._contract_workers import WorkerRegistryContract

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["BackendContract", "claim_one", "enqueue_one", "request", "wait_until", "worker_id"]


class BackendContract(
    DispatchContract,
    LeaseContract,
    OrphanContract,
    AdminContract,
    ResultContract,
    ResultPathContract,
    ScheduleContract,
    ScheduleKeyContract,
    UniqueContract,
    ControlContract,
    HistoryContract,
    WorkerRegistryContract,
    FlowContract,
    HeadClaimContract,
    LimitKeyContract,
):
    """Subclass in a ``Test*`` class and provide the ``backend`` fixture (see the module doc)."""

    # -- fixtures a subclass provides --------------------------------------------------------
    @pytest.fixture
    def backend(self) -> Backend:
        pytest.fail("a BackendContract subclass must provide a `backend` fixture")

    @pytest.fixture
    def unmigrated_backend(self) -> Backend:
        pytest.skip("no `unmigrated_backend` fixture: schema checks not run")

    @pytest.fixture
    def sa_engine(self, backend: Backend) -> Engine:
        if not backend.capabilities.caller_connection:
            pytest.skip("the backend takes no caller's connection: transactional checks not run")
        engine = getattr(backend, "engine", None)
        if not isinstance(engine, sa.engine.Engine):
            pytest.fail(
                "the backend declares caller_connection: provide an `sa_engine` fixture (a "
                "SQLAlchemy Engine on the same database) or give the backend an `engine`"
            )
        return engine

    # -- lifecycle ---------------------------------------------------------------------------
    def test_is_a_backend(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)
        assert isinstance(backend.name, str)
        assert backend.name
        assert isinstance(backend.capabilities, Capabilities)
        for role in (Dispatcher, WorkerStore, Admin, SchemaStore, ControlStore):
            assert isinstance(backend, role), f"{backend.name} lacks the {role.__name__} role"

    def test_spec_declares_the_backends_capabilities(self, backend: Backend) -> None:
        specs = [
            spec
            for specs in make_plugin_manager().hook.ferroq_backends()
            for spec in specs
            if spec.name == backend.name
        ]
        if not specs:
            pytest.skip(f"no installed plugin offers a backend named {backend.name!r}")
        assert specs[0].capabilities == backend.capabilities

    def test_migrated_schema_is_current(self, backend: Backend) -> None:
        assert backend.schema_version() == SCHEMA_VERSION
        backend.check_schema()
        assert backend.migrate() == [], "migrating a current schema applies nothing"
        assert backend.schema_version() == SCHEMA_VERSION

    def test_now_is_aware_utc(self, backend: Backend) -> None:
        now = backend.now()
        assert isinstance(now, datetime)
        assert now.utcoffset() is not None
        wait_until(lambda: backend.now() > now, what="the clock to move")

    def test_schema_missing_says_run_migrate(self, unmigrated_backend: Backend) -> None:
        backend = unmigrated_backend
        assert backend.schema_version() == 0
        with pytest.raises(SchemaMissing, match="ferroq migrate"):
            backend.check_schema()
        with pytest.raises(SchemaMissing, match="ferroq migrate"):
            backend.enqueue([request("q")])
        with pytest.raises(SchemaMissing, match="ferroq migrate"):
            backend.claim(["q"], worker_id(), 1)
        with pytest.raises(SchemaMissing, match="ferroq migrate"):
            backend.get_stats()

    def test_migrate_twice_is_idempotent(self, unmigrated_backend: Backend) -> None:
        backend = unmigrated_backend
        applied = backend.migrate()
        assert [(a.version, a.adopted) for a in applied] == [
            (m.version, False) for m in MIGRATIONS
        ], "an empty database gets every step created, none adopted"
        assert backend.migrate() == []
        assert backend.schema_version() == SCHEMA_VERSION
        backend.check_schema()
        job_id = enqueue_one(backend, "q")
        assert claim_one(backend, "q").id == job_id

    # -- transactional enqueue ---------------------------------------------------------------
    def test_transactional_enqueue_rolled_back_leaves_no_job(
        self, backend: Backend, sa_engine: Engine
    ) -> None:
        with sa_engine.connect() as conn:
            trans = conn.begin()
            (result,) = backend.enqueue([request("tx")], connection=conn)
            trans.rollback()
        assert backend.get_job(result.id) is None
        assert backend.get_stats().total == 0

    def test_transactional_enqueue_committed_is_claimable(
        self, backend: Backend, sa_engine: Engine
    ) -> None:
        with sa_engine.connect() as conn, conn.begin():
            results = backend.enqueue([request("tx"), request("tx")], connection=conn)
        assert [r.id for r in backend.claim(["tx"], worker_id(), 5)] == [r.id for r in results]

    def test_transactional_enqueue_with_a_session(
        self, backend: Backend, sa_engine: Engine
    ) -> None:
        dropped, kept = request("tx"), request("tx")
        with Session(sa_engine) as session:
            backend.enqueue([dropped], connection=session)
            session.rollback()
        with Session(sa_engine) as session, session.begin():
            backend.enqueue([kept], connection=session)
        # Ids are compared through payloads: a rolled-back insert may give its id back.
        assert [r.payload for r in backend.list_jobs()] == [kept.payload]

    def test_transactional_enqueue_rejects_other_objects(self, backend: Backend) -> None:
        bad: Any = object()
        with pytest.raises(TypeError, match="Connection or Session"):
            backend.enqueue([request("tx")], connection=bad)
