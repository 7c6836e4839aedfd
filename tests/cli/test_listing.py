"""``ferroq stats``, ``jobs``, ``show`` and ``failed`` on both backends."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

from tests.cli.conftest import WORKER, Invoke, claim, enqueue, fail_all
from tests.cli.sample_jobs import DailyReport, SendEmail

if TYPE_CHECKING:
    from ferroq_core import Runtime

TRACEBACK = (
    "ValueError: mailbox full\n\nTraceback (most recent call last):\n"
    '  File "app/jobs.py", line 12, in handle\nValueError: mailbox full'
)


def seed(runtime: Runtime) -> dict[str, int]:
    """2 pending + 1 delayed on emails, 1 claimed on default, 1 failed on flaky."""
    ids = {
        "a": enqueue(runtime, SendEmail(to="a@example.com")),
        "b": enqueue(runtime, SendEmail(to="b@example.com").for_tenant("t1")),
        "later": enqueue(runtime, SendEmail(to="later@example.com").delay(3600)),
        "report": enqueue(runtime, DailyReport(day=date(2026, 1, 1))),
        "bad": enqueue(runtime, SendEmail(to="bad@example.com").on_queue("flaky")),
    }
    assert [r.id for r in claim(runtime, "default")] == [ids["report"]]
    assert fail_all(runtime, "flaky", TRACEBACK) == [ids["bad"]]
    return ids


def test_stats_counts_every_state_per_queue_with_totals(runtime: Runtime, ferroq: Invoke) -> None:
    seed(runtime)
    result = ferroq("stats", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_queue = {q["queue"]: q for q in data["queues"]}
    assert sorted(by_queue) == ["default", "emails", "flaky"]
    emails = by_queue["emails"]
    assert (emails["pending"], emails["delayed"], emails["claimed"], emails["failed"]) == (
        2,
        1,
        0,
        0,
    )
    assert emails["oldest_pending_age"] >= 0
    assert by_queue["default"]["claimed"] == 1
    assert by_queue["default"]["oldest_pending_age"] is None
    assert by_queue["flaky"]["failed"] == 1
    assert data["totals"] == {
        "pending": 2,
        "delayed": 1,
        "claimed": 1,
        "failed": 1,
        "total": 5,
        "oldest_pending_age": emails["oldest_pending_age"],
    }

    table = ferroq("stats").stdout.splitlines()
    assert table[0].split() == [
        "QUEUE",
        "PENDING",
        "DELAYED",
        "CLAIMED",
        "FAILED",
        "OLDEST",
        "PENDING",
        "SERVED",
    ]
    assert table[-1].split()[:5] == ["TOTAL", "2", "1", "1", "1"]
    # Aligned: numbers are right-aligned under their header.
    header_end = table[0].index("FAILED") + len("FAILED")
    assert all(line[header_end - 1].isdigit() for line in table[1:])

    only = json.loads(ferroq("stats", "--queue", "emails", "--queue", "nowhere", "--json").stdout)
    assert [q["queue"] for q in only["queues"]] == ["emails", "nowhere"]
    assert only["queues"][1]["pending"] == 0


def test_stats_on_an_empty_database(ferroq: Invoke) -> None:
    result = ferroq("stats")
    assert (result.exit_code, result.stdout.strip()) == (0, "no jobs")
    data = json.loads(ferroq("stats", "--json").stdout)
    assert data["queues"] == []
    assert data["totals"]["total"] == 0


def test_jobs_filters_by_state_queue_type_and_tenant(runtime: Runtime, ferroq: Invoke) -> None:
    ids = seed(runtime)

    def listed(*args: str) -> list[int]:
        result = ferroq("jobs", *args, "--json")
        assert result.exit_code == 0, result.output
        return [j["id"] for j in json.loads(result.stdout)["jobs"]]

    assert sorted(listed()) == sorted(ids.values())
    assert listed("--state", "pending") == [ids["a"], ids["b"]]
    assert listed("--state", "delayed") == [ids["later"]]
    assert listed("--state", "claimed") == [ids["report"]]
    assert listed("--state", "failed") == [ids["bad"]]
    assert listed("--queue", "emails", "--state", "pending") == [ids["a"], ids["b"]]
    assert listed("--type", "cli-test.daily-report") == [ids["report"]]
    assert listed("--tenant", "t1") == [ids["b"]]
    assert listed("--queue", "nowhere") == []

    job = json.loads(ferroq("jobs", "--state", "claimed", "--json").stdout)["jobs"][0]
    assert job["state"] == "claimed"
    assert job["claimed_by"] == WORKER
    assert set(job) == {
        "id", "state", "queue", "job_type", "priority", "attempts", "max_attempts", "tenant_id",
        "limit_key", "idempotency_key", "created_at", "available_at", "claimed_at", "claimed_by",
        "heartbeat_at", "failed_at", "error_summary", "error", "payload", "progress",
    }  # fmt: skip
    assert job["progress"] is None  # the claimed job reported none
    assert job["idempotency_key"] == "report-2026-01-01"
    assert json.loads(job["payload"]) == {"day": "2026-01-01", "pages": 1}

    human = ferroq("jobs", "--state", "delayed")
    assert human.exit_code == 0
    header, row = human.stdout.splitlines()
    assert header.split()[:4] == ["ID", "STATE", "QUEUE", "TYPE"]
    assert row.split()[1:4] == ["delayed", "emails", "cli-test.send-email"]
    assert "in 59m" in row or "in 1h" in row

    bad = ferroq("jobs", "--state", "sleeping")
    assert bad.exit_code == 2
    assert "sleeping" in bad.output


def test_jobs_pages_with_limit_and_offset(runtime: Runtime, ferroq: Invoke) -> None:
    ids = [enqueue(runtime, SendEmail(to=f"{i}@example.com")) for i in range(5)]
    first = ferroq("jobs", "--limit", "2")
    assert first.exit_code == 0
    assert [int(line.split()[0]) for line in first.stdout.splitlines()[1:]] == ids[:2]
    assert "next page: --offset 2" in first.stderr
    page = json.loads(ferroq("jobs", "--limit", "2", "--offset", "4", "--json").stdout)
    assert [j["id"] for j in page["jobs"]] == ids[4:]
    assert (page["limit"], page["offset"]) == (2, 4)
    assert "no more jobs" in ferroq("jobs", "--offset", "10").stdout
    assert ferroq("jobs", "--limit", "0").exit_code == 2


def test_show_prints_one_job_in_full(runtime: Runtime, ferroq: Invoke) -> None:
    ids = seed(runtime)
    result = ferroq("show", str(ids["bad"]))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "state:           failed" in out
    assert "queue:           flaky" in out
    assert "attempts:        1 of 3" in out
    # Pretty-printed payload and the whole traceback.
    assert '    "to": "bad@example.com",' in out
    assert '    File "app/jobs.py", line 12, in handle' in out

    data = json.loads(ferroq("show", str(ids["bad"]), "--json").stdout)
    assert data["id"] == ids["bad"]
    assert data["state"] == "failed"
    assert data["error"] == TRACEBACK
    assert data["error_summary"] == "ValueError: mailbox full"
    assert data["failed_at"] is not None

    missing = ferroq("show", "999999")
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        "Error: no job with id 999999: list jobs with `ferroq jobs` (a succeeded job is "
        "deleted, and kept in the history only when its type has keep_history)"
    ]
    assert ferroq("show", "abc").exit_code == 2


def test_failed_lists_newest_first_with_the_first_error_line(
    runtime: Runtime, ferroq: Invoke
) -> None:
    older = enqueue(runtime, SendEmail(to="1@example.com").on_queue("flaky"))
    fail_all(runtime, "flaky", "KeyError: 'user'\n\nTraceback ...")
    newer = enqueue(runtime, SendEmail(to="2@example.com").on_queue("flaky"))
    fail_all(runtime, "flaky", TRACEBACK)
    enqueue(runtime, SendEmail(to="ok@example.com"))

    result = ferroq("failed")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "QUEUE", "TYPE", "ATTEMPTS", "FAILED", "ERROR"]
    assert [int(r.split()[0]) for r in rows] == [newer, older]
    assert rows[0].endswith("ValueError: mailbox full")
    assert rows[1].endswith("KeyError: 'user'")
    # The ERROR column starts at the same offset on every row.
    at = header.index("ERROR")
    assert [r[at:] for r in rows] == ["ValueError: mailbox full", "KeyError: 'user'"]

    data = json.loads(ferroq("failed", "--limit", "1", "--offset", "1", "--json").stdout)
    assert [j["id"] for j in data["jobs"]] == [older]
    assert ferroq("failed", "--queue", "emails").stdout.strip() == "no failed jobs"
