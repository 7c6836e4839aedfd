"""A worker whose acknowledgements fail (issue 19, item 2): DELETE is refused while claims
and heartbeats still work, so nothing stops the worker from claiming but its own rule.

Real ``ferroq worker`` processes on both backends. On Postgres the worker logs in as a role
without DELETE on ``ferroq_jobs``; on SQLite a trigger raises on every delete. Either way the
worker must stop claiming once its unwritten results fill its slots, retry the write-back
with backoff and rate-limited warnings, and exit non-zero with its jobs returned when it
cannot write for longer than the visibility timeout; when deletes work again in time, the
results it held are written and no job runs twice.
"""

from __future__ import annotations

import signal
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from reliability.audit import worker_pid
from reliability.checker import Fault
from reliability.harness import Bench, WorkerProc, wait_for
from reliability.jobs import Work

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
CONCURRENCY = 4
#: Claimed and not written back, at most: the running jobs and a batch of results.
BOUND = 2 * CONCURRENCY
WARNING = "writing results back failed"


class DeleteRefusal:
    """Makes deletes (or updates too) of ``ferroq_jobs`` fail for the worker, and work again."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.role: str | None = None
        self.refused: tuple[str, ...] = ()

    def worker_url(self) -> str:
        """The URL the worker connects with (on Postgres a role of its own, whose rights
        :meth:`refuse` revokes)."""
        if self.bench.backend == "sqlite":
            return self.bench.url
        self.role = f"ferroq_refused_{uuid.uuid4().hex[:10]}"
        with self.bench.engine.begin() as conn:
            # Generated identifiers, never input.
            conn.exec_driver_sql(f'CREATE ROLE "{self.role}" LOGIN')
            conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{self.role}"')
            conn.exec_driver_sql(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                f'TO "{self.role}"'
            )
            conn.exec_driver_sql(
                f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{self.role}"'
            )
        url = sa.engine.make_url(self.bench.url).set(username=self.role)
        return url.render_as_string(hide_password=False)

    def refuse(self, ops: tuple[str, ...] = ("DELETE",)) -> None:
        """Refuse ``ops`` (``DELETE``, ``UPDATE``: fixed words, never input)."""
        self.refused = ops
        with self.bench.engine.begin() as conn:
            if self.role is None:
                for op in ops:
                    conn.exec_driver_sql(
                        f"CREATE TRIGGER refuse_{op.lower()} BEFORE {op} ON ferroq_jobs "
                        f"BEGIN SELECT RAISE(ABORT, '{op} refused by the test'); END"
                    )
            else:
                conn.exec_driver_sql(f'REVOKE {", ".join(ops)} ON ferroq_jobs FROM "{self.role}"')

    def allow(self) -> None:
        with self.bench.engine.begin() as conn:
            if self.role is None:
                for op in self.refused:
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS refuse_{op.lower()}")
            else:
                ops = ", ".join(self.refused)
                conn.exec_driver_sql(f'GRANT {ops} ON ferroq_jobs TO "{self.role}"')

    def drop_role(self, server_url: str) -> None:
        if self.role is None:
            return
        admin = sa.create_engine(
            sa.engine.make_url(server_url).set(drivername="postgresql+psycopg"),
            isolation_level="AUTOCOMMIT",
            poolclass=sa.pool.NullPool,
        )
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{self.role}"')
        finally:
            admin.dispose()


@contextmanager
def refused_bench(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Bench, DeleteRefusal]]:
    server = str(request.getfixturevalue("pg_server_url")) if backend == "postgres" else None
    refusal: DeleteRefusal | None = None
    try:
        with Bench.open(backend, tmp_path / "bench", server) as bench:
            refusal = DeleteRefusal(bench)
            bench.extra_env["FERROQ_DATABASE_URL"] = refusal.worker_url()
            yield bench, refusal
    finally:
        if refusal is not None and server is not None:
            refusal.drop_role(server)


def claims_by(bench: Bench, pid: int, before: float | None = None) -> int:
    return sum(
        1
        for t in bench.audit()
        if t.is_claim and worker_pid(t.new_by) == pid and (before is None or t.at < before)
    )


def gave_up(worker: WorkerProc, visibility: float) -> str:
    """Wait for the worker to give up: a non-zero exit, its reason logged, and one warning
    about the failing writes at first, then at most one per 10 s (none more here). Returns
    its log."""
    try:
        code = worker.popen.wait(timeout=visibility + 30)
    except Exception:
        pytest.fail(f"the worker did not exit:\n{worker.log_text()[-3000:]}")
    log = worker.log_text()
    assert code != 0, log[-3000:]
    assert 1 <= log.count(WARNING) <= 2, log[-3000:]
    assert "longer than the visibility timeout" in log, log[-3000:]
    return log


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_acknowledgements_stop_claims_and_the_worker_exits(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    visibility = 4.0
    with refused_bench(backend, tmp_path, request) as (bench, refusal):
        bench.dispatch([(t, Work(t, 0.0), True) for t in range(1, 201)])
        refusal.refuse()
        refused_at = time.time()
        worker = bench.start_worker(
            "refused", concurrency=CONCURRENCY, visibility=visibility, heartbeat=0.5, reaper=0.5
        )
        log = gave_up(worker, visibility)
        claimed = claims_by(bench, worker.pid)
        assert 0 < claimed <= BOUND, f"{claimed} claims\n{log[-3000:]}"
        held = [r for r in bench.runtime.backend.list_jobs(limit=1000) if r.status == "claimed"]
        assert not held, f"jobs still claimed after the exit: {[r.id for r in held]}"
        refusal.allow()
        bench.faults.append(Fault("db", None, refused_at, time.time()))
        bench.start_worker("after", concurrency=CONCURRENCY, visibility=visibility)
        bench.wait_drained(60)
        report = bench.report()
        assert report.problems == [], report.problems
        assert report.succeeded == 200


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_held_results_are_written_once_deletes_work_again(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with refused_bench(backend, tmp_path, request) as (bench, refusal):
        bench.dispatch([(t, Work(t, 0.0), True) for t in range(1, 101)])
        refusal.refuse()
        worker = bench.start_worker(
            "held", concurrency=CONCURRENCY, visibility=8.0, heartbeat=0.5, reaper=0.5
        )
        wait_for(
            lambda: sum(1 for e in bench.effects() if e.kind == "end") >= CONCURRENCY,
            30,
            "the worker to run its first jobs",
        )
        time.sleep(2.0)
        allowed_at = time.time()
        refusal.allow()
        try:
            bench.wait_drained(60)
        finally:
            log = worker.log_text()
        assert worker.alive(), log[-3000:]
        assert claims_by(bench, worker.pid, before=allowed_at) <= BOUND, log[-3000:]
        assert "writing results back works again" in log, log[-3000:]
        report = bench.report()
        assert report.problems == [], report.problems
        assert report.succeeded == 100
        # No fault was declared: any second run would be a duplicate.
        assert report.starts == 100, f"{report.starts} runs of 100 jobs"
        bench.signal(worker, signal.SIGTERM, "term")
        assert worker.popen.wait(timeout=20) == 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_whose_every_write_is_refused_mid_run_exits_and_loses_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """DELETE and UPDATE refused while the worker runs: claims, heartbeats and write-backs
    all fail. It still exits non-zero after the visibility timeout (its jobs cannot even be
    returned: the reaper of the next worker takes them back), and nothing is lost."""
    visibility = 3.0
    with refused_bench(backend, tmp_path, request) as (bench, refusal):
        bench.dispatch([(t, Work(t, 0.05), True) for t in range(1, 201)])
        worker = bench.start_worker(
            "refused", concurrency=CONCURRENCY, visibility=visibility, heartbeat=0.5, reaper=0.5
        )
        wait_for(
            lambda: sum(1 for t in bench.audit() if t.is_completion) >= 2 * CONCURRENCY,
            30,
            "the worker to complete its first jobs",
        )
        refusal.refuse(("DELETE", "UPDATE"))
        refused_at = time.time()
        log = gave_up(worker, visibility)
        assert time.time() - refused_at < visibility + 20, log[-3000:]
        refusal.allow()
        bench.faults.append(Fault("db", None, refused_at, time.time()))
        bench.start_worker("after", concurrency=CONCURRENCY, visibility=visibility, reaper=0.5)
        bench.wait_drained(60)
        report = bench.report()
        assert report.problems == [], report.problems
        assert report.succeeded == 200
