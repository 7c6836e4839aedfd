"""Scenario: silent network partitions (Postgres only; issue 20).

A worker runs in a network namespace of its own and reaches the database through a relay
(:mod:`reliability.netpartition`); another worker runs outside. Mid-job, every packet between
the namespace and the database is dropped, once for shorter than the visibility timeout and
once for longer:

* shorter: the partitioned worker notices (its heartbeats and write-backs fail within the
  bounds of its options), keeps its results, and writes them back when the network returns;
  its leases held, so no job runs anywhere else;
* longer: the outside worker reaps the jobs and runs them again; when the network returns the
  partitioned worker finds its leases lost and its completions are refused as stale;
* longer, with results held (the jobs end early in the drop): the outside worker reaps and
  runs the jobs; when the network returns the partitioned worker's held results are refused
  as stale and dropped (it does not give up and exit: the database refused nothing, it could
  not be reached).

Never both, never a hang: the checker finds 0 lost, 0 unexplained duplicates, 0 duplicate
completions. Figures: detection time (drop to the partitioned worker's first failure), recovery
time (restore to its results written / to its lost leases noticed), takeover time (drop to
the outside worker starting the last reaped job).
"""

from __future__ import annotations

import datetime
import signal
import time
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from reliability.audit import worker_pid
from reliability.checker import Fault
from reliability.harness import Bench, ScenarioResult, WorkerProc, wait_for
from reliability.jobs import Work
from reliability.netpartition import Island, island
from reliability.scenarios.base import Context, Timer, report_figures, rounded

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BOUNDS", "HELD", "LONGER", "SHORTER", "Side", "run"]

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


def _logged_at(proc: WorkerProc, offset: int, needle: str) -> float | None:
    """When the first log line after ``offset`` that contains ``needle`` was written."""
    for line in _log_after(proc, offset).splitlines():
        if needle in line:
            # The logging format's local time, "2026-12-05 13:24:31,752".
            return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


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


@attrs.frozen
class Side:
    """One partition: how long, against which visibility timeout, how long the jobs run."""

    name: str
    visibility: float
    drop: float
    duration: float


#: Shorter than the visibility timeout, the jobs ending during the drop (results held and
#: written back after it); longer, the jobs ending after it (leases reaped, completions
#: refused as stale); longer with the results held through it (refused as stale too, when
#: the network returns, and dropped).
SHORTER = Side("shorter", visibility=12.0, drop=5.0, duration=2.0)
LONGER = Side("longer", visibility=3.0, drop=6.0, duration=8.0)
HELD = Side("held", visibility=3.0, drop=8.0, duration=1.0)


def _side(
    bench: Bench, net: Island, side: Side, *, first: int, jobs: int, problems: list[str]
) -> dict[str, Any]:
    """One partition of ``side``; returns its figures."""
    name = side.name
    tokens = set(range(first, first + jobs))
    bench.dispatch([(t, Work(t, side.duration), True) for t in sorted(tokens)])
    url = sa.engine.make_url(bench.url).set(host=net.host_ip, port=net.port)
    url = url.update_query_dict(BOUNDS)
    opts: dict[str, Any] = {"visibility": side.visibility, "heartbeat": BEAT, "reaper": BEAT}
    inside = bench.start_worker(
        f"inside-{name}",
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
        outside = bench.start_worker(f"outside-{name}", concurrency=jobs, **opts)
        detection = _wait_log(inside, offset, NOTICED, side.drop + 10)
        time.sleep(max(0.0, dropped + side.drop - time.time()))
    finally:
        net.restore()
    restored = time.time()
    figures: dict[str, Any] = {f"{name}_detect_s": rounded(detection)}
    bench.wait_drained(side.duration + 20)
    written = [
        t.at for t in bench.audit() if t.is_completion and bench.tokens.get(t.job_id) in tokens
    ]
    completers = {
        worker_pid(t.old_by)
        for t in bench.audit()
        if t.is_completion and bench.tokens.get(t.job_id) in tokens
    }
    ends = [
        e.ts
        for e in bench.effects()
        if e.kind == "end" and e.token in tokens and e.pid == inside.pid
    ]
    in_drop = bool(ends) and min(ends) > dropped and max(ends) < restored
    if side is not LONGER and not in_drop:
        problems.append(f"{name}: the jobs did not end during the partition (too slow?)")
    if side is LONGER and (not ends or min(ends) < restored):
        problems.append(f"{name}: the jobs did not run past the partition (too slow?)")
    if side is SHORTER:
        expected = inside.pid
        figures[f"{name}_recover_s"] = rounded(max(written, default=restored) - restored)
        if not written:
            problems.append(f"{name}: the held results were never written")
        elif min(written) < restored:
            problems.append(f"{name}: results were written while the network was down?")
        if _starts(bench, tokens, outside.pid):
            problems.append(f"{name}: the outside worker ran jobs whose leases still held")
    else:
        expected = outside.pid
        bench.faults.append(Fault("partition", inside.pid, dropped, restored))
        takeover = [
            e.ts - dropped
            for e in bench.effects()
            if e.kind == "start" and e.pid == outside.pid and e.token in tokens
        ]
        figures[f"{name}_takeover_s"] = rounded(max(takeover, default=None))
        if _starts(bench, tokens, outside.pid) != tokens:
            problems.append(f"{name}: the outside worker did not run every reaped job")
        _wait_log(inside, offset, ["completion rejected"], side.duration + 10)
        noticed = _logged_at(inside, offset, "lease lost (reaped")
        if noticed is None:
            problems.append(f"{name}: the partitioned worker never noticed its leases were lost")
        else:
            figures[f"{name}_recover_s"] = rounded(noticed - restored)
    if completers != {expected}:
        problems.append(f"{name}: completed by pids {completers}, expected only {expected}")
    _stop(bench, [outside], problems)
    _serves_again(bench, inside, name, set(range(first + jobs, first + 2 * jobs)), problems)
    return figures


def _serves_again(
    bench: Bench, inside: WorkerProc, name: str, tokens: set[int], problems: list[str]
) -> None:
    """Never a hang: alone again, the partitioned worker serves new jobs."""
    bench.dispatch([(t, Work(t, 0.0), True) for t in sorted(tokens)])
    try:
        wait_for(lambda: _starts(bench, tokens, inside.pid) == tokens, 20, "new jobs to run")
    except TimeoutError:
        problems.append(f"{name}: the partitioned worker did not serve again after the partition")
    if not inside.alive():
        problems.append(f"{name}: the partitioned worker exited:\n{inside.log_text()[-2000:]}")
    _stop(bench, [inside], problems)


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
            for i, side in enumerate((SHORTER, LONGER, HELD)):
                first = 1 + 2 * jobs * i
                figures.update(_side(bench, net, side, first=first, jobs=jobs, problems=problems))
        report = bench.report()
        problems += report.problems
        figures = {**report_figures(report), **figures}
    return ScenarioResult("partition", ctx.backend, figures, problems, timer.seconds)
