"""Scenario 1, kill -9 chaos: worker processes SIGKILLed at random and restarted under load.

Expect 0 lost, 0 unexplained duplicates, 0 duplicate completions, and every job a killed
worker held taken back within visibility timeout + reaper interval + heartbeat interval.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

from reliability.harness import ScenarioResult
from reliability.jobs import Work
from reliability.scenarios.base import Context, Timer, report_figures

__all__ = ["run"]


def _jobs(n: int, rng: random.Random) -> list[tuple[int, Work, bool]]:
    """Mixed durations (mostly short, some long) and one job in ten failing once."""
    out = []
    for token in range(1, n + 1):
        roll = rng.random()
        if roll < 0.70:
            duration = rng.uniform(0.0, 0.02)
        elif roll < 0.95:
            duration = rng.uniform(0.05, 0.2)
        else:
            duration = rng.uniform(0.5, 1.5)
        out.append((token, Work(token, round(duration, 3), rng.random() < 0.1), True))
    return out


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    rng = random.Random(1)
    quick = ctx.quick
    n_jobs, kills, workers = (600, 3, 4) if quick else (10_000, 20, 4)
    gap = (0.8, 1.5) if quick else (2.0, 5.0)
    vis, beat, reap = (1.5, 0.3, 0.3) if quick else (2.0, 0.5, 0.5)
    bound = vis + beat + reap
    problems: list[str] = []
    with ctx.bench("kill9") as bench:
        bench.dispatch(_jobs(n_jobs, rng))
        opts: dict[str, Any] = {
            "concurrency": 4,
            "visibility": vis,
            "heartbeat": beat,
            "reaper": reap,
        }
        procs = [bench.start_worker(f"w{i}", **opts) for i in range(workers)]
        bench_wait_first_end(bench)
        for k in range(kills):
            time.sleep(rng.uniform(*gap))
            victim = rng.choice([p for p in procs if p.alive()])
            bench.signal(victim, signal.SIGKILL, "kill")
            victim.popen.wait(timeout=10)
            procs.remove(victim)
            procs.append(bench.start_worker(f"r{k}", **opts))
        bench.wait_drained(120 if quick else 900)
        died = [p.name for p in procs if not p.alive()]
        if died:
            problems.append(f"workers died on their own: {died}")
        report = bench.report()
        problems += report.problems
        worst = max(report.recovery, default=0.0)
        # The bound plus a second of slack: 2 shared cores, a restarting interpreter.
        if worst > bound + 1.0:
            problems.append(f"recovery {worst:.2f}s over the bound {bound:g}s (+1s slack)")
        figures = report_figures(report)
        figures.update(kills=kills, bound=bound, retries=report.retries)
    return ScenarioResult("kill9", ctx.backend, figures, problems, timer.seconds)


def bench_wait_first_end(bench: object) -> None:
    from reliability.harness import Bench, wait_for

    assert isinstance(bench, Bench)
    wait_for(lambda: any(e.kind == "end" for e in bench.effects()), 60, "the first job to finish")
