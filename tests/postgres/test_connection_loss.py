"""Connection loss: every server process of the test database is terminated
(``pg_terminate_backend``), before and during load; operations recover on their own and no job
is lost (at-least-once: a job may run twice only when a COMMIT broke mid-flight)."""

from __future__ import annotations

import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from ferroq_core.errors import BackendUnavailable, SchemaMissing
from ferroq_core.records import Lease
from ferroq_postgres import PostgresBackend
from tests.postgres.conftest import request, terminate_backends, worker_id

pytestmark = pytest.mark.postgres


def test_every_operation_recovers_after_all_backends_are_terminated(
    pg_admin: sa.engine.Engine, pg_backend: PostgresBackend
) -> None:
    # Fill the pool with open connections, then kill them all while they sit idle.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: pg_backend.get_stats(), range(16)))
    assert terminate_backends(pg_admin) >= 1
    me = worker_id()
    ids = [r.id for r in pg_backend.enqueue([request() for _ in range(4)])]
    rows = pg_backend.claim(["default"], me, 4)
    assert sorted(r.id for r in rows) == ids
    leases = [Lease(r.id, me, r.attempts) for r in rows]
    assert terminate_backends(pg_admin) >= 1
    assert pg_backend.heartbeat(leases) == set(ids)
    assert terminate_backends(pg_admin) >= 1
    assert pg_backend.complete(leases[:2]) == set(ids[:2])
    assert terminate_backends(pg_admin) >= 1
    assert pg_backend.release(leases[2], delay=0, error="boom") is True
    assert pg_backend.fail(leases[3], error="boom") is True
    assert terminate_backends(pg_admin) >= 1
    stats = pg_backend.get_stats()
    assert pg_backend.now().tzinfo is not None
    assert pg_backend.reap(60).requeued == ()
    assert sorted(j.id for j in pg_backend.list_jobs(queue="default")) == ids[2:]
    assert stats is not None


def test_translated_errors(pg_url: str, pg_backend: PostgresBackend) -> None:
    with pg_backend.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE ferroq_jobs RENAME TO ferroq_jobs_away")
    try:
        with pytest.raises(SchemaMissing):
            pg_backend.claim(["default"], worker_id(), 1)
    finally:
        with pg_backend.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE ferroq_jobs_away RENAME TO ferroq_jobs")
    nowhere = sa.engine.make_url(pg_url).set(database="ferroq_no_such_database")
    missing = PostgresBackend.from_url(nowhere, reconnect_attempts=0)
    try:
        with pytest.raises(BackendUnavailable, match="does not exist"):
            missing.get_stats()
    finally:
        missing.close()


@pytest.mark.slow
def test_workers_survive_every_backend_being_terminated_mid_load(
    pg_admin: sa.engine.Engine, pg_backend: PostgresBackend
) -> None:
    sent = {r.id for r in pg_backend.enqueue([request() for _ in range(1500)])}
    completions: collections.Counter[int] = collections.Counter()
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    kills: list[int] = []

    def work() -> None:
        me = worker_id()
        unfinished: list[Lease] = []
        while not stop.is_set():
            try:
                if unfinished:
                    done = pg_backend.complete(unfinished)
                    unfinished = []
                else:
                    rows = pg_backend.claim(["default"], me, 5)
                    if not rows:
                        # A claim lost to a broken COMMIT comes back through the reaper.
                        pg_backend.reap(5.0)
                        time.sleep(0.05)
                        continue
                    unfinished = [Lease(r.id, me, r.attempts) for r in rows]
                    done = pg_backend.complete(unfinished)
                    unfinished = []
            except BackendUnavailable as exc:
                with lock:
                    errors.append(str(exc))
                time.sleep(random.uniform(0, 0.05))
                continue
            with lock:
                completions.update(done)

    def kill() -> None:
        while not stop.is_set() and len(kills) < 8:
            time.sleep(0.15)
            kills.append(terminate_backends(pg_admin))

    threads = [threading.Thread(target=work, daemon=True) for _ in range(6)]
    threads.append(threading.Thread(target=kill, daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if set(completions) >= sent:
                break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(10)

    assert set(completions) == sent, f"{len(sent - set(completions))} jobs never completed"
    assert pg_backend.get_job(max(sent)) is None
    assert sum(1 for k in kills if k) >= 3, f"the sabotage did not happen: {kills}"
    # Only a broken COMMIT (surfaced as BackendUnavailable) can make a job run twice, and then
    # at most one claim batch (5 jobs) per error.
    twice = sum(1 for n in completions.values() if n > 1)
    assert twice <= 5 * len(errors), (twice, errors)
