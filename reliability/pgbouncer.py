"""A PgBouncer in transaction pooling mode in front of the test server, for one test run.

Used by the test suite (``pgbouncer_url`` in tests/conftest.py) and by ``bench.run``. It
needs the ``pgbouncer`` program (Debian's package: ``.ci/run`` installs it; the
tests never install anything). The pooler listens on a
free port of 127.0.0.1, serves every database of the server (``* =``), lets any client in
(``auth_type = any``: it logs in to the server as the test URL's user) and hands each
transaction to the next server connection in turn (``server_round_robin``), so a statement that
relied on the session of the previous one fails here rather than by chance in production. It
runs as the ``postgres`` user when the tests run as root (PgBouncer refuses root), logs to a
file of the run's directory, and is stopped at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["find_pgbouncer", "running_pgbouncer"]

#: Server connections per database and user: enough for the suite, few for a shared server.
POOL_SIZE = 10


def find_pgbouncer() -> str | None:
    """The ``pgbouncer`` program (Debian installs it in /usr/sbin, not on every PATH)."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer") if os.access(p, os.X_OK)),
        None,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(server_url: str, port: int) -> str:
    url = sa.engine.make_url(server_url)
    host = url.host or str(url.query.get("host", "127.0.0.1"))
    target = f"host={host} port={url.port or url.query.get('port', 5432)} user={url.username}"
    if url.password:
        target += f" password={url.password}"
    return "\n".join(
        [
            "[databases]",
            f"* = {target}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = any",
            "pool_mode = transaction",
            "server_round_robin = 1",
            f"default_pool_size = {POOL_SIZE}",
            "max_client_conn = 1000",
            "",
        ]
    )


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _user_args() -> list[str]:
    """``-u postgres`` as root (PgBouncer reads its configuration before it switches)."""
    if os.geteuid() != 0:
        return []
    try:
        return ["-u", pwd.getpwnam("postgres").pw_name]
    except KeyError:
        return ["-u", "nobody"]


@contextmanager
def running_pgbouncer(program: str, workdir: Path, server_url: str) -> Iterator[int]:
    """Start PgBouncer in front of ``server_url``'s server; yield its port on 127.0.0.1."""
    user = _user_args()
    log = workdir / "pgbouncer.log"
    for _ in range(5):  # another process may take the free port before PgBouncer binds it
        port = _free_port()
        ini = workdir / "pgbouncer.ini"
        ini.write_text(_config(server_url, port))
        ini.chmod(0o600)  # it may hold the server's password
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [program, *user, str(ini)], stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 10
        while proc.poll() is None and not _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _accepts(port):
            break
        _stop(proc)
    else:
        raise RuntimeError(f"PgBouncer did not start: {log.read_text()[-800:]}")
    try:
        yield port
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # immediate shutdown: clients are dropped
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
