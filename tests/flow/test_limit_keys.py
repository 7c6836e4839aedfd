"""Limit keys through the public API, on both backends: a job type's ``limit_key`` field and
``limit_per_key`` (``limit_per_tenant`` its alias), ``.with_limit_key()``, bad keys refused
with one line before anything is stored, and the operators' view (``ferroq jobs --key``,
``ferroq limits``, ``ferroq limits set --per-key`` / ``--per-tenant``, ``ferroq dispatch
--limit-key``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pytest

from ferroq_core import Job, dispatch, dispatch_many
from ferroq_core.errors import InvalidDispatch, InvalidLimit
from ferroq_core.flowlimits import LimitRule, type_rule
from ferroq_core.records import EnqueueRequest, JobState
from ferroq_core.worker.declare import declare_type_limits
from tests.cli.conftest import make_invoke

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke

WORKER = "test-host:1:0123abcd"


@attrs.define
class SyncAccount(Job):
    job_name: ClassVar[str | None] = "flow.sync_account"
    queue: ClassVar[str | None] = "sync"
    concurrency_limit: ClassVar[int | None] = 2
    limit_key: ClassVar[str | None] = "account_id"

    account_id: Any
    n: int = 0

    def handle(self) -> None:
        pass


@attrs.define
class CountedTogether(Job):
    """Declares a key for queue limits and fair turns, but counts its own limit overall."""

    job_name: ClassVar[str | None] = "flow.counted_together"
    concurrency_limit: ClassVar[int | None] = 1
    limit_key: ClassVar[str | None] = "account_id"
    limit_per_key: ClassVar[bool | None] = False

    account_id: str

    def handle(self) -> None:
        pass


@pytest.fixture
def ferroq(runtime: Runtime) -> Invoke:
    return make_invoke(runtime.config.database_url)


# -- declarations ----------------------------------------------------------------------------
def test_a_declared_key_makes_the_types_limits_per_key_unless_told_otherwise() -> None:
    assert type_rule(SyncAccount, "flow.sync_account") == LimitRule(
        "type", "flow.sync_account", concurrency=2, per_key=True
    )
    assert type_rule(CountedTogether, "x") == LimitRule("type", "x", concurrency=1)


def test_limit_per_tenant_is_an_alias_of_limit_per_key() -> None:
    old = type("Old", (Job,), {"job_name": "flow.old", "handle": lambda self: None,
                               "concurrency_limit": 1, "limit_per_tenant": True})  # fmt: skip
    assert type_rule(old, "flow.old") == LimitRule("type", "flow.old", concurrency=1, per_key=True)
    rule = LimitRule("queue", "q", concurrency=1, per_tenant=True)
    assert rule == LimitRule("queue", "q", concurrency=1, per_key=True)
    assert rule.per_tenant is True


@pytest.mark.parametrize(
    ("attrs_", "error", "message"),
    [
        ({"limit_key": "acount_id"}, InvalidLimit, "limit_key 'acount_id' is not a field"),
        ({"limit_key": ""}, InvalidLimit, "limit_key must be the name of a payload field"),
        ({"limit_key": 3}, InvalidLimit, "limit_key must be the name of a payload field"),
        ({"limit_per_key": "yes"}, InvalidLimit, "limit_per_key must be True or False"),
        (
            {"limit_per_key": True, "limit_per_tenant": False},
            InvalidLimit,
            "limit_per_tenant is the old name of limit_per_key: set only limit_per_key",
        ),
    ],
)
def test_a_bad_key_declaration_fails_when_the_class_is_created(
    attrs_: dict[str, object], error: type[Exception], message: str
) -> None:
    namespace = {
        "job_name": "flow.bad_key",
        "__annotations__": {"account_id": "str"},
        "account_id": "",
        "handle": lambda self: None,
        **attrs_,
    }
    with pytest.raises(error, match=message):
        attrs.define(type("BadKey", (Job,), namespace))


# -- per-key limits through dispatch ---------------------------------------------------------
def test_a_declared_field_limits_each_account_and_with_limit_key_overrides_it(
    runtime: Runtime,
) -> None:
    declare_type_limits(runtime)
    ids = dispatch_many(
        [SyncAccount(f"acct-{i % 2}", i) for i in range(6)]
        + [SyncAccount(42, 9), SyncAccount("acct-0", 10).with_limit_key("vip")]
    )
    claimed = sorted(r.id for r in runtime.backend.claim(["sync"], WORKER, 20))
    # Two per account (acct-0, acct-1, "42" stringified), and the job given its own key.
    assert claimed == sorted([ids[0], ids[2], ids[1], ids[3], ids[6], ids[7]])
    assert [r.id for r in runtime.backend.list_jobs(limit_key="42")] == [ids[6]]
    assert runtime.backend.claim(["sync"], WORKER, 20) == []


def test_without_a_key_the_tenant_is_the_key(runtime: Runtime) -> None:
    runtime.backend.set_limit(LimitRule("queue", "mail", concurrency=1, per_tenant=True))
    reqs = [EnqueueRequest("mail", "flow:Mail", f'{{"n":{i}}}', tenant_id=t)
            for i, t in enumerate(["a", "a", "b"])]  # fmt: skip
    ids = [r.id for r in runtime.backend.enqueue(reqs)]
    assert sorted(r.id for r in runtime.backend.claim(["mail"], WORKER, 10)) == [ids[0], ids[2]]
    assert [r.id for r in runtime.backend.list_jobs(limit_key="a")] == ids[:2]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SyncAccount("a").with_limit_key(""), "limit key must not be empty"),
        (lambda: SyncAccount("a").with_limit_key("k" * 256), "limit key is 256 characters"),
        (lambda: SyncAccount("a").with_limit_key(True), "limit key must be a str or int"),
        (lambda: SyncAccount("a").with_limit_key(None), "limit key must be a str or int"),
        (lambda: SyncAccount(""), "limit key must not be empty"),
        (lambda: SyncAccount("k" * 300), "limit key is 300 characters"),
    ],
)
def test_a_bad_key_is_one_error_and_nothing_is_stored(
    runtime: Runtime, make: Any, message: str
) -> None:
    with pytest.raises(InvalidDispatch, match=message) as caught:
        dispatch_many([SyncAccount("fine"), make()])
    assert "\n" not in str(caught.value)
    assert runtime.backend.list_jobs() == []


def test_a_none_field_value_falls_back_to_the_tenant(runtime: Runtime) -> None:
    job_id = dispatch(SyncAccount(None).for_tenant("acme"))
    assert [r.id for r in runtime.backend.list_jobs(limit_key="acme")] == [job_id]


# -- operators -------------------------------------------------------------------------------
def test_jobs_key_lists_one_limit_keys_jobs(runtime: Runtime, ferroq: Invoke) -> None:
    ids = dispatch_many([SyncAccount("acct-1"), SyncAccount("acct-2"), SyncAccount("acct-1", 1)])
    table = ferroq("jobs", "--key", "acct-1")
    assert table.exit_code == 0, table.output
    assert [int(line.split()[0]) for line in table.output.splitlines()[1:]] == [ids[0], ids[2]]
    data = json.loads(ferroq("jobs", "--key", "acct-1", "--json").output)
    assert [j["id"] for j in data["jobs"]] == [ids[0], ids[2]]
    runtime.backend.claim(["sync"], WORKER, 1)
    data = json.loads(ferroq("jobs", "--key", "acct-1", "--state", "claimed", "--json").output)
    assert [j["id"] for j in data["jobs"]] == [ids[0]]
    assert ferroq("jobs", "--key", "nobody").output == "no jobs\n"
    bad = ferroq("jobs", "--key", "")
    assert bad.exit_code == 2
    assert [line for line in bad.stderr.splitlines() if line.startswith("Error: ")] == [
        "Error: Invalid value for '--key': limit key must not be empty"
    ]


def test_limits_set_per_key_and_its_alias_and_the_counts_per_key(
    runtime: Runtime, ferroq: Invoke
) -> None:
    result = ferroq("limits", "set", "--queue", "sync", "--concurrency", "1", "--per-key")
    assert result.exit_code == 0, result.output
    rule = LimitRule("queue", "sync", concurrency=1, per_key=True)
    assert runtime.backend.list_limits() == [rule]
    assert ferroq("limits", "set", "--queue", "sync", "--concurrency", "1",
                  "--per-tenant").exit_code == 0  # fmt: skip
    assert runtime.backend.list_limits() == [rule]
    dispatch_many([SyncAccount("acct-1"), SyncAccount("acct-1", 1), SyncAccount("acct-2")])
    runtime.backend.claim(["sync"], WORKER, 10)
    table = ferroq("limits").output.splitlines()
    assert [line.split()[2:5] + line.split()[7:8] for line in table[1:]] == [
        ["acct-1", "1", "1", "1"],
        ["acct-2", "1", "1", "0"],
    ]
    data = json.loads(ferroq("limits", "--key", "acct-2", "--json").output)
    (usage,) = data["limits"]
    assert (usage["per_key"], usage["per_tenant"], usage["running"]) == (True, True, 1)
    stats = json.loads(ferroq("stats", "--json").output)
    assert [(u["key"], u["running"], u["waiting"]) for u in stats["limits"]] == [
        ("acct-1", 1, 1),
        ("acct-2", 1, 0),
    ]


def test_dispatch_limit_key_option(runtime: Runtime, ferroq: Invoke) -> None:
    result = ferroq("dispatch", "flow.sync_account", "-p", '{"account_id": "a"}',
                    "--limit-key", "vip")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [r.job_type for r in runtime.backend.list_jobs(limit_key="vip")] == ["flow.sync_account"]
    declared = ferroq("dispatch", "flow.sync_account", "-p", '{"account_id": "a"}')
    assert declared.exit_code == 0, declared.output
    assert len(runtime.backend.list_jobs(limit_key="a", state=JobState.PENDING)) == 1
