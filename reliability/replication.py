"""A streaming replica of a throwaway cluster, promoted to take the primary's place.

:class:`Standby` is a :class:`~reliability.cluster.TempCluster` whose data directory comes from
``pg_basebackup -R`` of a running cluster instead of ``initdb``: it starts on a port of its own
and streams the primary's WAL (asynchronously, unless :func:`synchronous` made the primary wait
for it). :meth:`Standby.take_over` is the failover: after the primary stopped, the replica is
promoted and restarted on the primary's port, so clients find another server on the address
they already use, as behind a virtual IP or a DNS name that moves.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from reliability.cluster import TempCluster

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Standby", "stop_server", "synchronous"]


def _admin(url: str) -> sa.engine.Engine:
    return sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"),
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
    )


def _scalar(url: str, query: str) -> Any:
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


def stop_server(cluster: TempCluster, mode: str) -> None:
    """``pg_ctl stop -m mode`` (``fast``: sessions are cut and the WAL is shipped to the
    replicas first; ``immediate``: the server is killed, as in a crash)."""
    cluster._run("pg_ctl", "-D", str(cluster.data), "-m", mode, "-w", "stop")


def synchronous(primary: TempCluster, on: bool) -> None:
    """Make every commit on ``primary`` wait for a replica to have flushed it (``on``), or not."""
    names = "'*'" if on else "''"
    engine = _admin(primary.url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ALTER SYSTEM SET synchronous_standby_names = {names}")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
    finally:
        engine.dispose()


class Standby(TempCluster):
    """A replica of ``primary``; ``with Standby(primary) as s:`` or :meth:`start`."""

    def __init__(self, primary: TempCluster, bin_dir: Path | None = None) -> None:
        super().__init__(bin_dir or primary.bin)
        self.primary_port = primary.port
        self._receiver = 0

    def start(self) -> Standby:
        self._run(
            "pg_basebackup",
            "-D",
            str(self.data),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary_port),
            "-U",
            "postgres",
            "-R",  # standby.signal and primary_conninfo: it starts as a streaming replica
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
            timeout=120,
        )
        self._start()
        return self

    def wait_streaming(self, primary_url: str, timeout: float = 30.0) -> None:
        """Wait until the primary sees this replica streaming and caught up with its WAL."""
        query = (
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
            "AND replay_lsn >= pg_current_wal_lsn()"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if int(_scalar(primary_url, query) or 0) > 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the replica on port {self.port} did not catch up in {timeout:g}s")

    def stop_receiving(self) -> None:
        """Freeze this replica's WAL receiver (SIGSTOP): from now on it falls behind."""
        pid = int(_scalar(self.url, "SELECT pid FROM pg_stat_wal_receiver"))
        self._receiver = pid
        os.kill(pid, signal.SIGSTOP)

    def lose_unreceived(self) -> None:
        """Kill the frozen WAL receiver, and with it whatever the primary had sent to its
        socket since :meth:`stop_receiving` (the replica's postmaster restarts, recovering
        from the WAL it had written)."""
        os.kill(self._receiver, signal.SIGKILL)

    def take_over(self, port: int) -> None:
        """Promote this replica and move it to ``port`` (where the stopped primary was)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.port = port
        self._start()
