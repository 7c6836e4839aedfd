"""ferroq with results stored (system ``ferroq+results``): the same drain as ``ferroq``, but
the job type sets ``store_result`` and returns a small value, so every acknowledgement also
writes a row of ``ferroq_results`` (docs/results.md). Compared with ``ferroq`` in the same
run, it is the cost of storing results on the drain."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import attrs

from bench.common import spawn
from bench.systems.ferroq_sys import FerroqSystem, runtime_for
from ferroq_core import Job, WorkerConfig, WorkerLoop

if TYPE_CHECKING:
    import subprocess


@attrs.define
class BenchResult(Job):
    """A job whose small return value is stored."""

    job_name = "bench.result"
    max_attempts = 3
    store_result = True

    i: int = 0

    def handle(self) -> dict[str, int]:
        return {"i": self.i, "ok": 1}


class ResultsSystem(FerroqSystem):
    name = "ferroq+results"
    job = BenchResult

    def reset(self) -> None:
        super().reset()
        with self._engine().begin() as conn:
            conn.exec_driver_sql("DELETE FROM ferroq_results")

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn("bench.systems.ferroq_results", self.url, self.queue, str(self.batch), env=env)


def make_results(backend: str, url: str, queue: str, **options: Any) -> ResultsSystem:
    return ResultsSystem(backend, url, queue, **options)


def main(argv: list[str]) -> None:
    url, queue, batch = argv
    rt = runtime_for(url)
    try:
        WorkerLoop(rt, WorkerConfig(queues=(queue,), concurrency=int(batch))).run()
    finally:
        rt.close()


if __name__ == "__main__":
    main(sys.argv[1:])
