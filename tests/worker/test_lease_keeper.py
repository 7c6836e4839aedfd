"""The heartbeat stops beating (and reporting) a lease once it learns the lease was lost; a
reaper pass takes back the claims of a dead worker on this host."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING

from ferroq_core import EnqueueRequest, Lease, WorkerConfig
from ferroq_core.storage.controls import Beat
from ferroq_core.storage.rules import is_orphaned
from ferroq_core.worker.identity import hostname
from ferroq_core.worker.leases import LeaseKeeper

if TYPE_CHECKING:
    from ferroq_core import Runtime


class _Backend:
    def __init__(self, held: set[int]) -> None:
        self.held = held
        self.beaten: list[set[int]] = []

    def heartbeat(self, leases: list[Lease]) -> set[int]:
        ids = {lease.id for lease in leases}
        self.beaten.append(ids)
        return ids & self.held

    def heartbeat_cancels(self, leases: list[Lease]) -> Beat:
        # The worker's heartbeat: the same round trip, with no cancel request here.
        return Beat(held=frozenset(self.heartbeat(leases)))


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


def test_a_reaper_pass_takes_back_a_dead_worker_on_this_host_once_it_stops_heartbeating(
    runtime: Runtime,
) -> None:
    # A pid that is gone here; while its claims are heartbeated (a live worker in another pid
    # namespace under the same host name) they are left alone.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(60)
    backend = runtime.backend
    holder = f"{hostname()}:{child.pid}:deadbeef"
    ids = [r.id for r in backend.enqueue([_request(), _request()])]
    rows = backend.claim(["default"], holder, 2)
    config = WorkerConfig(visibility_timeout=60, heartbeat_interval=0.5)
    keeper = LeaseKeeper(runtime, config, lambda: [])
    keeper.reap()
    assert {r.status for r in backend.list_jobs()} == {"claimed"}, "heartbeated just now"
    deadline = time.monotonic() + 10
    while backend.get_stats().claimed and time.monotonic() < deadline:
        time.sleep(0.2)
        keeper.reap()
    for job_id in ids:
        row = backend.get_job(job_id)
        assert row is not None
        # Two claims of a dead process: each gets its attempt back.
        assert (row.status, row.attempts) == ("pending", 0)
        assert is_orphaned(row.error)
    assert len(rows) == 2


def _request() -> EnqueueRequest:
    return EnqueueRequest(queue="default", job_type="test.record", payload='{"tag": "x"}')
