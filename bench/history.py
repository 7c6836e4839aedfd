"""The job context's and the history's cost on a worker's drain, in CPU time (robust on a
shared machine) and wall time, against another source tree (the tree before the change).

    python -m bench.history --before ../base [-n 20000] [--reps 6] [--backends sqlite,postgres]

Each measurement is a fresh process and database: it fills the queue with ``n`` no-op jobs,
then drains them with one ``WorkerLoop`` (concurrency 100, as the benchmark's drain).
``before`` runs the core and backends of ``--before`` (a checkout of the tree before the
change), ``after`` this tree with history off (the default), ``history`` this tree with
``keep_history`` on. The order turns each repetition. It reports jobs per CPU second of the
worker process (``time.process_time``) and per wall second, medians, and the ratios to
``before``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, child_env
from bench.observability import _drop, _fresh_url

VARIANTS = ("before", "after", "history")
PACKAGES = ("ferroq_core", "ferroq_sqlite", "ferroq_postgres", "ferroq_tenancy")


def child(url: str, n: int, history: bool) -> dict[str, float]:
    import attrs

    from bench.systems.ferroq_sys import CHUNK, BenchNoop, runtime_for
    from ferroq_core import WorkerConfig, WorkerLoop, dispatch_many

    rt = runtime_for(url)
    rt.backend.migrate()
    for start in range(0, n, CHUNK):
        dispatch_many([BenchNoop(i=i) for i in range(start, min(n, start + CHUNK))], runtime=rt)
    if history:
        rt = attrs.evolve(rt, config=attrs.evolve(rt.config, keep_history=True))
    config = WorkerConfig(queues=("default",), concurrency=100, stop_when_empty=True)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        WorkerLoop(rt, config, handle_signals=False).run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        rt.close()
    return {"jobs_per_cpu_s": n / cpu, "jobs_per_s": n / wall}


def _env(variant: str, before: Path) -> dict[str, str]:
    env = child_env()
    env["FERROQ_LOG_LEVEL"] = "WARNING"
    if variant == "before":
        paths = [str(before / p / "src") for p in PACKAGES]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env["PYTHONPATH"]])
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    p.add_argument("--before", type=Path, required=True, help="checkout of the tree before")
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = p.parse_args(argv)
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="ferroq-histbench-") as tmp:
        for rep in range(args.reps):
            for backend in args.backends.split(","):
                names = list(VARIANTS)
                for variant in names[rep % 3 :] + names[: rep % 3]:
                    url, handle = _fresh_url(backend, args.pg_url, tmp)
                    try:
                        done = subprocess.run(
                            [sys.executable, "-m", "bench.history", "--child", url,
                             str(args.n), "1" if variant == "history" else "0"],
                            cwd=ROOT, env=_env(variant, args.before), capture_output=True,
                            text=True, timeout=1800, check=False,
                        )  # fmt: skip
                    finally:
                        _drop(handle)
                    if done.returncode != 0:
                        sys.stderr.write(done.stderr[-2000:])
                        return 1
                    got = _parse(done.stdout)
                    results.setdefault(backend, {}).setdefault(variant, []).append(got)
                    print(
                        f"[{rep + 1}/{args.reps}] {backend:8} {variant:8} "
                        f"{got['jobs_per_cpu_s']:9,.0f} jobs/CPU s {got['jobs_per_s']:9,.0f} "
                        "jobs/s",
                        flush=True,
                    )
    print("\n| backend | variant | jobs per CPU s | vs before | jobs per s | vs before |")
    print("|---|---|---|---|---|---|")
    for backend, by_variant in results.items():
        base = _medians(by_variant["before"])
        for variant in VARIANTS:
            cpu, wall = _medians(by_variant[variant])
            print(
                f"| {backend} | {variant} | {cpu:,.0f} | {cpu / base[0]:.3f}x | {wall:,.0f} | "
                f"{wall / base[1]:.3f}x |"
            )
    return 0


def _medians(runs: list[dict[str, float]]) -> tuple[float, float]:
    return (
        statistics.median(r["jobs_per_cpu_s"] for r in runs),
        statistics.median(r["jobs_per_s"] for r in runs),
    )


def _parse(out: str) -> dict[str, float]:
    cpu, wall = out.split()[-2:]
    return {"jobs_per_cpu_s": float(cpu), "jobs_per_s": float(wall)}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _url, _n, _history = sys.argv[2:5]
        got: Any = child(_url, int(_n), _history == "1")
        print(got["jobs_per_cpu_s"], got["jobs_per_s"])
        sys.exit(0)
    sys.exit(main())
