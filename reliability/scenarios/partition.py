"""Scenario: silent network partitions (Postgres only; issue 20).

A worker runs in a network namespace of its own and reaches the database through a relay
(:mod:`reliability.netpartition`); another worker runs outside. Mid-job, every packet between
the namespace and the database is dropped, once for shorter than the visibility timeout and
once for longer:

* shorter: the partitioned worker notices (its heartbeats and write-backs fail within the
  bounds of its options), keeps its results, and writes them back when the network returns;
  its leases held, so no job runs anywhere else;
* longer: the outside worker reaps the jobs and runs them again; when the network returns the
  partitioned worker finds its leases lost and its completions are refused as stale.

Never both, never a hang: the checker finds 0 lost, 0 unexplained duplicates, 0 duplicate
completions. Figures: detection time (drop to the partitioned worker's first failure), recovery
time (restore to its results written / to its lost leases noticed) and takeover time (drop to
the outside worker starting a job again).
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from reliability.audit import worker_pid
from reliability.checker import Fault
from reliability.harness import Bench, ScenarioResult, WorkerProc, wait_for
from reliability.jobs import Work
from reliability.netpartition import Island, island
from reliability.scenarios.base import Context, Timer, report_figures, rounded

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BOUNDS", "run"]

#: The partitioned worker's Postgres options: detection within ~2 s (docs/postgres.md).
BOUNDS = {
    "keepalives_idle": "1",
    "keepalives_interval": "1",
    "keepalives_count": "2",
    "tcp_user_timeout": "1500",
    "connect_timeout": "2",
    "statement_deadline": "2",
    "reconnect_attempts": "1",
    "poll_interval": "0.5",
}
#: What the partitioned worker logs when it notices.
NOTICED = (
    "heartbeat failed",
    "writing results back failed",
    "claim failed",
    "reaper pass failed",
)
BEAT = 0.5


def _log_after(proc: WorkerProc, offset: int) -> str:
    return proc.log_text()[offset:]


def _wait_log(proc: WorkerProc, offset: int, needles: Sequence[str], timeout: float) -> float:
    """Seconds until one of ``needles`` appears in the log after ``offset``."""
    started = time.time()
    wait_for(
        lambda: any(n in _log_after(proc, offset) for n in needles),
        timeout,
        f"{proc.name} to log one of {list(needles)}",
        interval=0.05,
    )
    return time.time() - started


def _starts(bench: Bench, tokens: set[int], pid: int) -> set[int]:
    return {e.token for e in bench.effects() if e.kind == "start" and e.pid == pid} & tokens


def _stop(bench: Bench, procs: Sequence[WorkerProc], problems: list[str]) -> None:
    for proc in procs:
        if proc.alive():
            bench.signal(proc, signal.SIGTERM, "term")
    for proc in procs:
        try:
            proc.popen.wait(timeout=20)
        except Exception:
            problems.append(f"{proc.name} did not stop within 20 s of SIGTERM")


def _side(
    bench: Bench,
    net: Island,
    *,
    longer: bool,
    first: int,
    jobs: int,
    problems: list[str],
) -> dict[str, Any]:
    """One partition, shorter or longer than the visibility timeout; returns its figures."""
    side = "longer" if longer else "shorter"
    vis, drop = (3.0, 6.0) if longer else (12.0, 5.0)
    # Shorter: the jobs end during the partition (results held). Longer: they end after it
    # (the partitioned worker must find its leases reaped and its completions refused).
    duration = drop + 2.0 if longer else 2.0
    tokens = set(range(first, first + jobs))
    bench.dispatch([(t, Work(t, duration), True) for t in sorted(tokens)])
    url = sa.engine.make_url(bench.url).set(host=net.host_ip, port=net.port)
    url = url.update_query_dict(BOUNDS)
    opts: dict[str, Any] = {"visibility": vis, "heartbeat": BEAT, "reaper": BEAT}
    inside = bench.start_worker(
        f"inside-{side}",
        concurrency=jobs,
        url=url.render_as_string(hide_password=False),
        wrap=net.command,
        **opts,
    )
    wait_for(lambda: _starts(bench, tokens, inside.pid) == tokens, 30, "the inside worker's starts")
    offset = len(inside.log_text())
    dropped = time.time()
    net.drop()
    try:
        # Started now, the outside worker cannot take the jobs before the drop.
        outside = bench.start_worker(f"outside-{side}", concurrency=jobs, **opts)
        detection = _wait_log(inside, offset, NOTICED, drop + 10)
        time.sleep(max(0.0, dropped + drop - time.time()))
    finally:
        net.restore()
    restored = time.time()
    figures: dict[str, Any] = {f"{side}_detect_s": rounded(detection)}
    if longer:
        bench.faults.append(Fault("partition", inside.pid, dropped, restored))
        recovery = _wait_log(inside, offset, ["lease lost (reaped"], 20)
        bench.wait_drained(duration + 20)
        _wait_log(inside, offset, ["completion rejected"], duration + 10)
        takeover = [
            e.ts - dropped
            for e in bench.effects()
            if e.kind == "start" and e.pid == outside.pid and e.token in tokens
        ]
        figures[f"{side}_takeover_s"] = rounded(max(takeover, default=None))
        if _starts(bench, tokens, outside.pid) != tokens:
            problems.append(f"{side}: the outside worker did not run every reaped job")
    else:
        bench.wait_drained(20)
        written = [
            t.at for t in bench.audit() if t.is_completion and bench.tokens.get(t.job_id) in tokens
        ]
        recovery = max(written, default=restored) - restored
        ends = [e.ts for e in bench.effects() if e.kind == "end" and e.token in tokens]
        if not ends or min(ends) <= dropped or max(ends) >= restored:
            problems.append(f"{side}: the jobs did not end during the partition (too slow?)")
        elif not written or min(written) < restored:
            problems.append(f"{side}: results were written while the network was down?")
        if _starts(bench, tokens, outside.pid):
            problems.append(f"{side}: the outside worker ran jobs whose leases still held")
    figures[f"{side}_recover_s"] = rounded(recovery)
    completers = {
        worker_pid(t.old_by)
        for t in bench.audit()
        if t.is_completion and bench.tokens.get(t.job_id) in tokens
    }
    expected = outside.pid if longer else inside.pid
    if completers != {expected}:
        problems.append(f"{side}: completed by pids {completers}, expected only {expected}")
    # Never a hang: alone again, the partitioned worker serves new jobs.
    _stop(bench, [outside], problems)
    after = set(range(first + jobs, first + 2 * jobs))
    bench.dispatch([(t, Work(t, 0.0), True) for t in sorted(after)])
    try:
        wait_for(lambda: _starts(bench, after, inside.pid) == after, 20, "new jobs to run")
    except TimeoutError:
        problems.append(f"{side}: the partitioned worker did not serve again after the partition")
    if not inside.alive():
        problems.append(f"{side}: the partitioned worker exited:\n{inside.log_text()[-2000:]}")
    _stop(bench, [inside], problems)
    return figures


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    if ctx.backend != "postgres":
        return ScenarioResult("partition", ctx.backend, {"skipped": "postgres only"}, [], 0.0)
    jobs = 3 if ctx.quick else 8
    problems: list[str] = []
    figures: dict[str, Any] = {}
    with ctx.bench("partition") as bench:
        server = sa.engine.make_url(bench.url)
        with island((server.host or "127.0.0.1", server.port or 5432)) as net:
            figures.update(_side(bench, net, longer=False, first=1, jobs=jobs, problems=problems))
            figures.update(
                _side(bench, net, longer=True, first=1 + 2 * jobs, jobs=jobs, problems=problems)
            )
        report = bench.report()
        problems += report.problems
        figures = {**report_figures(report), **figures}
    return ScenarioResult("partition", ctx.backend, figures, problems, timer.seconds)
