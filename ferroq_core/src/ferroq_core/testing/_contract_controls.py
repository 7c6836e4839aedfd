"""Contract checks for pauses and cancel requests (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.control_records import PauseScope
from ferroq_core.storage.controls import Beat
from ferroq_core.testing._contract_support import claim_one, enqueue_one, wait_until, worker_id

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["ControlContract"]


def _claimed_ids(backend: Backend, queues: list[str], limit: int = 100) -> list[int]:
    return [row.id for row in backend.claim(queues, worker_id(), limit)]


class ControlContract:
    """pause, resume, pauses, the claim's and the idle wait's respect of them; cancel_jobs,
    heartbeat_cancels, finish_cancelled and sweep_cancelled."""

    # -- pauses ------------------------------------------------------------------------------
    def test_pause_is_stored_once_and_listed(self, backend: Backend) -> None:
        first = backend.pause(PauseScope.QUEUE, "q", reason="deploy")
        assert first is not None
        assert (first.scope, first.name, first.reason) == (PauseScope.QUEUE, "q", "deploy")
        assert first.paused_at.utcoffset() is not None
        assert backend.pause(PauseScope.QUEUE, "q", reason="again") is None, "already paused"
        backend.pause(PauseScope.JOB_TYPE, "contract:Slow")
        backend.pause(PauseScope.TENANT, "t1")
        listed = [(p.scope, p.name) for p in backend.pauses()]
        assert listed == [
            (PauseScope.JOB_TYPE, "contract:Slow"),
            (PauseScope.QUEUE, "q"),
            (PauseScope.TENANT, "t1"),
        ]
        assert [p.reason for p in backend.pauses() if p.name == "q"] == ["deploy"]
        removed = backend.resume(PauseScope.QUEUE, "q")
        assert removed is not None
        assert removed.reason == "deploy"
        assert backend.resume(PauseScope.QUEUE, "q") is None, "nothing left to resume"
        assert len(backend.pauses()) == 2

    def test_a_paused_queue_claims_nothing_until_resumed(self, backend: Backend) -> None:
        held = [enqueue_one(backend, "held") for _ in range(3)]
        free = enqueue_one(backend, "free")
        backend.pause(PauseScope.QUEUE, "held")
        assert _claimed_ids(backend, ["held", "free"]) == [free]
        assert _claimed_ids(backend, ["held"]) == []
        assert backend.get_stats().for_queue("held").pending == 3, "rows untouched"
        backend.resume(PauseScope.QUEUE, "held")
        assert sorted(_claimed_ids(backend, ["held"])) == held

    def test_paused_job_types_and_tenants_are_skipped(self, backend: Backend) -> None:
        slow = enqueue_one(backend, "q", job_type="contract:Slow")
        t1 = enqueue_one(backend, "q", tenant_id="t1")
        plain = enqueue_one(backend, "q")
        t2 = enqueue_one(backend, "q", tenant_id="t2")
        backend.pause(PauseScope.JOB_TYPE, "contract:Slow")
        backend.pause(PauseScope.TENANT, "t1")
        assert _claimed_ids(backend, ["q"], limit=1) == [plain], "skips to the first eligible"
        assert _claimed_ids(backend, ["q"]) == [t2]
        backend.resume(PauseScope.TENANT, "t1")
        assert _claimed_ids(backend, ["q"]) == [t1]
        backend.resume(PauseScope.JOB_TYPE, "contract:Slow")
        assert _claimed_ids(backend, ["q"]) == [slow]

    def test_a_pause_of_another_name_changes_nothing(self, backend: Backend) -> None:
        job = enqueue_one(backend, "q", job_type="contract:Other", tenant_id="t9")
        backend.pause(PauseScope.QUEUE, "q2")
        backend.pause(PauseScope.JOB_TYPE, "q")
        backend.pause(PauseScope.TENANT, "contract:Other")
        assert _claimed_ids(backend, ["q"]) == [job], "a pause matches its scope only"

    def test_idle_wait_does_not_end_for_paused_jobs(self, backend: Backend) -> None:
        enqueue_one(backend, "held")
        enqueue_one(backend, "q", tenant_id="t1")
        backend.pause(PauseScope.QUEUE, "held")
        backend.pause(PauseScope.TENANT, "t1")
        # Due jobs that no claim would take must not end an idle wait at once (a busy loop).
        # The first wait may end for the dispatches above (or a listener connecting).
        wait_until(lambda: backend.wait_for_jobs(["held", "q"], 0.3) is False, what="a quiet wait")
        assert backend.wait_for_jobs(["held", "q"], 0.3) is False

    def test_resume_ends_idle_waits(self, backend: Backend) -> None:
        enqueue_one(backend, "held")
        backend.pause(PauseScope.QUEUE, "held")
        backend.wait_for_jobs(["held"], 0.05)  # settle what this thread has seen
        backend.resume(PauseScope.QUEUE, "held")
        assert backend.wait_for_jobs(["held"], 10.0) is True

    # -- cancellations -----------------------------------------------------------------------
    def test_cancel_removes_pending_and_delayed_jobs(self, backend: Backend) -> None:
        due = enqueue_one(backend, "q")
        later = enqueue_one(backend, "q", delay=3600)
        kept = enqueue_one(backend, "q")
        result = backend.cancel_jobs([due, later, 999_999])
        assert sorted(r.id for r in result.removed) == [due, later]
        assert {r.queue for r in result.removed} == {"q"}
        assert result.requested == ()
        assert backend.get_job(due) is None
        assert backend.get_job(later) is None
        assert _claimed_ids(backend, ["q"]) == [kept]
        assert backend.cancel_jobs([due]).count == 0, "already gone"

    def test_cancel_by_queue_and_type(self, backend: Backend) -> None:
        a = enqueue_one(backend, "a", job_type="contract:A")
        enqueue_one(backend, "a", job_type="contract:B")
        enqueue_one(backend, "b", job_type="contract:A")
        result = backend.cancel_jobs(None, queue="a", job_type="contract:A")
        assert [r.id for r in result.removed] == [a]
        assert len(backend.cancel_jobs(None, job_type="contract:A").removed) == 1
        assert len(backend.cancel_jobs(None, queue="a").removed) == 1
        assert backend.get_stats().total == 0

    def test_cancel_of_a_running_job_travels_in_the_heartbeat(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        enqueue_one(backend, "q")
        owner = worker_id()
        first, second = backend.claim(["q"], owner, 2)
        leases = [first.lease, second.lease]
        assert backend.heartbeat_cancels(leases) == Beat(held=frozenset({first.id, second.id}))
        result = backend.cancel_jobs([first.id])
        assert result.removed == ()
        assert result.requested == (first.id,)
        assert backend.cancel_jobs([first.id]).requested == (first.id,), "asked again: same"
        beat = backend.heartbeat_cancels(leases)
        assert beat.held == {first.id, second.id}
        assert beat.stop == {first.id}
        assert backend.get_job(first.id) is not None, "a running job is only asked to stop"
        assert backend.finish_cancelled(first.lease)
        assert backend.get_job(first.id) is None
        assert not backend.finish_cancelled(first.lease), "fenced: only once"
        assert backend.heartbeat_cancels([second.lease]).stop == frozenset()
        assert backend.heartbeat_cancels([]) == Beat(held=frozenset())

    def test_a_cancelled_job_given_back_is_never_claimed_and_swept(self, backend: Backend) -> None:
        job = enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        backend.cancel_jobs([job])
        assert backend.requeue([row.lease]) == {job}, "its worker died or stopped first"
        assert _claimed_ids(backend, ["q"]) == [], "the claim skips a job with a request"
        wait_until(lambda: backend.wait_for_jobs(["q"], 0.2) is False, what="a quiet wait")
        swept = backend.sweep_cancelled()
        assert [r.id for r in swept] == [job]
        assert backend.get_job(job) is None
        assert backend.sweep_cancelled() == []
        other = enqueue_one(backend, "q")
        assert _claimed_ids(backend, ["q"]) == [other], "its request is gone too"

    def test_sweep_takes_cancelled_claims_of_dead_workers(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        enqueue_one(backend, "q")
        dead = worker_id(pid=999_998)
        asked, other = backend.claim(["q"], dead, 2)
        backend.cancel_jobs([asked.id])
        assert backend.sweep_cancelled() == [], "claimed by a worker not known to be dead"
        assert backend.sweep_cancelled([worker_id()]) == []
        swept = backend.sweep_cancelled([dead])
        assert [(r.id, r.status) for r in swept] == [(asked.id, "claimed")]
        assert backend.get_job(asked.id) is None
        assert backend.get_job(other.id) is not None, "only jobs with a cancel request"

    def test_sweep_drops_requests_of_finished_jobs(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        backend.cancel_jobs([row.id])
        assert backend.complete([row.lease]) == {row.id}, "it finished anyway"
        assert backend.sweep_cancelled() == []
        # The request went with the sweep: a new job of any id is claimed normally.
        fresh = enqueue_one(backend, "q")
        wait_until(lambda: _claimed_ids(backend, ["q"]) == [fresh], what="the fresh job")

    def test_failed_jobs_are_not_cancelled(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        assert backend.fail(row.lease, error="boom")
        assert backend.cancel_jobs([row.id]).count == 0
        stored = backend.get_job(row.id)
        assert stored is not None
        assert stored.status == "failed"
