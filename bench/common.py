"""Helpers shared by the driver and the per-system adapters: timing, stats, child protocol.

Every measurement runs in a child process (``python -m bench.child``) that prints exactly one
JSON line on stdout, so a peer that is not installed, or that crashes, costs one row of the
table and never the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

T = TypeVar("T")
RESULT_PREFIX = "BENCH-RESULT "


class NotInstalled(Exception):
    """The system's package is missing: reported as "not installed", never a crash."""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.01) -> float | None:
    """Poll ``check`` until true; return the monotonic time it first held, None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(interval)
    return None


#: The plugins a measured ferroq loads from its entry points: the backends and tenancy. The
#: dev set-up also installs ferroq-prometheus and ferroq-otel, which would otherwise be in
#: every ferroq system (and which an older ``--tree`` core cannot load); the systems
#: ``ferroq+prometheus`` and ``ferroq+otel`` register theirs by hand.
MEASURED_PLUGINS = "sqlite,postgres,tenancy"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("FERROQ_LOAD_PLUGINS", MEASURED_PLUGINS)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def spawn(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -m module args`` from the repo root."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**child_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(procs: list[subprocess.Popen[str]], timeout: float = 20.0) -> list[str]:
    """SIGTERM the processes, wait, SIGKILL stragglers; return their stderr tails."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    tails: list[str] = []
    for p in procs:
        try:
            _out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _out, err = p.communicate()
        tails.append((err or "")[-2000:])
    return tails


def emit(result: dict[str, Any]) -> None:
    """The child's one result line."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return parsed
    return None


def rss_mb(pid: int) -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        return float(psutil.Process(pid).memory_info().rss) / 1e6
    except psutil.Error:
        return None


@contextlib.contextmanager
def scratch_database(server: str, prefix: str) -> Iterator[str]:
    """The URL of a new database on the Postgres ``server`` (a URL), dropped afterwards."""
    import psycopg
    import sqlalchemy as sa

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = sa.engine.make_url(server)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # a generated name, not input
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backends`` (default both) and ``--pg-url`` (the server to make scratch databases on;
    default ``FERROQ_BENCH_POSTGRES_URL``, ``FERROQ_TEST_POSTGRES_URL``, then a local one)."""
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("FERROQ_BENCH_POSTGRES_URL")
        or os.environ.get("FERROQ_TEST_POSTGRES_URL")
        or DEFAULT_PG,
    )


def on_backends(
    args: argparse.Namespace, prefix: str, measure: Callable[[str], T]
) -> Iterator[tuple[str, T]]:
    """``measure(url)`` on a new database of each backend ``args`` names (a temporary SQLite
    file, a scratch Postgres database dropped afterwards): (backend, figures) in turn."""
    for backend in args.backends.split(","):
        if backend == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
            yield backend, measure(f"sqlite:///{folder / 'jobs.db'}")
        else:
            with scratch_database(args.pg_url, prefix.replace("-", "_")) as url:
                yield backend, measure(url)
