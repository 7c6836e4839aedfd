"""``ferroq monitor`` and ``ferroq health`` exit codes, and the errors every command shares."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from ferroq_core.schema import SCHEMA_VERSION
from tests.cli.conftest import WORKER, Invoke, claim, enqueue, make_invoke
from tests.cli.sample_jobs import SendEmail

if TYPE_CHECKING:
    from ferroq_core import Runtime


def test_monitor_exits_3_when_a_queue_is_over_the_limit(runtime: Runtime, ferroq: Invoke) -> None:
    for i in range(3):
        enqueue(runtime, SendEmail(to=f"{i}@example.com"))
    enqueue(runtime, SendEmail(to="x@example.com").on_queue("low"))

    fine = ferroq("monitor", "--max", "3")
    assert fine.exit_code == 0, fine.output
    over = ferroq("monitor", "--max", "2")
    assert over.exit_code == 3
    assert "over the limit: emails" in over.stderr
    rows = {line.split()[0]: line.split()[-1] for line in over.stdout.splitlines()[1:]}
    assert rows == {"emails": "OVER", "low": "ok"}

    data = json.loads(ferroq("monitor", "--max", "0", "--queue", "low", "--json").stdout)
    assert data["ok"] is False
    assert data["max"] == 0
    assert [(q["queue"], q["pending"], q["over"]) for q in data["queues"]] == [("low", 1, True)]
    # A queue with no jobs is within any limit.
    assert ferroq("monitor", "--max", "0", "--queue", "empty").exit_code == 0


def test_monitor_max_age_and_usage(runtime: Runtime, ferroq: Invoke) -> None:
    enqueue(runtime, SendEmail(to="a@example.com"))
    assert ferroq("monitor", "--max-age", "3600").exit_code == 0
    time.sleep(0.05)  # let the job wait measurably longer than the limit below
    assert ferroq("monitor", "--max-age", "0.01").exit_code == 3
    usage = ferroq("monitor")
    assert usage.exit_code == 2
    assert "give --max, --max-age or both" in usage.output


def test_health_is_0_when_ready_and_5_for_a_stale_worker(runtime: Runtime, ferroq: Invoke) -> None:
    healthy = ferroq("health")
    assert healthy.exit_code == 0, healthy.output
    assert healthy.stdout.splitlines()[-1] == "healthy"

    enqueue(runtime, SendEmail(to="a@example.com"))
    claim(runtime, "emails")
    data = json.loads(ferroq("health", "--json").stdout)
    assert data["healthy"] is True
    assert data["exit_code"] == 0
    assert data["checks"]["schema"] == {
        "ok": True, "detail": f"version {SCHEMA_VERSION}", "version": SCHEMA_VERSION,
        "required": SCHEMA_VERSION,
    }  # fmt: skip
    (worker,) = data["checks"]["workers"]["workers"]
    assert worker["worker_id"] == WORKER
    assert worker["stale"] is False

    time.sleep(0.05)  # the claim's heartbeat must be older than the limit below
    stale = ferroq("health", "--max-heartbeat-age", "0.01", "--json")
    assert stale.exit_code == 5
    report = json.loads(stale.stdout)
    assert report["healthy"] is False
    assert report["exit_code"] == 5
    assert report["checks"]["workers"]["ok"] is False
    assert ferroq("health", "--max-heartbeat-age", "0.01", "--skip-workers").exit_code == 0
    from_env = ferroq("health", env={"QUEUE_VISIBILITY_TIMEOUT_SECS": "0.01"})
    assert from_env.exit_code == 5


def test_health_exit_4_when_the_schema_is_missing(empty_db_url: str) -> None:
    result = make_invoke(empty_db_url)("health", "--json")
    assert result.exit_code == 4, result.output
    data = json.loads(result.stdout)
    assert data["checks"]["database"]["ok"] is True
    assert data["checks"]["schema"]["ok"] is False
    assert "run `ferroq migrate`" in data["checks"]["schema"]["detail"]
    assert data["checks"]["workers"]["ok"] is None


UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-dir-ferroq/jobs.db",
    "postgres": "postgresql://postgres@127.0.0.1:1/ferroq",
}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_health_exit_3_when_the_database_is_unreachable(kind: str) -> None:
    result = make_invoke(UNREACHABLE[kind])("health")
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines()[0].startswith("database  FAIL")
    assert result.stdout.splitlines()[-1] == "unhealthy"


#: One invocation of every operations command that reads or writes the jobs table.
COMMANDS = [
    ["stats"],
    ["jobs"],
    ["show", "1"],
    ["failed"],
    ["retry", "1"],
    ["retry", "--all"],
    ["forget", "1"],
    ["flush", "--yes"],
    ["prune-failed"],
    ["clear", "default", "--yes"],
    ["dispatch", "cli-test.send-email", "-p", '{"to": "a@example.com"}'],
    ["monitor", "--max", "1"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0] + ("-all" if "--all" in a else ""))
def test_every_command_says_run_migrate_when_the_schema_is_missing(
    empty_db_url: str, args: list[str]
) -> None:
    result = make_invoke(empty_db_url)(*args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "run `ferroq migrate`" in lines[0]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("args", [["stats"], ["show", "1"], ["retry", "--all"]], ids=str)
def test_an_unreachable_database_is_a_one_line_error(kind: str, args: list[str]) -> None:
    result = make_invoke(UNREACHABLE[kind])(*args)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "run `ferroq migrate`" in errors[0] or "server" in errors[0] or "directory" in errors[0]


def test_every_command_has_help_with_examples() -> None:
    invoke = make_invoke("sqlite:////unused.db")
    for name in ["stats", "jobs", "show", "failed", "retry", "forget", "flush", "prune-failed",
                 "clear", "dispatch", "monitor", "health"]:  # fmt: skip
        result = invoke(name, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout, name
        assert f"ferroq {name}" in result.stdout, name
    assert "FERROQ_APP" in invoke("dispatch", "--help").stdout
    assert "QUEUE_VISIBILITY_TIMEOUT_SECS" in invoke("health", "--help").stdout
