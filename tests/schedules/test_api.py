"""The schedules API on both backends: a job enqueued by ``run_schedule_now`` (or a tick)
knows its tick in ``drain()`` as on a worker; edits are checked; unknown names are named; a
schedule keeps the limit key a dispatch of its job would get, and a declaration re-saved with
another key is a changed definition."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pytest

import ferroq_core.schedules
from ferroq_core import (
    InvalidSchedule,
    Job,
    ScheduleNotFound,
    Unique,
    add_schedule,
    current_job,
    edit_schedule,
    list_schedules,
    pause_schedule,
    periodic,
    remove_schedule,
    resume_schedule,
    run_schedule_now,
)
from ferroq_core.schedules import get_schedule, sync_declared
from ferroq_core.testing import drain

if TYPE_CHECKING:
    from ferroq_core import Runtime


@attrs.define
class Seen(Job):
    job_name = "test.seen-tick"
    ticks: ClassVar[list[Any]] = []
    label: str = ""

    def handle(self) -> None:
        Seen.ticks.append(current_job().tick)


def test_run_now_and_the_tick_in_drain(runtime: Runtime) -> None:
    Seen.ticks.clear()
    stored = add_schedule(Seen(label="x"), "@daily", name="daily-seen", timezone="Asia/Tokyo")
    assert (stored.spec.queue, stored.spec.timezone, stored.paused) == (
        "default",
        "Asia/Tokyo",
        False,
    )
    assert stored.next_run_at is not None
    assert stored.next_run_at.astimezone(stored.spec.parsed().zone).hour == 0
    before = runtime.backend.now()
    job_id = run_schedule_now("daily-seen")
    assert drain().succeeded == 1
    (tick,) = Seen.ticks
    assert tick is not None
    assert abs(tick - before) < timedelta(seconds=30)
    after = list_schedules()[0]
    assert (after.last_job_id, after.next_run_at) == (int(job_id), stored.next_run_at)
    # A job no schedule enqueued has no tick.
    Seen(label="plain").dispatch()
    drain()
    assert Seen.ticks[-1] is None


def test_edits_are_checked_and_names_must_exist(runtime: Runtime) -> None:
    add_schedule(Seen(), "*/5 * * * *", name="five")
    with pytest.raises(InvalidSchedule, match="unknown timezone"):
        edit_schedule("five", timezone="Moon/Base")
    with pytest.raises(InvalidSchedule, match="cannot edit job_type"):
        edit_schedule("five", job_type="other")
    with pytest.raises(InvalidSchedule, match="exists with another definition"):
        add_schedule(Seen(), "0 * * * *", name="five")
    assert list_schedules()[0].spec.cron == "*/5 * * * *"
    edited = edit_schedule("five", cron="0 * * * *", catch_up="all")
    assert (edited.spec.cron, edited.spec.catch_up, edited.revision) == ("0 * * * *", "all", 2)
    assert pause_schedule("five").paused
    assert resume_schedule("five").next_run_at is not None
    remove_schedule("five")
    for action in (pause_schedule, resume_schedule, remove_schedule, run_schedule_now):
        with pytest.raises(ScheduleNotFound, match="no schedule named 'five'"):
            action("five")


@attrs.define
class SyncAccount(Job):
    job_name = "test.sync-account"
    limit_key: ClassVar[str | None] = "account_id"

    account_id: str | None = None

    def handle(self) -> None:
        pass


@pytest.fixture
def declarations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declarations made by the test go to a registry of its own (they are process-wide)."""
    monkeypatch.setattr(ferroq_core.schedules, "_declared", {})


def test_a_schedule_keeps_the_limit_key_a_dispatch_of_its_job_would_get(
    runtime: Runtime,
) -> None:
    field = add_schedule(SyncAccount("a-17"), "*/5 * * * *", name="field")
    given = add_schedule(SyncAccount("a-17").with_limit_key(42), "*/5 * * * *", name="given")
    none = add_schedule(SyncAccount(), "*/5 * * * *", name="none")
    assert (field.spec.limit_key, given.spec.limit_key, none.spec.limit_key) == ("a-17", "42", None)
    assert {s.name: s.spec.limit_key for s in list_schedules()} == {
        "field": "a-17",
        "given": "42",
        "none": None,
    }
    # A tick's job (run-now, drain) is stored with it.
    job_id = run_schedule_now("field")
    row = runtime.backend.get_job(job_id)
    assert row is not None
    assert row.limit_key == "a-17"
    # Only the limit key of a dispatch's options is kept; the others are refused.
    for pending, named in [
        (SyncAccount("a").on_queue("other"), ".on_queue()"),
        (SyncAccount("a").with_limit_key("k").delay(5), ".delay()"),
        (SyncAccount("a").for_tenant("acme"), ".for_tenant()"),
        (SyncAccount("a").with_priority(1), ".with_priority()"),
    ]:
        with pytest.raises(InvalidSchedule, match=rf"not {re.escape(named)}"):
            add_schedule(pending, "@daily", name="refused")
    # A field value that is no key is refused as at dispatch, and nothing is stored.
    with pytest.raises(InvalidSchedule, match="field account_id: limit key must not be empty"):
        add_schedule(SyncAccount(""), "@daily", name="refused")
    assert get_schedule("refused") is None


def test_an_edited_payload_takes_its_key_again_unless_one_was_given(runtime: Runtime) -> None:
    add_schedule(SyncAccount("a-17"), "*/5 * * * *", name="field")
    add_schedule(SyncAccount("a-17").with_limit_key("bulk"), "*/5 * * * *", name="given")
    moved = edit_schedule("field", payload='{"account_id": "a-18"}')
    kept = edit_schedule("given", payload='{"account_id": "a-18"}')
    assert (moved.spec.limit_key, kept.spec.limit_key) == ("a-18", "bulk")
    assert edit_schedule("field", payload='{"account_id": null}').spec.limit_key is None
    assert edit_schedule("given", limit_key="vip").spec.limit_key == "vip"
    assert edit_schedule("given", limit_key=None).spec.limit_key is None
    with pytest.raises(InvalidSchedule, match="limit key must not be empty"):
        edit_schedule("given", limit_key="")
    with pytest.raises(InvalidSchedule, match="limit key must be a str or int, got bool"):
        edit_schedule("given", limit_key=True)
    # A payload and a key in one edit: the key given wins.
    both = edit_schedule("field", payload='{"account_id": "a-19"}', limit_key="vip")
    assert both.spec.limit_key == "vip"


@pytest.mark.usefixtures("declarations")
def test_a_declaration_saved_with_another_limit_key_is_a_changed_definition(
    runtime: Runtime,
) -> None:
    periodic(SyncAccount("a-1").with_limit_key("bulk"), "@hourly", name="sync-a1")

    @attrs.define
    class Regional(Job):
        job_name = "test.regional"
        schedule = "@daily"
        limit_key: ClassVar[str | None] = "region"

        region: str = "eu"

        def handle(self) -> None:
            pass

    assert sync_declared(runtime) == {"sync-a1": "created", "test.regional": "created"}
    assert {s.name: s.spec.limit_key for s in list_schedules()} == {
        "sync-a1": "bulk",
        "test.regional": "eu",
    }
    assert sync_declared(runtime) == {"sync-a1": "unchanged", "test.regional": "unchanged"}
    # The next release declares it with another key (or none): replaced at worker start.
    periodic(SyncAccount("a-1"), "@hourly", name="sync-a1")
    assert sync_declared(runtime)["sync-a1"] == "updated"
    stored = get_schedule("sync-a1")
    assert stored is not None
    assert (stored.spec.limit_key, stored.revision) == ("a-1", 2)
    with pytest.raises(InvalidSchedule, match=r"not \.with_unique\(\)"):
        periodic(SyncAccount("a-1").with_unique(Unique()), "@hourly", name="sync-a1")
