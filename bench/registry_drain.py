"""The worker registry's cost to a worker's drain, in the worker's CPU time (robust on a
shared machine) and wall time, against another source tree, interleaved.

    python -m bench.registry_drain --tree before=DIR [-n 20000] [--reps 5]
        [--heartbeat 0.2] [--backends sqlite,postgres]

Each measurement is a fresh process: it fills a queue of its own with ``n`` no-op jobs, then
drains it with one ``WorkerLoop`` (concurrency 100, ``stop_when_empty``) and reports the
process's CPU seconds (every thread) and wall seconds from the worker's start to its return:
registration, heartbeats, reaper passes and deregistration included. ``--heartbeat S`` beats
and reaps every S seconds (the default 300 s visibility timeout beats every 100 s: never
within a drain), so the registry's per-beat work shows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, child_env

CHILD = """
import json, sys, time, uuid
from bench.systems.ferroq_sys import BenchNoop, runtime_for
from ferroq_core import WorkerConfig, WorkerLoop, dispatch_many
url, n, beat = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rt = runtime_for(url)
rt.backend.migrate()
queue = "regbench-" + uuid.uuid4().hex[:8]
for start in range(0, n, 5000):
    dispatch_many([BenchNoop(i=i).on_queue(queue) for i in range(start, min(n, start + 5000))],
                  runtime=rt)
extra = {} if beat <= 0 else {"heartbeat_interval": beat, "reaper_interval": beat}
config = WorkerConfig(queues=(queue,), concurrency=100, stop_when_empty=True, **extra)
cpu, wall = time.process_time(), time.perf_counter()
WorkerLoop(rt, config, handle_signals=False).run()
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
left = rt.backend.get_stats().total
rt.close()
print(json.dumps({"cpu": cpu, "wall": wall, "left": left}))
"""


def _env(tree: str | None) -> dict[str, str]:
    env = child_env()
    paths = [str(p) for p in sorted(Path(tree or ROOT).glob("ferroq_*/src"))]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    return env


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.registry_drain")
    p.add_argument("--tree", required=True, metavar="LABEL=DIR")
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--heartbeat", type=float, default=0.0)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = p.parse_args(argv)
    label, tree = args.tree.split("=", 1)
    trees = {"now": None, label: tree}
    found: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ferroq-regbench-") as tmp:
        for rep in range(args.reps):
            for backend in args.backends.split(","):
                order = list(trees) if rep % 2 == 0 else list(reversed(trees))
                for name in order:
                    url = (
                        f"sqlite:///{tmp}/{uuid.uuid4().hex[:8]}.db"
                        if backend == "sqlite"
                        else args.pg_url
                    )
                    done = subprocess.run(
                        [sys.executable, "-c", CHILD, url, str(args.n), str(args.heartbeat)],
                        cwd=ROOT,
                        env=_env(trees[name]),
                        capture_output=True,
                        text=True,
                        timeout=600,
                        check=True,
                    )
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    assert result["left"] == 0, result
                    found.setdefault((backend, name), []).append(result)
                    sys.stderr.write(f"[{rep + 1}] {backend} {name}: {result}\n")
                    time.sleep(0.5)
    print(f"| backend | metric | now | {label} | ratio (jobs/s, now vs {label}) |")
    print("|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for metric in ("cpu", "wall"):
            now = statistics.median(r[metric] for r in found[(backend, "now")])
            then = statistics.median(r[metric] for r in found[(backend, label)])
            print(
                f"| {backend} | jobs per {metric} s | {args.n / now:,.0f} | {args.n / then:,.0f} "
                f"| {then / now:.2f}x |"
            )


if __name__ == "__main__":
    main()
