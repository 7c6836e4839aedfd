"""Contract checks for schedules (periodic jobs), part of
:class:`~ferroq_core.testing.contract.BackendContract`: storing and editing schedules, the
worker's compare-and-set, exactly one job per tick under concurrent passes, and the ticks of
a fake clock across both daylight-saving transitions of 2026 in Europe/Berlin."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ferroq_core.schedule_records import ScheduleAdvance, ScheduleSpec
from ferroq_core.schedule_rules import tick_key, tick_of, tick_request
from ferroq_core.worker.schedules import enqueue_due

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["BERLIN_2026_TICKS", "ScheduleContract"]

UTC = timezone.utc


def spec(name: str = "nightly", cron: str = "*/30 * * * *", **fields: object) -> ScheduleSpec:
    values: dict[str, object] = {
        "job_type": "contract:Noop",
        "payload": "{}",
        "queue": "ticks",
        "cron": cron,
    }
    values.update(fields)
    return ScheduleSpec(name=name, **values)  # type: ignore[arg-type]


def _ticks(backend: Backend, queue: str = "ticks") -> list[datetime]:
    rows = backend.list_jobs(queue=queue, limit=10_000)
    found = [tick_of(r.idempotency_key) for r in rows]
    return sorted(t for t in found if t is not None)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


#: The documented ticks of ``*/30 1-3 * * *`` in Europe/Berlin on the two 2026 transition
#: days (docs/schedules.md): 29 March skips 02:00-03:00 (the skipped 02:00 and 02:30 run
#: once, at the transition, 03:00 CEST = 01:00 UTC, together with 03:00's own tick); 25
#: October repeats 02:00-03:00 (02:00 and 02:30 run once, in the first, summer-time pass).
BERLIN_2026_TICKS = (
    _utc(2026, 3, 29, 0, 0),  # 01:00 CET
    _utc(2026, 3, 29, 0, 30),  # 01:30 CET
    _utc(2026, 3, 29, 1, 0),  # 02:00, 02:30 (skipped) and 03:00 CEST: one tick
    _utc(2026, 3, 29, 1, 30),  # 03:30 CEST
    _utc(2026, 10, 24, 23, 0),  # 01:00 CEST
    _utc(2026, 10, 24, 23, 30),  # 01:30 CEST
    _utc(2026, 10, 25, 0, 0),  # 02:00 CEST (first pass)
    _utc(2026, 10, 25, 0, 30),  # 02:30 CEST (first pass)
    _utc(2026, 10, 25, 2, 0),  # 03:00 CET (the repeated 02:00-02:59 CET runs nothing)
    _utc(2026, 10, 25, 2, 30),  # 03:30 CET
)


class ScheduleContract:
    """Schedules: :class:`~ferroq_core.storage.schedules.ScheduleStore`."""

    def test_schedule_saved_read_and_replaced(self, backend: Backend) -> None:
        first = _utc(2030, 1, 1, 0, 30)
        assert backend.schedule_due_in() is None
        assert backend.save_schedule(spec(), first) == "created"
        found = backend.get_schedule("nightly")
        assert found is not None
        assert (found.spec, found.paused, found.next_run_at) == (spec(), False, first)
        assert (found.last_run_at, found.last_job_id, found.revision) == (None, None, 1)
        assert backend.save_schedule(spec(), _utc(2031, 1, 1)) == "unchanged"
        other = spec(cron="0 * * * *", timezone="Europe/Berlin", catch_up="all")
        assert backend.save_schedule(other, first, replace=False) == "exists"
        assert backend.get_schedule("nightly") == found
        assert backend.save_schedule(other, _utc(2030, 1, 1, 1)) == "updated"
        edited = backend.get_schedule("nightly")
        assert edited is not None
        assert (edited.spec, edited.revision) == (other, 2)
        assert edited.next_run_at == _utc(2030, 1, 1, 1)
        backend.save_schedule(spec("b-second"), first)
        assert [s.name for s in backend.list_schedules()] == ["b-second", "nightly"]
        due_in = backend.schedule_due_in()
        assert due_in is not None
        assert due_in > 86_400

    def test_advance_is_a_compare_and_set(self, backend: Backend) -> None:
        start = _utc(2026, 1, 1, 0, 0)
        backend.save_schedule(spec(), start)
        (schedule,) = backend.due_schedules(_utc(2026, 1, 1, 0, 0), 10)
        assert backend.due_schedules(_utc(2025, 12, 31, 23, 59), 10) == []
        ticks = (start,)
        step = ScheduleAdvance("nightly", schedule.revision, start, _utc(2026, 1, 1, 0, 30), ticks)
        requests = [tick_request(schedule.spec, t) for t in ticks]
        (result,) = backend.advance_schedule(step, requests) or []
        job = backend.get_job(result.id)
        assert job is not None
        assert (job.queue, job.idempotency_key) == ("ticks", tick_key("nightly", start))
        after = backend.get_schedule("nightly")
        assert after is not None
        assert (after.next_run_at, after.last_run_at, after.last_job_id) == (
            _utc(2026, 1, 1, 0, 30),
            start,
            result.id,
        )
        # The job finished (its row is gone): the row, not the key, stops a second enqueue.
        backend.delete_jobs([result.id])
        assert backend.advance_schedule(step, requests) is None
        assert _ticks(backend) == []
        # An edit (revision + 1) fails a compare-and-set read before it.
        backend.save_schedule(spec(cron="0 * * * *"), _utc(2026, 1, 1, 0, 30))
        stale = ScheduleAdvance("nightly", 1, _utc(2026, 1, 1, 0, 30), _utc(2026, 1, 1, 1), ())
        assert backend.advance_schedule(stale, []) is None

    def test_pause_resume_remove_and_run_now(self, backend: Backend) -> None:
        backend.save_schedule(spec(), _utc(2026, 1, 1))
        assert backend.pause_schedule("nightly", paused=True, next_run_at=None)
        paused = backend.get_schedule("nightly")
        assert paused is not None
        assert (paused.paused, paused.next_run_at, paused.revision) == (True, None, 2)
        assert backend.schedule_due_in() is None
        assert backend.due_schedules(_utc(2030, 1, 1), 10) == []
        # A replaced definition stays paused.
        assert backend.save_schedule(spec(cron="0 * * * *"), _utc(2026, 1, 1)) == "updated"
        still = backend.get_schedule("nightly")
        assert still is not None
        assert (still.paused, still.next_run_at) == (True, None)
        assert backend.pause_schedule("nightly", paused=False, next_run_at=_utc(2026, 2, 1))
        resumed = backend.get_schedule("nightly")
        assert resumed is not None
        assert (resumed.paused, resumed.next_run_at) == (False, _utc(2026, 2, 1))
        assert not backend.pause_schedule("missing", paused=True, next_run_at=None)
        at = backend.now()
        result = backend.record_schedule_run("nightly", at, tick_request(resumed.spec, at))
        assert result is not None
        ran = backend.get_schedule("nightly")
        assert ran is not None
        assert ran.last_job_id == result.id
        assert backend.record_schedule_run("missing", at, tick_request(resumed.spec, at)) is None
        assert backend.remove_schedule("nightly")
        assert not backend.remove_schedule("nightly")
        assert backend.get_schedule("nightly") is None
        assert backend.get_job(result.id) is not None  # its job stays

    def test_concurrent_passes_enqueue_each_tick_once(self, backend: Backend) -> None:
        start = _utc(2026, 1, 1)
        for n in range(5):
            backend.save_schedule(spec(f"s{n}", "* * * * * *", catch_up="all"), start)
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def pass_at(now: datetime) -> None:
            try:
                barrier.wait(10)
                enqueue_due(backend, now)
            except BaseException as exc:  # reported below
                errors.append(exc)

        for step in range(1, 4):
            now = start + timedelta(seconds=10 * step)
            threads = [threading.Thread(target=pass_at, args=(now,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert errors == []
        rows = backend.list_jobs(queue="ticks", limit=10_000)
        keys = [r.idempotency_key for r in rows]
        assert len(keys) == len(set(keys)) == 5 * 31  # ticks 0..30 s of each schedule

    def test_berlin_2026_ticks_with_a_fake_clock(self, backend: Backend) -> None:
        cron = "*/30 1-3 * * *"
        days = (_utc(2026, 3, 28, 22), _utc(2026, 10, 24, 21))
        for n, first in enumerate(days):
            name = f"berlin-{n}"
            s = spec(name, cron, timezone="Europe/Berlin", catch_up="all")
            backend.save_schedule(s, s.parsed().next_after(first))
            now = first
            # A fake clock stepping 10 minutes: every pass sees at most one new tick.
            while now < first + timedelta(hours=8):
                now += timedelta(minutes=10)
                enqueue_due(backend, now)
            backend.remove_schedule(name)
        assert tuple(_ticks(backend)) == BERLIN_2026_TICKS

    def test_catch_up_policies(self, backend: Backend) -> None:
        start = _utc(2026, 1, 1)
        for policy in ("latest", "all", "none"):
            queue = f"q-{policy}"
            s = spec(policy, "* * * * * *", queue=queue, catch_up=policy, catch_up_window=5)
            backend.save_schedule(s, start)
        # Ten seconds with no pass: ticks 0..10 are due, the window reaches back to 5.
        enqueue_due(backend, start + timedelta(seconds=10))
        assert _ticks(backend, "q-latest") == [start + timedelta(seconds=10)]
        assert _ticks(backend, "q-all") == [start + timedelta(seconds=s) for s in range(5, 11)]
        assert _ticks(backend, "q-none") == []
        # On time (one tick due): every policy enqueues it.
        enqueue_due(backend, start + timedelta(seconds=11))
        for policy in ("latest", "all", "none"):
            assert _ticks(backend, f"q-{policy}")[-1] == start + timedelta(seconds=11)
