"""Scenario 4, database faults under load.

Postgres: a throwaway cluster (initdb + pg_ctl on a free port, never the shared server) is
restarted with ``pg_ctl restart -m fast`` and has every backend terminated mid-load. SQLite:
another process holds the write lock (``BEGIN IMMEDIATE``) for 2 s, then 10 s. Workers must
neither die nor hang, every worker must start jobs again within 5 s of the database coming
back, and nothing may be lost.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from reliability.checker import Fault
from reliability.cluster import TempCluster
from reliability.harness import Bench, ScenarioResult, wait_for
from reliability.jobs import Work
from reliability.scenarios.base import Context, Timer, drain_alive, report_figures, resume_time

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["run"]

RESUME_LIMIT = 5.0
#: Holds SQLite's write lock for argv[2] seconds; prints when it has it.
_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _hold_sqlite_lock(bench: Bench, seconds: float) -> tuple[float, float]:
    path = bench.url.removeprefix("sqlite:///")
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None
    line = locker.stdout.readline()
    held = time.time()
    if line.strip() != "locked":
        raise RuntimeError("the lock holder could not take the write lock")
    locker.wait(timeout=seconds + 30)
    return held, time.time()


def _faults(ctx: Context) -> list[tuple[str, Callable[[Bench], tuple[float, float]]]]:
    if ctx.backend == "sqlite":
        return [
            ("lock 2s", lambda b: _hold_sqlite_lock(b, 2.0)),
            ("lock 10s", lambda b: _hold_sqlite_lock(b, 10.0)),
        ]
    return []


def _run_on(
    bench: Bench,
    ctx: Context,
    faults: list[tuple[str, Callable[[Bench], tuple[float, float]]]],
    n_jobs: int,
) -> ScenarioResult:
    timer = Timer()
    problems: list[str] = []
    bench.dispatch([(t, Work(t, 0.1), True) for t in range(1, n_jobs + 1)])
    opts: dict[str, Any] = {"concurrency": 2, "visibility": 5.0, "heartbeat": 0.5, "reaper": 1.0}
    workers = [bench.start_worker(f"w{i}", **opts) for i in range(2)]
    wait_for(lambda: any(e.kind == "end" for e in bench.effects()), 60, "the first job to end")
    resumes: dict[str, float] = {}
    for name, inject in faults:
        time.sleep(1.0)
        down, back = inject(bench)
        bench.faults.append(Fault("db", None, down, back))
        if bench.open_jobs() == 0:
            problems.append(f"the queue drained before {name!r}: dispatch more jobs")
            continue
        try:
            resumes[name] = resume_time(bench, workers, back, RESUME_LIMIT + 10)
        except TimeoutError as exc:
            problems.append(f"after {name}: {exc}")
            continue
        if resumes[name] > RESUME_LIMIT:
            problems.append(f"after {name}: resumed in {resumes[name]:.1f}s (> {RESUME_LIMIT}s)")
    problems += drain_alive(bench, workers)
    report = bench.report()
    problems += report.problems
    figures = report_figures(report)
    figures["faults"] = len(faults)
    figures["resume_max"] = round(max(resumes.values(), default=0.0), 2)
    for name, seconds in resumes.items():
        figures[f"resume[{name}]"] = round(seconds, 2)
    return ScenarioResult("dbfaults", ctx.backend, figures, problems, timer.seconds)


def run(ctx: Context) -> ScenarioResult:
    if ctx.backend == "sqlite":
        with ctx.bench("dbfaults") as bench:
            return _run_on(bench, ctx, _faults(ctx), 200 if ctx.quick else 1500)
    with TempCluster() as cluster:
        rounds = 1 if ctx.quick else 3
        pg_faults: list[tuple[str, Callable[[Bench], tuple[float, float]]]] = []
        for i in range(rounds):
            pg_faults.append((f"restart {i + 1}", lambda _b: _timed(cluster.restart)))
            pg_faults.append((f"terminate {i + 1}", lambda _b: _timed(cluster.terminate_backends)))
        if not ctx.quick:
            # Down for longer than the visibility timeout: every lease expires meanwhile.
            pg_faults.append(("down 8s", lambda _b: _timed(lambda: cluster.outage(8.0))))
        with ctx.bench("dbfaults", server_url=cluster.url) as bench:
            return _run_on(bench, ctx, pg_faults, 250 if ctx.quick else 1500)


def _timed(action: Callable[[], object]) -> tuple[float, float]:
    down = time.time()
    action()
    return down, time.time()
