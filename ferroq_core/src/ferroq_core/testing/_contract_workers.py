"""Contract checks for the worker registry and the restart signal (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ferroq_core.fleet import WorkerRegistration
from ferroq_core.records import Lease
from ferroq_core.storage.workers import WorkerRegistry
from ferroq_core.testing._contract_support import (
    HOST,
    claim_one,
    enqueue_one,
    wait_until,
    worker_id,
)

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["WorkerRegistryContract"]


def _registration(worker: str, **fields: object) -> WorkerRegistration:
    values: dict[str, object] = {
        "id": worker,
        "role": "worker",
        "host": HOST,
        "pid": 4242,
        "queues": ("high", "default"),
        "concurrency": 4,
        "visibility_timeout": 60.0,
        "version": "9.9.9",
    }
    values.update(fields)
    return WorkerRegistration(**values)  # type: ignore[arg-type]


def _ids(backend: Backend) -> list[str]:
    return [w.id for w in backend.list_workers()]


class WorkerRegistryContract:
    """register_worker, beat_worker, list_workers, reap_workers, the restart signal."""

    def test_is_a_worker_registry(self, backend: Backend) -> None:
        assert isinstance(backend, WorkerRegistry)

    def test_a_registered_worker_is_listed_with_what_it_wrote(self, backend: Backend) -> None:
        worker = worker_id()
        before = backend.now()
        started = backend.register_worker(_registration(worker, supervisor="sup:1:x"))
        assert before - timedelta(seconds=1) <= started <= backend.now()
        (info,) = backend.list_workers()
        assert (info.id, info.role, info.host, info.pid) == (worker, "worker", HOST, 4242)
        assert (info.queues, info.concurrency, info.version) == (("high", "default"), 4, "9.9.9")
        assert (info.visibility_timeout, info.supervisor) == (60.0, "sup:1:x")
        assert info.started_at == started
        assert info.heartbeat_at >= started
        assert info.jobs == ()

    def test_a_listing_shows_the_jobs_each_worker_holds(self, backend: Backend) -> None:
        busy, idle = worker_id(), worker_id()
        for worker in (busy, idle):
            backend.register_worker(_registration(worker))
        job_id = enqueue_one(backend, "default")
        row = claim_one(backend, "default", busy)
        by_id = {w.id: w for w in backend.list_workers()}
        (held,) = by_id[busy].jobs
        assert (held.id, held.job_type, held.queue) == (job_id, row.job_type, "default")
        assert held.claimed_at == row.claimed_at
        assert by_id[idle].jobs == ()

    def test_beat_extends_the_leases_and_the_workers_heartbeat(self, backend: Backend) -> None:
        worker = worker_id()
        backend.register_worker(_registration(worker))
        first = backend.list_workers()[0].heartbeat_at
        job_id = enqueue_one(backend, "default")
        row = claim_one(backend, "default", worker)
        wait_until(lambda: backend.now() > first, what="the clock to move")
        stale = Lease(row.id, worker, row.attempts + 1)
        beat = backend.beat_worker(worker, [row.lease, stale])
        assert beat.held == {job_id}
        assert beat.registered
        assert beat.restart_at is None
        assert backend.list_workers()[0].heartbeat_at > first
        job = backend.get_job(job_id)
        assert job is not None
        assert job.heartbeat_at is not None
        assert job.heartbeat_at > first
        assert backend.beat_worker(worker, []).held == frozenset()

    def test_deregistered_workers_are_gone_and_their_beat_says_so(self, backend: Backend) -> None:
        worker = worker_id()
        backend.register_worker(_registration(worker))
        assert backend.deregister_worker(worker)
        assert not backend.deregister_worker(worker)
        assert _ids(backend) == []
        assert not backend.beat_worker(worker, []).registered

    def test_registering_again_keeps_the_given_start(self, backend: Backend) -> None:
        worker = worker_id()
        started = backend.register_worker(_registration(worker))
        backend.deregister_worker(worker)
        again = backend.register_worker(_registration(worker, started_at=started, pid=7))
        assert again == started
        (info,) = backend.list_workers()
        assert (info.started_at, info.pid) == (started, 7)

    def test_a_silent_worker_is_not_live_and_is_reaped(self, backend: Backend) -> None:
        live, silent = worker_id(), worker_id()
        backend.register_worker(_registration(live))
        backend.register_worker(_registration(silent, visibility_timeout=0.3))
        wait_until(lambda: _ids(backend) == [live], what="the silent worker to drop out")
        assert set(backend.registered_heartbeats()) == {live, silent}
        reaped = backend.reap_workers()
        assert [w.id for w in reaped] == [silent]
        assert set(backend.registered_heartbeats()) == {live}
        assert backend.reap_workers() == []

    def test_restart_is_a_time_every_beat_reads(self, backend: Backend) -> None:
        worker = worker_id()
        started = backend.register_worker(_registration(worker))
        assert backend.restart_requested_at() is None
        wait_until(lambda: backend.now() > started, what="the clock to move")
        sent = backend.request_restart()
        assert sent > started
        assert backend.restart_requested_at() == sent
        assert backend.beat_worker(worker, []).restart_at == sent
        wait_until(lambda: backend.now() > sent, what="the clock to move")
        later = backend.request_restart()
        assert later > sent
        assert backend.beat_worker(worker, []).restart_at == later
