"""How soon a waiting ``JobId.result()`` returns after the job's acknowledgement (or, with
``--fail``, after the job is parked failed: it then raises ``JobFailed``).

``python -m bench.results_latency [--backends sqlite,postgres] [--probes 200] [--fail]``

One ``ferroq worker`` process runs a probe job that stores a tiny result; this process
dispatches one probe at a time and waits on ``result()`` (in the same way as any other
process or host would). Per probe it records:

- *wake*: from the acknowledgement to ``result()`` returning, bounded from both sides (the
  commit's own time is not visible: ``track_commit_timestamp`` is off by default):
  ``wake`` counts from when the worker saw its acknowledging statement return (its
  ``ferroq_jobs_succeeded`` hook, called just after; a waiter may wake before the worker
  writes that down, so this is a lower bound, and its minimum can be negative);
  ``wake_from_statement`` counts from the result's ``created_at``, the acknowledging
  statement's start (Postgres ``statement_timestamp()``, SQLite the host clock before the
  commit), so the statement's own run and commit are counted too: an upper bound. The same
  machine's clock on both sides.
- *round trip*: from ``dispatch()`` to ``result()`` returning (dispatch, the worker's wake-up,
  the run and the acknowledgement included).

With ``--fail`` the probe raises (one attempt allowed): *wake* counts from the worker's
``ferroq_job_failed`` hook (called after the failing statement returned, a lower bound) and
*wake_from_statement* from the row's ``failed_at`` (the failing statement's start on
Postgres, the host clock before the commit on SQLite: an upper bound).

Prints p50 and p99 of each, in milliseconds, per backend.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import attrs

from bench.common import ROOT, add_backend_options, child_env, on_backends, percentile
from bench.systems.ferroq_sys import runtime_for
from ferroq_core import (
    Job,
    JobFailed,
    JobId,
    Queue,
    QueueConfig,
    WorkerConfig,
    WorkerLoop,
    hookimpl,
)

#: The file the worker appends ``job_id ack_time`` lines to.
ACKS_ENV = "FERROQ_BENCH_ACKS"


@attrs.define
class Probe(Job):
    """Returns its number (stored)."""

    job_name = "bench.result_probe"
    queue = "result-latency"
    store_result = True
    i: int = 0

    def handle(self) -> int:
        return self.i


@attrs.define
class FailProbe(Job):
    """Fails at once, for good (its failure is what a waiter waits for)."""

    job_name = "bench.result_fail_probe"
    queue = "result-latency"
    max_attempts = 1
    i: int = 0

    def handle(self) -> int:
        raise ValueError(f"probe {self.i} fails")


class AckTimes:
    """The worker's plugin: the time each probe's acknowledgement (or failure) returned."""

    def __init__(self, path: str) -> None:
        self._path = path

    def _write(self, ids: list[int]) -> None:
        now = time.time()
        with open(self._path, "a", encoding="utf-8") as fh:
            fh.writelines(f"{i} {now}\n" for i in ids)

    @hookimpl
    def ferroq_jobs_succeeded(self, rows: list[object], durations: list[float]) -> None:
        self._write([row.id for row in rows])  # type: ignore[attr-defined]

    @hookimpl
    def ferroq_job_failed(self, row: object, error: BaseException) -> None:
        self._write([row.id])  # type: ignore[attr-defined]


def _acks(path: str) -> dict[int, float]:
    with open(path, encoding="utf-8") as fh:
        return {int(a): float(b) for a, b in (line.split() for line in fh if line.strip())}


def _wait(job_id: JobId, fail: bool) -> float:
    """Wait for the probe's end; return when ``result()`` returned (or raised JobFailed)."""
    if not fail:
        job_id.result(timeout=30)
        return time.time()
    try:
        job_id.result(timeout=30)
    except JobFailed:
        return time.time()
    raise AssertionError(f"probe {job_id} did not fail")


def _measure(url: str, probes: int, fail: bool = False) -> dict[str, float]:
    Queue.init(url, QueueConfig(connection="db", database_url=url))
    backend = Queue.backend()
    backend.migrate()
    fd, acks = tempfile.mkstemp(prefix="ferroq-acks-", suffix=".txt")
    os.close(fd)
    worker = subprocess.Popen(
        [sys.executable, "-m", "bench.results_latency", "--worker", url],
        cwd=ROOT,
        env={**child_env(), ACKS_ENV: acks},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wakes: list[float] = []
    from_statement: list[float] = []
    trips: list[float] = []
    probe = FailProbe if fail else Probe
    try:
        Probe(i=-1).dispatch().result(timeout=60)  # the worker is up, the waiter listens
        for i in range(probes):
            started = time.time()
            job_id = probe(i=i).dispatch()
            woke = _wait(job_id, fail)
            trips.append((woke - started) * 1000)
            if fail:
                row = backend.get_job(job_id)
                assert row is not None
                assert row.failed_at is not None
                ended = row.failed_at.timestamp()
            else:
                stored = backend.read_result(job_id).result
                assert stored is not None
                ended = stored.created_at.timestamp()
            from_statement.append((woke - ended) * 1000)
            time.sleep(0.02)
            acked = _acks(acks).get(int(job_id))
            if acked is not None:  # written just after the ack: a fast waiter may be first
                wakes.append((woke - acked) * 1000)
    finally:
        worker.terminate()
        worker.wait(30)
        Queue.reset()
        os.unlink(acks)
    return {
        "wake_p50_ms": percentile(wakes, 50),
        "wake_p99_ms": percentile(wakes, 99),
        "wake_min_ms": min(wakes, default=float("nan")),
        "wake_from_statement_p50_ms": percentile(from_statement, 50),
        "wake_from_statement_p99_ms": percentile(from_statement, 99),
        "round_trip_p50_ms": percentile(trips, 50),
        "round_trip_p99_ms": percentile(trips, 99),
        "probes": float(len(wakes)),
    }


def worker(url: str) -> None:
    """The measured worker: ``WorkerLoop`` on the probes' queue, with :class:`AckTimes`."""
    rt = runtime_for(url)
    rt.pm.register(AckTimes(os.environ[ACKS_ENV]), name="bench-ack-times")
    try:
        WorkerLoop(rt, WorkerConfig(queues=(Probe.queue,), concurrency=4)).run()
    finally:
        rt.close()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker(argv[1])
        return
    p = argparse.ArgumentParser(prog="python -m bench.results_latency")
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--fail", action="store_true", help="probes that fail: JobFailed's wake")
    add_backend_options(p)
    args = p.parse_args(argv)
    for backend, figures in on_backends(
        args, "ferroq-results", lambda url: _measure(url, args.probes, args.fail)
    ):
        shown = ", ".join(f"{k} {v:.2f}" for k, v in figures.items() if k != "probes")
        print(f"{backend}: {shown} ({int(figures['probes'])} probes)")


if __name__ == "__main__":
    main()
