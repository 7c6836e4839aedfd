"""ferroq dispatching jobs with a unique rule, for the rule's cost beside plain ``ferroq``.

``ferroq+unique``: every job under ``Unique("until_started", fields=("i",))`` (a key hashed
from a payload field, settled through ``ferroq_jobs_unique``); ``ferroq+unique_period``: under
``Unique(period=3600, fields=("i",))`` (a key row in ``ferroq_unique_keys`` per job). Every
key is distinct, so every job is inserted and runs: the figures are the price of the rule, not
of deduplication. The worker and the jobs are ``ferroq``'s.
"""

from __future__ import annotations

import time
from typing import Any

from bench.systems.ferroq_sys import CHUNK, BenchNoop, FerroqSystem
from ferroq_core import Unique, dispatch, dispatch_many

#: system name -> the rule every job is dispatched under
RULES = {
    "ferroq+unique": Unique("until_started", fields=("i",)),
    "ferroq+unique_period": Unique(period=3600, fields=("i",)),
}


class UniqueSystem(FerroqSystem):
    def __init__(self, name: str, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self.name = name
        self.rule = RULES[name]

    def reset(self) -> None:
        super().reset()
        with self._engine().begin() as conn:
            conn.exec_driver_sql("DELETE FROM ferroq_unique_keys")

    def enqueue_bulk(self, n: int) -> None:
        ids: list[int] = []
        for start in range(0, n, CHUNK):
            jobs = [
                BenchNoop(i=i).on_queue(self.queue).with_unique(self.rule)
                for i in range(start, min(n, start + CHUNK))
            ]
            ids.extend(dispatch_many(jobs, runtime=self.rt))
        self._first = min(ids) if ids else 0

    def enqueue_single(self, n: int) -> None:
        for i in range(n):
            dispatch(BenchNoop(i=i).on_queue(self.queue).with_unique(self.rule), runtime=self.rt)

    def enqueue_probe(self) -> None:
        job = BenchNoop(i=time.monotonic_ns(), t=time.time())
        dispatch(job.on_queue(self.queue).with_unique(self.rule), runtime=self.rt)


def make_unique(backend: str, url: str, queue: str, **options: Any) -> UniqueSystem:
    return UniqueSystem("ferroq+unique", backend, url, queue, **options)


def make_unique_period(backend: str, url: str, queue: str, **options: Any) -> UniqueSystem:
    return UniqueSystem("ferroq+unique_period", backend, url, queue, **options)
