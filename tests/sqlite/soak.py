"""Sustained load on one SQLite file: two worker processes and a dispatching "web" process.

Run from the repo root::

    python -m tests.sqlite.soak              # 20 s (or FERROQ_SOAK_SECONDS)
    python -m tests.sqlite.soak --quick      # 5 s
    python -m tests.sqlite.soak --seconds 60

The dispatcher enqueues for the whole run from several threads (single, bulk, delayed,
idempotent, transactional with commit and rollback) while a reader thread polls stats like a
dashboard; each worker claims up to its free slots, runs no-op jobs on 4 threads, acknowledges
in batches, heartbeats and reaps. The run passes when no operation raised anything (no
"database is locked", no BackendBusy) and every committed job was completed exactly once.
``tests/sqlite/test_soak.py`` runs it for ``FERROQ_SOAK_SECONDS`` (default 5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from tests.sqlite.soak_roles import dispatcher, worker

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2


@attrs.frozen
class SoakResult:
    """What a soak run saw."""

    seconds: float
    enqueued: int
    duplicates: int
    rolled_back: int
    completed: int
    completed_twice: tuple[int, ...]
    never_completed: tuple[int, ...]
    left_in_table: int
    errors: tuple[str, ...]
    busy_retried: int
    per_worker: tuple[int, ...]

    @property
    def lock_errors(self) -> int:
        return sum(1 for e in self.errors if "locked" in e.lower() or "BackendBusy" in e)

    @property
    def ok(self) -> bool:
        return not (
            self.errors or self.completed_twice or self.never_completed or self.left_in_table
        )

    def summary(self) -> str:
        return (
            f"soak {self.seconds:g}s: {self.enqueued} jobs enqueued "
            f"({self.enqueued / self.seconds:.0f}/s; {self.duplicates} idempotent duplicates, "
            f"{self.rolled_back} rolled back), {self.completed} completed "
            f"(per worker {list(self.per_worker)}), lock errors {self.lock_errors}, "
            f"other errors {len(self.errors) - self.lock_errors}, completed twice "
            f"{len(self.completed_twice)}, never completed {len(self.never_completed)}, "
            f"left in table {self.left_in_table}, busy retries absorbed {self.busy_retried}"
        )


def _spawn(role: str, url: str, workdir: Path, index: int, seconds: float) -> subprocess.Popen[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    cmd = [sys.executable, "-m", "tests.sqlite.soak", "--role", role, "--db-url", url]
    cmd += ["--workdir", str(workdir), "--index", str(index), "--seconds", str(seconds)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, text=True)


def run(seconds: float, workdir: Path) -> SoakResult:
    """Run the soak for ``seconds`` on a fresh database in ``workdir``."""
    from ferroq_sqlite.backend import SqliteBackend

    url = f"sqlite:///{workdir / 'soak.db'}"
    backend = SqliteBackend.from_url(url)
    backend.migrate()
    procs = [_spawn("worker", url, workdir, i, seconds) for i in range(WORKERS)]
    procs.append(_spawn("dispatcher", url, workdir, 0, seconds))
    errors: list[str] = []
    deadline = time.monotonic() + seconds + 120
    for p in procs:
        try:
            p.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            errors.append(f"process {p.args!r} did not finish in time")
        if p.returncode != 0:
            errors.append(f"process {p.args!r} exited with {p.returncode}")
    reports = [_load(workdir / f"worker-{i}.json") for i in range(WORKERS)]
    sent = _load(workdir / "dispatcher-0.json")
    for report in [*reports, sent]:
        errors += report.get("errors", [])
    completed = Counter(i for r in reports for i in r.get("completed", []))
    expected = set(sent.get("enqueued", []))
    left = backend.get_stats().total
    backend.close()
    return SoakResult(
        seconds=seconds,
        enqueued=len(expected),
        duplicates=int(sent.get("duplicates", 0)),
        rolled_back=int(sent.get("rolled_back", 0)),
        completed=sum(completed.values()),
        completed_twice=tuple(sorted(i for i, n in completed.items() if n > 1)),
        never_completed=tuple(sorted(expected - set(completed))),
        left_in_table=left,
        errors=tuple(errors),
        busy_retried=sum(int(r.get("busy_retried", 0)) for r in [*reports, sent]),
        per_worker=tuple(len(r.get("completed", [])) for r in reports),
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"errors": [f"no report at {path}: {exc}"]}
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sqlite.soak", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("FERROQ_SOAK_SECONDS", "20"))
    )
    parser.add_argument("--quick", action="store_true", help="a 5 s run")
    parser.add_argument("--workdir", type=Path, help="where the database and reports go")
    parser.add_argument("--role", choices=["worker", "dispatcher"], help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else args.seconds
    if args.role == "worker":
        worker(args.db_url, args.workdir, args.index)
        return 0
    if args.role == "dispatcher":
        dispatcher(args.db_url, args.workdir, seconds)
        return 0
    with tempfile.TemporaryDirectory(prefix="ferroq-soak-") as tmp:
        result = run(seconds, args.workdir or Path(tmp))
    print(result.summary())
    for error in result.errors[:20]:
        print(error, file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
