"""procrastinate (Postgres), configured for throughput as its docs describe: psycopg
connector, ``batch_defer`` for bulk enqueue, a worker with LISTEN/NOTIFY on, ``concurrency``
equal to the batch size the other systems claim, and ``delete_jobs="successful"`` so finished
jobs leave the table as they do in ferroq. procrastinate fetches one job per query; it has no
multi-row claim."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import psycopg
from procrastinate import App, PsycopgConnector

from bench.common import spawn
from bench.systems.base import System, probe, record_latency

if TYPE_CHECKING:
    import subprocess

CHUNK = 10_000


def bench_noop(i: int = 0, t: float | None = None) -> None:
    if t is not None:
        record_latency({"t": t})


def make_app(url: str) -> App:
    """An app on ``url`` with the no-op task registered (the same in dispatcher and worker)."""
    app = App(connector=PsycopgConnector(conninfo=url))
    app.task(name="bench_noop")(bench_noop)
    return app


class ProcrastinateSystem(System):
    name = "procrastinate"

    def __init__(self, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self._db = psycopg.connect(url, autocommit=True)
        self._first = 0
        self._loop = asyncio.new_event_loop()
        self._app = make_app(url)
        self._loop.run_until_complete(self._app.open_async())

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def _task(self) -> Any:
        return self._app.tasks["bench_noop"].configure(queue=self.queue)

    def setup(self) -> None:
        installed = self._db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if installed is None or installed[0] is None:
            self._run(self._app.schema_manager.apply_schema_async())

    def reset(self) -> None:
        self._db.execute("TRUNCATE procrastinate_jobs RESTART IDENTITY CASCADE")

    def close(self) -> None:
        self._run(self._app.close_async())
        self._loop.close()
        self._db.close()

    def enqueue_bulk(self, n: int) -> None:
        ids: list[int] = []
        for start in range(0, n, CHUNK):
            kwargs = [{"i": i} for i in range(start, min(n, start + CHUNK))]
            ids.extend(self._run(self._task().batch_defer_async(*kwargs)))
        self._first = min(ids) if ids else 0

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self._task().defer_async(i=i)

        self._run(go())

    def enqueue_probe(self) -> None:
        self._run(self._task().defer_async(**probe()))

    def started(self) -> bool:
        row = self._db.execute(
            "SELECT status FROM procrastinate_jobs WHERE id = %s", (self._first,)
        ).fetchone()
        return row is None or row[0] != "todo"

    def finished(self) -> bool:
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE queue_name = %s"
            " AND status IN ('todo', 'doing'))",
            (self.queue,),
        ).fetchone()
        return not (row and row[0])

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn(
            "bench.systems.procrastinate_sys",
            "worker",
            self.url,
            self.queue,
            str(self.batch),
            env=env,
        )


def make(backend: str, url: str, queue: str, **options: Any) -> ProcrastinateSystem:
    return ProcrastinateSystem(backend, url, queue, **options)


def main(argv: list[str]) -> None:
    _cmd, url, queue, concurrency = argv
    worker_app = make_app(url)

    async def go() -> None:
        async with worker_app.open_async():
            await worker_app.run_worker_async(
                queues=[queue],
                concurrency=int(concurrency),
                delete_jobs="successful",
                listen_notify=True,
                install_signal_handlers=True,
            )

    asyncio.run(go())


if __name__ == "__main__":
    main(sys.argv[1:])
