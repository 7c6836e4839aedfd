"""Cron expressions, ticks and the catch-up rules, without a database."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import attrs
import pytest

from ferroq_core import InvalidSchedule, Job, ScheduleSpec, periodic
from ferroq_core.cron import Cron
from ferroq_core.schedule_records import Schedule
from ferroq_core.schedule_rules import MAX_TICKS_PER_PASS, plan_ticks, tick_key, tick_of
from ferroq_core.testing._contract_schedules import BERLIN_2026_TICKS

UTC = timezone.utc


def _first(cron: Cron, after: datetime, n: int) -> list[datetime]:
    return list(itertools.islice(cron.ticks_after(after), n))


def test_five_fields_six_with_seconds_and_aliases() -> None:
    start = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert _first(Cron.parse("*/5 * * * *"), start, 2) == [
        datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
    ]
    assert _first(Cron.parse("*/10 * * * * *"), start, 2) == [
        datetime(2026, 1, 1, 0, 0, 40, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 50, tzinfo=UTC),
    ]
    assert Cron.parse("@HOURLY").next_after(start) == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert Cron.parse("@daily", "Europe/Berlin").next_after(start) == datetime(
        2026, 1, 1, 23, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "zone", "says"),
    [
        ("61 * * * *", "UTC", "invalid cron expression '61 * * * *'"),
        ("* * * *", "UTC", "4 fields; use 5"),
        ("* * * * * * *", "UTC", "7 fields"),
        ("@every", "UTC", "unknown alias"),
        ("", "UTC", "0 fields"),
        ("0 0 30 2 *", "UTC", "invalid cron expression '0 0 30 2 *'"),
        ("* * * * *", "Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
        ("* * * * *", "", "unknown timezone ''"),
    ],
)
def test_invalid_expressions_and_zones_are_one_line_errors(
    expression: str, zone: str, says: str
) -> None:
    with pytest.raises(InvalidSchedule) as info:
        Cron.parse(expression, zone)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_berlin_transitions_tick_as_documented() -> None:
    cron = Cron.parse("*/30 1-3 * * *", "Europe/Berlin")
    spring = _first(cron, datetime(2026, 3, 28, 22, tzinfo=UTC), 4)
    autumn = _first(cron, datetime(2026, 10, 24, 21, tzinfo=UTC), 6)
    assert tuple(spring + autumn) == BERLIN_2026_TICKS
    # From inside the repeated hour's second pass, the next tick is after it.
    inside = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, the second 02:10
    assert cron.next_after(inside) == datetime(2026, 10, 25, 2, tzinfo=UTC)


def test_tick_keys_round_trip() -> None:
    tick = datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC)
    key = tick_key("name:with:colons", tick)
    assert key == "ferroq:tick:2026-03-29T01:00:05.000000Z:name:with:colons"
    assert tick_of(key) == tick
    assert tick_of(None) is None
    assert tick_of("user-key") is None
    assert tick_of("ferroq:tick:garbage") is None


def _schedule(policy: str, next_run: datetime, window: float = 3600) -> Schedule:
    spec = ScheduleSpec(
        name="s",
        job_type="t",
        payload="{}",
        queue="q",
        cron="* * * * * *",
        catch_up=policy,  # type: ignore[arg-type]
        catch_up_window=window,
    )
    return Schedule(spec, False, next_run, None, None, 1, next_run)


def test_catch_up_plans() -> None:
    cron = Cron.parse("* * * * * *")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    now = start + timedelta(seconds=9, milliseconds=500)
    after = start + timedelta(seconds=10)
    assert plan_ticks(cron, _schedule("latest", start), now) == (
        (start + timedelta(seconds=9),),
        after,
    )
    assert plan_ticks(cron, _schedule("none", start), now) == ((), after)
    ticks, following = plan_ticks(cron, _schedule("all", start), now)
    assert (len(ticks), following) == (10, after)
    # Only one due: on time, whatever the policy.
    for policy in ("latest", "all", "none"):
        assert plan_ticks(cron, _schedule(policy, start), start) == (
            (start,),
            start + timedelta(seconds=1),
        )
    # A day's outage of a schedule a second: the window bounds the work, batches bound `all`.
    late = start + timedelta(days=1)
    ticks, following = plan_ticks(cron, _schedule("all", start, window=3600), late)
    assert len(ticks) == MAX_TICKS_PER_PASS
    assert ticks[0] == late - timedelta(seconds=3600)
    assert following == ticks[-1] + timedelta(seconds=1)
    assert plan_ticks(cron, _schedule("none", start, window=3600), late)[0] == ()


def test_a_bad_declaration_fails_as_the_class_is_made() -> None:
    with pytest.raises(InvalidSchedule, match=r"job type .*Bad: invalid cron expression"):

        @attrs.define
        class Bad(Job):
            schedule = "every day"

            def handle(self) -> None:
                pass

    with pytest.raises(InvalidSchedule, match="unknown timezone 'Nowhere'"):

        @attrs.define
        class BadZone(Job):
            schedule = "@daily"
            schedule_timezone = "Nowhere"

            def handle(self) -> None:
                pass

    @attrs.define
    class Fine(Job):
        def handle(self) -> None:
            pass

    with pytest.raises(InvalidSchedule, match="unknown catch-up policy 'sometimes'"):
        periodic(Fine(), "@daily", name="fine", catch_up="sometimes")  # type: ignore[arg-type]
