"""db-mode dispatch: options land in the row, bulk dispatch is one transaction, idempotency,
payload limits. Runs on both backends."""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import sqlalchemy as sa

from ferroq_core import (
    EnqueueRequest,
    Job,
    JobState,
    PayloadTooLarge,
    SerializationError,
    dispatch,
    dispatch_later,
    dispatch_many,
    dispatch_to,
    hookimpl,
)
from ferroq_tenancy import tenant_scope

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_core import JobRow, Runtime


@attrs.define
class Report(Job):
    job_name = "tests.report"
    queue = "reports"
    priority = 4
    max_attempts = 7

    month: str
    pages: int = 1

    def handle(self) -> None:
        pass


@attrs.define
class Plain(Job):
    n: int = 0

    def handle(self) -> None:
        pass


@attrs.define
class Unencodable(Job):
    value: Any = None

    def handle(self) -> None:
        pass


def _row(runtime: Runtime, job_id: int) -> JobRow:
    row = runtime.backend.get_job(job_id)
    assert row is not None
    return row


def _delay_of(row: JobRow) -> float:
    return (row.available_at - row.created_at).total_seconds()


def test_class_options_land_in_the_row(runtime: Runtime) -> None:
    job_id = Report(month="2024-05").dispatch()
    row = _row(runtime, job_id)
    assert (row.job_type, row.queue, row.priority, row.max_attempts) == (
        "tests.report",
        "reports",
        4,
        7,
    )
    assert (row.status, row.attempts, row.idempotency_key, row.tenant_id) == (
        "pending",
        0,
        None,
        None,
    )
    assert json.loads(row.payload) == {"month": "2024-05", "pages": 1}
    assert _delay_of(row) == 0
    assert row.state_at(runtime.backend.now()) is JobState.PENDING


def test_dispatch_options_land_in_the_row(runtime: Runtime) -> None:
    job_id = (
        Report(month="2024-06")
        .delay(timedelta(seconds=90))
        .on_queue("urgent")
        .with_idempotency_key("report-2024-06")
        .with_priority(-2)
        .for_tenant(17)
        .dispatch()
    )
    row = _row(runtime, job_id)
    assert (row.queue, row.priority, row.idempotency_key, row.tenant_id) == (
        "urgent",
        -2,
        "report-2024-06",
        "17",
    )
    assert _delay_of(row) == pytest.approx(90, abs=0.01)
    assert row.state_at(runtime.backend.now()) is JobState.DELAYED


def test_free_functions_and_the_default_queue(runtime: Runtime) -> None:
    a = dispatch(Plain(n=1))
    b = dispatch_to(Plain(n=2), "elsewhere")
    c = dispatch_later(Plain(n=3), 12.5)
    d = dispatch_later(Plain(n=4).on_queue("q4"), timedelta(minutes=1))
    rows = [_row(runtime, i) for i in (a, b, c, d)]
    assert [r.queue for r in rows] == ["default", "elsewhere", "default", "q4"]
    assert [round(_delay_of(r), 2) for r in rows] == [0, 0, 12.5, 60]
    assert rows[0].job_type == Plain.type_name() == f"{__name__}:Plain"

    other = attrs.evolve(runtime, config=attrs.evolve(runtime.config, default_queue="main"))
    assert _row(runtime, dispatch(Plain(), runtime=other)).queue == "main"


def test_the_tenancy_plugin_captures_the_current_tenant(runtime: Runtime) -> None:
    with tenant_scope("acme"):
        inside = Plain().dispatch()
        explicit = Plain().for_tenant("other").dispatch()
    outside = Plain().dispatch()
    assert [_row(runtime, i).tenant_id for i in (inside, explicit, outside)] == [
        "acme",
        "other",
        None,
    ]


def test_the_capture_hook_runs_per_batch_and_through_wrappers(runtime: Runtime) -> None:
    # One hook call per dispatch call: a job-dependent plugin, a wrapper and a plugin
    # registered later all take part, and each job gets the first non-None entry.
    with tenant_scope("acme"):
        before = dispatch_many([Plain(n=1), Plain(n=2).for_tenant("x")])

    class ByJob:
        @hookimpl
        def ferroq_capture_tenants(self, jobs: list[Job]) -> list[str | None]:
            return [f"t{j.n}" if isinstance(j, Plain) and j.n % 2 else None for j in jobs]

    class Wrapper:
        @hookimpl(wrapper=True)
        def ferroq_capture_tenants(self, jobs: list[Job]) -> Iterator[None]:
            results = yield
            return [
                None if r is None else [None if t is None else f"{t}-wrapped" for t in r]
                for r in results
            ]

    runtime.pm.register(ByJob())
    with tenant_scope("acme"):
        by_job = dispatch_many([Plain(n=1), Plain(n=2)])
        runtime.pm.register(Wrapper())
        wrapped = dispatch_many([Plain(n=3), Plain(n=4)])
    tenants = [_row(runtime, i).tenant_id for i in [*before, *by_job, *wrapped]]
    assert tenants == ["acme", "x", "t1", "acme", "t3-wrapped", "acme-wrapped"]


@pytest.fixture
def statements(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The first word of every statement the backend runs while the test body runs, the ones
    it sends on the driver's connection itself included. Postgres: SQLAlchemy's events plus
    spies on psycopg's ``Connection.execute`` and ``Connection.commit`` (SQLAlchemy commits
    through the latter too); SQLite: sqlite3's trace callback, which reports
    each step of an ``executemany`` as one statement."""
    engine = runtime.backend.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(statement: str) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    if engine.dialect.name == "sqlite":
        engine.dispose()  # new connections only: each gets the trace callback

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.set_trace_callback(record)

        sa.event.listen(engine, "connect", on_connect)
        try:
            yield seen
        finally:
            sa.event.remove(engine, "connect", on_connect)
            engine.dispose()
        return

    import psycopg

    direct = psycopg.Connection.execute
    commit = psycopg.Connection.commit

    def spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        record(str(query))
        return direct(self, query, *args, **kwargs)

    def spy_commit(self: Any) -> None:
        seen.append("COMMIT")
        commit(self)

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        record(statement)

    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    monkeypatch.setattr(psycopg.Connection, "commit", spy_commit)
    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)


def test_dispatch_many_is_one_insert_in_one_transaction(
    runtime: Runtime, statements: list[str]
) -> None:
    ids = dispatch_many([Plain(n=i) for i in range(50)] + [Report(month="m").delay(5)])
    assert statements.count("COMMIT") == 1, statements
    # Postgres: one INSERT ... SELECT FROM unnest(arrays); SQLite: one INSERT ... SELECT FROM
    # json_each(payloads) for the run of 50 alike jobs, one more for the delayed job (a run
    # that short is bound row by row), then the new ids read back under the write lock.
    inserts = statements.count("INSERT")
    assert inserts == (2 if runtime.backend.name == "sqlite" else 1), statements
    assert ids == sorted(ids)
    assert len(set(ids)) == 51
    payloads = [json.loads(_row(runtime, i).payload) for i in ids[:3]]
    assert payloads == [{"n": 0}, {"n": 1}, {"n": 2}], "ids come back in request order"
    assert _delay_of(_row(runtime, ids[-1])) == pytest.approx(5, abs=0.01)


def test_dispatch_many_encodes_everything_before_writing(runtime: Runtime) -> None:
    with pytest.raises(SerializationError, match="field 'value'"):
        dispatch_many([Plain(n=1), Unencodable(value={1, 2}), Plain(n=2)])
    assert runtime.backend.get_stats().total == 0


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_dispatch_inside_the_callers_transaction(runtime: Runtime, outcome: str) -> None:
    engine = runtime.backend.engine  # type: ignore[attr-defined]
    expected = pytest.raises(RuntimeError) if outcome == "rollback" else nullcontext()
    with expected, engine.begin() as conn:
        ids = dispatch_many([Plain(n=1), Plain(n=2)], connection=conn)
        Plain(n=3).dispatch(connection=conn)
        if outcome == "rollback":
            raise RuntimeError("the caller's transaction fails")
    total = runtime.backend.get_stats().total
    assert total == (3 if outcome == "commit" else 0)
    if outcome == "commit":
        assert all(_row(runtime, i) for i in ids)


def test_an_idempotent_duplicate_returns_the_existing_id(runtime: Runtime) -> None:
    first = Report(month="m").with_idempotency_key("k").dispatch()
    again = Report(month="other").with_idempotency_key("k").dispatch()
    assert not first.duplicate
    assert again.duplicate
    assert int(again) == int(first)
    assert "duplicate" in repr(again)
    other_type = Plain().with_idempotency_key("k").dispatch()
    assert not other_type.duplicate, "keys are per job type"
    assert json.loads(_row(runtime, first).payload)["month"] == "m", "the first one is kept"

    ids = dispatch_many(
        [Report(month="x").with_idempotency_key("b"), Report(month="y").with_idempotency_key("b")]
    )
    assert [i.duplicate for i in ids] == [False, True]
    assert int(ids[0]) == int(ids[1])

    # The key is free again once the job is gone (succeeded) or parked as failed.
    (claimed,) = runtime.backend.claim(["reports"], "host:1:test", 1)
    assert claimed.id == first
    runtime.backend.complete([claimed.lease])
    fresh = Report(month="m").with_idempotency_key("k").dispatch()
    assert not fresh.duplicate
    assert int(fresh) != int(first)


def test_enqueued_hook_reports_duplicates(runtime: Runtime) -> None:
    seen: list[tuple[int, str, bool]] = []

    class Recorder:
        @hookimpl
        def ferroq_job_enqueued(
            self, job_id: int, request: EnqueueRequest, duplicate: bool
        ) -> None:
            seen.append((job_id, request.job_type, duplicate))

    runtime.pm.register(Recorder())
    a = Report(month="m").with_idempotency_key("h").dispatch()
    Report(month="m").with_idempotency_key("h").dispatch()
    assert seen == [(a, "tests.report", False), (a, "tests.report", True)]


def test_payload_size_limit(runtime: Runtime) -> None:
    small = attrs.evolve(runtime, config=attrs.evolve(runtime.config, max_payload_bytes=64))
    dispatch(Report(month="x" * 20), runtime=small)
    with pytest.raises(PayloadTooLarge) as info:
        dispatch(Report(month="ü" * 40), runtime=small)  # 80 bytes of UTF-8, 40 characters
    assert isinstance(info.value, SerializationError)
    assert "tests.report" in str(info.value)
    assert "64-byte limit" in str(info.value)
    assert "FERROQ_MAX_PAYLOAD_BYTES" in str(info.value)
    with pytest.raises(PayloadTooLarge):
        dispatch_many([Report(month="ok"), Report(month="y" * 100)], runtime=small)
    assert runtime.backend.get_stats().total == 1
