"""Timeouts the server enforces (``statement_timeout``, ``idle_in_transaction_session_timeout``,
set with ``ALTER DATABASE``) do not break a worker: a cancelled statement or a killed session is
retried, the jobs complete, the reliability checker holds, and the worker's log says so in one
line per failing operation (no traceback, no line per retry).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import sqlalchemy as sa

from ferroq_core.dispatching import dispatch_many
from ferroq_core.errors import BackendUnavailable
from ferroq_postgres import PostgresBackend
from ferroq_postgres.errors import is_disconnect, translate
from reliability.harness import Bench, wait_for
from reliability.jobs import Work

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from reliability.harness import WorkerProc

pytestmark = pytest.mark.postgres

WORKER = {"concurrency": 16, "visibility": 5.0, "heartbeat": 0.3, "reaper": 0.3}


@pytest.fixture
def bench(tmp_path: Path, pg_server_url: str) -> Iterator[Bench]:
    with Bench.open("postgres", tmp_path, pg_server_url) as bench:
        yield bench


def _server_sets(bench: Bench, **settings: str) -> None:
    """``ALTER DATABASE ... SET`` on the bench's database: every new session gets it."""
    name = bench.engine.url.database
    with bench.engine.connect() as conn:
        for key, value in settings.items():
            # Names and values are the test's own constants, never input.
            conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET {key} = '{value}'")
        conn.commit()
    bench.engine.dispose()  # pooled sessions opened before keep their old settings


def _lock_table(bench: Bench, seconds: float) -> None:
    """Hold an ACCESS EXCLUSIVE lock on ferroq_jobs (as a migration would): every statement
    of the workers waits and is cancelled by statement_timeout."""
    engine = sa.create_engine(bench.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET statement_timeout = 0")
            conn.exec_driver_sql("SET idle_in_transaction_session_timeout = 0")
            conn.exec_driver_sql("LOCK TABLE ferroq_jobs IN ACCESS EXCLUSIVE MODE")
            time.sleep(seconds)
            conn.rollback()
    finally:
        engine.dispose()


def _warnings(worker: WorkerProc) -> list[str]:
    return [line for line in worker.log_text().splitlines() if " WARNING " in line]


def _check(bench: Bench, worker: WorkerProc) -> None:
    bench.wait_drained(90)
    assert worker.alive(), worker.log_text()[-3000:]
    report = bench.report()
    assert report.problems == []
    assert report.succeeded == len(bench.tokens)
    assert "Traceback" not in worker.log_text()


@pytest.mark.slow
@pytest.mark.timing  # a statement_timeout that a loaded server would hit elsewhere too
def test_statement_timeout_cancels_statements_and_the_worker_carries_on(bench: Bench) -> None:
    # Short enough that the locks below cancel every statement, long enough that a loaded
    # machine does not cancel others (which would be failures of their own, logged too).
    _server_sets(bench, statement_timeout="200ms")
    bench.dispatch([(t, Work(t, 0.2), True) for t in range(1, 301)])
    worker = bench.start_worker("w", **WORKER)
    wait_for(lambda: len(bench.effects()) > 40, 60, "the worker to run jobs")
    locks = 3
    for _ in range(locks):
        _lock_table(bench, 1.0)
        time.sleep(0.7)
    _check(bench, worker)
    cancelled = [w for w in _warnings(worker) if "statement_timeout" in w]
    assert cancelled, "no warning names statement_timeout"
    # One line per operation that fails (claim, heartbeat, acknowledgement, reaper) and lock,
    # not one per retry: a 1 s lock sees ~10 retries of the acknowledgements alone.
    assert len(cancelled) <= 4 * locks + 1, "\n".join(cancelled)


#: Makes each claimed row cost 2 ms of server time: a claim of 64 rows takes ~130 ms.
_SLOW_CLAIMS = (
    """CREATE FUNCTION slow_claim() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$""",
    """CREATE TRIGGER slow_claim BEFORE UPDATE ON ferroq_jobs FOR EACH ROW
    WHEN (OLD.status = 'pending' AND NEW.status = 'claimed') EXECUTE FUNCTION slow_claim()""",
)


@pytest.mark.slow
@pytest.mark.timing  # a statement_timeout that a loaded server would hit elsewhere too
def test_claims_too_big_for_statement_timeout_ask_for_fewer_jobs(bench: Bench) -> None:
    """A claim of as many jobs as the worker has free slots takes longer than the server's
    statement_timeout every time: the worker must claim fewer at a time, not retry forever."""
    with bench.engine.begin() as conn:
        for statement in _SLOW_CLAIMS:
            conn.exec_driver_sql(statement)
    _server_sets(bench, statement_timeout="50ms")
    bench.dispatch([(t, Work(t, 0.0), True) for t in range(1, 301)])
    worker = bench.start_worker("w", **{**WORKER, "concurrency": 64})
    _check(bench, worker)
    cancelled = [w for w in _warnings(worker) if "cancelled a claim" in w]
    assert len(cancelled) == 1, "\n".join(_warnings(worker))


@pytest.mark.slow
@pytest.mark.timing  # a loaded machine can leave any transaction idle past 100 ms
def test_a_caller_transaction_killed_while_idle_is_retried_by_the_caller(bench: Bench) -> None:
    _server_sets(bench, idle_in_transaction_session_timeout="100ms")
    worker = bench.start_worker("w", **WORKER)
    errors: list[BackendUnavailable] = []
    jobs = [Work(t, 0.02) for t in range(1, 201)]
    for start in range(0, len(jobs), 10):
        batch = jobs[start : start + 10]
        slow = start % 40 == 0  # every fourth transaction sits idle past the timeout once
        while True:
            try:
                with bench.engine.begin() as conn:
                    ids = dispatch_many(batch[:5], connection=conn, runtime=bench.runtime)
                    if slow:
                        slow = False
                        time.sleep(0.3)
                    ids += dispatch_many(batch[5:], connection=conn, runtime=bench.runtime)
            except BackendUnavailable as exc:
                errors.append(exc)
                continue
            break
        for job_id, job in zip(ids, batch, strict=True):
            bench.tokens[int(job_id)] = job.token
            bench.expect_ok[job.token] = True
    assert len(errors) >= 5  # the five held open; a stall of the machine may add one
    assert all("idle_in_transaction_session_timeout" in e.message for e in errors)
    _check(bench, worker)
    assert not [w for w in _warnings(worker) if "timeout" in w]


def test_a_transaction_of_ferroq_killed_while_idle_is_run_again(pg_url: str) -> None:
    """The server ends a session idle in a transaction (``25P03``): the transaction was rolled
    back, so it is run again on a fresh connection, as after any disconnect before COMMIT."""
    url = sa.engine.make_url(pg_url).update_query_dict(
        {"options": "-c idle_in_transaction_session_timeout=100"}
    )
    backend = PostgresBackend.from_url(url, pool_size=1, max_overflow=0)
    calls: list[int] = []

    def work(conn: psycopg.Connection[Any]) -> int:
        calls.append(conn.info.backend_pid)
        conn.execute("SELECT 1")
        if len(calls) == 1:
            time.sleep(0.5)  # idle in the transaction: the server ends the session
        return int(conn.execute("SELECT 2").fetchone()[0])  # type: ignore[index]

    try:
        assert backend._connections.transaction(work) == 2
    finally:
        backend.close()
    assert len(calls) == 2
    assert calls[0] != calls[1]


def test_idle_in_transaction_is_a_lost_connection() -> None:
    exc = psycopg.errors.lookup("25P03")(
        "terminating connection due to idle-in-transaction timeout"
    )
    assert is_disconnect(exc)
    error = translate(exc)
    assert isinstance(error, BackendUnavailable)
    assert "idle_in_transaction_session_timeout" in error.message
    assert "rolled back" in error.message
