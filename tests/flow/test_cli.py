"""``ferroq limits`` (list, ``--key``, ``--json``), ``limits set`` / ``delete`` and the limits
table of ``ferroq stats``, on both backends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from ferroq_core.flowlimits import LimitRule
from ferroq_core.records import EnqueueRequest
from tests.cli.conftest import make_invoke

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke

WORKER = "test-host:1:0123abcd"


@pytest.fixture
def ferroq(runtime: Runtime) -> Invoke:
    return make_invoke(runtime.config.database_url)


def _queue_jobs(runtime: Runtime, tenants: list[str]) -> None:
    runtime.backend.enqueue(
        [
            EnqueueRequest("mail", "flow:Mail", f'{{"n":{i}}}', tenant_id=t)
            for i, t in enumerate(tenants)
        ]
    )


def test_set_list_and_delete_a_queue_limit(runtime: Runtime, ferroq: Invoke) -> None:
    assert ferroq("limits").output == "no limits\n"
    result = ferroq(
        "limits", "set", "--queue", "mail", "--concurrency", "2", "--rate", "10/60",
        "--per-tenant", "--fair",
    )  # fmt: skip
    assert (result.exit_code, result.output) == (0, "limits of queue mail set\n")
    rule = LimitRule("queue", "mail", concurrency=2, rate=(10, 60.0), per_tenant=True, fair=True)
    assert runtime.backend.list_limits() == [rule]
    _queue_jobs(runtime, ["a", "a", "a", "b"])
    assert len(runtime.backend.claim(["mail"], WORKER, 10)) == 3  # a, a, b
    table = ferroq("limits").output.splitlines()
    assert table[0].split() == [
        "SCOPE", "NAME", "KEY", "LIMIT", "RUNNING", "RATE", "STARTED", "WAITING", "FAIR"
    ]  # fmt: skip
    assert table[1].split() == ["queue", "mail", "a", "2", "2", "10/60s", "2", "1", "yes"]
    assert table[2].split() == ["queue", "mail", "b", "2", "1", "10/60s", "1", "0", "yes"]
    data = json.loads(ferroq("limits", "--key", "a", "--json").output)
    assert data == {
        "limits": [
            {
                "scope": "queue",
                "name": "mail",
                "concurrency": 2,
                "rate": {"n": 10, "per": 60.0},
                "per_key": True,
                "per_tenant": True,
                "fair": True,
                "key": "a",
                "running": 2,
                "started": 2,
                "waiting": 1,
            }
        ]
    }
    stats = json.loads(ferroq("stats", "--json").output)
    assert [(u["key"], u["running"], u["waiting"]) for u in stats["limits"]] == [
        ("a", 2, 1),
        ("b", 1, 0),
    ]
    assert "LIMIT" in ferroq("stats").output
    assert ferroq("limits", "delete", "--queue", "mail").output == "limits of queue mail deleted\n"
    assert ferroq("limits", "delete", "--queue", "mail").output == "queue mail has no limits\n"
    assert "LIMIT" not in ferroq("stats").output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--queue", "q", "--concurrency", "0"], 1, "the concurrency limit must be an int >= 1"),
        (["--queue", "q", "--rate", "5/0"], 1, "the rate limit's window must be > 0 seconds"),
        (["--queue", "q", "--rate", "five"], 1, "--rate must be N/SECONDS"),
        (["--type", "t", "--fair"], 1, "only a queue can be fair"),
        (["--queue", "q"], 2, "give --concurrency, --rate or --fair"),
        (["--concurrency", "1"], 2, "give exactly one of --type NAME or --queue NAME"),
    ],
)
def test_a_bad_limit_is_one_error_line_and_stores_nothing(
    runtime: Runtime, ferroq: Invoke, args: list[str], code: int, message: str
) -> None:
    result = ferroq("limits", "set", *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert runtime.backend.list_limits() == []


def test_show_and_the_json_job_give_each_jobs_limit_key(runtime: Runtime, ferroq: Invoke) -> None:
    runtime.backend.enqueue(
        [
            EnqueueRequest("mail", "flow:Mail", '{"n":0}', tenant_id="acme"),
            EnqueueRequest("mail", "flow:Mail", '{"n":1}', tenant_id="acme", limit_key="vip"),
            EnqueueRequest("mail", "flow:Mail", '{"n":2}'),
        ]
    )
    data = json.loads(ferroq("jobs", "--json").output)
    keys = [(job["tenant_id"], job["limit_key"]) for job in data["jobs"]]
    assert keys == [("acme", "acme"), ("acme", "vip"), (None, None)]
    shown = ferroq("show", str(data["jobs"][1]["id"])).output.splitlines()
    assert [line.split() for line in shown if line.startswith("limit key:")] == [
        ["limit", "key:", "vip"]
    ]
    assert (
        json.loads(ferroq("show", str(data["jobs"][2]["id"]), "--json").output)["limit_key"] is None
    )
