"""pgqueuer (Postgres), configured for throughput as its docs describe: one ``enqueue`` call
with lists for a bulk insert, ``optimize_autovacuum`` on its tables, a ``QueueManager`` that
dequeues ``batch_size`` jobs per round trip (the same batch the other systems claim), default
(durable) table durability like ferroq's. The worker uses the asyncpg driver, pgqueuer's
primary one (its psycopg driver holds the connection while it waits for notifications, which
costs about a second of latency per idle wake-up)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

import psycopg
from pgqueuer import PsycopgDriver, Queries, QueueManager

from bench.common import spawn
from bench.systems.base import System, dumps, probe, record_latency

if TYPE_CHECKING:
    import subprocess

CHUNK = 10_000


class PgqueuerSystem(System):
    name = "pgqueuer"

    def __init__(self, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self._db = psycopg.connect(url, autocommit=True)
        self._loop = asyncio.new_event_loop()
        self._aconn = self._run(psycopg.AsyncConnection.connect(url, autocommit=True))
        self._q = Queries(PsycopgDriver(self._aconn))
        self._first = 0

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def setup(self) -> None:
        if not self._run(self._q.has_table("pgqueuer")):
            self._run(self._q.install())
            self._run(self._q.optimize_autovacuum())

    def reset(self) -> None:
        self._db.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics RESTART IDENTITY")

    def close(self) -> None:
        self._run(self._aconn.close())
        self._loop.close()
        self._db.close()

    def enqueue_bulk(self, n: int) -> None:
        ids: list[int] = []
        for start in range(0, n, CHUNK):
            count = min(n, start + CHUNK) - start
            payloads = [dumps({"i": i}).encode() for i in range(start, start + count)]
            ids.extend(self._run(self._q.enqueue([self.queue] * count, payloads, [0] * count)))
        self._first = min(ids) if ids else 0

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for i in range(n):
                await self._q.enqueue(self.queue, dumps({"i": i}).encode())

        self._run(go())

    def enqueue_probe(self) -> None:
        self._run(self._q.enqueue(self.queue, dumps(probe()).encode()))

    def started(self) -> bool:
        row = self._db.execute(
            "SELECT status FROM pgqueuer WHERE id = %s", (self._first,)
        ).fetchone()
        return row is None or row[0] != "queued"

    def finished(self) -> bool:
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM pgqueuer WHERE entrypoint = %s)", (self.queue,)
        ).fetchone()
        return not (row and row[0])

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn(
            "bench.systems.pgqueuer_sys", "worker", self.url, self.queue, str(self.batch), env=env
        )


def make(backend: str, url: str, queue: str, **options: Any) -> PgqueuerSystem:
    return PgqueuerSystem(backend, url, queue, **options)


def main(argv: list[str]) -> None:
    _cmd, url, queue, batch = argv

    async def go() -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver

        conn = await asyncpg.connect(url)
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint(queue)
        async def noop(job: Any) -> None:
            if job.payload:
                record_latency(json.loads(job.payload))

        await qm.run(batch_size=int(batch))

    asyncio.run(go())


if __name__ == "__main__":
    main(sys.argv[1:])
