"""The control plane's cost on a worker's drain with no pause or cancel in force, in CPU time
(robust on a shared machine) and wall time, against another source tree in the same run.

    python -m bench.controls --tree DIR [-n 20000] [--reps 5] [--backends sqlite,postgres]

Each measurement is a fresh process on a fresh database, run from this tree or from ``DIR``
(a checkout of the tree before, e.g. ``git worktree add ../base <commit>``), in turns: it fills
the queue with ``n`` no-op jobs, then drains them with one ``WorkerLoop`` (concurrency 100, as
the benchmark's drain). The CPU counted is the worker process's (``time.process_time``) and,
on Postgres, the server processes serving it (their ``/proc`` times, found by the
``application_name`` the measurement connects with), since the claim's extra work runs there.
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
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, child_env

TICKS = os.sysconf("SC_CLK_TCK")


def _server_cpu(app: str, pg: str) -> float:
    """CPU seconds so far of the server processes whose application_name is ``app``."""
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
        )]  # fmt: skip
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def child(url: str, n: int, pg: str) -> dict[str, float]:
    from bench.systems.ferroq_sys import CHUNK, BenchNoop, runtime_for
    from ferroq_core import WorkerConfig, WorkerLoop, dispatch_many

    app = f"ferroq-ctlbench-{uuid.uuid4().hex[:8]}"
    if url.startswith("postgresql"):
        url = f"{url}?application_name={app}"
    rt = runtime_for(url)
    rt.backend.migrate()
    for start in range(0, n, CHUNK):
        dispatch_many([BenchNoop(i=i) for i in range(start, min(n, start + CHUNK))], runtime=rt)
    config = WorkerConfig(queues=("default",), concurrency=100, stop_when_empty=True)
    remote = url.startswith("postgresql")
    server = _server_cpu(app, pg) if remote else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    WorkerLoop(rt, config, handle_signals=False).run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server = (_server_cpu(app, pg) - server) if remote else 0.0
    rt.close()
    return {"jobs_per_cpu_s": n / (cpu + server), "jobs_per_s": n / wall}


def _fresh_url(backend: str, pg: str, tmp: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{tmp}/{uuid.uuid4().hex}.db", None
    import psycopg

    name = f"ferroq_ctlbench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')  # generated name
    return f"{pg.rpartition('/')[0]}/{name}", (admin, name)


def _drop(handle: Any) -> None:
    if handle is not None:
        admin, name = handle
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _env(tree: str | None) -> dict[str, str]:
    env = child_env()
    if tree is not None:
        paths = [str(p) for p in sorted(Path(tree).glob("ferroq_*/src"))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env["PYTHONPATH"]])
    else:
        paths = [str(p) for p in sorted(ROOT.glob("ferroq_*/src"))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env["PYTHONPATH"]])
    return env


def measure(module: str, backend: str, tree: str | None, pg: str, tmp: str, *args: str) -> Any:
    """One measurement: ``python -m module --child URL *args PG`` on a fresh database, run
    from ``tree`` (None: this one); its last line of output, as JSON. Exits on a failure."""
    url, handle = _fresh_url(backend, pg, tmp)
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, "--child", url, *args, pg],
            cwd=ROOT, env=_env(tree), capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
    finally:
        _drop(handle)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_cells(by: dict[str, list[dict[str, float]]]) -> str:
    """Table cells: jobs per CPU second now, before and their ratio, then per wall second."""
    cpu = {k: statistics.median(r["jobs_per_cpu_s"] for r in v) for k, v in by.items()}
    wall = {k: statistics.median(r["jobs_per_s"] for r in v) for k, v in by.items()}
    return (
        f"{cpu['now']:,.0f} | {cpu['before']:,.0f} | {cpu['now'] / cpu['before']:.2f}x "
        f"| {wall['now']:,.0f} | {wall['before']:,.0f} | {wall['now'] / wall['before']:.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.controls", description=__doc__)
    p.add_argument("--tree", required=True, help="the tree to compare with (a checkout)")
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = p.parse_args(argv)
    trees: dict[str, str | None] = {"now": None, "before": args.tree}
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="ferroq-ctlbench-") as tmp:
        for rep in range(args.reps):
            for backend in args.backends.split(","):
                names = list(trees) if rep % 2 == 0 else list(reversed(trees))
                for label in names:
                    tree = trees[label]
                    row = measure("bench.controls", backend, tree, args.pg_url, tmp, str(args.n))
                    results.setdefault(backend, {}).setdefault(label, []).append(row)
                    print(f"[{rep + 1}/{args.reps}] {backend} {label}: {row}", flush=True)
    print("\n| backend | jobs per CPU s, now | before | ratio | jobs per s, now | before | ratio |")
    print("|---|---|---|---|---|---|---|")
    for backend, by in results.items():
        print(f"| {backend} | {ratio_cells(by)} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    else:
        raise SystemExit(main())
