"""Contract checks for unique jobs (part of
:class:`~ferroq_core.testing.contract.BackendContract`): what each mode holds and when, and
what each conflict policy does (docs/unique-jobs.md)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core.errors import DuplicateJob
from ferroq_core.records import EnqueueResult
from ferroq_core.testing._contract_support import claim_one, request, worker_id
from ferroq_core.unique import Unique

if TYPE_CHECKING:
    from ferroq_core.records import EnqueueRequest
    from ferroq_core.storage.protocol import Backend

__all__ = ["UniqueContract"]


def _unique_req(
    job_type: str, mode: str, key: str = "k", *, payload: str | None = None, **rule: Any
) -> EnqueueRequest:
    delay = rule.pop("delay", 0.0)
    return request(
        "uniq",
        job_type=job_type,
        payload=payload,
        idempotency_key=key,
        unique=Unique(mode, **rule),
        delay=delay,
    )


def _one(backend: Backend, req: EnqueueRequest) -> EnqueueResult:
    (result,) = backend.enqueue([req])
    return result


class UniqueContract:
    """Unique modes (while queued, until started, until finished, for a period) and conflict
    policies (skip, replace, raise)."""

    @pytest.fixture
    def job_type(self) -> str:
        # A type of its own per test: the suite may share one database between tests.
        return f"contract:Unique-{uuid.uuid4().hex[:12]}"

    # -- while_queued ------------------------------------------------------------------------
    def test_while_queued_holds_while_pending_and_frees_while_running(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "while_queued"))
        assert _one(backend, _unique_req(job_type, "while_queued")) == EnqueueResult(
            first.id, duplicate=True
        )
        running = claim_one(backend, "uniq")
        second = _one(backend, _unique_req(job_type, "while_queued"))
        assert not second.duplicate
        # The first comes back for a retry without the key the second took: no collision.
        assert backend.release(running.lease, delay=0, error="boom")
        assert _one(backend, _unique_req(job_type, "while_queued")) == EnqueueResult(
            second.id, duplicate=True
        )

    def test_while_queued_retry_keeps_its_key_when_nobody_took_it(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "while_queued"))
        running = claim_one(backend, "uniq")
        assert backend.release(running.lease, delay=0, error="boom")
        assert _one(backend, _unique_req(job_type, "while_queued")) == EnqueueResult(
            first.id, duplicate=True
        )

    def test_a_failed_holder_frees_its_key_and_never_collides_when_retried(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "while_queued"))
        assert backend.fail(claim_one(backend, "uniq").lease, error="boom")
        second = _one(backend, _unique_req(job_type, "while_queued"))
        assert not second.duplicate
        assert backend.retry_failed([first.id]) == 1
        assert {r.id for r in backend.list_jobs(job_type=job_type)} == {first.id, second.id}

    # -- until_started -----------------------------------------------------------------------
    def test_until_started_frees_the_key_at_the_first_claim_for_good(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "until_started"))
        assert _one(backend, _unique_req(job_type, "until_started")).duplicate
        running = claim_one(backend, "uniq")
        assert backend.release(running.lease, delay=0, error="boom")  # waits for a retry
        second = _one(backend, _unique_req(job_type, "until_started"))
        assert not second.duplicate
        assert second.id != first.id

    def test_until_started_claim_given_back_holds_again(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "until_started"))
        running = claim_one(backend, "uniq")
        assert backend.requeue([running.lease], count_attempt=False) == {first.id}
        assert _one(backend, _unique_req(job_type, "until_started")) == EnqueueResult(
            first.id, duplicate=True
        )

    def test_until_started_given_back_after_a_new_holder_does_not_collide(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "until_started"))
        running = claim_one(backend, "uniq")
        second = _one(backend, _unique_req(job_type, "until_started"))
        assert not second.duplicate
        assert backend.requeue([running.lease], count_attempt=False) == {first.id}
        assert _one(backend, _unique_req(job_type, "until_started")) == EnqueueResult(
            second.id, duplicate=True
        )

    # -- until_finished ----------------------------------------------------------------------
    def test_until_finished_holds_while_running(self, backend: Backend, job_type: str) -> None:
        first = _one(backend, _unique_req(job_type, "until_finished", on_conflict="raise"))
        running = claim_one(backend, "uniq")
        with pytest.raises(DuplicateJob) as caught:
            _one(backend, _unique_req(job_type, "until_finished", on_conflict="raise"))
        assert caught.value.job_id == first.id
        assert backend.complete([running.lease]) == {first.id}
        assert not _one(backend, _unique_req(job_type, "until_finished")).duplicate

    # -- replace -----------------------------------------------------------------------------
    @pytest.mark.parametrize(
        "mode", ["while_queued", "until_started", "until_finished", "for_period"]
    )
    def test_replace_gives_the_pending_holder_the_newest_payload_and_time(
        self, backend: Backend, job_type: str, mode: str
    ) -> None:
        rule: dict[str, Any] = {"on_conflict": "replace"}
        if mode == "for_period":
            rule["period"] = 3600
        first = _one(backend, _unique_req(job_type, mode, payload='{"v": 1}', **rule))
        newest = _one(backend, _unique_req(job_type, mode, payload='{"v": 2}', delay=600.0, **rule))
        assert newest == EnqueueResult(first.id, duplicate=True, replaced=True)
        row = backend.get_job(first.id)
        assert row is not None
        assert row.payload == '{"v": 2}'
        assert (row.available_at - backend.now()).total_seconds() > 500
        assert [r.id for r in backend.list_jobs(job_type=job_type)] == [first.id]

    @pytest.mark.parametrize("mode", ["until_finished", "for_period"])
    def test_replace_leaves_a_running_holder_alone(
        self, backend: Backend, job_type: str, mode: str
    ) -> None:
        rule: dict[str, Any] = {"on_conflict": "replace"}
        if mode == "for_period":
            rule["period"] = 3600
        first = _one(backend, _unique_req(job_type, mode, payload='{"v": 1}', **rule))
        claim_one(backend, "uniq")
        again = _one(backend, _unique_req(job_type, mode, payload='{"v": 2}', **rule))
        assert again == EnqueueResult(first.id, duplicate=True)
        row = backend.get_job(first.id)
        assert row is not None
        assert row.payload == '{"v": 1}'

    def test_replace_of_a_running_queued_holder_enqueues_the_newest(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "until_started", on_conflict="replace"))
        claim_one(backend, "uniq")
        newest = _one(
            backend,
            _unique_req(job_type, "until_started", payload='{"v": 9}', on_conflict="replace"),
        )
        assert not newest.duplicate
        assert newest.id != first.id

    # -- raise -------------------------------------------------------------------------------
    @pytest.mark.parametrize("mode", ["while_queued", "until_started", "until_finished"])
    def test_raise_stores_nothing_of_the_batch(
        self, backend: Backend, job_type: str, mode: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, mode, on_conflict="raise"))
        batch = [
            request("uniq", job_type=job_type),
            _unique_req(job_type, mode, on_conflict="raise"),
        ]
        with pytest.raises(DuplicateJob) as caught:
            backend.enqueue(batch)
        assert caught.value.job_id == first.id
        assert [r.id for r in backend.list_jobs(job_type=job_type)] == [first.id]

    def test_a_batch_settles_each_request_on_the_ones_before(
        self, backend: Backend, job_type: str
    ) -> None:
        results = backend.enqueue(
            [
                _unique_req(job_type, "until_started", payload='{"v": 1}', on_conflict="replace"),
                _unique_req(job_type, "until_started", "other"),
                _unique_req(job_type, "until_started", payload='{"v": 3}', on_conflict="replace"),
                _unique_req(job_type, "until_started", "other"),
            ]
        )
        assert [(r.duplicate, r.replaced) for r in results] == [
            (False, False),
            (False, False),
            (True, True),
            (True, False),
        ]
        assert (results[2].id, results[3].id) == (results[0].id, results[1].id)
        row = backend.get_job(results[0].id)
        assert row is not None
        assert row.payload == '{"v": 3}'

    # -- for_period --------------------------------------------------------------------------
    def test_for_period_holds_after_the_job_finished_until_the_period_ends(
        self, backend: Backend, job_type: str
    ) -> None:
        first = _one(backend, _unique_req(job_type, "for_period", period=1.0))
        started = time.monotonic()
        assert backend.complete([claim_one(backend, "uniq").lease]) == {first.id}
        again = _one(backend, _unique_req(job_type, "for_period", period=1.0))
        if time.monotonic() - started < 0.9:  # a loaded machine may have let it expire
            assert again == EnqueueResult(first.id, duplicate=True)
        time.sleep(max(0.0, 1.1 - (time.monotonic() - started)))
        later = _one(backend, _unique_req(job_type, "for_period", period=1.0))
        assert not later.duplicate
        assert later.id != first.id

    def test_keys_of_different_types_or_modes_spaces_do_not_meet(
        self, backend: Backend, job_type: str
    ) -> None:
        other = job_type + "-other"
        a = _one(backend, _unique_req(job_type, "while_queued"))
        b = _one(backend, _unique_req(other, "while_queued"))
        c = _one(backend, _unique_req(job_type, "until_finished"))
        d = _one(backend, _unique_req(job_type, "for_period", period=60))
        assert len({a.id, b.id, c.id, d.id}) == 4
        assert not any(r.duplicate for r in (a, b, c, d))

    def test_unique_rows_are_claimed_and_finished_like_any(
        self, backend: Backend, job_type: str
    ) -> None:
        modes: list[tuple[str, dict[str, Any]]] = [
            ("while_queued", {}),
            ("until_started", {}),
            ("until_finished", {}),
            ("for_period", {"period": 60}),
        ]
        ids = {
            _one(backend, _unique_req(job_type, mode, mode, **extra)).id for mode, extra in modes
        }
        rows = backend.claim(["uniq"], worker_id(), 10)
        assert {r.id for r in rows} == ids
        assert backend.complete([r.lease for r in rows]) == ids

    def test_unique_keys_lists_a_jobs_keys(self, backend: Backend, job_type: str) -> None:
        queued = _one(backend, _unique_req(job_type, "until_started", "q"))
        period = _one(backend, _unique_req(job_type, "for_period", "p", period=60))
        finished = _one(backend, _unique_req(job_type, "until_finished", "f"))
        assert [(k.key, k.held, k.expires_at) for k in backend.unique_keys(queued.id)] == [
            ("q", "pending", None)
        ]
        (key,) = backend.unique_keys(period.id)
        assert (key.key, key.held) == ("p", "period")
        assert key.expires_at is not None
        assert 50 < (key.expires_at - backend.now()).total_seconds() <= 61
        assert backend.unique_keys(finished.id) == []  # its key is its idempotency key
        assert backend.unique_keys(10**12) == []

    def test_a_batch_of_new_held_and_stale_keys(self, backend: Backend, job_type: str) -> None:
        _one(backend, _unique_req(job_type, "while_queued", "k2"))
        claim_one(backend, "uniq")  # the holder of k2 runs: it holds nothing now
        held = _one(backend, _unique_req(job_type, "while_queued", "k1", payload='{"v": 0}'))
        rep = {"on_conflict": "replace"}
        results = backend.enqueue(
            [
                _unique_req(job_type, "while_queued", "k1"),
                _unique_req(job_type, "while_queued", "k3", payload='{"v": 1}'),
                _unique_req(job_type, "until_started", "k3", payload='{"v": 2}', **rep),
                _unique_req(job_type, "while_queued", "k2"),
                _unique_req(job_type, "until_started", "k4"),
                _unique_req(job_type, "while_queued", "k1", payload='{"v": 3}', **rep),
            ]
        )
        flags = [(r.duplicate, r.replaced) for r in results]
        assert flags == [
            (True, False),
            (False, False),
            (True, True),
            (False, False),
            (False, False),
            (True, True),
        ]
        assert results[0].id == results[5].id == held.id
        assert results[2].id == results[1].id
        assert len({held.id, results[1].id, results[3].id, results[4].id}) == 4
        payloads = {r.id: r.payload for r in backend.list_jobs(job_type=job_type)}
        assert (payloads[held.id], payloads[results[1].id]) == ('{"v": 3}', '{"v": 2}')
