"""``ferroq bench``: measure enqueue, drain and latency against the configured database.

Everything runs in a scratch queue of its own (``ferroq-bench-<random>``) with no-op jobs, and
that queue is emptied at the end, failed rows included, so the command leaves nothing behind.
The worker is the real :class:`~ferroq_core.worker.WorkerLoop`, in this process.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import uuid
from functools import cache
from typing import TYPE_CHECKING, Any

import attrs
import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.config import WorkerConfig
from ferroq_core.dispatching import dispatch, dispatch_many
from ferroq_core.job import Job
from ferroq_core.records import JobState
from ferroq_core.worker import WorkerLoop

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.runtime import Runtime

__all__ = ["register"]

#: Enqueue->start latencies of probe jobs run by this process's worker, in seconds.
_LAGS: list[float] = []
_LAGS_LOCK = threading.Lock()
CHUNK = 1_000


@cache
def _job_types() -> tuple[Callable[..., Job], Callable[..., Job]]:
    """The no-op job types, defined (and so registered) only when ``bench`` runs."""

    @attrs.define
    class BenchNoop(Job):
        job_name = "ferroq.bench.noop"
        max_attempts = 1
        i: int = 0

        def handle(self) -> None:
            return None

    @attrs.define
    class BenchProbe(Job):
        job_name = "ferroq.bench.probe"
        max_attempts = 1
        sent: float = 0.0

        def handle(self) -> None:
            with _LAGS_LOCK:
                _LAGS.append(time.time() - self.sent)

    return BenchNoop, BenchProbe


def register(cli: click.Group) -> None:
    cli.add_command(bench)


@click.command()
@click.option(
    "-n",
    "--jobs",
    "jobs",
    default=10_000,
    show_default=True,
    help="No-op jobs for the bulk enqueue and the drain.",
)
@click.option(
    "--concurrency",
    default=50,
    show_default=True,
    help="Worker slots (also the largest claim batch).",
)
@click.option(
    "--probes",
    default=100,
    show_default=True,
    help="Single jobs sent one at a time into the idle worker for latency.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_context
def bench(obj: CliContext, jobs: int, concurrency: int, probes: int, as_json: bool) -> None:
    """Measure enqueue, drain and latency on the configured database (a scratch queue,
    emptied at the end).

    \b
    Example:
      FERROQ_DATABASE_URL=postgresql://app@db/app ferroq bench -n 20000
    """
    if jobs < 1 or concurrency < 1 or probes < 0:
        raise click.UsageError("--jobs and --concurrency must be >= 1, --probes >= 0")
    runtime = obj.runtime()
    runtime.backend.check_schema()
    queue = f"ferroq-bench-{uuid.uuid4().hex[:10]}"
    results: dict[str, Any] = {"backend": runtime.backend.name, "queue": queue, "jobs": jobs}
    try:
        results["enqueue_bulk_jobs_per_s"] = _enqueue_bulk(runtime, queue, jobs)
        results["drain_jobs_per_s"] = _drain(runtime, queue, jobs, concurrency)
        single = max(1, jobs // 10)
        results["enqueue_single_jobs_per_s"] = _enqueue_single(runtime, queue, single)
        _drain(runtime, queue, single, concurrency, label="clean-up")
        if probes:
            results.update(_latency(runtime, queue, probes, concurrency))
    finally:
        _clean(runtime, queue)
    if as_json:
        click.echo(json.dumps(results))
        return
    click.echo(f"\nferroq bench on {runtime.backend.name} ({jobs:,} no-op jobs)")
    for key, value in results.items():
        if key not in ("backend", "queue", "jobs"):
            click.echo(f"  {key:28} {value:>12,.1f}")


def _enqueue_bulk(runtime: Runtime, queue: str, n: int) -> float:
    noop, _probe = _job_types()
    elapsed = 0.0
    with click.progressbar(length=n, label="enqueue (dispatch_many)", file=_err()) as bar:
        for start in range(0, n, CHUNK):
            batch = [noop(i=i).on_queue(queue) for i in range(start, min(n, start + CHUNK))]
            t0 = time.perf_counter()
            dispatch_many(batch, runtime=runtime)
            elapsed += time.perf_counter() - t0
            bar.update(len(batch))
    return n / elapsed


def _enqueue_single(runtime: Runtime, queue: str, n: int) -> float:
    noop, _probe = _job_types()
    pending = [noop(i=i).on_queue(queue) for i in range(n)]
    elapsed = 0.0
    with click.progressbar(pending, label="enqueue (dispatch)", file=_err()) as bar:
        for item in bar:
            t0 = time.perf_counter()
            dispatch(item, runtime=runtime)
            elapsed += time.perf_counter() - t0
    return n / elapsed


def _pending(runtime: Runtime, queue: str) -> int:
    stats = runtime.backend.get_stats()
    for q in stats.queues:
        if q.queue == queue:
            return int(q.pending + q.delayed + q.claimed)
    return 0


def _worker(runtime: Runtime, queue: str, concurrency: int, *, until_empty: bool) -> Any:
    config = WorkerConfig(
        queues=(queue,), concurrency=concurrency, stop_when_empty=until_empty, sleep=0.5
    )
    return WorkerLoop(runtime, config, handle_signals=False)


def _in_thread(fn: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=fn, name="ferroq-bench-worker", daemon=True)
    thread.start()
    return thread


def _drain(
    runtime: Runtime, queue: str, n: int, concurrency: int, *, label: str = "drain"
) -> float:
    worker = _worker(runtime, queue, concurrency, until_empty=True)
    t0 = time.perf_counter()
    thread = _in_thread(worker.run)
    with click.progressbar(length=n, label=f"{label} (worker)", file=_err()) as bar:
        done = 0
        while thread.is_alive():
            thread.join(0.2)
            now_done = n - _pending(runtime, queue)
            bar.update(max(0, now_done - done))
            done = max(done, now_done)
    return n / (time.perf_counter() - t0)


def _latency(runtime: Runtime, queue: str, probes: int, concurrency: int) -> dict[str, float]:
    _noop, probe = _job_types()
    worker = _worker(runtime, queue, concurrency, until_empty=False)
    thread = _in_thread(worker.run)
    with _LAGS_LOCK:
        _LAGS.clear()
    try:
        with click.progressbar(range(probes), label="latency (idle worker)", file=_err()) as bar:
            for count in bar:
                dispatch(probe(sent=time.time()).on_queue(queue), runtime=runtime)
                _wait_for(_seen(count + 1), 10.0)
                time.sleep(0.02)  # let the worker go idle again
    finally:
        worker.request_stop("bench done")
        thread.join(30)
    with _LAGS_LOCK:
        lags = sorted(x * 1000 for x in _LAGS)
    if not lags:
        return {}
    return {
        "latency_p50_ms": statistics.median(lags),
        "latency_p99_ms": lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))],
    }


def _seen(count: int) -> Callable[[], bool]:
    return lambda: len(_LAGS) >= count


def _wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.001)
    return False


def _clean(runtime: Runtime, queue: str) -> None:
    """Leave nothing behind: pending, claimed (a worker that was cut off) and failed rows."""
    backend = runtime.backend
    backend.clear_queue(queue)
    for state in (JobState.CLAIMED, JobState.FAILED):
        while True:
            rows = backend.list_jobs(state=state, queue=queue, limit=1000)
            if not rows:
                break
            backend.delete_jobs([r.id for r in rows])


def _err() -> Any:
    return sys.stderr  # progress goes to stderr, results to stdout
