"""Scenario 2, zombie fencing: SIGSTOP a worker mid-job for longer than the visibility timeout,
let another worker take the jobs over, SIGCONT it. The zombie's completions and heartbeats
must be rejected, each job must complete once (by the new owner), and the zombie must go on
serving.
"""

from __future__ import annotations

import re
import signal
import time
from typing import Any

from reliability.audit import worker_pid
from reliability.checker import Fault
from reliability.harness import Bench, ScenarioResult, wait_for
from reliability.jobs import Work
from reliability.scenarios.base import Context, Timer, report_figures

__all__ = ["run"]

VIS, BEAT, REAP = 2.0, 0.4, 0.4
#: Long enough that the new owner is still running the jobs when the zombie wakes, and that
#: the zombie itself still runs them for a few heartbeats after SIGCONT (~3.5 s after start).
DURATION = 6.0


def _starts_by(bench: Bench, tokens: set[int], pid: int) -> set[int]:
    return {e.token for e in bench.effects() if e.kind == "start" and e.pid == pid} & tokens


def _trial(bench: Bench, first: int, per_trial: int, problems: list[str]) -> tuple[int, int]:
    """One stop/take-over/continue round; returns how many zombie writes were accepted and
    how many of its heartbeats were refused."""
    tokens = set(range(first, first + per_trial))
    bench.dispatch([(t, Work(t, DURATION), True) for t in sorted(tokens)])
    opts: dict[str, Any] = {
        "concurrency": per_trial,
        "visibility": VIS,
        "heartbeat": BEAT,
        "reaper": REAP,
    }
    zombie = bench.start_worker(f"zombie{first}", **opts)
    wait_for(lambda: _starts_by(bench, tokens, zombie.pid) == tokens, 30, "the zombie's starts")
    stopped = time.time()
    os_kill(zombie.pid, signal.SIGSTOP)
    heir = bench.start_worker(f"heir{first}", **opts)
    wait_for(
        lambda: _starts_by(bench, tokens, heir.pid) == tokens,
        VIS + 15,
        "the heir to take every job over",
    )
    resumed = time.time()
    os_kill(zombie.pid, signal.SIGCONT)
    bench.faults.append(Fault("stop", zombie.pid, stopped, resumed))
    # Let the zombie finish its runs and try to acknowledge and heartbeat them while the heir
    # still holds every lease.
    time.sleep(4 * BEAT)
    for job_id, token in bench.tokens.items():
        if token not in tokens:
            continue
        row = bench.runtime.backend.get_job(job_id)
        if row is not None and worker_pid(row.claimed_by) != heir.pid:
            problems.append(f"job {job_id} left the heir after the zombie woke: {row.claimed_by}")
    bench.wait_drained(DURATION + 20)
    # The zombie must still serve: give it the next jobs alone.
    bench.signal(heir, signal.SIGTERM, "term")
    heir.popen.wait(timeout=DURATION + 10)
    after = set(range(first + per_trial, first + 2 * per_trial))
    bench.dispatch([(t, Work(t, 0.0), True) for t in sorted(after)])
    bench.wait_drained(30)
    if not zombie.alive():
        problems.append("the zombie worker died after SIGCONT")
    elif not _starts_by(bench, after, zombie.pid):
        problems.append("the zombie worker ran nothing after SIGCONT")
    log = zombie.log_text()
    for job_id, token in bench.tokens.items():
        if token not in tokens:
            continue
        if not re.search(rf"job {job_id}: lease lost \(reaped after missed heartbeats", log):
            problems.append(f"job {job_id}: the zombie's log shows no rejected heartbeat")
        if not re.search(rf"job {job_id}: completion rejected", log):
            problems.append(f"job {job_id}: the zombie's log shows no rejected completion")
    trial_ids = {job_id for job_id, token in bench.tokens.items() if token in tokens}
    accepted = [
        t
        for t in bench.audit()
        if t.job_id in trial_ids and worker_pid(t.old_by) == zombie.pid and t.at > resumed
    ]
    bench.signal(zombie, signal.SIGTERM, "term")
    zombie.popen.wait(timeout=15)
    return len(accepted), log.count("lease lost (reaped after missed heartbeats")


def os_kill(pid: int, sig: int) -> None:
    import os

    os.kill(pid, sig)


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    trials, per_trial = (1, 3) if ctx.quick else (5, 4)
    problems: list[str] = []
    with ctx.bench("zombie") as bench:
        counts = [_trial(bench, 1 + i * 2 * per_trial, per_trial, problems) for i in range(trials)]
        late = sum(c[0] for c in counts)
        report = bench.report()
        if late:
            problems.append(f"{late} writes of a zombie were accepted after it woke")
        problems += report.problems
        expected = trials * per_trial
        if report.zombie_writes_rejected != expected:
            problems.append(
                f"{report.zombie_writes_rejected} zombie completions seen, expected {expected}"
            )
        worst = max(report.recovery, default=0.0)
        if worst > VIS + BEAT + REAP + 1.0:
            problems.append(f"recovery {worst:.2f}s over the bound {VIS + BEAT + REAP:g}s (+1s)")
        figures = report_figures(report)
        figures.update(
            trials=trials,
            zombie_writes_accepted=late,
            zombie_heartbeats_rejected=sum(c[1] for c in counts),
        )
    return ScenarioResult("zombie", ctx.backend, figures, problems, timer.seconds)
