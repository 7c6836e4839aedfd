"""``ferroq retry``, ``forget``, ``flush``, ``prune-failed`` and ``clear`` on both backends."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

from tests.cli.conftest import Invoke, claim, enqueue, fail_all
from tests.cli.sample_jobs import DailyReport, SendEmail

if TYPE_CHECKING:
    from ferroq_core import Runtime


def states(runtime: Runtime) -> dict[int, str]:
    now = runtime.backend.now()
    return {r.id: r.state_at(now).value for r in runtime.backend.list_jobs(limit=1000)}


def failed_jobs(runtime: Runtime, queue: str, n: int, tenant: str | None = None) -> list[int]:
    for i in range(n):
        job = SendEmail(to=f"{i}@example.com").on_queue(queue)
        enqueue(runtime, job if tenant is None else job.for_tenant(tenant))
    return fail_all(runtime, queue)


def test_retry_ids_resets_attempts_and_keeps_the_tenant(runtime: Runtime, ferroq: Invoke) -> None:
    first, second, third = failed_jobs(runtime, "flaky", 3, tenant="acme")
    result = ferroq("retry", str(first), str(second))
    assert (result.exit_code, result.stdout.strip()) == (0, "retried 2 jobs"), result.output
    row = runtime.backend.get_job(first)
    assert row is not None
    assert (row.status, row.attempts, row.tenant_id, row.failed_at) == ("pending", 0, "acme", None)
    assert states(runtime)[third] == "failed"

    data = json.loads(ferroq("retry", str(third), "--json").stdout)
    assert data == {"retried": 1, "left_failed": []}


def test_retry_refuses_unknown_or_unfailed_ids_and_changes_nothing(
    runtime: Runtime, ferroq: Invoke
) -> None:
    (failed_id,) = failed_jobs(runtime, "flaky", 1)
    pending = enqueue(runtime, SendEmail(to="p@example.com"))
    unknown = ferroq("retry", str(failed_id), "424242")
    assert unknown.exit_code == 1
    assert "no job with id 424242" in unknown.stderr
    wrong = ferroq("retry", str(failed_id), str(pending))
    assert wrong.exit_code == 1
    assert f"job {pending} is pending, not failed" in wrong.stderr
    assert states(runtime) == {failed_id: "failed", pending: "pending"}
    assert ferroq("retry").exit_code == 2
    assert ferroq("retry", "--all", str(failed_id)).exit_code == 2
    assert ferroq("retry", str(failed_id), "--queue", "flaky").exit_code == 2


def test_retry_all_with_queue_and_type_filters(runtime: Runtime, ferroq: Invoke) -> None:
    flaky = failed_jobs(runtime, "flaky", 2)
    other = failed_jobs(runtime, "other", 1)
    enqueue(runtime, DailyReport(day=date(2026, 2, 1)).on_queue("flaky"))
    (report,) = fail_all(runtime, "flaky")

    result = ferroq("retry", "--all", "--queue", "flaky", "--type", "cli-test.send-email")
    assert (result.exit_code, result.stdout.strip()) == (0, "retried 2 jobs")
    now = states(runtime)
    assert [now[i] for i in flaky] == ["pending", "pending"]
    assert (now[other[0]], now[report]) == ("failed", "failed")

    assert json.loads(ferroq("retry", "--all", "--json").stdout)["retried"] == 2
    assert set(states(runtime).values()) == {"pending"}


def test_retry_leaves_a_job_whose_idempotency_key_is_taken(
    runtime: Runtime, ferroq: Invoke
) -> None:
    enqueue(runtime, DailyReport(day=date(2026, 3, 1)).on_queue("reports"))
    (stuck,) = fail_all(runtime, "reports")
    active = enqueue(runtime, DailyReport(day=date(2026, 3, 1)).on_queue("reports"))
    result = ferroq("retry", str(stuck), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"retried": 0, "left_failed": [stuck]}
    assert f"left failed: {stuck}" in result.stderr
    assert states(runtime) == {stuck: "failed", active: "pending"}


def test_forget_deletes_failed_jobs_only_unless_told(runtime: Runtime, ferroq: Invoke) -> None:
    a, b = failed_jobs(runtime, "flaky", 2)
    pending = enqueue(runtime, SendEmail(to="p@example.com"))

    refused = ferroq("forget", str(a), str(pending))
    assert refused.exit_code == 1
    assert "pass --any-state" in refused.stderr
    assert ferroq("forget", "777777").exit_code == 1
    assert ferroq("forget").exit_code == 2
    assert len(states(runtime)) == 3

    result = ferroq("forget", str(a))
    assert (result.exit_code, result.stdout.strip()) == (0, "deleted 1 job")
    data = json.loads(ferroq("forget", str(b), str(pending), "--any-state", "--json").stdout)
    assert data == {"deleted": 2}
    assert states(runtime) == {}


def test_flush_asks_first_and_deletes_every_failed_job(runtime: Runtime, ferroq: Invoke) -> None:
    failed_jobs(runtime, "flaky", 2)
    failed_jobs(runtime, "other", 1)
    keep = enqueue(runtime, SendEmail(to="keep@example.com"))

    declined = ferroq("flush", input="n\n")
    assert declined.exit_code == 1
    assert "Delete all 3 jobs that failed?" in declined.stderr
    assert len(states(runtime)) == 4

    accepted = ferroq("flush", input="y\n")
    assert (accepted.exit_code, accepted.stdout.strip()) == (0, "deleted 3 jobs")
    assert states(runtime) == {keep: "pending"}

    failed_jobs(runtime, "flaky", 1)
    assert json.loads(ferroq("flush", "--yes", "--json").stdout) == {"deleted": 1}
    assert ferroq("flush").stdout.strip() == "deleted 0 jobs"  # nothing to ask about


def test_prune_failed_deletes_only_older_failures(runtime: Runtime, ferroq: Invoke) -> None:
    failed_jobs(runtime, "flaky", 2)
    keep = enqueue(runtime, SendEmail(to="keep@example.com"))
    recent = ferroq("prune-failed", "--hours", "1")
    assert (recent.exit_code, recent.stdout.strip()) == (0, "deleted 0 jobs")
    assert json.loads(ferroq("prune-failed", "--hours", "0", "--json").stdout) == {"deleted": 2}
    assert states(runtime) == {keep: "pending"}
    assert ferroq("prune-failed", "--hours", "-1").exit_code == 2


def test_clear_deletes_waiting_jobs_of_one_queue(runtime: Runtime, ferroq: Invoke) -> None:
    waiting = [enqueue(runtime, SendEmail(to=f"{i}@example.com")) for i in range(2)]
    delayed = enqueue(runtime, SendEmail(to="later@example.com").delay(3600))
    running = enqueue(runtime, SendEmail(to="run@example.com").on_queue("busy"))
    claim(runtime, "busy")
    (failed,) = failed_jobs(runtime, "emails-failed", 1)
    other = enqueue(runtime, SendEmail(to="x@example.com").on_queue("other"))

    declined = ferroq("clear", "emails", input="n\n")
    assert declined.exit_code == 1
    assert "Delete 3 jobs waiting on queue 'emails'?" in declined.stderr
    assert len(states(runtime)) == 6

    result = ferroq("clear", "emails", input="y\n")
    assert (result.exit_code, result.stdout.strip()) == (0, "deleted 3 jobs from queue 'emails'")
    left = states(runtime)
    assert not set([*waiting, delayed]) & set(left)
    assert left == {running: "claimed", failed: "failed", other: "pending"}

    assert json.loads(ferroq("clear", "busy", "--yes", "--json").stdout) == {
        "deleted": 0,
        "queue": "busy",
    }
    assert states(runtime)[running] == "claimed"
