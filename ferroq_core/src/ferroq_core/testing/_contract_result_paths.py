"""Contract checks for the other ways into a stored result (part of
:class:`~ferroq_core.testing.contract.BackendContract`): a result and a history record written
by one acknowledgement, a dispatch's own ``result_ttl`` carried from every enqueue path to the
claimed row, and result waiters woken by a failure or a cancellation as by a success."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ferroq_core.flowlimits import LimitRule
from ferroq_core.records import Lease
from ferroq_core.storage.results import ResultWrite
from ferroq_core.testing._contract_leases import SHORT_LEASE
from ferroq_core.testing._contract_support import (
    JOB_TYPE,
    claim_one,
    enqueue_one,
    request,
    wait_until,
    worker_id,
)
from ferroq_core.unique import Unique

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Engine

    from ferroq_core.storage.protocol import Backend
    from ferroq_core.storage.results import ResultState

__all__ = ["ResultPathContract"]

DAY = 86_400.0


def _ttls(backend: Backend, ids: list[int]) -> dict[int, float | None]:
    found = {}
    for job_id in ids:
        row = backend.get_job(job_id)
        assert row is not None, job_id
        found[job_id] = row.result_ttl
    return found


def _waited(backend: Backend, job_id: int, finish: Callable[[], Any]) -> tuple[ResultState, float]:
    """``wait_result`` on ``job_id`` while another thread runs ``finish`` 0.3 s in."""
    started = time.monotonic()
    timer = threading.Timer(0.3, finish)
    timer.start()
    try:
        state = backend.wait_result(job_id, 30.0)
    finally:
        timer.join()
    return state, time.monotonic() - started


class ResultPathContract:
    """complete_with_results with history, EnqueueRequest.result_ttl, failures that wake."""

    # -- a result and a history record, one acknowledgement ----------------------------------
    def test_a_result_and_its_history_record_are_written_by_one_acknowledgement(
        self, backend: Backend
    ) -> None:
        kept, plain, lost = (enqueue_one(backend, "rh", tenant_id="t1") for _ in range(3))
        worker = worker_id()
        rows = {r.id: r for r in backend.claim(["rh"], worker, 3)}
        stale = Lease(lost, worker, rows[lost].attempts + 1)
        writes = [
            ResultWrite(rows[kept].lease, '"kept"', DAY, keep_history=True, duration=0.5),
            ResultWrite(rows[plain].lease, '"plain"', DAY),
            ResultWrite(stale, '"lost"', DAY, keep_history=True, duration=1.0),
        ]
        assert backend.complete_with_results(writes) == {kept, plain}
        stored = backend.read_result(kept).result
        assert stored is not None
        assert stored.value == '"kept"'
        record = backend.get_history(kept)
        assert record is not None
        assert (record.queue, record.tenant_id, record.attempts) == ("rh", "t1", 1)
        assert (record.worker, record.duration) == (worker, 0.5)
        plain_result = backend.read_result(plain).result
        assert plain_result is not None
        assert plain_result.value == '"plain"'
        assert backend.get_history(plain) is None, "a result without history leaves no record"
        # The lost lease wrote neither, and the job stays claimed.
        assert backend.read_result(lost).status == "claimed"
        assert backend.read_result(lost).result is None
        assert backend.get_history(lost) is None
        done = backend.complete_with_results(
            [ResultWrite(rows[lost].lease, '"lost"', DAY, keep_history=True, duration=1.0)]
        )
        assert done == {lost}
        assert backend.get_history(lost) is not None
        assert {r.job_id for r in backend.list_history(queue="rh")} == {kept, lost}

    def test_a_reaped_attempt_with_history_writes_neither(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "rz", max_attempts=3)
        zombie = claim_one(backend, "rz")
        wait_until(
            lambda: job_id in backend.reap(SHORT_LEASE).requeued, what="the lease to be reaped"
        )
        again = claim_one(backend, "rz")
        late = ResultWrite(zombie.lease, '"zombie"', DAY, keep_history=True, duration=9.0)
        assert backend.complete_with_results([late]) == set()
        assert backend.get_history(job_id) is None
        assert backend.read_result(job_id).result is None
        done = ResultWrite(again.lease, '"second"', DAY, keep_history=True, duration=0.1)
        assert backend.complete_with_results([done]) == {job_id}
        record = backend.get_history(job_id)
        assert record is not None
        assert (record.attempts, record.worker) == (2, again.claimed_by)
        stored = backend.read_result(job_id).result
        assert stored is not None
        assert stored.value == '"second"'

    # -- a dispatch's own result_ttl ----------------------------------------------------------
    def test_a_requests_result_ttl_reaches_the_row_and_the_claim(self, backend: Backend) -> None:
        single = enqueue_one(backend, "t", result_ttl=60.0)
        plain = enqueue_one(backend, "t")
        bulk = [
            r.id
            for r in backend.enqueue(
                [request("t", result_ttl=1.5), request("t"), request("t", result_ttl=7.0)]
            )
        ]
        keyed = enqueue_one(backend, "t", idempotency_key="k", result_ttl=30.0)
        (dup,) = backend.enqueue([request("t", idempotency_key="k", result_ttl=99.0)])
        assert (dup.id, dup.duplicate) == (keyed, True)
        queued = enqueue_one(
            backend, "t", idempotency_key="u", unique=Unique("while_queued"), result_ttl=5.0
        )
        period = enqueue_one(
            backend,
            "t",
            idempotency_key="p",
            unique=Unique("for_period", period=60.0),
            result_ttl=6.0,
        )
        want = {
            single: 60.0,
            plain: None,
            bulk[0]: 1.5,
            bulk[1]: None,
            bulk[2]: 7.0,
            keyed: 30.0,  # the duplicate's 99 is not taken: the holder keeps its own
            queued: 5.0,
            period: 6.0,
        }
        assert _ttls(backend, list(want)) == want
        claimed = backend.claim(["t"], worker_id(), 20)
        assert {r.id: r.result_ttl for r in claimed} == want

    def test_a_replacing_dispatch_gives_the_holder_its_result_ttl(self, backend: Backend) -> None:
        rule = Unique("while_queued", on_conflict="replace")
        first = enqueue_one(backend, "t", idempotency_key="r", unique=rule)
        (second,) = backend.enqueue(
            [request("t", idempotency_key="r", unique=rule, result_ttl=8.0)]
        )
        assert (second.id, second.replaced) == (first, True)
        assert _ttls(backend, [first]) == {first: 8.0}

    def test_the_limited_claim_carries_result_ttl(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=5, per_tenant=True))
        stored = enqueue_one(backend, "lim", tenant_id="a", result_ttl=12.0)
        plain = enqueue_one(backend, "lim", tenant_id="b")
        claimed = backend.claim(["lim"], worker_id(), 5)
        assert {r.id: r.result_ttl for r in claimed} == {stored: 12.0, plain: None}

    def test_result_ttl_in_a_callers_transaction(self, backend: Backend, sa_engine: Engine) -> None:
        with sa_engine.connect() as conn, conn.begin():
            results = backend.enqueue(
                [request("tx", result_ttl=3.0), request("tx")], connection=conn
            )
        ids = [r.id for r in results]
        assert _ttls(backend, ids) == {ids[0]: 3.0, ids[1]: None}

    # -- failures and cancellations end a wait ------------------------------------------------
    def test_wait_result_ends_when_the_job_fails(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "wf", max_attempts=1)
        row = claim_one(backend, "wf")
        state, waited = _waited(
            backend, job_id, lambda: backend.fail(row.lease, error="ValueError: no")
        )
        assert (state.status, state.finished) == ("failed", True)
        assert (state.error or "").startswith("ValueError: no")
        assert 0.25 <= waited < 10.0

    def test_wait_result_ends_when_a_running_job_is_cancelled(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "wc")
        row = claim_one(backend, "wc")
        backend.cancel_jobs([job_id])
        state, waited = _waited(backend, job_id, lambda: backend.finish_cancelled(row.lease))
        assert (state.status, state.result, state.finished) == (None, None, True)
        assert 0.25 <= waited < 10.0
