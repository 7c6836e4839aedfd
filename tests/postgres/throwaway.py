"""A throwaway PostgreSQL cluster for test runs that name no server.

Used by ``pg_server_url`` in tests/conftest.py when ``FERROQ_TEST_POSTGRES_URL`` is unset and
``initdb``/``pg_ctl`` are installed (on PATH or under /usr/lib/postgresql/*/bin). The cluster
lives in a temporary directory, listens on a Unix socket in that directory only (no TCP port,
so it can never clash with or touch another server), runs with fsync off, and is stopped and
deleted at the end of the run. ``FERROQ_TEST_POSTGRES_THROWAWAY=0`` turns it off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["throwaway_cluster"]

OPT_OUT_ENV = "FERROQ_TEST_POSTGRES_THROWAWAY"


def _bindir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((c for c in candidates if (c / "initdb").exists()), None)


def _why_not() -> str | None:
    if os.environ.get(OPT_OUT_ENV, "1").strip().lower() in ("0", "false", "no"):
        return f"{OPT_OUT_ENV}=0"
    if os.name != "posix":
        return "throwaway clusters need a POSIX system"
    if os.geteuid() == 0:
        return "initdb refuses to run as root"
    return None


@contextmanager
def throwaway_cluster(base: Path) -> Iterator[tuple[str | None, str]]:
    """Yield ``(url, "")`` of a fresh cluster under ``base``, or ``(None, reason)``."""
    reason = _why_not()
    bindir = None if reason else _bindir()
    if reason or bindir is None:
        yield None, reason or "initdb/pg_ctl not found"
        return
    data, log = base / "data", base / "server.log"
    # The socket path must stay under ~100 bytes; the temporary directory is short enough.
    sock = base
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-k {sock} -c listen_addresses='' -c fsync=off -c max_connections=200"
        subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = log.read_text()[-500:] if log.exists() else ""
        yield None, f"could not start a throwaway cluster: {exc} {detail}".strip()
        return
    try:
        yield f"postgresql://postgres@/postgres?host={sock}&port=5432", ""
    finally:
        subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
