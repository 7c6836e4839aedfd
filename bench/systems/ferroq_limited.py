"""ferroq with flow control (issue 22), for its cost on the drain in the same run as ``ferroq``.

Every system here dispatches the same jobs as ``ferroq`` with one of 100 tenants each (round
robin), and differs only in the limits of its queue:

- ``ferroq+keyed``: no limits (the plain claim): what the tenants alone cost.
- ``ferroq+limited``: at most 1 running per tenant: with 100 tenants and the worker's 100
  slots, the limit binds all the time (the limited claim skips every busy tenant).
- ``ferroq+unreached``: at most 10,000 running per tenant: declared, never reached (the
  limited claim's bookkeeping alone).
- ``ferroq+elsewhere``: no limit on the queue, one on a job type it holds no job of (a type
  limit binds the queues holding its jobs; the others keep the plain claim).

And ``ferroq+groups``: ``ferroq`` exactly (no tenants, the plain claim), but with the limited
claim's index ``ferroq_jobs_groups`` present, as in a database where some other queue has a
limit: what the index costs every dispatch and claim (it exists only where limits do).
"""

from __future__ import annotations

from typing import Any

from bench.systems.ferroq_sys import CHUNK, BenchNoop, FerroqSystem
from ferroq_core import dispatch_many
from ferroq_core.flowlimits import LimitRule

__all__ = ["make_elsewhere", "make_groups", "make_keyed", "make_limited", "make_unreached"]

TENANTS = 100
#: The job type ``ferroq+elsewhere`` limits (no job of it is ever dispatched).
ELSEWHERE = "bench:elsewhere"


class LimitedSystem(FerroqSystem):
    def __init__(
        self,
        name: str,
        per_tenant: int | None,
        backend: str,
        url: str,
        queue: str,
        *,
        elsewhere: bool = False,
        **o: Any,
    ) -> None:
        super().__init__(backend, url, queue, **o)
        self.name = name
        self._per_tenant = per_tenant
        self._elsewhere = elsewhere

    def reset(self) -> None:
        super().reset()
        # The queue is this run's own, but its limits would stay in the shared database.
        self.rt.backend.delete_limit("queue", self.queue)
        self.rt.backend.delete_limit("type", ELSEWHERE)

    def enqueue_bulk(self, n: int) -> None:
        """The jobs, after the queue's limit (the driver resets the queue after setup)."""
        if self._per_tenant is not None:
            rule = LimitRule("queue", self.queue, concurrency=self._per_tenant, per_tenant=True)
            self.rt.backend.set_limit(rule)
        if self._elsewhere:
            self.rt.backend.set_limit(LimitRule("type", ELSEWHERE, concurrency=1))
        ids: list[int] = []
        for start in range(0, n, CHUNK):
            jobs = [
                BenchNoop(i=i).on_queue(self.queue).for_tenant(f"k{i % TENANTS}")
                for i in range(start, min(n, start + CHUNK))
            ]
            ids.extend(dispatch_many(jobs, runtime=self.rt))
        self._first = min(ids) if ids else 0


def make_keyed(backend: str, url: str, queue: str, **options: Any) -> LimitedSystem:
    return LimitedSystem("ferroq+keyed", None, backend, url, queue, **options)


def make_limited(backend: str, url: str, queue: str, **options: Any) -> LimitedSystem:
    return LimitedSystem("ferroq+limited", 1, backend, url, queue, **options)


def make_unreached(backend: str, url: str, queue: str, **options: Any) -> LimitedSystem:
    return LimitedSystem("ferroq+unreached", 10_000, backend, url, queue, **options)


def make_elsewhere(backend: str, url: str, queue: str, **options: Any) -> LimitedSystem:
    return LimitedSystem("ferroq+elsewhere", None, backend, url, queue, elsewhere=True, **options)


class GroupsIndexSystem(FerroqSystem):
    """``ferroq`` with the groups index made (a limit on a queue no one serves)."""

    name = "ferroq+groups"

    def setup(self) -> None:
        super().setup()
        self.rt.backend.set_limit(LimitRule("queue", f"{self.queue}-elsewhere", concurrency=1))

    def close(self) -> None:
        # Postgres runs every system of a bench run in one database: leave it as found.
        self.rt.backend.delete_limit("queue", f"{self.queue}-elsewhere")
        with self._engine().begin() as conn:
            conn.exec_driver_sql("DROP INDEX IF EXISTS ferroq_jobs_groups")
        super().close()


def make_groups(backend: str, url: str, queue: str, **options: Any) -> GroupsIndexSystem:
    return GroupsIndexSystem(backend, url, queue, **options)
