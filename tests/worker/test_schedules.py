"""Periodic jobs with real ``ferroq worker`` processes on both backends: CLI edits take effect
at the next tick, catch-up after an outage follows each policy, declared schedules are stored
as a worker starts, and bad schedules are refused with one line and nothing stored."""

from __future__ import annotations

import itertools
import json
import signal
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import make_invoke
from tests.worker.conftest import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core import Runtime
    from tests.worker.conftest import Marks, WorkerProcess

IMPORT = ("--import", "tests.worker.jobs")
#: Workers sleep long when idle: a tick must still be enqueued on time (the idle wait is
#: bounded by the next due tick, on Postgres too).
IDLE = ("--sleep", "30")


def _ticks(marks: Marks, tag: str) -> list[datetime]:
    return sorted(
        datetime.strptime(e, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        for e in marks.events(tag)
    )


def _times(marks: Marks, tag: str) -> list[float]:
    return [when for t, _event, _pid, when in marks.lines() if t == tag]


def _once_each(ticks: list[datetime]) -> None:
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {ticks}"


@pytest.mark.slow
def test_cli_add_edit_pause_resume_take_effect_at_the_next_tick(
    db_url: str, runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    ferroq = make_invoke(db_url)
    workers = [start_worker(*IDLE) for _ in range(2)]
    added = ferroq(
        "schedules", "add", "pulse", "test.tick", "* * * * * *", "-p", '{"tag": "a"}', *IMPORT
    )
    assert added.exit_code == 0, added.output
    assert added.output.startswith("schedule 'pulse' stored: * * * * * * (next run ")
    wait_for(lambda: len(marks.events("a")) >= 3, timeout=40)

    edited = ferroq("schedules", "edit", "pulse", "-p", '{"tag": "b"}', *IMPORT)
    edited_at = time.time()
    assert edited.exit_code == 0, edited.output
    wait_for(lambda: len(marks.events("b")) >= 2, timeout=40)
    # The next tick after the edit (a look a second, one tick a second, a loaded machine).
    assert min(_times(marks, "b")) - edited_at < 6
    a_ticks, b_ticks = _ticks(marks, "a"), _ticks(marks, "b")
    _once_each(a_ticks + b_ticks)
    assert max(a_ticks) < min(b_ticks)

    paused = ferroq("schedules", "pause", "pulse", "--json")
    paused_at = datetime.now(timezone.utc)
    assert paused.exit_code == 0, paused.output
    assert json.loads(paused.stdout)["paused"] is True
    time.sleep(3)
    # Ticks enqueued before the pause may still run; none after it.
    assert max(_ticks(marks, "b")) <= paused_at
    listed = json.loads(ferroq("schedules", "list", "--json").stdout)
    (pulse,) = listed
    assert (pulse["paused"], pulse["next_run_at"], pulse["source"]) == (True, None, "api")
    assert pulse["last_outcome"] in ("done", "running", "pending")
    assert pulse["last_run_at"] is not None

    ran_before = len(marks.events("b"))
    assert ferroq("schedules", "resume", "pulse").exit_code == 0
    wait_for(lambda: len(marks.events("b")) > ran_before, timeout=40)
    _once_each(_ticks(marks, "b"))
    # run-now: a job besides the ticks (its tick is now, so it may share a tick's second).
    now_id = json.loads(ferroq("schedules", "run-now", "pulse", "--json").stdout)["id"]
    assert now_id > 0
    stats = json.loads(ferroq("stats", "--json").stdout)
    assert [s["name"] for s in stats["schedules"]] == ["pulse"]
    assert "pulse" in ferroq("stats").output
    assert ferroq("schedules", "remove", "pulse").exit_code == 0
    assert ferroq("schedules", "list").output.strip() == "no schedules"
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.output()


@pytest.mark.slow
def test_catch_up_after_workers_stopped_for_ten_ticks(
    db_url: str, runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    ferroq = make_invoke(db_url)
    for policy in ("latest", "all", "none"):
        result = ferroq(
            "schedules", "add", policy, "test.tick", "* * * * * *", "-p",
            json.dumps({"tag": policy}), "--catch-up", policy, *IMPORT,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    worker = start_worker(*IDLE)
    wait_for(lambda: all(len(marks.events(p)) >= 2 for p in ("latest", "all", "none")), 40)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    stopped = {p: max(_ticks(marks, p)) for p in ("latest", "all", "none")}
    time.sleep(11)  # ten ticks or more with no worker
    worker = start_worker(*IDLE)
    wait_for(lambda: any(t > stopped["none"] for t in _ticks(marks, "none")), 40)
    time.sleep(2)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()

    # none: the missed ticks are not run; the schedule goes on from the next one on time.
    none = _ticks(marks, "none")
    back = min(t for t in none if t > stopped["none"])
    assert back - stopped["none"] >= timedelta(seconds=10)
    # latest: of the missed ticks, the newest alone (the one just before `back`, give or take
    # the second between the two schedules' compare-and-sets).
    missed_latest = [t for t in _ticks(marks, "latest") if stopped["latest"] < t < back]
    assert len(missed_latest) == 1, missed_latest
    assert back - missed_latest[0] <= timedelta(seconds=2)
    # all: every tick, none missing, none doubled, across the outage.
    every = _ticks(marks, "all")
    _once_each(every)
    gaps = {b - a for a, b in itertools.pairwise(every)}
    assert gaps == {timedelta(seconds=1)}
    assert every[-1] - stopped["all"] >= timedelta(seconds=10)


@pytest.mark.slow
def test_declared_schedules_are_stored_as_a_worker_starts(
    db_url: str, runtime: Runtime, start_worker: Callable[..., WorkerProcess], marks: Marks
) -> None:
    ferroq = make_invoke(db_url)
    worker = start_worker("--import", "tests.worker.declared_jobs", *IDLE)
    wait_for(lambda: len(marks.events("declared-a")) >= 2, timeout=40)
    wait_for(lambda: marks.events("declared-class"), timeout=40)
    listed = {s["name"]: s for s in json.loads(ferroq("schedules", "list", "--json").stdout)}
    assert sorted(listed) == ["declared-a", "declared-b", "test.every-second"]
    assert {s["source"] for s in listed.values()} == {"code"}
    assert listed["test.every-second"]["timezone"] == "Europe/Berlin"
    assert (listed["declared-b"]["cron"], listed["declared-b"]["catch_up"]) == (
        "*/2 * * * * *",
        "all",
    )
    assert json.loads(listed["declared-a"]["payload"]) == {"tag": "declared-a"}
    # A second worker with the same code changes nothing (revision stays).
    revisions = {n: s["revision"] for n, s in listed.items()}
    other = start_worker("--import", "tests.worker.declared_jobs", *IDLE)
    wait_for(lambda: len(marks.events("declared-a")) >= 5, timeout=40)
    again = {
        s["name"]: s["revision"] for s in json.loads(ferroq("schedules", "list", "--json").stdout)
    }
    assert again == revisions
    _once_each(_ticks(marks, "declared-a"))
    for proc in (worker, other):
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0, proc.output()


def test_bad_schedules_are_one_line_errors_and_nothing_is_stored(
    db_url: str, runtime: Runtime
) -> None:
    ferroq = make_invoke(db_url)
    cases = [
        (("x", "test.tick", "61 * * * *"), "invalid cron expression '61 * * * *'"),
        (("x", "test.tick", "*/5 * * *"), "4 fields; use 5"),
        (("x", "test.tick", "@daily", "--timezone", "Europe/Nowhere"), "unknown timezone"),
        (("x", "test.tick", "@daily", "--catch-up-window", "0"), "catch-up window must be > 0"),
        (("x", "test.tick", "@daily", "-p", '{"tagg": 1}'), "unknown field 'tagg'"),
    ]
    for args, says in cases:
        result = ferroq("schedules", "add", *args, *IMPORT)
        assert result.exit_code == 1, result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith("Error: "), line
        assert says in line, line
    assert ferroq("schedules", "list", "--json").stdout.strip() == "[]"
    assert runtime.backend.list_schedules() == []
    # At import: the worker refuses to start, with one line naming the module and the reason.
    result = ferroq("worker", "--import", "tests.worker.bad_schedule_jobs", "--once")
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "cannot import 'tests.worker.bad_schedule_jobs'" in line
    assert "job type test.broken-schedule: invalid cron expression '*/5 * * *'" in line
    # Edits are checked the same way.
    assert ferroq("schedules", "add", "ok", "test.tick", "@daily", *IMPORT).exit_code == 0
    result = ferroq("schedules", "edit", "ok", "--cron", "* * *")
    assert result.exit_code == 1
    assert "3 fields" in result.output
    stored = runtime.backend.get_schedule("ok")
    assert stored is not None
    assert stored.spec.cron == "@daily"
    assert "no schedule named 'nope'" in ferroq("schedules", "pause", "nope").output
