"""Run the reliability scenarios and print the results table.

    python -m reliability.run --quick                      # the CI form, both backends
    python -m reliability.run                              # the full run (minutes)
    python -m reliability.run --backend sqlite --scenario kill9 --scenario zombie

Postgres runs create a database of their own on ``--pg-url`` (default
``$FERROQ_TEST_POSTGRES_URL``) and drop it afterwards; without a URL a throwaway cluster is
started with initdb/pg_ctl for the run. The database-fault scenario always uses a throwaway
cluster of its own. Exit code 1 when any scenario found a broken guarantee.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from reliability.cluster import TempCluster
from reliability.harness import ScenarioResult
from reliability.scenarios import POSTGRES_ONLY, SCENARIOS, load
from reliability.scenarios.base import Context

__all__ = ["main", "markdown_table", "run_scenario"]

#: Columns of the results table, then every other figure in the "details" column.
COLUMNS = (
    "jobs",
    "lost",
    "dup_explained",
    "dup_unexplained",
    "dup_completions",
    "zombie_rejected",
    "recovery_p50",
    "recovery_p95",
    "recovery_max",
)


def run_scenario(ctx: Context, name: str) -> ScenarioResult:
    """Run one scenario; an exception is reported as a failed result, never raised."""
    started = time.monotonic()
    try:
        return load(name)(ctx)
    except Exception as exc:
        problem = f"crashed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        return ScenarioResult(name, ctx.backend, {}, [problem], time.monotonic() - started)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def markdown_table(results: list[ScenarioResult]) -> str:
    head = ["scenario", "backend", *COLUMNS, "details", "result", "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        details = ", ".join(f"{k}={_cell(v)}" for k, v in r.figures.items() if k not in COLUMNS)
        row = [r.scenario, r.backend, *(_cell(r.figures.get(c)) for c in COLUMNS), details]
        row += ["pass" if r.passed else "**FAIL**", f"{r.seconds:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small CI form")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="repeatable; default: all"
    )
    parser.add_argument("--pg-url", default=os.environ.get("FERROQ_TEST_POSTGRES_URL"))
    parser.add_argument("--workdir", type=Path, help="keep databases, ledgers and logs here")
    parser.add_argument("--json", type=Path, help="also write the results as JSON lines here")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    scenarios = args.scenario or list(SCENARIOS)
    results: list[ScenarioResult] = []
    with ExitStack() as stack:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ferroq-reliability-"))
        if args.workdir is None:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        pg_url = args.pg_url
        if "postgres" in backends and not pg_url:
            pg_url = stack.enter_context(TempCluster()).url
        for backend in backends:
            for name in scenarios:
                if backend != "postgres" and name in POSTGRES_ONLY:
                    continue
                ctx = Context(backend, args.quick, workdir / backend, pg_url)
                result = run_scenario(ctx, name)
                results.append(result)
                verdict = "pass" if result.passed else "FAIL"
                print(f"{name} on {backend}: {verdict} in {result.seconds:.0f}s", file=sys.stderr)
                for problem in result.problems:
                    print(f"  - {problem}", file=sys.stderr)
                if args.json:
                    with args.json.open("a") as out:
                        record = {
                            "scenario": name,
                            "backend": backend,
                            "quick": args.quick,
                            "figures": result.figures,
                            "problems": result.problems,
                            "seconds": result.seconds,
                        }
                        out.write(json.dumps(record) + "\n")
    print(markdown_table(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
