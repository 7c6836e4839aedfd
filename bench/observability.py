"""The observability plugins' cost on a worker's drain, in CPU time (robust on a shared
machine) and in wall time, interleaved with the plain worker in the same run.

    python -m bench.observability [-n 50000] [--reps 5] [--backends sqlite,postgres]

Each measurement is a fresh process: it fills the queue with ``n`` no-op jobs, then drains
them with one ``WorkerLoop`` (concurrency 100, as the benchmark's drain) inside the plugins'
worker scopes, as ``ferroq worker`` runs them: ``plain`` has no observability plugin,
``prometheus`` has ferroq_prometheus registered and its metrics served, scraped every second
by another process, ``otel`` has ferroq_otel registered and no OpenTelemetry SDK (the order
turns each repetition). It reports
jobs per CPU second of the worker process (``time.process_time``; the scrapes it serves are
counted) and per wall second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import import_module
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, child_env

VARIANTS = {"plain": None, "prometheus": "ferroq_prometheus.plugin", "otel": "ferroq_otel.plugin"}
SCRAPER = """
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
while True:
    time.sleep(1.0)
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except OSError:
        pass
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(variant: str, url: str, n: int) -> dict[str, float]:
    from bench.systems.ferroq_sys import CHUNK, BenchNoop, runtime_for
    from ferroq_core import WorkerConfig, WorkerLoop, dispatch_many

    rt = runtime_for(url)
    rt.backend.migrate()
    for start in range(0, n, CHUNK):
        dispatch_many([BenchNoop(i=i) for i in range(start, min(n, start + CHUNK))], runtime=rt)
    module = VARIANTS[variant]
    port = _port() if variant == "prometheus" else None
    scraper = None
    if module is not None:
        rt.pm.register(import_module(module), name=variant)
    options = {"metrics_port": port, "metrics_host": "127.0.0.1", "metrics_cache": 1.0}
    config = WorkerConfig(queues=("default",), concurrency=100, stop_when_empty=True)
    try:
        with contextlib.ExitStack() as scopes:
            for scope in rt.pm.hook.ferroq_worker_scope(runtime=rt, options=options, role="worker"):
                if scope is not None:
                    scopes.enter_context(scope)
            if port is not None:
                scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(port)])
            cpu, wall = time.process_time(), time.perf_counter()
            WorkerLoop(rt, config, handle_signals=False).run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        if scraper is not None:
            scraper.kill()
            scraper.wait()
        rt.close()
    return {"jobs_per_cpu_s": n / cpu, "jobs_per_s": n / wall}


def _fresh_url(backend: str, pg: str, tmp: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{tmp}/{uuid.uuid4().hex}.db", None
    import psycopg

    name = f"ferroq_obsbench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')  # generated name
    head = pg.rpartition("/")[0]
    return f"{head}/{name}", (admin, name)


def _drop(handle: Any) -> None:
    if handle is not None:
        admin, name = handle
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__)
    p.add_argument("-n", type=int, default=50_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = p.parse_args(argv)
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="ferroq-obsbench-") as tmp:
        for rep in range(args.reps):
            for backend in args.backends.split(","):
                # The order turns each repetition: whoever runs first does not always pay for
                # what the one before left (a checkpoint, an autovacuum).
                names = list(VARIANTS)
                for variant in names[rep % 3 :] + names[: rep % 3]:
                    url, handle = _fresh_url(backend, args.pg_url, tmp)
                    try:
                        done = subprocess.run(
                            [sys.executable, "-m", "bench.observability", "--child", variant,
                             url, str(args.n)],
                            cwd=ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=1800, check=False,
                        )  # fmt: skip
                    finally:
                        _drop(handle)
                    if done.returncode != 0:
                        sys.stderr.write(done.stderr[-2000:])
                        return 1
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    results.setdefault(backend, {}).setdefault(variant, []).append(row)
                    print(f"[{rep + 1}/{args.reps}] {backend} {variant}: {row}", flush=True)
    print("\n| backend | plugin | jobs per CPU s | vs plain | jobs per s | vs plain |")
    print("|---|---|---|---|---|---|")
    for backend, by_variant in results.items():
        base = {
            k: statistics.median(r[k] for r in by_variant["plain"]) for k in by_variant["plain"][0]
        }
        for variant, rows in by_variant.items():
            cpu = statistics.median(r["jobs_per_cpu_s"] for r in rows)
            wall = statistics.median(r["jobs_per_s"] for r in rows)
            print(
                f"| {backend} | {variant} | {cpu:,.0f} | {cpu / base['jobs_per_cpu_s']:.2f}x "
                f"| {wall:,.0f} | {wall / base['jobs_per_s']:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        raise SystemExit(main())
