"""Contract checks for the limit keys of schedules (part of
:class:`~ferroq_core.testing.contract.BackendContract`): a schedule stores the limit key its
job would get at dispatch (the key given with ``.with_limit_key()``, else its type's declared
payload field), every tick's job and a ``run-now`` job are stored with it, a per-key limit
counts scheduled jobs per key, and a database migrated from before the key keeps its
schedules."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest
import sqlalchemy as sa

from ferroq_core.config import QueueConfig
from ferroq_core.flowlimits import LimitRule, type_rule
from ferroq_core.job import Job
from ferroq_core.runtime import Runtime
from ferroq_core.schedules import add_schedule, run_schedule_now
from ferroq_core.tables.base import schema_table
from ferroq_core.tables.schedule_keys import AddScheduleLimitKeys
from ferroq_core.testing._contract_schedules import spec
from ferroq_core.testing._contract_support import worker_id
from ferroq_core.worker.schedules import enqueue_due

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ferroq_core.dispatching import PendingDispatch
    from ferroq_core.schedule_records import Schedule
    from ferroq_core.storage.protocol import Backend

__all__ = ["ScheduleKeyContract"]

UTC = timezone.utc
EVERY_FIVE = "*/5 * * * *"


@attrs.define
class SyncAccount(Job):
    """At most one running per account (its ``account_id`` is its limit key)."""

    job_name: ClassVar[str | None] = "contract:SyncAccount"
    queue: ClassVar[str | None] = "ticks"
    concurrency_limit: ClassVar[int | None] = 1
    limit_key: ClassVar[str | None] = "account_id"

    account_id: str | None
    n: int = 0

    def handle(self) -> None:
        pass


def _runtime(backend: Backend) -> Runtime:
    return Runtime.build(config=QueueConfig(connection="db"), backend=backend)


def _engine(backend: Backend) -> Engine:
    engine = getattr(backend, "engine", None)
    if not isinstance(engine, sa.engine.Engine):
        pytest.skip("the backend has no SQLAlchemy engine: schema checks not run")
    return engine


def _stored(backend: Backend, name: str) -> Schedule:
    found = backend.get_schedule(name)
    assert found is not None, f"no schedule {name!r}"
    return found


def _last_key(backend: Backend, name: str) -> str | None:
    """The limit key of the job of the schedule's last run."""
    job_id = _stored(backend, name).last_job_id
    assert job_id is not None, f"schedule {name!r} enqueued nothing"
    row = backend.get_job(job_id)
    assert row is not None
    return row.limit_key


def _next_run(backend: Backend) -> datetime:
    """The latest next run of the stored schedules (a pass then finds every one due)."""
    runs = [s.next_run_at for s in backend.list_schedules() if s.next_run_at is not None]
    return max(runs)


class ScheduleKeyContract:
    """Schedules carry their job's limit key to every job they enqueue."""

    def test_a_ticks_job_is_stored_with_the_schedules_limit_key(self, backend: Backend) -> None:
        rt = _runtime(backend)
        add_schedule(SyncAccount("a-17"), EVERY_FIVE, name="declared", runtime=rt)
        given = SyncAccount("a-17").with_limit_key("bulk")
        add_schedule(given, EVERY_FIVE, name="given", runtime=rt)
        add_schedule(SyncAccount(None), EVERY_FIVE, name="none", runtime=rt)
        names = ("declared", "given", "none")
        want = {"declared": "a-17", "given": "bulk", "none": None}
        assert {s.name: s.spec.limit_key for s in backend.list_schedules()} == want
        due = backend.due_schedules(_next_run(backend), 10)
        assert {s.name: s.spec.limit_key for s in due} == want
        assert enqueue_due(backend, _next_run(backend)) == (3, 3)
        assert {n: _last_key(backend, n) for n in names} == want
        now_id = run_schedule_now("given", runtime=rt)
        assert _last_key(backend, "given") == "bulk"
        listed = backend.list_jobs(limit_key="bulk", limit=100)
        assert int(now_id) in {r.id for r in listed}
        assert len(listed) == 2

    def test_the_limit_key_is_part_of_the_definition(self, backend: Backend) -> None:
        first = datetime(2030, 1, 1, tzinfo=UTC)
        keyed = spec(limit_key="acct-1")
        assert backend.save_schedule(keyed, first) == "created"
        assert _stored(backend, "nightly").spec == keyed
        assert backend.save_schedule(keyed, first) == "unchanged"
        other = attrs.evolve(keyed, limit_key="acct-2")
        assert backend.save_schedule(other, first, replace=False) == "exists"
        assert backend.save_schedule(other, first) == "updated"
        assert (_stored(backend, "nightly").spec, _stored(backend, "nightly").revision) == (
            other,
            2,
        )
        # Back to no key: stored as none (NULL), not as the text of one.
        assert backend.save_schedule(spec(), first) == "updated"
        assert _stored(backend, "nightly").spec.limit_key is None

    def test_a_per_key_limit_counts_scheduled_jobs_per_key(self, backend: Backend) -> None:
        rule = type_rule(SyncAccount, SyncAccount.type_name())
        assert rule == LimitRule("type", "contract:SyncAccount", concurrency=1, per_key=True)
        backend.set_limit(rule)
        rt = _runtime(backend)
        jobs: dict[str, Job | PendingDispatch] = {
            "a-first": SyncAccount("a"),
            "a-second": SyncAccount("a", 1),
            "b": SyncAccount("b"),
            "c": SyncAccount("a", 2).with_limit_key("c"),
        }
        for name, job in jobs.items():
            add_schedule(job, EVERY_FIVE, name=name, runtime=rt)
        assert enqueue_due(backend, _next_run(backend)) == (4, 4)
        # One running per key: a's second tick waits, b's and c's run beside a's first.
        claimed = backend.claim(["ticks"], worker_id(), 10)
        assert sorted(str(r.limit_key) for r in claimed) == ["a", "b", "c"]
        assert backend.claim(["ticks"], worker_id(), 10) == []

    @pytest.mark.parametrize("alembic", [False, True], ids=["from-step-10", "added-by-alembic"])
    def test_a_database_from_before_schedule_keys_keeps_its_schedules(
        self, unmigrated_backend: Backend, alembic: bool
    ) -> None:
        backend = unmigrated_backend
        engine = _engine(backend)
        backend.migrate()
        first = datetime(2030, 1, 1, tzinfo=UTC)
        backend.save_schedule(spec("nightly"), first)
        backend.save_schedule(spec("paused", "0 * * * *", catch_up="all"), first)
        assert backend.pause_schedule("paused", paused=True, next_run_at=None)
        before = backend.list_schedules()
        _as_before_schedule_keys(engine)
        assert backend.schema_version() == AddScheduleLimitKeys().version - 1
        if alembic:
            # An application's Alembic, upgraded to this metadata, adds the column; ferroq
            # migrate then adopts the step.
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE ferroq_schedules ADD COLUMN limit_key TEXT"))

        assert [(a.version, a.adopted) for a in backend.migrate()] == [(11, alembic)]
        backend.check_schema()
        assert backend.list_schedules() == before
        assert all(s.spec.limit_key is None for s in before)
        # They go on as before (their ticks have no key) and take one when saved with it.
        assert enqueue_due(backend, first) == (1, 1)
        assert _last_key(backend, "nightly") is None
        keyed = attrs.evolve(before[0].spec, limit_key="acct-1")
        assert backend.save_schedule(keyed, first) == "updated"
        assert _stored(backend, "nightly").spec.limit_key == "acct-1"


def _as_before_schedule_keys(engine: Engine) -> None:
    """Put a current database back in the shape step 10 left it in: no
    ``ferroq_schedules.limit_key`` column, the versions before it recorded."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ferroq_schedules DROP COLUMN limit_key"))
        conn.execute(
            sa.delete(schema_table).where(schema_table.c.version >= AddScheduleLimitKeys().version)
        )
