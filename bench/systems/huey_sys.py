"""Huey with its SQLite storage (``SqliteHuey``), configured for throughput as its docs
describe: results off (no result rows to write), a thread consumer with as many workers as
there are cores and a short polling delay. Huey has no bulk enqueue and dequeues one task per
transaction; its default ``synchronous`` is SQLite's (FULL in WAL mode) -- its ``fsync``
option only offers FULL or OFF, so it cannot be set to ferroq's NORMAL."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, Any

from huey import SqliteHuey

from bench.common import spawn
from bench.systems.base import System, record_latency

if TYPE_CHECKING:
    import subprocess


def make_huey(path: str, queue: str) -> tuple[SqliteHuey, Any]:
    huey = SqliteHuey(name=queue, filename=path, results=False)

    @huey.task(name="bench_noop")
    def bench_noop(i: int = 0, t: float | None = None) -> None:
        if t is not None:
            record_latency({"t": t})

    return huey, bench_noop


class HueySystem(System):
    name = "huey"

    def __init__(self, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self.path = url.split(":///", 1)[1]
        self.huey, self.task = make_huey(self.path, queue)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        self._first = 0

    def reset(self) -> None:
        self._db.execute("DELETE FROM task")

    def close(self) -> None:
        self._db.close()
        self.huey.storage.close()

    def enqueue_bulk(self, n: int) -> None:
        # No bulk API: one enqueue (one transaction) per task.
        self.enqueue_single(n)
        self._first = int(self._db.execute("SELECT min(id) FROM task").fetchone()[0] or 0)

    def enqueue_single(self, n: int) -> None:
        for i in range(n):
            self.task(i=i)

    def enqueue_probe(self) -> None:
        self.task(t=time.time())

    def started(self) -> bool:
        row = self._db.execute("SELECT 1 FROM task WHERE id = ?", (self._first,)).fetchone()
        return row is None

    def finished(self) -> bool:
        row = self._db.execute("SELECT EXISTS (SELECT 1 FROM task WHERE queue = ?)", (self.queue,))
        return not row.fetchone()[0]

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn("bench.systems.huey_sys", "worker", self.path, self.queue, env=env)


def make(backend: str, url: str, queue: str, **options: Any) -> HueySystem:
    return HueySystem(backend, url, queue, **options)


def main(argv: list[str]) -> None:
    _cmd, path, queue = argv
    # Huey names a task after its module: build it from the imported module, not __main__.
    from bench.systems import huey_sys

    huey, _task = huey_sys.make_huey(path, queue)
    consumer = huey.create_consumer(
        workers=os.cpu_count() or 2,
        worker_type="thread",
        periodic=False,
        initial_delay=0.001,
        backoff=1.15,
        max_delay=0.05,
        graceful_signal="TERM",
    )
    consumer.run()


if __name__ == "__main__":
    main(sys.argv[1:])
