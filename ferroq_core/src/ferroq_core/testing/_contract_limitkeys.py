"""Contract checks for limit keys and the limited claim's index (part of
:class:`~ferroq_core.testing.contract.BackendContract`): every insert path stores the job's
limit key (the key given at dispatch, else its type's declared payload field, else its
tenant); a type's per-key limits count those keys; the groups index exists only where limits
do, by the time limited claims keep looking past a queue's head, however many processes
declare limits at once; and a database migrated from before limit keys keeps its pending
jobs' tenants as their keys."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest
import sqlalchemy as sa

from ferroq_core.config import QueueConfig
from ferroq_core.dispatching import dispatch, dispatch_many
from ferroq_core.flowlimits import LimitRule, type_rule
from ferroq_core.job import Job
from ferroq_core.records import JobState
from ferroq_core.runtime import Runtime
from ferroq_core.schema import jobs, table_differences
from ferroq_core.tables.base import schema_table
from ferroq_core.tables.limitkeys import GROUPS_COLUMNS, GROUPS_INDEX, AddLimitKeys
from ferroq_core.testing._contract_support import enqueue_one, worker_id
from ferroq_core.unique import Unique

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ferroq_core.storage.protocol import Backend

__all__ = ["LimitKeyContract"]


@attrs.define
class PerAccount(Job):
    """At most one running per account (its ``account_id`` is its limit key)."""

    job_name: ClassVar[str | None] = "contract:PerAccount"
    concurrency_limit: ClassVar[int | None] = 1
    limit_key: ClassVar[str | None] = "account_id"

    account_id: str
    n: int = 0

    def handle(self) -> None:
        pass


@attrs.define
class Unkeyed(Job):
    """A job type that declares no limit key."""

    job_name: ClassVar[str | None] = "contract:Unkeyed"

    n: int = 0

    def handle(self) -> None:
        pass


def _runtime(backend: Backend) -> Runtime:
    return Runtime.build(config=QueueConfig(connection="db"), backend=backend)


def _keys(backend: Backend, *keys: str) -> dict[str, list[int]]:
    return {k: sorted(r.id for r in backend.list_jobs(limit_key=k, limit=1000)) for k in keys}


def _engine(backend: Backend) -> Engine:
    engine = getattr(backend, "engine", None)
    if not isinstance(engine, sa.engine.Engine):
        pytest.skip("the backend has no SQLAlchemy engine: schema checks not run")
    return engine


def _read_past_a_held_head(backend: Backend, queue: str) -> None:
    """Key a's backlog fills the head of ``queue`` (limited to 1 running per key): with a's
    slot taken, key b's job is found only through the queue's groups."""
    held = [enqueue_one(backend, queue, limit_key="a") for _ in range(30)]
    other = enqueue_one(backend, queue, limit_key="b")
    assert [r.id for r in backend.claim([queue], worker_id(), 1)] == [held[0]]
    assert [r.id for r in backend.claim([queue], worker_id(), 1)] == [other]


def _groups_index(engine: Engine) -> list[str] | None:
    """The groups index's columns, or None when there is none."""
    with engine.connect() as conn:
        for index in sa.inspect(conn).get_indexes(jobs.name):
            if index["name"] == GROUPS_INDEX:
                return [str(c) for c in index["column_names"]]
    return None


class LimitKeyContract:
    """Limit keys stored by every dispatch path and counted by the limits; the groups index."""

    def test_every_insert_path_stores_the_key_given_declared_or_the_tenant(
        self, backend: Backend
    ) -> None:
        rt = _runtime(backend)
        declared = dispatch(PerAccount("acct-1"), runtime=rt)
        given = dispatch(PerAccount("acct-1", 1).with_limit_key("vip"), runtime=rt)
        tenant = dispatch(Unkeyed().for_tenant("acme"), runtime=rt)
        nothing = dispatch(Unkeyed(), runtime=rt)
        # A run of equal rows (SQLite inserts it as one statement), then rows of their own.
        run = dispatch_many([PerAccount("acct-2", n) for n in range(10)], runtime=rt)
        mixed = dispatch_many(
            [
                PerAccount("acct-3"),
                Unkeyed(1).for_tenant("acme"),
                Unkeyed(2).for_tenant("acme").with_limit_key("vip"),
                PerAccount("acct-3", 1).with_idempotency_key("k1"),
                PerAccount("acct-3", 2).with_unique(Unique("while_queued")),
                PerAccount("acct-3", 3).with_unique(Unique("while_queued")),
                PerAccount("acct-4").with_unique(Unique(period=60)),
            ],
            runtime=rt,
        )
        keyed = dispatch(PerAccount("acct-5").with_idempotency_key("k2"), runtime=rt)
        unique = dispatch(PerAccount("acct-5", 1).with_unique(Unique("until_started")), runtime=rt)
        period = dispatch(PerAccount("acct-5", 2).with_unique(Unique(period=60)), runtime=rt)
        keys = ("acct-1", "vip", "acme", "acct-2", "acct-3", "acct-4", "acct-5")
        assert _keys(backend, *keys) == {
            "acct-1": [declared],
            "vip": sorted([given, mixed[2]]),
            "acme": sorted([tenant, mixed[1]]),
            "acct-2": sorted(run),
            "acct-3": sorted([mixed[0], *mixed[3:6]]),
            "acct-4": [mixed[6]],
            "acct-5": sorted([keyed, unique, period]),
        }
        assert len(backend.list_jobs(limit=1000)) == 24
        listed = {r.id for k in keys for r in backend.list_jobs(limit_key=k, limit=1000)}
        assert nothing not in listed

    def test_a_transactional_dispatch_stores_the_key(self, backend: Backend) -> None:
        if not backend.capabilities.caller_connection:
            pytest.skip("the backend takes no caller's connection")
        rt = _runtime(backend)
        with _engine(backend).begin() as conn:
            ids = [
                dispatch(PerAccount("acct-1"), connection=conn, runtime=rt),
                *dispatch_many(
                    [PerAccount("acct-1", n) for n in range(1, 10)], connection=conn, runtime=rt
                ),
            ]
        assert _keys(backend, "acct-1") == {"acct-1": sorted(ids)}

    def test_a_type_declaring_a_limit_key_field_limits_each_key(self, backend: Backend) -> None:
        rule = type_rule(PerAccount, PerAccount.type_name())
        assert rule == LimitRule("type", "contract:PerAccount", concurrency=1, per_key=True)
        backend.set_limit(rule)
        rt = _runtime(backend)
        ids = dispatch_many(
            [
                PerAccount("a", 0),
                PerAccount("a", 1),
                PerAccount("b", 0),
                PerAccount("a", 2).with_limit_key("c"),
            ],
            runtime=rt,
        )
        assert sorted(r.id for r in backend.claim(["default"], worker_id(), 10)) == sorted(
            [ids[0], ids[2], ids[3]]
        )
        assert backend.claim(["default"], worker_id(), 10) == []

    def test_every_read_and_claim_gives_the_jobs_limit_key(self, backend: Backend) -> None:
        given = enqueue_one(backend, "q", tenant_id="acme", limit_key="vip")
        tenant = enqueue_one(backend, "q", tenant_id="acme")
        none = enqueue_one(backend, "q")
        want = {given: "vip", tenant: "acme", none: None}
        assert {r.id: r.limit_key for r in backend.list_jobs(limit=10)} == want
        row = backend.get_job(given)
        assert row is not None
        assert row.limit_key == "vip"
        plain = backend.claim(["q"], worker_id(), 1)
        backend.set_limit(LimitRule("queue", "q", concurrency=5, per_key=True))
        head = backend.claim(["q"], worker_id(), 1)  # the head claim
        backend.set_limit(LimitRule("queue", "q", concurrency=5, per_key=True, fair=True))
        limited = backend.claim(["q"], worker_id(), 1)  # the limited claim (a fair queue)
        assert {r.id: r.limit_key for r in [*plain, *head, *limited]} == want

    # -- the groups index --------------------------------------------------------------------
    def test_the_groups_index_exists_only_where_limits_do_and_serves_a_held_head(
        self, unmigrated_backend: Backend
    ) -> None:
        backend = unmigrated_backend
        engine = _engine(backend)
        backend.migrate()
        assert _groups_index(engine) is None, "a database without limits has no groups index"
        job_id = enqueue_one(backend, "q", limit_key="a")
        (row,) = backend.claim(["q"], worker_id(), 5)
        assert row.id == job_id
        assert backend.complete([row.lease]) == {job_id}
        assert _groups_index(engine) is None, "the plain claim makes no groups index"
        backend.set_limit(LimitRule("queue", "q", concurrency=1, per_key=True))
        backend.set_limit(LimitRule("queue", "r", concurrency=1, per_key=True))
        backend.set_limit(LimitRule("type", "t", rate=(1, 1.0)))
        # Claims that must read past a held head, one after the other: the index is there by
        # the second (on a server since the limit was set; SQLite makes it when such reads
        # repeat, and reads the first without it).
        _read_past_a_held_head(backend, "q")
        _read_past_a_held_head(backend, "r")
        assert _groups_index(engine) == list(GROUPS_COLUMNS)
        # The schema checks accept it present as they did absent.
        backend.check_schema()
        with engine.connect() as conn:
            assert table_differences(conn, [jobs]) == []

    def test_many_declaring_the_first_limit_at_once_make_one_index(
        self, unmigrated_backend: Backend
    ) -> None:
        backend = unmigrated_backend
        engine = _engine(backend)
        backend.migrate()
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def declare(n: int) -> None:
            try:
                start.wait(timeout=30)
                backend.set_limit(LimitRule("queue", f"q{n % 2}", concurrency=1, per_key=True))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=declare, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        assert {r.name for r in backend.list_limits()} == {"q0", "q1"}
        _read_past_a_held_head(backend, "q0")
        _read_past_a_held_head(backend, "q1")
        assert _groups_index(engine) == list(GROUPS_COLUMNS)

    @pytest.mark.parametrize(
        ("limits", "alembic"),
        [(False, False), (True, False), (True, True)],
        ids=["without-limits", "with-limits", "column-added-by-alembic"],
    )
    def test_a_database_from_before_limit_keys_keeps_its_tenants_as_them(
        self, unmigrated_backend: Backend, limits: bool, alembic: bool
    ) -> None:
        backend = unmigrated_backend
        engine = _engine(backend)
        backend.migrate()
        rule = LimitRule("type", "contract:Noop", concurrency=1, per_key=True)
        if limits:
            backend.set_limit(rule)
        pending = [enqueue_one(backend, "q", tenant_id=t) for t in ("a", "a", "b")]
        untenanted = enqueue_one(backend, "q")
        running = enqueue_one(backend, "busy", tenant_id="c")
        assert [r.id for r in backend.claim(["busy"], worker_id(), 1)] == [running]
        _as_before_limit_keys(engine)
        old_columns = ["queue", "job_type", "tenant_id", *GROUPS_COLUMNS[3:]]
        assert _groups_index(engine) == old_columns
        if alembic:
            # An application's Alembic, upgraded to this metadata, adds the columns and drops
            # the index that left the metadata; ferroq migrate then adopts the steps.
            with engine.begin() as conn:
                conn.execute(sa.text("DROP INDEX ferroq_jobs_groups"))
                conn.execute(sa.text("ALTER TABLE ferroq_jobs ADD COLUMN limit_key TEXT"))
                conn.execute(sa.text("ALTER TABLE ferroq_schedules ADD COLUMN limit_key TEXT"))

        assert [(a.version, a.adopted) for a in backend.migrate()] == [
            (10, alembic),
            (11, alembic),
        ]
        backend.check_schema()
        assert _keys(backend, "a", "b", "c") == {
            "a": pending[:2],
            "b": [pending[2]],
            "c": [running],
        }
        assert untenanted in {r.id for r in backend.list_jobs(state=JobState.PENDING)}
        # Where limits exist the index is made again on the new columns; elsewhere dropped.
        assert _groups_index(engine) == (list(GROUPS_COLUMNS) if limits else None)
        # Today's per-tenant limits hold on the migrated rows.
        backend.set_limit(rule)
        claimed = sorted(r.id for r in backend.claim(["q"], worker_id(), 10))
        assert claimed == sorted([pending[0], pending[2], untenanted])


def _as_before_limit_keys(engine: Engine) -> None:
    """Put a current database back in the shape the step before limit keys left it in (the
    groups index is step 8's): no ``limit_key`` column (in the jobs table, nor in the
    schedules table: step 11), the groups index on the tenant, the versions before limit keys
    recorded."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX IF EXISTS ferroq_jobs_groups"))
        conn.execute(sa.text("ALTER TABLE ferroq_jobs DROP COLUMN limit_key"))
        conn.execute(sa.text("ALTER TABLE ferroq_schedules DROP COLUMN limit_key"))
        conn.execute(
            sa.text(
                "CREATE INDEX ferroq_jobs_groups ON ferroq_jobs "
                "(queue, job_type, tenant_id, priority, available_at, id) "
                "WHERE status = 'pending'"
            )
        )
        conn.execute(
            sa.delete(schema_table).where(schema_table.c.version >= AddLimitKeys().version)
        )
