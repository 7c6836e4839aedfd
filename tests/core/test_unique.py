"""Unique jobs through the public API on both backends: declaring ``unique = Unique(...)`` on a
job type or ``.with_unique(...)`` on a dispatch, the key made from payload fields, the
conflict policies through ``dispatch``/``dispatch_many``, and bad declarations refused at
class creation or dispatch with nothing stored. (The rows each mode and policy leaves are the
backend contract's, ferroq_core/testing/_contract_unique.py; concurrent dispatchers are
tests/core/test_unique_concurrency.py.)"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest
import sqlalchemy as sa

from ferroq_core import (
    DuplicateJob,
    InvalidDispatch,
    Job,
    OnConflict,
    QueueConfig,
    Runtime,
    Unique,
    UniqueMode,
    dispatch,
    dispatch_many,
)
from ferroq_core.clock import utcnow
from ferroq_core.schema import MIGRATIONS, migrate
from ferroq_core.tables.unique import AddUniqueKeys
from ferroq_core.unique import fields_key

if TYPE_CHECKING:
    from ferroq_core import JobRow


@attrs.define
class Refresh(Job):
    job_name = "tests.unique.refresh"
    unique = Unique("until_started", fields=("user_id",), on_conflict="replace")

    user_id: int
    reason: str = ""

    def handle(self) -> None:
        pass


@attrs.define
class Charge(Job):
    job_name = "tests.unique.charge"
    unique = Unique(on_conflict="raise")

    order: str

    def idempotency_key(self) -> str:
        return f"order-{self.order}"

    def handle(self) -> None:
        pass


@attrs.define
class Digest(Job):
    job_name = "tests.unique.digest"
    unique = Unique(period=timedelta(hours=1))

    user_id: int

    def handle(self) -> None:
        pass


def _rows(runtime: Runtime, job_type: str) -> list[JobRow]:
    return runtime.backend.list_jobs(job_type=job_type)


# -- declarations ----------------------------------------------------------------------------
def test_defaults_and_the_period_mode() -> None:
    assert Unique() == Unique(UniqueMode.UNTIL_FINISHED, on_conflict=OnConflict.SKIP)
    assert Unique().is_idempotency
    assert Unique(period=timedelta(minutes=2)).mode is UniqueMode.FOR_PERIOD
    assert Unique(period=timedelta(minutes=2)).period == 120.0
    assert Unique(fields=["b", "a", "b"]).fields == ("a", "b")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Unique("forever"), "unknown unique mode 'forever': use one of while_queued"),
        (lambda: Unique(on_conflict="merge"), "unknown on_conflict policy 'merge'"),
        (lambda: Unique(period=0), "a unique period must be positive and finite, got 0"),
        (lambda: Unique(period=timedelta(seconds=-5)), "must be positive and finite"),
        (lambda: Unique(period=float("inf")), "must be positive and finite"),
        (lambda: Unique(period="1h"), "a unique period must be a timedelta or seconds"),
        (lambda: Unique("for_period"), "unique mode for_period needs a period"),
        (lambda: Unique("until_started", period=5), "applies to mode for_period only"),
        (lambda: Unique(fields=("",)), "unique fields must be field names"),
        (lambda: Unique(fields=5), "unique fields must be field names"),
        (lambda: Unique(period=timedelta(days=366 * 101)), "at most 100 years"),
    ],
)
def test_a_bad_rule_is_a_one_line_error(make: object, message: str) -> None:
    with pytest.raises(InvalidDispatch, match=message) as caught:
        make()  # type: ignore[operator]
    assert "\n" not in str(caught.value)


def test_an_unknown_payload_field_fails_at_class_creation() -> None:
    with pytest.raises(InvalidDispatch, match=r"unique fields 'email' are not fields") as caught:

        @attrs.define
        class Welcome(Job):
            job_name = "tests.unique.welcome-bad"
            unique = Unique(fields=("email",))

            user_id: int

            def handle(self) -> None:
                pass

    assert "\n" not in str(caught.value)


def test_a_rule_that_is_not_a_unique_fails_at_class_creation() -> None:
    with pytest.raises(InvalidDispatch, match="unique must be a Unique"):

        @attrs.define
        class Odd(Job):
            job_name = "tests.unique.odd"
            unique = "until_started"  # type: ignore[assignment]

            def handle(self) -> None:
                pass


def test_the_fields_key_is_a_stable_hash_of_the_chosen_fields() -> None:
    a = fields_key("t", json.dumps({"user_id": 7, "reason": "x"}), ("user_id",))
    b = fields_key("t", json.dumps({"reason": "y", "user_id": 7}), ("user_id",))
    c = fields_key("t", json.dumps({"user_id": 8, "reason": "x"}), ("user_id",))
    assert a == b != c
    # The documented form, so keys stay equal across processes and versions.
    assert a == "sha256:" + hashlib.sha256(b'{"user_id":7}').hexdigest()
    whole = fields_key("t", '{"b": [1, "\\u00e9"], "a": null}', ())
    assert whole == "sha256:" + hashlib.sha256(b'{"a":null,"b":[1,"\\u00e9"]}').hexdigest()


# -- dispatch ---------------------------------------------------------------------------------
def test_replace_debounces_to_the_newest_payload(runtime: Runtime) -> None:
    first = dispatch(Refresh(user_id=1, reason="a"))
    other = dispatch(Refresh(user_id=2, reason="a"))
    newest = dispatch(Refresh(user_id=1, reason="b"))
    assert (newest, newest.duplicate, newest.replaced) == (first, True, True)
    assert not other.duplicate
    rows = {r.id: json.loads(r.payload) for r in _rows(runtime, "tests.unique.refresh")}
    assert rows == {first: {"user_id": 1, "reason": "b"}, other: {"user_id": 2, "reason": "a"}}


def test_raise_with_the_idempotency_key_method(runtime: Runtime) -> None:
    first = dispatch(Charge(order="A1"))
    with pytest.raises(DuplicateJob, match=r"key 'order-A1' is held by job \d+") as caught:
        dispatch(Charge(order="A1"))
    assert caught.value.job_id == first
    assert [r.id for r in _rows(runtime, "tests.unique.charge")] == [first]
    assert [r.idempotency_key for r in _rows(runtime, "tests.unique.charge")] == ["order-A1"]


def test_a_dispatch_chooses_its_own_rule_and_key(runtime: Runtime) -> None:
    a = dispatch(Digest(user_id=1))
    assert dispatch(Digest(user_id=1)).duplicate
    # Another rule for one dispatch: skip while queued, keyed by the key given.
    b = Digest(user_id=1).with_unique(Unique("while_queued")).with_idempotency_key("k").dispatch()
    c = Digest(user_id=2).with_idempotency_key("k").with_unique(Unique("while_queued")).dispatch()
    assert not b.duplicate
    assert (c, c.duplicate, c.replaced) == (b, True, False)
    assert len(_rows(runtime, "tests.unique.digest")) == 2
    assert a != b


def test_dispatch_many_honours_each_jobs_rule(runtime: Runtime) -> None:
    ids = dispatch_many(
        [
            Refresh(user_id=1, reason="a"),
            Digest(user_id=1),
            Refresh(user_id=1, reason="b"),
            Digest(user_id=1),
            Charge(order="B2"),
        ]
    )
    assert [(i.duplicate, i.replaced) for i in ids] == [
        (False, False),
        (False, False),
        (True, True),
        (True, False),
        (False, False),
    ]
    assert (ids[2], ids[3]) == (ids[0], ids[1])
    with pytest.raises(DuplicateJob):
        dispatch_many([Digest(user_id=3), Charge(order="B2")])
    # The batch is one transaction: the first job of the refused batch is not stored either.
    assert [json.loads(r.payload) for r in _rows(runtime, "tests.unique.digest")] == [
        {"user_id": 1}
    ]


def test_an_unknown_field_at_dispatch_stores_nothing(runtime: Runtime) -> None:
    with pytest.raises(InvalidDispatch, match=r"unique fields 'nope' are not fields") as caught:
        Refresh(user_id=1).with_unique(Unique(fields=("nope",))).dispatch()
    assert "\n" not in str(caught.value)
    assert runtime.backend.get_stats().total == 0


def test_idempotency_key_alone_is_unchanged(runtime: Runtime) -> None:
    first = Refresh(user_id=1).with_unique(Unique()).with_idempotency_key("same").dispatch()
    again = Refresh(user_id=2).with_unique(Unique()).with_idempotency_key("same").dispatch()
    assert (again, again.duplicate, again.replaced) == (first, True, False)
    row = runtime.backend.get_job(first)
    assert row is not None
    assert row.idempotency_key == "same"


# -- the migration step -----------------------------------------------------------------------
def test_the_step_adds_the_column_index_and_table_to_an_older_database(
    empty_db_url: str,
) -> None:
    db_url = empty_db_url
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        migrate(conn, now=utcnow(), migrations=MIGRATIONS[:1])
        # The shape step 1 gave before this feature: no unique_key, no keys table (nor the
        # later steps' columns: result_ttl, step 9; limit_key, step 10).
        conn.exec_driver_sql("DROP INDEX ferroq_jobs_unique")
        conn.exec_driver_sql("ALTER TABLE ferroq_jobs DROP COLUMN unique_key")
        conn.exec_driver_sql("ALTER TABLE ferroq_jobs DROP COLUMN result_ttl")
        conn.exec_driver_sql("ALTER TABLE ferroq_jobs DROP COLUMN limit_key")
    with engine.begin() as conn:
        applied = migrate(conn, now=utcnow())
    # Every later step is applied, this one among them (none adopted).
    assert [(a.name, a.adopted) for a in applied] == [(m.name, False) for m in MIGRATIONS[1:]]
    assert AddUniqueKeys().name in [a.name for a in applied]
    engine.dispose()
    runtime = Runtime.build(db_url, QueueConfig(connection="db"))
    try:
        runtime.backend.check_schema()
        a = dispatch(Refresh(user_id=1), runtime=runtime)
        b = dispatch(Refresh(user_id=1, reason="x"), runtime=runtime)
        assert (b, b.replaced) == (a, True)
    finally:
        runtime.close()


def test_expired_period_keys_are_pruned_by_later_dispatches(runtime: Runtime) -> None:
    short = Unique(period=0.05, fields=("user_id",))
    dispatch_many([Digest(user_id=i).with_unique(short) for i in range(40)])
    time.sleep(0.2)
    dispatch_many([Digest(user_id=100 + i) for i in range(40)])  # the type's rule: one hour
    engine = runtime.backend.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM ferroq_unique_keys")).scalar()
    assert left == 40


def test_a_rolled_back_dispatch_leaves_its_keys_free(runtime: Runtime) -> None:
    engine = runtime.backend.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        tx = conn.begin()
        ids = dispatch_many([Refresh(user_id=5), Digest(user_id=5)], connection=conn)
        assert not any(i.duplicate for i in ids)
        tx.rollback()
    assert runtime.backend.get_stats().total == 0
    again = dispatch_many([Refresh(user_id=5), Digest(user_id=5)])
    assert not any(i.duplicate for i in again)
    with engine.begin() as conn:
        inside = Refresh(user_id=5, reason="newer").dispatch(connection=conn)
        assert (inside, inside.replaced) == (again[0], True)
    row = runtime.backend.get_job(again[0])
    assert row is not None
    assert json.loads(row.payload)["reason"] == "newer"
