"""The benchmark driver: every workload, every system, interleaved repetitions.

    python -m bench.run                  # full run (several minutes)
    python -m bench.run --quick          # small N: proves the benchmarks still work
    python -m bench.run --workloads sustained,backlog_10k,backlog_1m --systems ferroq

For each repetition, each workload runs once per system, one after the other (interleaved,
so a noisy neighbour hurts every system alike), each in a fresh child process on a clean
table. Prints a table of medians and ratios and appends one JSON line to
``bench/results/results.jsonl``. Postgres gets a fresh database per run on the server named
by ``--pg-url`` (dropped at the end); SQLite gets a fresh file per measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py` works too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, child_env, median, parse_result
from bench.systems import SYSTEMS, base_name
from bench.targets import check

RESULTS = ROOT / "bench" / "results" / "results.jsonl"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

#: workload name -> (child workload, options, metrics shown).
WORKLOADS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "enqueue_bulk": ("enqueue_bulk", {}, ("jobs_per_s",)),
    "enqueue_single": ("enqueue_single", {}, ("jobs_per_s",)),
    "drain_1p": ("drain", {"procs": 1}, ("jobs_per_s",)),
    "drain_2p": ("drain", {"procs": 2}, ("jobs_per_s", "lock_errors")),
    "latency_idle": ("latency", {"rate": None}, ("p50_ms", "p99_ms")),
    "latency_load": ("latency", {"rate": 200.0}, ("p50_ms", "p99_ms")),
    "sustained": ("sustained", {}, ("last_over_first", "rss_growth")),
    "backlog_10k": ("backlog", {"backlog": 10_000}, ("jobs_per_s",)),
    "backlog_1m": ("backlog", {"backlog": 1_000_000}, ("jobs_per_s",)),
}
DEFAULT_WORKLOADS = [
    "enqueue_bulk",
    "enqueue_single",
    "drain_1p",
    "drain_2p",
    "latency_idle",
    "latency_load",
]
QUICK_WORKLOADS = ["enqueue_bulk", "enqueue_single", "drain_1p", "latency_idle"]
LONG_ONLY = ("sustained", "backlog_10k", "backlog_1m")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small N, 1 repetition (CI)")
    p.add_argument("--backends", default="sqlite,postgres")
    # The observed variants (ferroq+prometheus, ferroq+otel) run when named.
    p.add_argument("--systems", default=",".join(s for s in SYSTEMS if "+" not in s))
    p.add_argument("--workloads", default=None, help=f"any of {', '.join(WORKLOADS)}")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    p.add_argument("-n", type=int, default=None, help="jobs per drain/bulk (default 50,000)")
    p.add_argument("--batch", type=int, default=100, help="claim batch size for every system")
    p.add_argument("--seconds", type=float, default=60.0, help="sustained drain length")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_BENCH_POSTGRES_URL")
        or os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or DEFAULT_PG,
    )
    p.add_argument("--results", type=Path, default=RESULTS, help="JSON lines file to append to")
    p.add_argument("--note", default="", help="free text stored with the results line")
    p.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also run ferroq from another source tree (a copy of the repo's ferroq_*/src"
        " folders), as system ferroq@LABEL: before/after comparisons in one interleaved run",
    )
    return p.parse_args(argv)


#: Drains are capped per system where the full N would take many minutes (rates compare).
DRAIN_CAP = {"procrastinate": 3_000}


def options_for(args: argparse.Namespace, workload: str, system: str = "") -> dict[str, Any]:
    n = args.n or (500 if args.quick else 50_000)
    base = {
        "n": n,
        "n_single": max(50, n // 10),
        "batch": args.batch,
        "probes": 5 if args.quick else 200,
        "seconds": 2.0 if args.quick else 10.0,
    }
    child, extra, _ = WORKLOADS[workload]
    opts = {**base, **extra}
    if workload == "sustained":
        # The backlog must outlast the run: 80,000 jobs per second of it, more than one
        # worker drains here (2,000,000 ran dry after 25 s on SQLite once the worker passed
        # 65,000 jobs/s, and Postgres's last windows ran near an empty table).
        default_n = int(80_000 * args.seconds)
        opts.update(
            seconds=args.seconds, window=5.0 if not args.quick else 1.0, n=args.n or default_n
        )
    if child == "drain" and system in DRAIN_CAP:
        opts["n"] = min(opts["n"], DRAIN_CAP[system])
    if child == "backlog":
        opts["n"] = min(10_000, opts["backlog"])
    return opts


class PgDatabase:
    """A fresh database on the server for this run, dropped at the end."""

    def __init__(self, server_url: str) -> None:
        import psycopg

        self.name = f"ferroq_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        base = server_url.replace("postgresql+psycopg://", "postgresql://")
        self._admin = psycopg.connect(base, autocommit=True)
        self._admin.execute(f'CREATE DATABASE "{self.name}"')  # generated name, not input
        head, _sep, _db = base.rpartition("/")
        self.url = f"{head}/{self.name}"

    def version(self) -> str:
        return str(self._admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def drop(self) -> None:
        self._admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.close()


def start_pgbouncer(stack: contextlib.ExitStack, server_url: str, tmp: Path) -> None:
    """Start PgBouncer in front of the server for the ``ferroq-pgbouncer`` system (its port
    goes to the children in the environment); without the program, that system reports
    "not installed"."""
    from bench.systems.pgbouncer_sys import PORT_ENV
    from reliability.pgbouncer import find_pgbouncer, running_pgbouncer

    program = find_pgbouncer()
    if program is None:
        return
    workdir = tmp / "pgbouncer"
    workdir.mkdir()
    port = stack.enter_context(running_pgbouncer(program, workdir, server_url))
    os.environ[PORT_ENV] = str(port)
    stack.callback(os.environ.pop, PORT_ENV, None)


def pgbouncer_ratios(summary: dict[str, Any]) -> list[str]:
    """ferroq through PgBouncer against ferroq direct, per workload and metric (same run)."""
    lines = []
    for workload, cells in summary.get("postgres", {}).items():
        direct, pooled = cells.get("ferroq", {}), cells.get("ferroq-pgbouncer", {})
        for metric in WORKLOADS[workload][2]:
            a, b = direct.get(metric), pooled.get(metric)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
                lines.append(
                    f"- {workload} {metric}: through PgBouncer {_fmt(b)}, direct {_fmt(a)} "
                    f"({b / a:.2f}x of direct)"
                )
    return lines


def tree_env(system: str, trees: dict[str, str]) -> dict[str, str]:
    env = child_env()
    if "@" in system:
        root = Path(trees[system.split("@", 1)[1]])
        # Every distribution of that tree, plugins included: a plugin of this tree may
        # implement hooks the other tree's core does not have.
        paths = [str(p) for p in sorted(root.glob("ferroq_*/src"))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env["PYTHONPATH"]])
    return env


def run_child(
    system: str,
    backend: str,
    url: str,
    workload: str,
    opts: dict[str, Any],
    trees: dict[str, str] | None = None,
) -> dict[str, Any]:
    child = WORKLOADS[workload][0]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child", system, backend, url, child, json.dumps(opts)],
        cwd=ROOT,
        env=tree_env(system, trees or {}),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    result = parse_result(proc.stdout) or {
        "status": "error",
        "error": f"child exited {proc.returncode}: {proc.stderr[-800:]}",
    }
    if result.get("status") == "error":
        sys.stderr.write(f"  ! {system}/{backend}/{workload}: {result.get('error')}\n")
    return {**result, "system": system, "backend": backend, "workload": workload}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """backend -> workload -> system -> {metric: median} (or {"status": ...})."""
    out: dict[str, Any] = {}
    for row in rows:
        cell = out.setdefault(row["backend"], {}).setdefault(row["workload"], {})
        cell.setdefault(row["system"], []).append(row)
    for workloads in out.values():
        for workload, systems in workloads.items():
            for system, runs in list(systems.items()):
                ok = [r for r in runs if r.get("status") == "ok"]
                if not ok:
                    systems[system] = {
                        "status": runs[0].get("status", "error"),
                        "error": runs[0].get("error", ""),
                    }
                    continue
                metrics = {
                    m: median([float(r[m]) for r in ok if r.get(m) is not None])
                    for m in WORKLOADS[workload][2]
                }
                if workload == "sustained":
                    metrics["windows"] = ok[0].get("windows", [])
                systems[system] = {**metrics, "reps": len(ok)}
    return out


def _fmt(value: Any) -> str:
    if not isinstance(value, (int, float)) or value != value:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def table(summary: dict[str, Any], systems: list[str]) -> str:
    """Markdown: medians per system, then ferroq's advantage (x, >1 is better for ferroq)."""
    others = [s for s in systems if s != "ferroq"]
    head = ["backend", "workload", "metric", *systems, *[f"ferroq vs {o}" for o in others]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for backend, workloads in summary.items():
        for workload, cells in workloads.items():
            for metric in WORKLOADS[workload][2]:
                vals = []
                for s in systems:
                    c = cells.get(s)
                    if c is None or SYSTEMS[base_name(s)][1].count(backend) == 0:
                        vals.append("n/a" if c is None else "-")
                    elif "status" in c:
                        vals.append(c["status"])
                    else:
                        vals.append(_fmt(c.get(metric)))
                ratios = []
                f = cells.get("ferroq", {}).get(metric)
                for o in others:
                    v = cells.get(o, {}).get(metric)
                    if (
                        not isinstance(f, (int, float))
                        or not isinstance(v, (int, float))
                        or not f
                        or not v
                        or metric in ("lock_errors", "rss_growth", "last_over_first")
                    ):
                        ratios.append("")
                    else:
                        ratios.append(f"{(v / f if metric.endswith('_ms') else f / v):.2f}x")
                lines.append("| " + " | ".join([backend, workload, metric, *vals, *ratios]) + " |")
    return "\n".join(lines)


def machine(pg_version: str | None) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg_version,
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    workloads = (
        args.workloads.split(",")
        if args.workloads
        else QUICK_WORKLOADS
        if args.quick
        else DEFAULT_WORKLOADS
    )
    trees = dict(t.split("=", 1) for t in args.tree)
    systems = [s for s in args.systems.split(",") if s] + [f"ferroq@{label}" for label in trees]
    backends = [b for b in args.backends.split(",") if b]
    for name in workloads:
        if name not in WORKLOADS:
            raise SystemExit(f"unknown workload {name!r}; pick from {', '.join(WORKLOADS)}")
    for name in systems:
        if base_name(name) not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; pick from {', '.join(SYSTEMS)}")

    pg: PgDatabase | None = PgDatabase(args.pg_url) if "postgres" in backends else None
    tmp = Path(tempfile.mkdtemp(prefix="ferroq-bench-"))
    rows: list[dict[str, Any]] = []
    started = time.time()
    stack = contextlib.ExitStack()
    try:
        if pg and "ferroq-pgbouncer" in systems:
            start_pgbouncer(stack, args.pg_url, tmp)
        for rep in range(reps):
            for workload in workloads:
                for backend in backends:
                    for system in systems:
                        if backend not in SYSTEMS[base_name(system)][1]:
                            continue
                        if workload in LONG_ONLY and base_name(system) != "ferroq":
                            continue
                        url = (
                            pg.url
                            if backend == "postgres" and pg
                            else f"sqlite:///{tmp / f'{system}-{workload}-{rep}.db'}"
                        )
                        t0 = time.perf_counter()
                        row = run_child(
                            system,
                            backend,
                            url,
                            workload,
                            options_for(args, workload, system),
                            trees,
                        )
                        row["rep"] = rep
                        rows.append(row)
                        shown = {k: row[k] for k in WORKLOADS[workload][2] if k in row}
                        print(
                            f"[{rep + 1}/{reps}] {backend:8} {workload:15} {system:13} "
                            f"{row.get('status')} {shown} ({time.perf_counter() - t0:.1f}s)",
                            flush=True,
                        )
                        for f in tmp.glob(f"{system}-{workload}-{rep}.db*"):
                            f.unlink()
    finally:
        stack.close()
        pg_version = pg.version() if pg else None
        if pg:
            pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(rows)
    targets = check(summary)
    print()
    print(table(summary, systems))
    print()
    for t in targets:
        mark = {True: " (met)", False: " (NOT MET)", None: ""}[t["met"]]
        print(f"- {t['target']}: {t['measured']}{mark}")
    ratios = pgbouncer_ratios(summary)
    if ratios:
        print("\nferroq through PgBouncer (transaction mode, listen_url direct) vs direct:")
        print("\n".join(ratios))
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "commit": git_commit(),
        "quick": args.quick,
        "reps": reps,
        "note": args.note,
        "machine": machine(pg_version),
        "options": {w: options_for(args, w) for w in workloads},
        "summary": summary,
        "targets": targets,
        "runs": rows,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    print(f"\nappended to {args.results}")
    return 1 if any(r.get("status") == "error" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
