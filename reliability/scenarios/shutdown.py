"""Scenario 3, graceful shutdown under load: SIGTERM a busy worker (many trials, several at
once, each worker on its own queue). After the signal it must claim nothing, let its short jobs
finish, return its long jobs to pending (attempt counted) and its unstarted claims (attempt
given back), leave nothing claimed and exit 0 within shutdown timeout + 1 s.
"""

from __future__ import annotations

import random
import signal
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from reliability.audit import worker_pid
from reliability.harness import Bench, ScenarioResult, WorkerProc, wait_for
from reliability.jobs import Work
from reliability.scenarios.base import Context, Timer, report_figures

if TYPE_CHECKING:
    from reliability.audit import Transition

__all__ = ["run"]

SHUTDOWN = 1.5
LONG = 4.0
N_LONG, N_SHORT, CONCURRENCY = 3, 60, 4
#: Signal delivery and a claim transaction already in flight when the signal lands.
CLAIM_SLACK = 0.25


def _dispatch(bench: Bench, queue: str, first: int) -> tuple[set[int], set[int]]:
    long_tokens = set(range(first, first + N_LONG))
    short_tokens = set(range(first + N_LONG, first + N_LONG + N_SHORT))
    jobs = [(t, Work(t, LONG).on_queue(queue), True) for t in sorted(long_tokens)]
    jobs += [(t, Work(t, 0.1).on_queue(queue), True) for t in sorted(short_tokens)]
    bench.dispatch(jobs)
    return long_tokens, short_tokens


def _started_all(bench: Bench, pid: int, tokens: set[int]) -> bool:
    return tokens <= {e.token for e in bench.effects() if e.kind == "start" and e.pid == pid}


def _exit_time(proc: WorkerProc, signalled: float, limit: float) -> float | None:
    """Seconds from the signal until ``proc`` exits, polled finely; None when it outlives
    ``limit``."""
    while time.time() - signalled < limit:
        if not proc.alive():
            return time.time() - signalled
        time.sleep(0.02)
    return None


def _check_trial(
    bench: Bench,
    proc: WorkerProc,
    signalled: float,
    exited: float | None,
    long_tokens: set[int],
    short_tokens: set[int],
    audit: list[Transition],
) -> tuple[list[str], dict[str, float]]:
    problems: list[str] = []
    pid = proc.pid
    if exited is None:
        problems.append(f"worker {proc.name} still running {SHUTDOWN + 1:g}s after SIGTERM")
    elif proc.popen.returncode != 0:
        problems.append(f"worker {proc.name} exited with code {proc.popen.returncode}")
    effects = [e for e in bench.effects() if e.pid == pid]
    late_starts = [e for e in effects if e.kind == "start" and e.ts > signalled + CLAIM_SLACK]
    if late_starts:
        problems.append(f"worker {proc.name} started {len(late_starts)} job(s) after SIGTERM")
    mine = [t for t in audit if worker_pid(t.new_by) == pid or worker_pid(t.old_by) == pid]
    late_claims = [t for t in mine if t.is_claim and t.at > signalled + CLAIM_SLACK]
    if late_claims:
        problems.append(f"worker {proc.name} claimed {len(late_claims)} job(s) after SIGTERM")
    ended = {e.token for e in effects if e.kind == "end" and e.ok}
    ended_before = {e.token for e in effects if e.kind == "end" and e.ts <= signalled}
    in_flight = {e.token for e in effects if e.kind == "start" and e.ts <= signalled}
    in_flight -= ended_before
    unfinished_short = (in_flight & short_tokens) - ended
    if unfinished_short:
        problems.append(f"short jobs cut off by shutdown: {sorted(unfinished_short)}")
    ids = {t: i for i, t in bench.tokens.items()}
    returned_long = {
        t.job_id
        for t in mine
        if t.at >= signalled
        and t.old_status == "claimed"
        and t.new_status == "pending"
        and t.new_attempts == t.old_attempts
    }
    for token in in_flight & long_tokens:
        if ids[token] not in returned_long:
            problems.append(f"long job {token} was not returned to pending (attempt counted)")
    unstarted = sum(
        1
        for t in mine
        if t.at >= signalled
        and t.new_status == "pending"
        and t.new_attempts is not None
        and t.old_attempts is not None
        and t.new_attempts == t.old_attempts - 1
    )
    still = [
        r for r in bench.runtime.backend.list_jobs(limit=100_000) if worker_pid(r.claimed_by) == pid
    ]
    if still:
        problems.append(f"worker {proc.name} left {len(still)} job(s) claimed")
    return problems, {"exit": exited or 0.0, "unstarted_returned": float(unstarted)}


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    rng = random.Random(3)
    rounds, parallel = (1, 3) if ctx.quick else (5, 4)
    problems: list[str] = []
    exits: list[float] = []
    unstarted = 0
    with ctx.bench("shutdown") as bench:
        token = 1
        queues = [f"t{i}" for i in range(parallel)]
        for _ in range(rounds):
            trials: list[tuple[WorkerProc, set[int], set[int]]] = []
            for q in queues:
                long_tokens, short_tokens = _dispatch(bench, q, token)
                token += N_LONG + N_SHORT
                proc = bench.start_worker(
                    q, queues=q, concurrency=CONCURRENCY, visibility=5.0, heartbeat=1.0,
                    shutdown=SHUTDOWN,
                )  # fmt: skip
                trials.append((proc, long_tokens, short_tokens))
            for proc, long_tokens, _ in trials:
                wait_for(
                    partial(_started_all, bench, proc.pid, long_tokens),
                    30,
                    f"worker {proc.name} to start its long jobs",
                )
            sent = []
            for proc, _, _ in trials:
                time.sleep(rng.uniform(0.05, 0.3))
                sent.append(bench.signal(proc, signal.SIGTERM, "term"))
            signals = [
                (at, _exit_time(p, at, SHUTDOWN + 1.0))
                for (p, _, _), at in zip(trials, sent, strict=True)
            ]
            audit = bench.audit()
            for (proc, long_tokens, short_tokens), (at, exited) in zip(
                trials, signals, strict=True
            ):
                found, figures = _check_trial(
                    bench, proc, at, exited, long_tokens, short_tokens, audit
                )
                problems += found
                exits.append(figures["exit"])
                unstarted += int(figures["unstarted_returned"])
        drain = bench.start_worker("drain", queues=",".join(queues), concurrency=16)
        bench.wait_drained(60)
        bench.signal(drain, signal.SIGTERM, "term")
        report = bench.report()
        problems += report.problems
        fig: dict[str, Any] = report_figures(report)
        fig.update(
            trials=rounds * parallel,
            exit_max=round(max(exits), 2),
            exit_limit=SHUTDOWN + 1.0,
            unstarted_returned=unstarted,
        )
    return ScenarioResult("shutdown", ctx.backend, fig, problems, timer.seconds)
