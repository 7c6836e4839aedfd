"""ferroq through its public API: ``dispatch_many`` / ``dispatch`` and a worker process.

The worker is ``WorkerLoop`` when it is installed (``ferroq_core.worker``); before that it is a
loop written directly on the Backend protocol (claim a batch, run each job through the shared
attempt code, acknowledge the batch with one ``complete``), the same round trips the worker
makes.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from bench.common import spawn
from bench.systems.base import System, record_latency
from ferroq_core import Job, QueueConfig, Runtime, dispatch, dispatch_many, make_plugin_manager

if TYPE_CHECKING:
    import subprocess

CHUNK = 10_000


@attrs.define
class BenchNoop(Job):
    """A no-op job; with ``t`` set it records its enqueue->start latency."""

    job_name = "bench.noop"
    max_attempts = 3

    i: int = 0
    t: float | None = None

    def handle(self) -> None:
        if self.t is not None:
            record_latency({"t": self.t})


def runtime_for(url: str, **backend_options: Any) -> Runtime:
    config = QueueConfig(connection="db", database_url=url)
    return Runtime.build(url, config, make_plugin_manager(), backend_options or None)


def migrate(url: str) -> None:
    rt = runtime_for(url)
    try:
        rt.backend.migrate()
    finally:
        rt.close()


class FerroqSystem(System):
    name = "ferroq"
    #: The job type the enqueue workloads dispatch.
    job: type[BenchNoop] | type[Job] = BenchNoop

    def __init__(self, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self._rt: Runtime | None = None
        self._first = 0

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            self._rt = runtime_for(self.url)
        return self._rt

    def _engine(self) -> sa.engine.Engine:
        engine: sa.engine.Engine = self.rt.backend.engine  # type: ignore[attr-defined]
        return engine

    def setup(self) -> None:
        self.rt.backend.migrate()

    def reset(self) -> None:
        with self._engine().begin() as conn:
            if self.backend == "postgres":
                conn.exec_driver_sql("TRUNCATE ferroq_jobs")
            else:
                conn.exec_driver_sql("DELETE FROM ferroq_jobs")

    def close(self) -> None:
        if self._rt is not None:
            self._rt.close()
            self._rt = None

    def enqueue_bulk(self, n: int) -> None:
        ids: list[int] = []
        for start in range(0, n, CHUNK):
            jobs = [
                self.job(i=i).on_queue(self.queue)  # type: ignore[call-arg]
                for i in range(start, min(n, start + CHUNK))
            ]
            ids.extend(dispatch_many(jobs, runtime=self.rt))
        self._first = min(ids) if ids else 0

    def enqueue_single(self, n: int) -> None:
        for i in range(n):
            dispatch(self.job(i=i).on_queue(self.queue), runtime=self.rt)  # type: ignore[call-arg]

    def enqueue_probe(self) -> None:
        import time

        dispatch(BenchNoop(t=time.time()).on_queue(self.queue), runtime=self.rt)

    def started(self) -> bool:
        job = self.rt.backend.get_job(self._first)
        return job is None or job.status != "pending"

    def finished(self) -> bool:
        stmt = sa.text(
            "SELECT EXISTS (SELECT 1 FROM ferroq_jobs WHERE queue = :q AND status <> 'failed')"
        )
        with self._engine().connect() as conn:
            return not conn.execute(stmt, {"q": self.queue}).scalar()

    def left(self) -> int:
        stmt = sa.text("SELECT count(*) FROM ferroq_jobs WHERE queue = :q AND status <> 'failed'")
        with self._engine().connect() as conn:
            return int(conn.execute(stmt, {"q": self.queue}).scalar() or 0)

    def done_through(self, last_id: int) -> bool:
        """Are the jobs with ids up to ``last_id`` done (a primary-key range probe)?"""
        stmt = sa.text(
            "SELECT EXISTS (SELECT 1 FROM ferroq_jobs WHERE id BETWEEN :a AND :b"
            " AND status <> 'failed')"
        )
        with self._engine().connect() as conn:
            return not conn.execute(stmt, {"a": self._first, "b": last_id}).scalar()

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn(
            "bench.systems.ferroq_sys", "worker", self.url, self.queue, str(self.batch), env=env
        )


def make(backend: str, url: str, queue: str, **options: Any) -> FerroqSystem:
    return FerroqSystem(backend, url, queue, **options)


# -- the worker process ----------------------------------------------------------------------
def _protocol_loop(rt: Runtime, queue: str, batch: int) -> None:
    """Claim -> run -> acknowledge in batches, on the Backend protocol alone."""
    from ferroq_core.worker.attempt import execute, settle

    stop = [False]

    def on_term(*_: Any) -> None:
        stop[0] = True
        rt.backend.wake()

    signal.signal(signal.SIGTERM, on_term)
    me = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    backend = rt.backend
    while not stop[0]:
        rows = backend.claim([queue], me, batch)
        if not rows:
            backend.wait_for_jobs([queue], 1.0)
            continue
        done = []
        for row in rows:
            outcome = execute(rt, row)
            if outcome.ok:
                done.append(row.lease)
                settle(rt, outcome, complete=False)
            else:
                settle(rt, outcome)
        backend.complete(done)


def _worker_loop(rt: Runtime, queue: str, batch: int) -> bool:
    try:
        from ferroq_core.worker import WorkerLoop  # type: ignore[attr-defined]
    except ImportError:
        return False
    from ferroq_core import WorkerConfig

    WorkerLoop(rt, WorkerConfig(queues=(queue,), concurrency=batch)).run()
    return True


def main(argv: list[str]) -> None:
    _cmd, url, queue, batch = argv
    rt = runtime_for(url)
    try:
        if os.environ.get("BENCH_FERROQ_LOOP") == "protocol" or not _worker_loop(
            rt, queue, int(batch)
        ):
            _protocol_loop(rt, queue, int(batch))
    finally:
        rt.close()


if __name__ == "__main__":
    main(sys.argv[1:])
