"""Scenario 9, periodic jobs under kill -9: four workers, no leader, schedules ticking every
second, random workers SIGKILLed around tick times and restarted (issue 21).

Two schedules tick every second with ``catch_up="all"``: ``parked`` enqueues onto a queue no
worker serves, so its jobs stay in the table; ``ran`` enqueues :class:`ScheduledTick` jobs the
workers run, each writing its tick (read with ``current_job().tick``) to the effects ledger.
Expect, from the first tick to the last: exactly one row per tick in the table (none missing,
none doubled), and for ``ran`` every tick run, by exactly one job id.
"""

from __future__ import annotations

import random
import signal
import time
from datetime import datetime, timedelta
from typing import Any

from ferroq_core.schedule_rules import tick_of
from ferroq_core.schedules import add_schedule, pause_schedule
from reliability.harness import ScenarioResult, wait_for
from reliability.jobs import ScheduledTick
from reliability.scenarios.base import Context, Timer

__all__ = ["run"]

PARKED_QUEUE = "parked"


def _sleep_to_tick_edge(rng: random.Random) -> None:
    """Sleep until just before or just after a whole second (a tick time)."""
    now = time.time()
    target = int(now) + 1 + rng.uniform(-0.08, 0.08)
    time.sleep(max(0.0, target - now) + rng.choice((0.0, 1.0, 2.0)))


def _every_second(first: datetime, last: datetime) -> set[datetime]:
    seconds = int((last - first).total_seconds())
    return {first + timedelta(seconds=s) for s in range(seconds + 1)}


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    rng = random.Random(21)
    duration = 20.0 if ctx.quick else 180.0
    workers = 4
    opts: dict[str, Any] = {"concurrency": 2, "visibility": 2.0, "heartbeat": 0.5, "reaper": 0.5}
    problems: list[str] = []
    kills = 0
    with ctx.bench("schedules") as bench:
        rt = bench.runtime
        procs = [bench.start_worker(f"w{i}", **opts) for i in range(workers)]
        for name, queue in (("parked", PARKED_QUEUE), ("ran", "default")):
            add_schedule(
                ScheduledTick(), "* * * * * *", name=name, catch_up="all", queue=queue, runtime=rt
            )
        wait_for(lambda: bench.effects(), 60, "the first tick to run")
        end = time.monotonic() + duration
        while time.monotonic() < end:
            _sleep_to_tick_edge(rng)
            victim = rng.choice([p for p in procs if p.alive()])
            bench.signal(victim, signal.SIGKILL, "kill")
            victim.popen.wait(timeout=10)
            procs.remove(victim)
            kills += 1
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 1.5))  # sometimes a gap before the restart
            procs.append(bench.start_worker(f"r{kills}", **opts))
        stopped = {n: pause_schedule(n, runtime=rt) for n in ("parked", "ran")}

        def ran_drained() -> bool:
            default = rt.backend.get_stats().for_queue("default")
            return default.pending + default.delayed + default.claimed == 0

        wait_for(ran_drained, 120, "the ran schedule's jobs to finish", interval=0.25)
        died = [p.name for p in procs if not p.alive()]
        if died:
            problems.append(f"workers died on their own: {died}")

        parked_rows = rt.backend.list_jobs(queue=PARKED_QUEUE, limit=10_000_000)
        parked = [t for t in (tick_of(r.idempotency_key) for r in parked_rows) if t is not None]
        figures: dict[str, object] = {"kills": kills, "workers": workers}
        lost = doubled = 0
        if not parked:
            problems.append("the parked schedule enqueued nothing")
        else:
            last = stopped["parked"].last_run_at or max(parked)
            expected = _every_second(min(parked), last)
            missing = sorted(expected - set(parked))
            doubles = len(parked) - len(set(parked))
            lost += len(missing)
            doubled += doubles
            figures["ticks_parked"] = len(expected)
            if missing:
                problems.append(f"parked: {len(missing)} ticks missing, e.g. {missing[:3]}")
            if doubles:
                problems.append(f"parked: {doubles} ticks enqueued twice")

        starts = [e for e in bench.effects() if e.kind == "start"]
        by_tick: dict[int, set[int | None]] = {}
        for e in starts:
            by_tick.setdefault(e.token, set()).add(e.job_id)
        ran_last = stopped["ran"].last_run_at
        if not by_tick or ran_last is None:
            problems.append("the ran schedule ran nothing")
        else:
            first = min(by_tick)
            expected_tokens = set(range(first, int(ran_last.timestamp()) + 1))
            missing_ran = sorted(expected_tokens - set(by_tick))
            doubled_ran = sorted(t for t, ids in by_tick.items() if len(ids) > 1)
            lost += len(missing_ran)
            doubled += len(doubled_ran)
            figures["ticks_ran"] = len(expected_tokens)
            figures["reruns"] = len(starts) - len(by_tick)  # a killed run delivered again
            if missing_ran:
                problems.append(f"ran: {len(missing_ran)} ticks never ran, e.g. {missing_ran[:3]}")
            if doubled_ran:
                problems.append(f"ran: {len(doubled_ran)} ticks had two jobs: {doubled_ran[:3]}")
        figures.update(jobs=figures.get("ticks_parked", 0), lost=lost, dup_unexplained=doubled)
        figures.update(dup_completions=0, dup_explained=0)
    return ScenarioResult("schedules", ctx.backend, figures, problems, timer.seconds)
