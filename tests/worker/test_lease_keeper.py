"""The heartbeat stops beating (and reporting) a lease once it learns the lease was lost."""

from __future__ import annotations

from types import SimpleNamespace

from ferroq_core import Lease, WorkerConfig
from ferroq_core.worker.leases import LeaseKeeper


class _Backend:
    def __init__(self, held: set[int]) -> None:
        self.held = held
        self.beaten: list[set[int]] = []

    def heartbeat(self, leases: list[Lease]) -> set[int]:
        ids = {lease.id for lease in leases}
        self.beaten.append(ids)
        return ids & self.held


def test_a_lost_lease_is_reported_once_and_not_beaten_again() -> None:
    kept, lost = Lease(1, "h:1:a", 1), Lease(2, "h:1:a", 1)
    holding = [kept, lost]
    backend = _Backend(held={1})
    reports: list[set[int]] = []
    keeper = LeaseKeeper(
        SimpleNamespace(backend=backend),  # type: ignore[arg-type]
        WorkerConfig(visibility_timeout=5),
        lambda: list(holding),
        reports.append,
    )
    keeper.beat()
    keeper.beat()
    assert reports == [{2}]
    assert backend.beaten == [{1, 2}, {1}]
    # The job with the lost lease ends; a new claim of the same id is a new lease and is beaten.
    holding[:] = [kept, Lease(2, "h:1:a", 2)]
    backend.held = {1, 2}
    keeper.beat()
    assert backend.beaten[-1] == {1, 2}
    assert reports == [{2}]


def test_a_job_settled_while_its_heartbeat_was_on_the_way_is_not_reported_lost() -> None:
    """The heartbeat sends the leases held when it starts; a job acknowledged meanwhile (its
    row deleted) comes back unmatched, but it was not reaped: nothing to report."""
    done, running = Lease(1, "h:1:a", 1), Lease(2, "h:1:a", 1)
    holding = [done, running]
    reports: list[set[int]] = []

    class Settling(_Backend):
        def heartbeat(self, leases: list[Lease]) -> set[int]:
            ids = super().heartbeat(leases)
            holding.remove(done)  # acknowledged while the heartbeat was in flight
            return ids - {done.id}

    keeper = LeaseKeeper(
        SimpleNamespace(backend=Settling(held={1, 2})),  # type: ignore[arg-type]
        WorkerConfig(visibility_timeout=5),
        lambda: list(holding),
        reports.append,
    )
    keeper.beat()
    assert reports == []
