"""``ferroq schedules`` and limit keys: ``add`` stores the key a dispatch of the job would get
(its type's field, or ``--limit-key``), ``edit --limit-key`` changes it, and ``list``,
``stats`` and ``--json`` show it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.cli.sample_jobs import SyncAccount

if TYPE_CHECKING:
    from ferroq_core import Runtime
    from tests.cli.conftest import Invoke

SYNC = "cli-test.sync-account"
IMPORT = ("--import", "tests.cli.sample_jobs")


def _lines(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_schedules_without_a_key_show_none(runtime: Runtime, ferroq: Invoke) -> None:
    added = ferroq("schedules", "add", "mail", "cli-test.send-email", "@daily", "-p",
                   '{"to": "a@example.com"}', *IMPORT)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "limit key" not in added.output
    listed = ferroq("schedules", "list")
    assert _lines(listed.output)[0] == [
        "NAME", "TYPE", "CRON", "TIMEZONE", "STATE", "NEXT", "RUN", "LAST", "RUN", "LAST",
    ]  # fmt: skip
    (data,) = json.loads(ferroq("schedules", "list", "--json").stdout)
    assert data["limit_key"] is None


def test_the_limit_key_is_stored_edited_and_shown(runtime: Runtime, ferroq: Invoke) -> None:
    assert SyncAccount.limit_key == "account_id"
    added = ferroq("schedules", "add", "sync-a17", SYNC, "*/5 * * * *", "-p",
                   '{"account_id": "a-17"}', *IMPORT)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.startswith("schedule 'sync-a17' stored: */5 * * * * (next run ")
    assert added.output.rstrip().endswith(", limit key a-17)")
    given = ferroq("schedules", "add", "sync-bulk", SYNC, "@hourly", "-p",
                   '{"account_id": "a-18"}', "--limit-key", "bulk", "--json", *IMPORT)  # fmt: skip
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["limit_key"] == "bulk"
    plain = ferroq("schedules", "add", "mail", "cli-test.send-email", "@daily", "-p",
                   '{"to": "a@example.com"}', *IMPORT)  # fmt: skip
    assert plain.exit_code == 0, plain.output

    listed = _lines(ferroq("schedules", "list").output)
    assert listed[0][:4] == ["NAME", "TYPE", "KEY", "CRON"]
    keys = {row[0]: row[2] for row in listed[1:]}
    assert keys == {"mail": "-", "sync-a17": "a-17", "sync-bulk": "bulk"}
    data = {s["name"]: s for s in json.loads(ferroq("schedules", "list", "--json").stdout)}
    assert {n: s["limit_key"] for n, s in data.items()} == {
        "mail": None,
        "sync-a17": "a-17",
        "sync-bulk": "bulk",
    }
    stats = json.loads(ferroq("stats", "--json").stdout)
    assert [s["limit_key"] for s in stats["schedules"]] == [None, "a-17", "bulk"]
    assert "KEY" in ferroq("stats").output

    edited = ferroq("schedules", "edit", "sync-a17", "--limit-key", "vip", "--json")
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.stdout)["limit_key"] == "vip"
    # An edited payload takes its key again from the field only where none was given.
    moved = ferroq("schedules", "edit", "sync-bulk", "-p", '{"account_id": "a-19"}', "--json",
                   *IMPORT)  # fmt: skip
    assert json.loads(moved.stdout)["limit_key"] == "bulk"
    ran = json.loads(ferroq("schedules", "run-now", "sync-a17", "--json").stdout)
    row = runtime.backend.get_job(ran["id"])
    assert row is not None
    assert row.limit_key == "vip"


def test_a_bad_limit_key_is_a_usage_error_and_nothing_is_stored(
    runtime: Runtime, ferroq: Invoke
) -> None:
    bad = ferroq("schedules", "add", "x", SYNC, "@daily", "-p", '{"account_id": "a"}',
                 "--limit-key", "", *IMPORT)  # fmt: skip
    assert bad.exit_code == 2, bad.output
    assert "limit key must not be empty" in bad.output
    empty = ferroq("schedules", "add", "x", SYNC, "@daily", "-p", '{"account_id": ""}', *IMPORT)
    assert empty.exit_code == 1, empty.output
    [line] = empty.output.strip().splitlines()
    assert line.startswith("Error: "), line
    assert "limit key must not be empty" in line, line
    assert runtime.backend.list_schedules() == []
