"""What storing results costs a worker's drain, in CPU time of the worker (robust on a shared
machine) and in wall time, interleaved with the same drain without results.

    python -m bench.results_cost [-n 10000] [--reps 5] [--backends sqlite,postgres]

One process and database per backend: each repetition fills a queue with ``n`` jobs of one
kind and drains it with one in-process ``WorkerLoop`` (concurrency 100, as the benchmark's
drain), first ``plain`` (``bench.noop``, no result) then ``results`` (``bench.result``: the
same job storing ``{"i": i, "ok": 1}``), the order turning each repetition. Reports medians of
jobs per CPU second of this process (on SQLite the database's work is in it; on PostgreSQL
the server's is not) and per wall second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.common import add_backend_options, on_backends
from bench.systems.ferroq_results import BenchResult
from bench.systems.ferroq_sys import BenchNoop, runtime_for
from ferroq_core import WorkerConfig, WorkerLoop, dispatch_many

KINDS = (("plain", BenchNoop), ("results", BenchResult))


def measure(url: str, n: int, reps: int) -> dict[str, dict[str, float]]:
    rt = runtime_for(url)
    rt.backend.migrate()
    cpu: dict[str, list[float]] = {k: [] for k, _ in KINDS}
    wall: dict[str, list[float]] = {k: [] for k, _ in KINDS}
    try:
        for rep in range(reps):
            for name, cls in KINDS if rep % 2 == 0 else KINDS[::-1]:
                for start in range(0, n, 10_000):
                    jobs = [cls(i=i).on_queue("cost") for i in range(start, min(n, start + 10_000))]
                    dispatch_many(jobs, runtime=rt)
                c, w = time.process_time(), time.perf_counter()
                config = WorkerConfig(queues=("cost",), concurrency=100, stop_when_empty=True)
                WorkerLoop(rt, config).run()
                cpu[name].append(n / (time.process_time() - c))
                wall[name].append(n / (time.perf_counter() - w))
    finally:
        rt.close()
    return {
        name: {"cpu": statistics.median(cpu[name]), "wall": statistics.median(wall[name])}
        for name, _ in KINDS
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.results_cost")
    p.add_argument("-n", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=5)
    add_backend_options(p)
    args = p.parse_args(argv)
    os.environ.setdefault("FERROQ_LOAD_PLUGINS", "sqlite,postgres,tenancy")
    for backend, figures in on_backends(
        args, "ferroq-results-cost", lambda url: measure(url, args.n, args.reps)
    ):
        plain, results = figures["plain"], figures["results"]
        print(
            f"{backend}: jobs per CPU s plain {plain['cpu']:,.0f}, results {results['cpu']:,.0f} "
            f"({results['cpu'] / plain['cpu']:.2f}x); jobs per s plain {plain['wall']:,.0f}, "
            f"results {results['wall']:,.0f} ({results['wall'] / plain['wall']:.2f}x)"
        )


if __name__ == "__main__":
    main()
