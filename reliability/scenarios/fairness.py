"""Scenario: a fair queue (issue 22). Tenant A has a backlog (20,000 jobs; 2,000 quick) when
tenant B starts dispatching one job a second (A's jobs take 50 ms, so the backlog outlasts
B's dispatches); 4 workers x concurrency 8 drain the queue. With
the queue fair, B's jobs take their turn ahead of A's backlog: each starts within one claim
batch of its dispatch. Measured: B's wait from dispatch to claim (p50, p99, max) and the most
A jobs claimed between a B job's commit and its claim (at most one batch per worker:
4 x 8)."""

from __future__ import annotations

import time
from typing import Any

from ferroq_core.flowlimits import LimitRule
from reliability.checker import percentile
from reliability.harness import ScenarioResult, wait_for
from reliability.jobs import Work
from reliability.scenarios.base import Context, Timer, report_figures, rounded

__all__ = ["run"]

WORKERS, CONCURRENCY = 4, 8


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    quick = ctx.quick
    backlog, b_jobs = (3_000, 5) if quick else (20_000, 25)
    # B's jobs come this many seconds apart: the quick run's backlog (about 5 s of work for
    # 32 slots) must still be there when B's last one comes.
    interval = 0.5 if quick else 1.0
    problems: list[str] = []
    with ctx.bench("fairness") as bench:
        bench.runtime.backend.set_limit(LimitRule("queue", "default", fair=True))
        a_jobs = [(t, Work(t, 0.05).for_tenant("A"), True) for t in range(1, backlog + 1)]
        bench.dispatch(a_jobs, chunk=5000)
        opts: dict[str, Any] = {"concurrency": CONCURRENCY}
        for i in range(WORKERS):
            bench.start_worker(f"w{i}", **opts)
        wait_for(lambda: any(e.kind == "end" for e in bench.effects()), 60, "a first job")
        # When each B job was dispatched (the call) and committed (the call returned).
        dispatched: dict[int, tuple[float, float]] = {}
        for i in range(b_jobs):
            token = backlog + 1 + i
            at = time.time()
            bench.dispatch([(token, Work(token, 0.01).for_tenant("B"), True)])
            dispatched[token] = (at, time.time())
            time.sleep(max(0.0, at + interval - time.time()))
        a_left = bench.open_jobs()
        bench.wait_drained(120 if quick else 900)
        report = bench.report()
        problems += report.problems
        starts = [e for e in bench.effects() if e.kind == "start" and e.claimed_at is not None]
        b_claim = {e.token: e.claimed_at for e in starts if e.token in dispatched}
        a_claims = sorted(e.claimed_at for e in starts if e.token <= backlog and e.claimed_at)
        waits, between = [], []
        for token, (at, committed) in dispatched.items():
            claimed = b_claim.get(token)
            if claimed is None:
                problems.append(f"B's job {token} has no start")
                continue
            waits.append(max(0.0, claimed - at))
            between.append(sum(1 for c in a_claims if committed < c < claimed))
        batch = WORKERS * CONCURRENCY
        if between and max(between) > batch:
            problems.append(f"{max(between)} of A's jobs were claimed ahead of a B job (> {batch})")
        if a_left == 0:
            problems.append("A's backlog drained before B's last job: nothing competed with it")
        figures = report_figures(report)
        figures |= {
            "backlog": backlog,
            "b_jobs": len(dispatched),
            "a_left_when_b_done": a_left,
            "b_wait_p50": rounded(percentile(waits, 50), 3),
            "b_wait_p99": rounded(percentile(waits, 99), 3),
            "b_wait_max": rounded(max(waits, default=None), 3),
            "a_ahead_max": max(between, default=None),
        }
    return ScenarioResult("fairness", ctx.backend, figures, problems, timer.seconds)
