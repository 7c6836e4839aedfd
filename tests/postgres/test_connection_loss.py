"""Connection loss: every server process of the test database is terminated
(``pg_terminate_backend``), before and during load; operations recover on their own and no job
is lost (at-least-once: a job may run twice only when a COMMIT broke mid-flight)."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from ferroq_core import QueueConfig, Runtime, dispatch_many, make_plugin_manager
from ferroq_core.errors import BackendUnavailable, SchemaMissing
from ferroq_core.records import Lease
from ferroq_postgres import PostgresBackend
from tests.postgres.conftest import request, terminate_backends, wait_until, worker_id

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
BOOT = "from ferroq_core.cli import main; main()"
JOBS = 600


def test_every_operation_recovers_after_all_backends_are_terminated(
    pg_admin: sa.engine.Engine, pg_backend: PostgresBackend
) -> None:
    # Fill the pool with open connections, then kill them all while they sit idle.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: pg_backend.get_stats(), range(16)))
    assert terminate_backends(pg_admin, wait=True) >= 1
    me = worker_id()
    ids = [r.id for r in pg_backend.enqueue([request() for _ in range(4)])]
    rows = pg_backend.claim(["default"], me, 4)
    assert sorted(r.id for r in rows) == ids
    leases = [Lease(r.id, me, r.attempts) for r in rows]
    assert terminate_backends(pg_admin, wait=True) >= 1
    assert pg_backend.heartbeat(leases) == set(ids)
    assert terminate_backends(pg_admin, wait=True) >= 1
    assert pg_backend.complete(leases[:2]) == set(ids[:2])
    assert terminate_backends(pg_admin, wait=True) >= 1
    assert pg_backend.release(leases[2], delay=0, error="boom") is True
    assert pg_backend.fail(leases[3], error="boom") is True
    assert terminate_backends(pg_admin, wait=True) >= 1
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
    sent = {r.id for r in pg_backend.enqueue([request() for _ in range(3000)])}
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
            time.sleep(0.1)
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
    print(f"\n{len(sent)} jobs, kills {kills}, {len(errors)} errors surfaced")
    # Only a broken COMMIT (surfaced as BackendUnavailable) can make a job run twice, and then
    # at most one claim batch (5 jobs) per error.
    twice = sum(1 for n in completions.values() if n > 1)
    assert twice <= 5 * len(errors), (twice, errors)


@pytest.mark.slow
def test_worker_processes_keep_going_when_every_backend_is_terminated(
    pg_url: str, pg_admin: sa.engine.Engine, pg_backend: PostgresBackend, tmp_path: Path
) -> None:
    """Real ``ferroq worker`` processes: their pooled connections and their LISTEN
    connections are killed again and again mid-load; they log it, recover, and finish."""
    from tests.postgres.jobs import Tick

    runtime = Runtime.build(
        pg_url, QueueConfig(connection="db", database_url=pg_url), make_plugin_manager()
    )
    try:
        dispatch_many([Tick(n=i, seconds=0.02) for i in range(JOBS)], runtime=runtime)
    finally:
        runtime.close()
    ledger = tmp_path / "ledger"
    env = dict(os.environ, FERROQ_PG_TEST_LEDGER=str(ledger), FERROQ_LOG_LEVEL="INFO")
    args = ["--queue", "ticks", "--concurrency", "4", "--sleep", "5"]
    args += ["--visibility-timeout", "4", "--heartbeat-interval", "0.5", "--reaper-interval", "1"]
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    cmd = [sys.executable, "-c", BOOT, "--database-url", pg_url, "worker"]
    cmd += ["--import", "tests.postgres.jobs", *args]
    workers = []
    for log in logs:
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            workers.append(
                subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            )

    def ran() -> collections.Counter[int]:
        text = ledger.read_text() if ledger.exists() else ""
        return collections.Counter(int(line.split()[0]) for line in text.splitlines())

    try:
        wait_until(lambda: len(ran()) >= JOBS // 10, timeout=60, what="the workers to start")
        kills = 0
        while len(ran()) < JOBS and kills < 6:
            kills += bool(terminate_backends(pg_admin))
            time.sleep(0.3)
        wait_until(lambda: len(ran()) == JOBS, timeout=60, what="every job to run")
        for w in workers:
            assert w.poll() is None, "a worker died"
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(30) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    output = "".join(log.read_text(errors="replace") for log in logs)
    assert codes == [0, 0], output[-3000:]
    assert kills >= 3, "the sabotage did not happen"
    assert set(ran()) == set(range(JOBS))
    assert pg_backend.get_stats().total == 0
    # At-least-once: a repeat needs a broken COMMIT or a lost lease, each touching at most one
    # worker's in-flight jobs (concurrency 4).
    repeats = sum(n - 1 for n in ran().values())
    print(f"\n{kills} kills, {repeats} repeats, {output.count('retrying')} retries logged")
    assert repeats <= kills * 2 * 4, (repeats, output[-3000:])


def test_retries_during_an_outage_log_one_operations_warnings_not_every_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the server is down every operation retries and fails; a worker makes several a
    second, so a warning per retry would flood the log (130 lines in 5 s in a failover run)."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = PostgresBackend.from_url(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", reconnect_backoff_cap=0.01
    )
    try:
        with caplog.at_level("DEBUG", logger="ferroq.postgres"):
            for _ in range(5):
                with pytest.raises(BackendUnavailable):
                    backend.get_stats()
    finally:
        backend.close()
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 15  # 3 retries of each of the 5 operations, all still logged
    # The first operation's three, as warnings; the rest at debug level.
    assert [r.levelname for r in retries[:4]] == ["WARNING"] * 3 + ["DEBUG"]
    assert sum(r.levelname == "WARNING" for r in retries) == 3
