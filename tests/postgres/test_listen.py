"""LISTEN/NOTIFY wake-ups: payloads, recovery after the listener's backend is killed, polling
while it is down, and a clean close."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa

from ferroq_core.records import EnqueueRequest, Lease
from ferroq_postgres import PostgresBackend
from ferroq_postgres.backend import CHANNEL
from tests.postgres.conftest import request, terminate_backends, wait_until, worker_id

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.postgres


@pytest.fixture
def producer(pg_url: str, pg_backend: PostgresBackend) -> Iterator[PostgresBackend]:
    """Another process's backend, in effect: it never listens, so only NOTIFY reaches us."""
    backend = PostgresBackend.from_url(pg_url, pool_size=2, listen=False)
    try:
        yield backend
    finally:
        backend.close()


def listening(backend: PostgresBackend) -> int:
    """Start the listener, wait until it LISTENs; return its server pid."""
    backend.wait_for_jobs(["default"], 0.01)
    listener = backend.listener
    assert listener is not None
    return wait_until(lambda: listener.backend_pid, what="the LISTEN connection")


def test_notification_payload_is_the_queue_name_only(
    pg_url: str, producer: PostgresBackend
) -> None:
    # A libpq URI (host may be a socket directory in the query, for a throwaway cluster).
    conninfo = sa.engine.make_url(pg_url).set(drivername="postgresql")
    with psycopg.Connection.connect(
        conninfo.render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(CHANNEL)))
        secret = EnqueueRequest(queue="mail", job_type="t", payload='{"card": "4111"}')
        producer.enqueue([secret, request("mail"), request("sms")])
        got = {n.payload for n in conn.notifies(timeout=5, stop_after=2)}
    assert got == {"mail", "sms"}


def test_waiter_wakes_on_a_notification_for_its_queues_only(
    pg_backend: PostgresBackend, producer: PostgresBackend
) -> None:
    listening(pg_backend)
    pg_backend.wait_for_jobs(["a"], 0.01)  # let the "connected" wake-up pass
    producer.enqueue([request("b")])
    started = time.monotonic()
    assert pg_backend.wait_for_jobs(["a"], 0.3) is False
    assert time.monotonic() - started >= 0.25
    producer.enqueue([request("a")])
    assert pg_backend.wait_for_jobs(["a"], 10) is True


@pytest.mark.timing
def test_notification_between_two_waits_is_not_slept_through(
    pg_backend: PostgresBackend, producer: PostgresBackend
) -> None:
    listening(pg_backend)
    pg_backend.wait_for_jobs(["default"], 0.01)
    producer.enqueue([request()])  # arrives while "the worker" is busy claiming
    wait_until(lambda: pg_backend._notifications.counts.get("default"), what="the notification")
    started = time.monotonic()
    assert pg_backend.wait_for_jobs(["default"], 10) is True
    assert time.monotonic() - started < 1


def drain_in_background(
    backend: PostgresBackend, done: set[int], stop: threading.Event
) -> threading.Thread:
    """A minimal worker: wait for a wake-up (long timeout), claim, complete."""
    me = worker_id()

    def run() -> None:
        while not stop.is_set():
            rows = backend.claim(["default"], me, 10)
            if rows:
                backend.complete([Lease(r.id, me, r.attempts) for r in rows])
                done.update(r.id for r in rows)
            else:
                backend.wait_for_jobs(["default"], 30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_jobs_keep_flowing_when_the_listeners_backend_is_killed(
    pg_admin: sa.engine.Engine, pg_backend: PostgresBackend, producer: PostgresBackend
) -> None:
    listener_pid = listening(pg_backend)
    listener = pg_backend.listener
    assert listener is not None
    done: set[int] = set()
    stop = threading.Event()
    worker = drain_in_background(pg_backend, done, stop)
    try:
        sent: set[int] = set()
        for round_ in range(3):
            batch = {r.id for r in producer.enqueue([request() for _ in range(20)])}
            sent |= batch
            wait_until(lambda b=batch: b <= done, timeout=10, what=f"round {round_} drained")
            assert terminate_backends(pg_admin, listener_pid) == 1
            # The worker sleeps with a 30 s timeout: only the re-LISTEN (or the fallback poll)
            # can get these jobs to it in time.
            sent |= {r.id for r in producer.enqueue([request() for _ in range(20)])}
            wait_until(lambda s=sent: s <= done, timeout=10, what="jobs sent around the kill")
            listener_pid = wait_until(
                lambda n=round_: listener.listens >= n + 2 and listener.backend_pid,
                what="the re-LISTEN",
            )
        # After recovery the worker is woken by NOTIFY again, not by polling.
        last = {r.id for r in producer.enqueue([request()])}
        wait_until(lambda: last <= done, timeout=5, what="a job after recovery")
    finally:
        stop.set()
        pg_backend.wake()
        worker.join(5)
    assert done == sent | last


@pytest.mark.usefixtures("pg_backend")  # migrated, no job left by an earlier test
def test_waiters_poll_while_the_listening_connection_is_down(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = PostgresBackend.from_url(
        pg_url, pool_size=1, poll_interval=0.2, listen_backoff_cap=0.2
    )
    broken = True
    real = backend._listen_connection

    def connect() -> psycopg.Connection[tuple[object, ...]]:
        if broken:
            raise psycopg.OperationalError("connection refused (simulated)")
        return real()

    monkeypatch.setattr(backend, "_listen_connection", connect)
    try:
        started = time.monotonic()
        assert backend.wait_for_jobs(["default"], 30) is False
        assert time.monotonic() - started < 5, "a waiter slept its full timeout while deaf"
        listener = backend.listener
        assert listener is not None
        assert not listener.connected
        broken = False
        wait_until(lambda: listener.connected, what="the listener to connect after the outage")
    finally:
        backend.close()


@pytest.mark.timing
@pytest.mark.usefixtures("pg_backend")  # migrated, no job left by an earlier test
def test_a_waiting_worker_gets_its_listener_back_without_waiting_out_the_backoff(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a long outage the listener's backoff has grown (up to listen_backoff_cap); a
    worker that waits for jobs meanwhile finds the database again at its next poll, and so
    must its LISTEN connection (after a failover it came back 8 s after the workers)."""
    backend = PostgresBackend.from_url(pg_url, pool_size=1, poll_interval=0.2)
    broken = True
    real = backend._listen_connection

    def connect() -> psycopg.Connection[tuple[object, ...]]:
        if broken:
            raise psycopg.OperationalError("connection refused (simulated)")
        return real()

    monkeypatch.setattr(backend, "_listen_connection", connect)
    # The longest wait the jitter allows, every time: 0.05 s, 0.1 s, ... 3.2 s.
    monkeypatch.setattr("ferroq_postgres.listener.random.uniform", lambda _a, b: b)
    try:
        backend.wait_for_jobs(["default"], 0.01)
        time.sleep(3.5)  # failed attempts at 0, 0.05, ... 1.55, 3.15 s; the next at 6.35 s
        broken = False
        back = time.monotonic()
        listener = backend.listener
        assert listener is not None
        while not listener.connected and time.monotonic() - back < 10:
            backend.wait_for_jobs(["default"], 30)  # a worker's idle loop
        assert listener.connected
        assert time.monotonic() - back < 1.5
    finally:
        backend.close()


@pytest.mark.timing
def test_close_stops_the_listener_and_its_connection(
    pg_url: str, pg_admin: sa.engine.Engine
) -> None:
    backend = PostgresBackend.from_url(pg_url, pool_size=1)
    pid = listening(backend)
    listener = backend.listener
    assert listener is not None
    waiter = threading.Thread(target=backend.wait_for_jobs, args=(["default"], 30))
    waiter.start()
    started = time.monotonic()
    backend.close()
    waiter.join(5)
    assert not waiter.is_alive(), "close() left a waiter blocked"
    assert time.monotonic() - started < 2
    assert backend.listener is None

    def gone() -> bool:
        with pg_admin.connect() as conn:
            query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            return conn.execute(query, {"pid": pid}).scalar() == 0

    wait_until(gone, timeout=5, what="the LISTEN connection to close")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connections_and_listener(
    pg_backend: PostgresBackend, producer: PostgresBackend
) -> None:
    parent_pid = listening(pg_backend)
    pg_backend.get_stats()  # a pooled connection the child must not reuse
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, reports through its exit code
        code = 1
        try:
            assert pg_backend.listener is None
            assert listening(pg_backend) != parent_pid
            pg_backend.enqueue([request("forked")])
            assert len(pg_backend.claim(["forked"], worker_id(), 5)) == 1
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    listener = pg_backend.listener
    assert listener is not None
    assert listener.backend_pid == parent_pid
    pg_backend.wait_for_jobs(["default"], 0.01)
    producer.enqueue([request()])
    assert pg_backend.wait_for_jobs(["default"], 10) is True
    assert pg_backend.get_stats() is not None
