"""Scenario: concurrency and rate limits under ``kill -9`` (issue 22).

4 worker processes x concurrency 8 drain jobs of 10 tenants whose type allows 2 running at once
per tenant (``chaos.limited``), mixed with a type allowed 10 starts a second (``chaos.rated``),
while workers are SIGKILLed and restarted. From the ledger: never more than 2 running per
tenant at any instant (a killed worker's run ends at its kill), never more than 10 claims of
the rated type in any second (claim times on the database clock), every job ran, and each job
a killed worker held ran again within visibility timeout + reaper + heartbeat (+1 s slack): its
slot came back when its lease was reaped.
"""

from __future__ import annotations

import random
import signal
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from reliability.harness import ScenarioResult, wait_for
from reliability.limited_jobs import Limited, Rated
from reliability.scenarios.base import Context, Timer, report_figures

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from reliability.checker import Fault
    from reliability.ledger import Effect

__all__ = ["max_in_window", "max_running", "run"]

K = Limited.concurrency_limit or 0
RATE, PER = Rated.rate_limit or (0, 1.0)
TENANTS = 10


def max_running(
    effects: Sequence[Effect],
    tokens: set[int],
    faults: Sequence[Fault],
    key: Callable[[Effect], str] = lambda e: e.tenant or "",
) -> dict[str, int]:
    """The most runs of ``tokens`` at once per key (default: the tenant): each run from its
    start to its end, or to the kill of its process when it has none."""
    killed = {f.pid: f.at for f in faults if f.kind == "kill" and f.pid is not None}
    events: dict[str, list[tuple[float, int]]] = defaultdict(list)
    open_runs: dict[tuple[int, int], Effect] = {}
    for e in effects:
        if e.token not in tokens:
            continue
        if e.kind == "start":
            open_runs[(e.pid, e.token)] = e
        elif (e.pid, e.token) in open_runs:
            start = open_runs.pop((e.pid, e.token))
            events[key(start)] += [(start.ts, 1), (e.ts, -1)]
    for (pid, _), start in open_runs.items():
        end = killed.get(pid, float("inf"))
        events[key(start)] += [(start.ts, 1), (end, -1)]
    peaks = {}
    for tenant, points in events.items():
        now = peak = 0
        for _, step in sorted(points, key=lambda p: (p[0], p[1])):  # an end before a start
            now += step
            peak = max(peak, now)
        peaks[tenant] = peak
    return peaks


def max_in_window(times: Iterable[float], per: float) -> int:
    """The most ``times`` inside any window ``(t - per, t]``."""
    ordered = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - per:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    rng = random.Random(22)
    quick = ctx.quick
    n_limited, n_rated, kills = (600, 60, 3) if quick else (4000, 300, 12)
    vis, beat, reap = (1.5, 0.3, 0.3) if quick else (2.0, 0.5, 0.5)
    bound = vis + beat + reap
    problems: list[str] = []
    with ctx.bench("limits") as bench:
        jobs: list[tuple[int, Any, bool]] = []
        for token in range(1, n_limited + 1):
            job = Limited(token, round(rng.uniform(0.02, 0.15), 3), rng.random() < 0.05)
            jobs.append((token, job.for_tenant(f"t{token % TENANTS}"), True))
        rated = set(range(n_limited + 1, n_limited + n_rated + 1))
        jobs += [(token, Rated(token, 0.01), True) for token in sorted(rated)]
        rng.shuffle(jobs)
        bench.dispatch(jobs)
        opts: dict[str, Any] = {
            "concurrency": 8,
            "visibility": vis,
            "heartbeat": beat,
            "reaper": reap,
            # Only these workers know the limited types (their limits make claims limited).
            "extra": ["--import", "reliability.limited_jobs"],
        }
        procs = [bench.start_worker(f"w{i}", **opts) for i in range(4)]
        wait_for(lambda: any(e.kind == "end" for e in bench.effects()), 60, "a first job")
        for k in range(kills):
            time.sleep(rng.uniform(0.8, 1.5) if quick else rng.uniform(2.0, 4.0))
            victim = rng.choice([p for p in procs if p.alive()])
            bench.signal(victim, signal.SIGKILL, "kill")
            victim.popen.wait(timeout=10)
            procs.remove(victim)
            procs.append(bench.start_worker(f"r{k}", **opts))
        bench.wait_drained(180 if quick else 900)
        report = bench.report()
        problems += report.problems
        effects = bench.effects()
        limited = set(range(1, n_limited + 1))
        peaks = max_running(effects, limited, bench.faults)
        peak = max(peaks.values(), default=0)
        if peak > K:
            over = {t: n for t, n in peaks.items() if n > K}
            problems.append(f"more than {K} running at once for tenants {over}")
        claims = [e.claimed_at for e in effects if e.kind == "start" and e.token in rated]
        if None in claims:
            problems.append("a rated start without its claim time in the ledger")
        window = max_in_window([c for c in claims if c is not None], PER)
        if window > RATE:
            problems.append(f"{window} rated claims within {PER:g}s (limit {RATE})")
        worst = max(report.recovery, default=0.0)
        if worst > bound + 1.0:
            problems.append(f"recovery {worst:.2f}s over the bound {bound:g}s (+1s slack)")
        figures = report_figures(report)
        figures.update(
            kills=kills,
            k=K,
            peak_running_per_tenant=peak,
            rate=f"{RATE}/{PER:g}s",
            peak_claims_per_window=window,
            bound=bound,
        )
    return ScenarioResult("limits", ctx.backend, figures, problems, timer.seconds)
