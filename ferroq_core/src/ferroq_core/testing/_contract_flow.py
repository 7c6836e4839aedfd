"""Contract checks for flow control (:class:`~ferroq_core.storage.flow.FlowStore` and the
limited claim): concurrency limits count live leases only, a busy key never stalls the others,
rate limits hold in a sliding window without spending attempts, fair queues take limit keys in
turn, a per-key limit counts each job's limit key (its tenant when none was given), and an idle
wait behind a rate limit ends when the window frees (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from ferroq_core.control_records import PauseScope
from ferroq_core.errors import InvalidLimit
from ferroq_core.flowlimits import LimitRule
from ferroq_core.records import JobState
from ferroq_core.testing._contract_support import JOB_TYPE, enqueue_one, wait_until, worker_id

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["FlowContract"]

OTHER_TYPE = "contract:Other"


def _tenants(backend: Backend, queue: str, want: int, worker: str | None = None) -> list[str]:
    rows = backend.claim([queue], worker or worker_id(), want)
    return sorted(str(r.tenant_id) for r in rows)


def _claimed(backend: Backend, queue: str, want: int) -> list[int]:
    return sorted(r.id for r in backend.claim([queue], worker_id(), want))


class FlowContract:
    """Limits declared, counted and enforced in the claim; fair queues; the blocked wait."""

    def test_limits_are_stored_listed_replaced_and_deleted(self, backend: Backend) -> None:
        assert backend.list_limits() == []
        rule = LimitRule("type", JOB_TYPE, concurrency=2, rate=(5, 1.5), per_tenant=True)
        backend.set_limit(rule)
        backend.set_limit(LimitRule("queue", "q", fair=True))
        assert backend.list_limits() == [LimitRule("queue", "q", fair=True), rule]
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=3))
        assert backend.list_limits()[1] == LimitRule("type", JOB_TYPE, concurrency=3)
        assert backend.delete_limit("queue", "q") is True
        assert backend.delete_limit("queue", "q") is False
        assert [r.scope for r in backend.list_limits()] == ["type"]

    def test_a_busy_tenant_at_its_limit_is_skipped_and_the_others_are_taken(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=2, per_tenant=True))
        # More of a's jobs than the claim reads at the head of the queue: the others are
        # found past them.
        for _ in range(100):
            enqueue_one(backend, "q", tenant_id="a")
        enqueue_one(backend, "q", tenant_id="b")
        enqueue_one(backend, "q")  # no tenant: its own key
        assert _tenants(backend, "q", 10) == ["None", "a", "a", "b"]
        assert backend.claim(["q"], worker_id(), 10) == []
        stats = backend.get_stats()
        assert (stats.pending, stats.claimed) == (98, 4)

    def test_the_limited_claim_takes_nothing_a_pause_covers(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=5, per_tenant=True))
        a = enqueue_one(backend, "q", tenant_id="a")
        b = enqueue_one(backend, "q", tenant_id="b")
        backend.pause(PauseScope.TENANT, "a")
        assert [r.id for r in backend.claim(["q"], worker_id(), 10)] == [b]
        d = enqueue_one(backend, "q", tenant_id="d")
        backend.pause(PauseScope.QUEUE, "q")
        assert backend.claim(["q"], worker_id(), 10) == []
        backend.resume(PauseScope.QUEUE, "q")
        backend.resume(PauseScope.TENANT, "a")
        assert sorted(r.id for r in backend.claim(["q"], worker_id(), 10)) == sorted([a, d])

    def test_a_slot_frees_when_its_job_ends_or_its_lease_is_reaped_and_not_before(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=1))
        for _ in range(3):
            enqueue_one(backend, "q")
        (first,) = backend.claim(["q"], worker_id(), 5)
        assert backend.claim(["q"], worker_id(), 5) == []
        assert backend.complete([first.lease]) == {first.id}
        (second,) = backend.claim(["q"], worker_id(), 5)
        # A worker that vanished: its slot stays taken until the reaper takes the lease back.
        assert backend.reap(3600.0).requeued == ()
        assert backend.claim(["q"], worker_id(), 5) == []
        wait_until(lambda: backend.reap(0.05).requeued == (second.id,), what="the reap")
        assert len(backend.claim(["q"], worker_id(), 5)) == 1

    def test_per_type_and_per_queue_limits_count_their_own_jobs(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("type", OTHER_TYPE, concurrency=1))
        backend.set_limit(LimitRule("queue", "q", concurrency=3))
        for _ in range(3):
            enqueue_one(backend, "q", job_type=OTHER_TYPE)
            enqueue_one(backend, "q")
            enqueue_one(backend, "free")
        rows = backend.claim(["q", "free"], worker_id(), 10)
        by_queue = Counter(r.queue for r in rows)
        assert by_queue == {"q": 3, "free": 3}
        assert Counter(r.job_type for r in rows if r.queue == "q")[OTHER_TYPE] == 1

    def test_a_type_limit_binds_its_jobs_in_every_queue_and_nothing_else(
        self, backend: Backend
    ) -> None:
        # A backend may keep the plain claim for queues without the limited type's jobs (it
        # then leaves that type's jobs alone); the limit still spans every queue.
        backend.set_limit(LimitRule("type", OTHER_TYPE, concurrency=1))
        enqueue_one(backend, "a", job_type=OTHER_TYPE)
        (running,) = backend.claim(["a"], worker_id(), 5)
        free = [enqueue_one(backend, "b") for _ in range(3)]
        assert sorted(r.id for r in backend.claim(["b"], worker_id(), 2)) == free[:2]
        # The limited type's job lands in "b" (which held none of its jobs) while its one
        # slot is taken in "a": not claimed, the other job of "b" is.
        limited = enqueue_one(backend, "b", job_type=OTHER_TYPE)
        assert [r.id for r in backend.claim(["b"], worker_id(), 5)] == [free[2]]
        assert backend.claim(["b"], worker_id(), 5) == []
        assert backend.complete([running.lease]) == {running.id}
        assert [r.id for r in backend.claim(["b"], worker_id(), 5)] == [limited]

    def test_a_rate_limit_holds_jobs_in_its_window_without_spending_attempts(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, rate=(3, 1.0)))
        ids = [enqueue_one(backend, "q") for _ in range(5)]
        assert len(backend.claim(["q"], worker_id(), 10)) == 3
        assert backend.claim(["q"], worker_id(), 10) == []
        for job_id in ids[3:]:
            row = backend.get_job(job_id)
            assert row is not None
            assert (row.status, row.attempts) == ("pending", 0)
        # The window slides: once the first starts are a second old, two more may start.
        rows = wait_until(lambda: backend.claim(["q"], worker_id(), 10), what="the window")
        assert len(rows) == 2

    def test_a_rate_limit_per_tenant_gives_each_tenant_its_budget(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, rate=(1, 60.0), per_tenant=True))
        for tenant in ("a", "a", "b", "b"):
            enqueue_one(backend, "q", tenant_id=tenant)
        assert _tenants(backend, "q", 10) == ["a", "b"]
        assert backend.claim(["q"], worker_id(), 10) == []

    def test_a_fair_queue_takes_tenants_in_turn_within_a_priority(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("queue", "q", fair=True))
        for _ in range(30):
            enqueue_one(backend, "q", tenant_id="a")
        enqueue_one(backend, "q", tenant_id="b")
        enqueue_one(backend, "q", tenant_id="c", priority=1)  # a lower priority waits
        assert _tenants(backend, "q", 2) == ["a", "b"]
        assert _tenants(backend, "q", 29) == ["a"] * 29
        assert _tenants(backend, "q", 5) == ["c"]

    def test_fair_turns_go_round_across_claims_of_one_job(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("queue", "q", fair=True))
        for _ in range(10):
            enqueue_one(backend, "q", tenant_id="a")
        assert _tenants(backend, "q", 1) == ["a"]
        enqueue_one(backend, "q", tenant_id="b")
        enqueue_one(backend, "q", tenant_id="b")
        # a has a job running, b none: b's first job goes ahead of a's older second one.
        assert _tenants(backend, "q", 1) == ["b"]
        assert _tenants(backend, "q", 1) == ["a"]
        assert _tenants(backend, "q", 1) == ["b"]

    def test_limit_usage_shows_running_started_and_waiting_per_key(self, backend: Backend) -> None:
        rule = LimitRule("type", JOB_TYPE, concurrency=1, rate=(10, 60.0), per_tenant=True)
        backend.set_limit(rule)
        for tenant in ("a", "a", "a", "b"):
            enqueue_one(backend, "q", tenant_id=tenant)
        backend.claim(["q"], worker_id(), 10)
        usage = {(u.rule, u.key): (u.running, u.started, u.waiting) for u in backend.limit_usage()}
        assert usage == {(rule, "a"): (1, 1, 2), (rule, "b"): (1, 1, 0)}

    def test_an_idle_wait_behind_a_rate_limit_ends_when_the_window_frees(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, rate=(1, 1.0)))
        enqueue_one(backend, "q")
        enqueue_one(backend, "q")
        assert len(backend.claim(["q"], worker_id(), 5)) == 1
        assert backend.claim(["q"], worker_id(), 5) == []
        # The held job is overdue: without the limit's hint the wait would end at once and the
        # worker would spin on it. (The first wait ends at once for the dispatches' wake-ups.)
        backend.wait_for_jobs(["q"], 0.1)
        started = time.monotonic()
        backend.wait_for_jobs(["q"], 10.0)
        waited = time.monotonic() - started
        assert 0.2 < waited < 5.0, waited
        assert len(wait_until(lambda: backend.claim(["q"], worker_id(), 5))) == 1

    # -- limit keys: a per-key limit counts each job's limit key; the tenant is the default ----
    def test_a_per_key_limit_counts_each_limit_key_whatever_the_tenant(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=1, per_key=True))
        # One tenant, three keys: the account ids given, and the tenant itself for the job
        # dispatched without a key.
        first = [enqueue_one(backend, "q", tenant_id="acme", limit_key="acct-1") for _ in range(3)]
        second = enqueue_one(backend, "q", tenant_id="acme", limit_key="acct-2")
        untold = enqueue_one(backend, "q", tenant_id="acme")
        assert _claimed(backend, "q", 10) == sorted([first[0], second, untold])
        assert backend.claim(["q"], worker_id(), 10) == []
        assert sorted(r.id for r in backend.list_jobs(limit_key="acct-1")) == first
        assert [r.id for r in backend.list_jobs(limit_key="acme")] == [untold]
        claimed = backend.list_jobs(limit_key="acct-1", state=JobState.CLAIMED)
        assert [r.id for r in claimed] == [first[0]]
        assert backend.list_jobs(limit_key="nobody") == []

    def test_a_rate_limit_per_key_gives_each_limit_key_its_budget(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, rate=(1, 60.0), per_key=True))
        a = [enqueue_one(backend, "q", tenant_id="t", limit_key="a") for _ in range(2)]
        b = [enqueue_one(backend, "q", tenant_id="t", limit_key="b") for _ in range(2)]
        assert _claimed(backend, "q", 10) == [a[0], b[0]]
        assert backend.claim(["q"], worker_id(), 10) == []

    def test_a_fair_queue_takes_limit_keys_in_turn(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("queue", "q", fair=True))
        backlog = [enqueue_one(backend, "q", tenant_id="t", limit_key="a") for _ in range(30)]
        single = enqueue_one(backend, "q", tenant_id="t", limit_key="b")
        assert _claimed(backend, "q", 2) == [backlog[0], single]

    def test_limit_usage_counts_per_limit_key(self, backend: Backend) -> None:
        rule = LimitRule("queue", "q", concurrency=1, per_key=True)
        backend.set_limit(rule)
        for key in ("a", "a", "b"):
            enqueue_one(backend, "q", tenant_id="t", limit_key=key)
        backend.claim(["q"], worker_id(), 10)
        usage = {(u.rule, u.key): (u.running, u.started, u.waiting) for u in backend.limit_usage()}
        assert usage == {(rule, "a"): (1, 0, 1), (rule, "b"): (1, 0, 0)}

    @pytest.mark.parametrize("bad", [{"concurrency": 0}, {"rate": (0, 1.0)}, {"rate": (1, 0)}])
    def test_bad_limits_are_refused_before_anything_is_stored(
        self, backend: Backend, bad: dict[str, object]
    ) -> None:
        with pytest.raises(InvalidLimit):
            backend.set_limit(LimitRule("queue", "q", **bad))  # type: ignore[arg-type]
        assert backend.list_limits() == []
