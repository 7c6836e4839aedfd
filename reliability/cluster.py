"""A throwaway PostgreSQL cluster that a scenario starts, restarts and removes itself.

Never the machine's shared server: ``initdb`` makes a new data directory under a temporary
directory, and ``pg_ctl`` runs it on a free port of 127.0.0.1 with a private socket directory.
``initdb`` refuses to run as root, so as root every command runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

__all__ = ["TempCluster", "find_pg_bin"]

_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin")


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (``FERROQ_PG_BIN`` wins)."""
    env = os.environ.get("FERROQ_PG_BIN")
    candidates = [env] if env else []
    candidates.extend(_CANDIDATES)
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempCluster:
    """``with TempCluster() as c: c.url ...``: a cluster that lives as long as the block."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_pg_bin()
        if found is None:
            raise RuntimeError("initdb/pg_ctl not found: install PostgreSQL or set FERROQ_PG_BIN")
        self.bin = found
        self.port = _free_port()
        # mkdtemp under /tmp (not pytest's 0700 tree) so the postgres user can reach it.
        self.base = Path(tempfile.mkdtemp(prefix="ferroq-chaos-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.base, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # Output goes to a file, never a pipe: a postmaster that pg_ctl forks inherits the
        # descriptors, and reading a pipe to its end would then wait for the server to exit.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout, check=False
            )
            if done.returncode != 0:
                out.seek(0)
                text = out.read().decode(errors="replace").strip()
                raise RuntimeError(f"{args[0]} failed ({done.returncode}): {text}")

    def start(self) -> TempCluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self._start()
        return self

    def _start(self) -> None:
        # The port and socket directory are always passed: a bare `pg_ctl start` would use
        # the defaults (5432, the system socket directory) of the machine's own server.
        opts = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is cut, the server comes back."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )

    def outage(self, seconds: float) -> None:
        """Stop the server (``-m fast``), keep it down ``seconds``, start it again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(seconds)
        self._start()

    def terminate_backends(self) -> int:
        """End every other session (as an operator's ``pg_terminate_backend`` sweep would)."""
        engine = sa.create_engine(
            self.url.replace("postgresql://", "postgresql+psycopg://"),
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    )
                ).all()
        finally:
            engine.dispose()
        return len(rows)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"throwaway Postgres on port {self.port} did not come up")

    def __enter__(self) -> TempCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
