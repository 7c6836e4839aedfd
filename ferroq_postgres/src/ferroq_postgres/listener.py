"""The LISTEN side of wake-ups: one autocommit connection and one daemon thread per backend.

The thread waits on the connection's socket (and on a socketpair that :meth:`Listener.stop`
writes to, so closing never waits for a timeout), reads notifications with libpq's
``consume_input``/``notifies`` and hands their payloads (queue names) to a callback. When the
connection breaks it reports that (the backend makes its waiters poll), then reconnects and
re-LISTENs with capped, jittered exponential backoff; a waiter that polls meanwhile cuts the
current backoff wait short (:meth:`Listener.retry_now`), so the LISTEN comes back with the
first poll that finds the database, not up to ``backoff_cap`` seconds later.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import threading
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq, sql

from ferroq_postgres.connections import QUERIES
from ferroq_postgres.errors import first_line

if TYPE_CHECKING:
    from collections.abc import Callable, Set

    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

__all__ = ["Listener", "listen_connection"]

log = logging.getLogger("ferroq.postgres")

#: Seconds of silence after which the listener checks that its connection still answers
#: (a half-open TCP connection delivers nothing and raises nothing on its own).
HEALTH_INTERVAL = 30.0
_BACKOFF_BASE = 0.05


def listen_connection(
    engine: Engine, url: sa.engine.URL | None = None
) -> psycopg.Connection[tuple[object, ...]]:
    """A new autocommit connection to ``engine``'s database (or to ``url``, which reaches it
    directly when the engine goes through a pooler), outside its pool (it is held for as long
    as the backend listens)."""
    cargs, cparams = engine.dialect.create_connect_args(url or engine.url)
    params = dict(cparams)
    params.setdefault("application_name", "ferroq-listener")
    # Keepalives let the kernel notice a dead peer on an otherwise silent connection.
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 30)
    params.setdefault("keepalives_interval", 10)
    params.setdefault("keepalives_count", 3)
    return psycopg.Connection.connect(*cargs, autocommit=True, **params)


class Listener:
    """LISTENs on ``channel`` in a background thread; see the module docstring."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[tuple[object, ...]]],
        channel: str,
        *,
        on_notify: Callable[[Set[str]], None],
        on_state: Callable[[bool], None],
        backoff_cap: float = 10.0,
        health_interval: float = HEALTH_INTERVAL,
    ) -> None:
        self._connect = connect
        # The driver's composition of an identifier: LISTEN takes no bound parameter.
        self._listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
        self._on_notify = on_notify
        self._on_state = on_state
        self._backoff_cap = backoff_cap
        self._health_interval = health_interval
        self._stop = threading.Event()
        #: Ends a backoff wait early (set by :meth:`retry_now` and :meth:`stop`).
        self._retry = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="ferroq-pg-listener", daemon=True)
        #: The server process id of the listening connection (None while disconnected).
        self.backend_pid: int | None = None
        #: How many times a LISTEN succeeded (1 after start, +1 per recovery).
        self.listens = 0

    @property
    def connected(self) -> bool:
        return self.backend_pid is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the connection; returns within ``timeout`` seconds."""
        self._stop.set()
        self._retry.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._wake_r.close()
            self._wake_w.close()

    def retry_now(self) -> None:
        """While disconnected, try to connect now instead of at the end of the backoff wait.
        Waiters call it at each poll: at most one attempt per poll of an idle process."""
        self._retry.set()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        delay = _BACKOFF_BASE
        refused = False
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:  # any failure to connect: keep polling, retry later
                # Once per outage: the attempts come as often as the waiters poll.
                log.log(
                    logging.DEBUG if refused else logging.WARNING,
                    "ferroq: cannot open the LISTEN connection (%s); polling until it opens",
                    first_line(exc),
                )
                refused = True
            else:
                refused = False
                try:
                    conn.execute(self._listen)
                    self.backend_pid = conn.info.backend_pid
                    self.listens += 1
                    delay = _BACKOFF_BASE
                    # Notifications sent while we were away are lost: let waiters look now.
                    self._on_state(True)
                    self._pump(conn)
                except psycopg.Error as exc:
                    if not self._stop.is_set():
                        log.warning(
                            "ferroq: the LISTEN connection broke (%s); polling until it is back",
                            first_line(exc),
                        )
                except Exception:
                    # A bug must not end the thread for good: waiters would poll forever.
                    log.exception("ferroq: the LISTEN thread failed; polling, then reconnecting")
                finally:
                    was_connected = self.backend_pid is not None
                    self.backend_pid = None
                    with contextlib.suppress(Exception):
                        conn.close()
                    if was_connected:
                        self._on_state(False)
            # Full jitter keeps many workers from reconnecting in lockstep after a restart.
            self._retry.wait(random.uniform(0, delay))
            self._retry.clear()
            delay = min(self._backoff_cap, delay * 2)

    def _pump(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        pgconn = conn.pgconn
        encoding = conn.info.encoding
        # Notifications that arrive during the health check's query come through here.
        conn.add_notify_handler(lambda n: self._on_notify({n.payload}))
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, selectors.EVENT_READ, "db")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while not self._stop.is_set():
                events = selector.select(self._health_interval)
                if not events:
                    conn.execute(QUERIES["ping"])
                    continue
                if any(key.data == "stop" for key, _ in events):
                    return
                pgconn.consume_input()
                if pgconn.status != pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the LISTEN connection was closed")
                queues: set[str] = set()
                while (notice := pgconn.notifies()) is not None:
                    queues.add(notice.extra.decode(encoding))
                if queues:
                    self._on_notify(queues)
