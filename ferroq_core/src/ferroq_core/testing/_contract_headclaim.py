"""Contract checks for the head claim (:mod:`ferroq_core.storage.headclaim`, part of
:class:`~ferroq_core.testing.contract.BackendContract`): where limits exist, a claim whose head
fits every limit takes it whole and exactly up to each limit, counts what runs in other queues
against a type's limit, goes on in queue order to a queue whose head binds, and, raced by many
threads claiming and finishing at once, never lets a limit be exceeded."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from ferroq_core.flowlimits import LimitRule
from ferroq_core.testing._contract_support import JOB_TYPE, enqueue_one, worker_id

if TYPE_CHECKING:
    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import Backend

__all__ = ["HeadClaimContract"]

OTHER_TYPE = "contract:HeadOther"


def _ids(rows: list[JobRow]) -> list[int]:
    return sorted(r.id for r in rows)


class HeadClaimContract:
    """The limited claim's common case, decided in one statement, against its limits."""

    def test_a_head_within_every_limit_is_claimed_whole_and_exactly_up_to_the_limit(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("queue", "q", concurrency=5))
        ids = [enqueue_one(backend, "q") for _ in range(8)]
        first = backend.claim(["q"], worker_id(), 5)
        assert [r.id for r in first] == ids[:5], "claim order, all five: 0 + 5 <= 5"
        assert backend.claim(["q"], worker_id(), 5) == []
        assert backend.complete([r.lease for r in first[:2]]) == set(ids[:2])
        assert _ids(backend.claim(["q"], worker_id(), 5)) == ids[5:7]
        # Per key: each key's count is its own, and the head may hold both keys' limits full.
        backend.set_limit(LimitRule("queue", "k", concurrency=2, per_key=True))
        keyed = [enqueue_one(backend, "k", limit_key=key) for key in "ababab"]
        assert _ids(backend.claim(["k"], worker_id(), 4)) == keyed[:4]
        assert backend.claim(["k"], worker_id(), 4) == []

    def test_a_type_limit_counts_its_jobs_running_in_other_queues(self, backend: Backend) -> None:
        backend.set_limit(LimitRule("type", OTHER_TYPE, concurrency=1, per_key=True))
        backend.set_limit(LimitRule("queue", "b", concurrency=100))
        running = enqueue_one(backend, "a", job_type=OTHER_TYPE, limit_key="k1")
        assert [r.id for r in backend.claim(["a"], worker_id(), 5)] == [running]
        busy = enqueue_one(backend, "b", job_type=OTHER_TYPE, limit_key="k1")
        free = enqueue_one(backend, "b", job_type=OTHER_TYPE, limit_key="k2")
        plain = enqueue_one(backend, "b", limit_key="k1")  # another type: not limited by it
        assert _ids(backend.claim(["b"], worker_id(), 5)) == sorted([free, plain])
        assert backend.claim(["b"], worker_id(), 5) == []
        assert busy not in {r.id for r in backend.claim(["a", "b"], worker_id(), 5)}

    def test_queues_go_in_order_from_a_head_that_fits_to_one_that_binds(
        self, backend: Backend
    ) -> None:
        backend.set_limit(LimitRule("queue", "second", concurrency=1))
        second = [enqueue_one(backend, "second") for _ in range(3)]
        first = [enqueue_one(backend, "first") for _ in range(2)]
        backend.set_limit(LimitRule("queue", "first", concurrency=10))
        rows = backend.claim(["first", "second"], worker_id(), 10)
        assert [r.id for r in rows] == [*first, second[0]], "strict queue order"
        assert backend.claim(["first", "second"], worker_id(), 10) == []

    def test_many_threads_claiming_and_finishing_never_exceed_a_limit(
        self, backend: Backend
    ) -> None:
        per_key, keys, each = 2, 6, 15
        backend.set_limit(LimitRule("queue", "race", concurrency=per_key, per_key=True))
        backend.set_limit(LimitRule("type", JOB_TYPE, concurrency=9))
        for n in range(keys * each):
            enqueue_one(backend, "race", tenant_id=f"k{n % keys}")  # the key
        lock = threading.Lock()
        running: Counter[str] = Counter()
        peak: Counter[str] = Counter()
        done: list[int] = []
        errors: list[BaseException] = []
        deadline = time.monotonic() + 60

        def work() -> None:
            try:
                while time.monotonic() < deadline:
                    rows = backend.claim(["race"], worker_id(), 4)
                    with lock:
                        for r in rows:
                            running[str(r.tenant_id)] += 1
                            running["all"] += 1
                        for key, n in running.items():
                            peak[key] = max(peak[key], n)
                        if not rows and len(done) >= keys * each:
                            return
                    time.sleep(0.002)
                    # Counted off before the slot frees: a count here never trails the
                    # database's, so a peak over the limit is the database's too.
                    with lock:
                        for r in rows:
                            running[str(r.tenant_id)] -= 1
                            running["all"] -= 1
                        done.extend(r.id for r in rows)
                    backend.complete([r.lease for r in rows])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        assert len(done) == len(set(done)) == keys * each
        assert max(peak[f"k{n}"] for n in range(keys)) <= per_key, peak
        assert peak["all"] <= 9, peak
