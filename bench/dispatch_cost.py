"""Dispatch's cost in CPU time (robust on a shared machine) and wall time, against another
source tree in the same run: ``dispatch_many`` of 20,000 no-op jobs in the benchmark's chunks,
and 2,000 single ``dispatch`` calls.

    python -m bench.dispatch_cost --tree DIR [--reps 5] [--backends sqlite,postgres]

Each measurement is a fresh process on a fresh database (as :mod:`bench.controls`), this tree
and ``DIR`` in turns; the CPU counted is the dispatching process's and, on Postgres, the server
processes serving it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.controls import _server_cpu, measure, ratio_cells

#: (way of dispatching, jobs).
MODES = (("bulk", 20_000), ("single", 2_000))


def child(url: str, n: int, mode: str, pg: str) -> dict[str, float]:
    from bench.systems.ferroq_sys import CHUNK, BenchNoop, runtime_for
    from ferroq_core import dispatch, dispatch_many

    app = f"ferroq-dispatchbench-{uuid.uuid4().hex[:8]}"
    remote = url.startswith("postgresql")
    if remote:
        url = f"{url}?application_name={app}"
    rt = runtime_for(url)
    rt.backend.migrate()
    dispatch_many([BenchNoop(i=-1)], runtime=rt)  # the connections, the prepared statements
    server = _server_cpu(app, pg) if remote else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    if mode == "bulk":
        for start in range(0, n, CHUNK):
            dispatch_many([BenchNoop(i=i) for i in range(start, min(n, start + CHUNK))], runtime=rt)
    else:
        for i in range(n):
            dispatch(BenchNoop(i=i), runtime=rt)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server = (_server_cpu(app, pg) - server) if remote else 0.0
    rt.close()
    return {"jobs_per_cpu_s": n / (cpu + server), "jobs_per_s": n / wall}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dispatch_cost", description=__doc__)
    p.add_argument("--tree", required=True, help="the tree to compare with (a checkout)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = p.parse_args(argv)
    trees: dict[str, str | None] = {"now": None, "before": args.tree}
    results: dict[tuple[str, str], dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="ferroq-dispatchbench-") as tmp:
        for rep in range(args.reps):
            for backend in args.backends.split(","):
                for mode, n in MODES:
                    names = list(trees) if rep % 2 == 0 else list(reversed(trees))
                    for label in names:
                        row = measure(
                            "bench.dispatch_cost", backend, trees[label], args.pg_url, tmp,
                            str(n), mode,
                        )  # fmt: skip
                        results.setdefault((backend, mode), {}).setdefault(label, []).append(row)
                        step = f"[{rep + 1}/{args.reps}] {backend} {mode} {label}"
                        print(f"{step}: {row}", flush=True)
    print(
        "\n| backend | dispatch | jobs per CPU s, now | before | ratio "
        "| jobs per s, now | before | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (backend, mode), by in results.items():
        print(f"| {backend} | {mode} | {ratio_cells(by)} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])))
    else:
        raise SystemExit(main())
