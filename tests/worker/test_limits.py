"""The worker's limits on their own: what each lets the worker claim, and when it must stop.
(tests/worker/test_options.py runs them through a real worker.)"""

from __future__ import annotations

import time

from ferroq_core import WorkerConfig
from ferroq_core.worker.limits import Limits


def test_no_limits_claim_every_free_slot_and_never_stop() -> None:
    limits = Limits(WorkerConfig(), time.monotonic())
    assert limits.claimable(7, running=3, processed=100, claims=20) == 7
    assert limits.reached(running=3, processed=100, claims=20) is None


def test_max_jobs_caps_each_claim_by_what_is_left_and_stops_once_settled() -> None:
    limits = Limits(WorkerConfig(max_jobs=10), time.monotonic())
    assert limits.claimable(8, running=2, processed=5, claims=1) == 3
    assert limits.claimable(8, running=5, processed=5, claims=2) == 0
    assert limits.reached(running=5, processed=5, claims=2) is None
    assert limits.reached(running=0, processed=10, claims=2) == "--max-jobs 10 reached"


def test_once_claims_one_job_once_and_stops_when_it_is_settled() -> None:
    limits = Limits(WorkerConfig(once=True), time.monotonic())
    assert limits.claimable(10, running=0, processed=0, claims=0) == 1
    assert limits.reached(running=0, processed=0, claims=0) is None
    assert limits.claimable(9, running=1, processed=0, claims=1) == 0
    assert limits.reached(running=1, processed=0, claims=1) is None
    assert limits.reached(running=0, processed=1, claims=1) == "--once"


def test_max_time_counts_from_the_start() -> None:
    limits = Limits(WorkerConfig(max_time=5), time.monotonic() - 6)
    assert limits.reached(running=2, processed=0, claims=0) == "--max-time 5s reached"
    assert (
        Limits(WorkerConfig(max_time=5), time.monotonic()).reached(running=2, processed=0, claims=0)
        is None
    )
