"""What 1,000 schedules cost a worker (issue 21): drain throughput and idle CPU, against a
worker of the same database with no schedule, interleaved in the same run.

    python -m bench.schedules [-n 20000] [--idle 20] [--reps 3] [--backends sqlite,postgres]

Each measurement is a fresh process on a fresh database. ``none`` has no schedule; ``1000``
has 1,000 schedules spread over the day (``M H * * *``, a few due in any minute, on a queue
the worker does not serve, as the jobs of periodic work usually are). ``drain`` fills the
queue with ``n`` no-op jobs and drains them with one ``WorkerLoop`` (concurrency 100, as the
benchmark's drain): jobs per CPU second of the worker process and per wall second. ``idle``
runs a worker on an empty queue for ``--idle`` seconds: its CPU seconds per minute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, child_env
from bench.observability import _drop, _fresh_url

VARIANTS = {"none": 0, "1000": 1000}


def _add_schedules(rt: object, count: int) -> None:
    from ferroq_core.runtime import Runtime
    from ferroq_core.schedule_records import ScheduleSpec

    assert isinstance(rt, Runtime)
    now = rt.backend.now()
    for i in range(count):
        spec = ScheduleSpec(
            name=f"bench-{i}",
            job_type="bench.noop",
            payload="{}",
            queue="periodic",
            cron=f"{(i * 7) % 60} {i % 24} * * *",
        )
        rt.backend.save_schedule(spec, spec.parsed().next_after(now))


def _settle(rt: Any) -> None:
    """Postgres: vacuum and analyze what the set-up wrote, so that no autovacuum of the new
    rows (1,000 schedules in one variant only) runs beside the measured drain."""
    engine = getattr(rt.backend, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def child(variant: str, mode: str, url: str, amount: float) -> dict[str, float]:
    from bench.systems.ferroq_sys import CHUNK, BenchNoop, runtime_for
    from ferroq_core import WorkerConfig, WorkerLoop, dispatch_many

    rt = runtime_for(url)
    rt.backend.migrate()
    _add_schedules(rt, VARIANTS[variant])
    try:
        if mode == "drain":
            n = int(amount)
            for start in range(0, n, CHUNK):
                batch = [BenchNoop(i=i) for i in range(start, min(n, start + CHUNK))]
                dispatch_many(batch, runtime=rt)
            _settle(rt)
            config = WorkerConfig(queues=("default",), concurrency=100, stop_when_empty=True)
            cpu, wall = time.process_time(), time.perf_counter()
            WorkerLoop(rt, config, handle_signals=False).run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            return {"jobs_per_cpu_s": n / cpu, "jobs_per_s": n / wall}
        # Stopped from a timer rather than by max_time, which would shorten every idle wait.
        loop = WorkerLoop(
            rt, WorkerConfig(queues=("default",), concurrency=10), handle_signals=False
        )
        threading.Timer(amount, loop.request_stop).start()
        cpu, wall = time.process_time(), time.perf_counter()
        loop.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"idle_cpu_s_per_min": cpu / wall * 60}
    finally:
        rt.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.schedules", description=__doc__)
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--idle", type=float, default=20.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--modes", default="drain,idle", help="drain, idle or both (default)")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = p.parse_args(argv)
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ferroq-schedbench-") as tmp:
        for rep in range(args.reps):
            for backend in args.backends.split(","):
                modes = {"drain": float(args.n), "idle": args.idle}
                for mode in args.modes.split(","):
                    amount = modes[mode]
                    names = list(VARIANTS)
                    # The order turns each repetition (a checkpoint, an autovacuum).
                    for variant in names[rep % 2 :] + names[: rep % 2]:
                        url, handle = _fresh_url(backend, args.pg_url, tmp)
                        try:
                            done = subprocess.run(
                                [sys.executable, "-m", "bench.schedules", "--child", variant,
                                 mode, url, str(amount)],
                                cwd=ROOT, env=child_env(), capture_output=True, text=True,
                                timeout=1800, check=False,
                            )  # fmt: skip
                        finally:
                            _drop(handle)
                        if done.returncode != 0:
                            sys.stderr.write(done.stderr[-2000:])
                            return 1
                        row = json.loads(done.stdout.strip().splitlines()[-1])
                        results.setdefault((backend, mode, variant), []).append(row)
                        print(f"[{rep + 1}/{args.reps}] {backend} {mode} {variant}: {row}")
    print("\n| backend | schedules | drain jobs per CPU s | vs none | jobs per s | vs none "
          "| idle CPU s per min |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for backend in args.backends.split(","):

        def med(mode: str, variant: str, key: str, backend: str = backend) -> float:
            rows = results.get((backend, mode, variant), [])
            return statistics.median(r[key] for r in rows) if rows else float("nan")

        for variant in VARIANTS:
            cpu, wall = med("drain", variant, "jobs_per_cpu_s"), med("drain", variant, "jobs_per_s")
            base_cpu = med("drain", "none", "jobs_per_cpu_s")
            base_wall = med("drain", "none", "jobs_per_s")
            idle = med("idle", variant, "idle_cpu_s_per_min")
            print(
                f"| {backend} | {variant} | {cpu:,.0f} | {cpu / base_cpu:.3f}x | {wall:,.0f} "
                f"| {wall / base_wall:.3f}x | {idle:.3f} |"
            )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))))
    else:
        raise SystemExit(main())
