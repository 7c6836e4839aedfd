"""Job threads: every claimed sync job starts at once on a thread of its own, even though the
worker wakes threads lazily (a thread that finishes a job takes the next waiting one)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

import attrs

from ferroq_core import Job, WorkerConfig, WorkerLoop

if TYPE_CHECKING:
    from ferroq_core import Runtime


@attrs.define
class Meet(Job):
    """Returns only once ``Meet.parties`` handlers wait together: all must run at once."""

    job_name = "test.slots_meet"
    parties: ClassVar[int] = 5
    barrier: ClassVar[threading.Barrier] = threading.Barrier(5, timeout=20)
    threads: ClassVar[set[str]] = set()

    tag: int = 0

    def handle(self) -> None:
        Meet.threads.add(threading.current_thread().name)
        Meet.barrier.wait()


@attrs.define
class Quick(Job):
    job_name = "test.slots_quick"
    done: ClassVar[list[int]] = []

    tag: int = 0

    def handle(self) -> None:
        Quick.done.append(self.tag)


@attrs.define
class Gate(Job):
    """Blocks until the quick jobs claimed with it have all run: a slow job must not hold
    up the start of the others."""

    job_name = "test.slots_gate"
    opened: ClassVar[threading.Event] = threading.Event()
    expect: ClassVar[int] = 0

    tag: int = 0

    def handle(self) -> None:
        # Waits on the quick jobs that were claimed in the same batch: only possible when
        # they run on other threads while this one is blocked.
        for _ in range(400):
            if len(Quick.done) >= Gate.expect:
                Gate.opened.set()
                return
            time.sleep(0.05)


def test_claimed_sync_jobs_all_run_at_once_on_their_own_threads(runtime: Runtime) -> None:
    Meet.barrier = threading.Barrier(Meet.parties, timeout=20)
    Meet.threads = set()
    for i in range(Meet.parties):
        Meet(tag=i).dispatch()
    config = WorkerConfig(concurrency=Meet.parties, stop_when_empty=True, sleep=0.05)
    assert WorkerLoop(runtime, config).run() == 0
    assert runtime.backend.get_stats().total == 0  # none broke the barrier (no failures)
    assert len(Meet.threads) == Meet.parties


def test_a_blocked_job_does_not_delay_the_jobs_claimed_after_it(runtime: Runtime) -> None:
    Quick.done = []
    Gate.opened = threading.Event()
    Gate.expect = 30
    Gate().dispatch()
    for i in range(Gate.expect):
        Quick(tag=i).dispatch()
    config = WorkerConfig(concurrency=Gate.expect + 1, stop_when_empty=True, sleep=0.05)
    assert WorkerLoop(runtime, config).run() == 0
    assert Gate.opened.is_set()
    assert sorted(Quick.done) == list(range(Gate.expect))
    assert runtime.backend.get_stats().total == 0
