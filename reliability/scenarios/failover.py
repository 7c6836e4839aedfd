"""Scenario 7, failover (Postgres only): the primary is stopped mid-load and a streaming
replica takes its place on the same address.

A throwaway primary (initdb + pg_ctl on a free port) gets a replica made with
``pg_basebackup -R``; workers run against the primary's port. Mid-load the primary is stopped,
the replica promoted and restarted on the primary's port (:mod:`reliability.replication`).
Each round runs in a database of its own; the promoted server is the next round's primary and
gets a new replica. The rounds:

* ``fast``: ``pg_ctl stop -m fast`` (a planned switchover): the primary ships its last WAL to
  the replica before it exits, so nothing committed is lost.
* ``immediate-sync``: the primary is killed (``-m immediate``) with
  ``synchronous_standby_names = '*'``: a commit returned only once the replica had it.
* ``immediate-lagging``: killed, asynchronous replication, the replica's WAL receiver frozen
  for the last 0.5 s (SIGSTOP, then SIGKILL with the primary, so what sat in its socket is
  lost too): the transactions of that time are lost with the primary. The dispatches are
  replicated before (the precondition under which "committed before the failover" holds); a
  claim or a completion that did not reach the replica is undone: the job runs again.
* full form only: ``immediate-async`` (killed, the replica keeping up: on one host it lags
  by microseconds) and ``immediate-async-5s`` (killed, the address dark for 5 s, past the
  visibility timeout: every lease expires, the new primary's reaper hands the jobs out).

Passes when every worker runs jobs again within :data:`RESUME_LIMIT` seconds of the new
primary accepting connections and its LISTEN connection is back within :data:`LISTEN_LIMIT`,
no worker dies, no job is lost, and the checker finds no unexplained duplicate and no
duplicate completion. Runs of claims the new primary never saw (``lost_claims``) and claims
run twice (``same_lease``: a lost claim given again to the same worker with the same attempt
number) are a problem except in the asynchronous rounds, where they are the documented cost
of asynchronous replication.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import attrs
import sqlalchemy as sa

from reliability.checker import Fault
from reliability.cluster import TempCluster
from reliability.harness import ScenarioResult, wait_for
from reliability.jobs import Work
from reliability.replication import Standby, stop_server, synchronous
from reliability.scenarios.base import Context, Timer, drain_alive, report_figures, resume_time

__all__ = ["LISTEN_LIMIT", "RESUME_LIMIT", "ROUNDS", "run"]

#: Seconds from the new primary accepting connections to every worker starting jobs again
#: and every LISTEN connection being back (docs/postgres.md, "Failover").
RESUME_LIMIT = 5.0
#: The LISTEN connection retries with a jittered backoff capped at ``listen_backoff_cap``
#: (10 s by default; waiters poll every ``poll_interval`` meanwhile): back within the cap.
LISTEN_LIMIT = 10.0 + 1.0
#: Worker settings: leases of jobs whose claim or completion the failover undid expire soon.
WORKER: dict[str, Any] = {"concurrency": 4, "visibility": 3.0, "heartbeat": 0.5, "reaper": 0.5}


@attrs.frozen
class Round:
    name: str
    #: ``pg_ctl stop`` mode of the primary.
    mode: str
    #: Commits wait for the replica (``synchronous_standby_names``).
    sync: bool
    #: Seconds between the primary stopping and the replica taking over.
    gap: float = 0.0
    #: Seconds the replica receives nothing before the primary is killed (asynchronous only):
    #: the transactions of that time are lost with the primary.
    lag: float = 0.0


ROUNDS = (
    Round("fast", "fast", sync=False),
    Round("immediate-sync", "immediate", sync=True),
    Round("immediate-lagging", "immediate", sync=False, lag=0.5),
)
#: The full form adds a replica that keeps up (on one host asynchronous replication lags by
#: microseconds), and keeps the address dark for longer than the visibility timeout: every
#: lease expires meanwhile, the new primary's reaper hands the jobs out again.
FULL_ONLY = (
    Round("immediate-async", "immediate", sync=False),
    Round("immediate-async-5s", "immediate", sync=False, gap=5.0),
)


def _listeners(url: str) -> int:
    """LISTEN connections of ferroq on the server of ``url`` (its database only)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'ferroq-listener'"
            )
            return int(conn.exec_driver_sql(query).scalar() or 0)
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


def _one_round(
    ctx: Context, primary: TempCluster, standby: Standby, spec: Round, n_jobs: int
) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    synchronous(primary, spec.sync)
    with ctx.bench(f"failover-{spec.name}", server_url=primary.url) as bench:
        # Idle workers open their LISTEN connections; the dispatch below wakes them.
        workers = [bench.start_worker(f"w{i}", **WORKER) for i in range(2)]
        wait_for(lambda: _listeners(bench.url) == len(workers), 60, "the LISTEN connections")
        # 50-150 ms jobs: the failover lands while every worker holds claims.
        bench.dispatch([(t, Work(t, 0.05 + (t % 11) / 100), True) for t in range(1, n_jobs + 1)])
        standby.wait_streaming(primary.url)  # every dispatch is on the replica
        wait_for(lambda: len(bench.effects()) > 40, 60, "the workers to run jobs")
        if spec.lag:
            standby.stop_receiving()
            time.sleep(spec.lag)
        down = time.time()
        stop_server(primary, spec.mode)
        if spec.lag:
            standby.lose_unreceived()
        time.sleep(spec.gap)
        standby.take_over(primary.port)
        back = time.time()
        bench.faults.append(Fault("db", None, down, back))
        figures: dict[str, Any] = {"outage": round(back - down, 2)}
        if bench.open_jobs() == 0:
            problems.append("the queue drained before the failover: dispatch more jobs")
        try:
            figures["resume"] = round(resume_time(bench, workers, back, RESUME_LIMIT + 10), 2)
            wait_for(
                lambda: _listeners(bench.url) == len(workers),
                LISTEN_LIMIT + 5,
                "every LISTEN connection to come back",
            )
            figures["listen_back"] = round(time.time() - back, 2)
        except TimeoutError as exc:
            problems.append(str(exc))
        for key, limit in (("resume", RESUME_LIMIT), ("listen_back", LISTEN_LIMIT)):
            if figures.get(key, 0.0) > limit:
                problems.append(f"{key} {figures[key]}s after the failover (> {limit}s)")
        problems += drain_alive(bench, workers)
        report = bench.report()
    # Asynchronous replication may lose the last claims: their runs match no claim the new
    # primary has, and the new primary may hand the job to the same worker with the same
    # attempt number, a lease identical to the lost one (docs/postgres.md, "Failover"). Every
    # other check holds in every round.
    allowed: tuple[str, ...] = ("runs match no accepted claim", "claims ran twice")
    if spec.sync or spec.mode == "fast":
        allowed = ()
    problems += [p for p in report.problems if not any(a in p for a in allowed)]
    figures.update(report_figures(report))
    figures["lost_claims"] = len(report.unclaimed_runs)
    figures["same_lease"] = len(report.attempt_run_twice)
    return figures, problems


def _add(total: dict[str, Any], figures: dict[str, Any], name: str) -> None:
    for key in ("jobs", "lost", "dup_explained", "dup_unexplained", "dup_completions"):
        total[key] = total.get(key, 0) + figures.get(key, 0)
    total["zombie_rejected"] = total.get("zombie_rejected", 0) + figures.get("zombie_rejected", 0)
    for key in ("outage", "resume", "listen_back", "lost_claims", "same_lease", "dup_explained"):
        if key in figures:
            total[f"{key}[{name}]"] = figures[key]


def run(ctx: Context) -> ScenarioResult:
    timer = Timer()
    if ctx.backend != "postgres":
        return ScenarioResult("failover", ctx.backend, {}, ["runs on Postgres only"], 0.0)
    n_jobs = 300 if ctx.quick else 1500
    rounds = ROUNDS if ctx.quick else (*ROUNDS, *FULL_ONLY)
    figures: dict[str, Any] = {}
    problems: list[str] = []
    with ExitStack() as stack:
        primary: TempCluster = stack.enter_context(TempCluster())
        for spec in rounds:
            standby = Standby(primary)
            stack.enter_context(standby)
            standby.wait_streaming(primary.url)
            found, trouble = _one_round(ctx, primary, standby, spec, n_jobs)
            _add(figures, found, spec.name)
            problems += [f"{spec.name}: {p}" for p in trouble]
            primary = standby
    figures["rounds"] = len(rounds)
    return ScenarioResult("failover", ctx.backend, figures, problems, timer.seconds)
