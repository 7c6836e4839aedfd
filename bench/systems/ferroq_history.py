"""ferroq with ``keep_history`` on (system ``ferroq+history``): every succeeded job leaves a
history record, written with its acknowledgement. Everything else is ``ferroq``'s (the same
jobs, worker and options), so the two side by side give the history's cost on the drain."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import attrs

from bench.common import spawn
from bench.systems.ferroq_sys import FerroqSystem, runtime_for
from ferroq_core import WorkerConfig, WorkerLoop

if TYPE_CHECKING:
    import subprocess


class HistorySystem(FerroqSystem):
    name = "ferroq+history"

    def reset(self) -> None:
        super().reset()
        with self._engine().begin() as conn:
            conn.exec_driver_sql("DELETE FROM ferroq_job_history")

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn("bench.systems.ferroq_history", self.url, self.queue, str(self.batch), env=env)


def make_history(backend: str, url: str, queue: str, **options: Any) -> HistorySystem:
    return HistorySystem(backend, url, queue, **options)


# -- the worker process ----------------------------------------------------------------------
def main(argv: list[str]) -> None:
    url, queue, batch = argv
    rt = runtime_for(url)
    rt = attrs.evolve(rt, config=attrs.evolve(rt.config, keep_history=True))
    try:
        WorkerLoop(rt, WorkerConfig(queues=(queue,), concurrency=int(batch))).run()
    finally:
        rt.close()


if __name__ == "__main__":
    main(sys.argv[1:])
