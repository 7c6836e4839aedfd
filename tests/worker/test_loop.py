"""``WorkerLoop`` in-process, through the public API: where handlers run, back-pressure,
batched acknowledgements, lifecycle hooks, unstarted jobs at shutdown, lost heartbeats."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from ferroq_core import Job, WorkerConfig, WorkerLoop, hookimpl
from tests.worker.conftest import wait_for
from tests.worker.jobs import Flaky, Record, Sleep

if TYPE_CHECKING:
    from ferroq_core import Runtime

THREADS: list[tuple[str, str]] = []


@attrs.define
class WhereSync(Job):
    job_name = "test.where_sync"
    tag: str

    def handle(self) -> None:
        THREADS.append((self.tag, threading.current_thread().name))


@attrs.define
class WhereAsync(Job):
    job_name = "test.where_async"
    tag: str

    async def handle(self) -> None:
        await asyncio.sleep(0)
        THREADS.append((self.tag, threading.current_thread().name))


class Gauge:
    """How many Busy handlers run right now, and the most ever seen."""

    lock = threading.Lock()
    now = 0
    peak = 0


@attrs.define
class Busy(Job):
    job_name = "test.busy"
    seconds: float

    def handle(self) -> None:
        with Gauge.lock:
            Gauge.now += 1
            Gauge.peak = max(Gauge.peak, Gauge.now)
        time.sleep(self.seconds)
        with Gauge.lock:
            Gauge.now -= 1


@attrs.define
class AsyncExit(Job):
    """``sys.exit()`` inside ``async def handle``: must not stop the event loop."""

    job_name = "test.async_exit"
    max_attempts = 1
    tag: str

    async def handle(self) -> None:
        raise SystemExit(4)


@attrs.define
class BlockLoop(Job):
    """An ``async def`` handler that blocks its event loop (a bug worth surviving)."""

    job_name = "test.block_loop"
    seconds: float

    async def handle(self) -> None:
        THREADS.append(("block", threading.current_thread().name))
        time.sleep(self.seconds)


@attrs.define
class SlowFailed(Job):
    """Fails at once; its ``failed()`` callback takes a while."""

    job_name = "test.slow_failed"
    max_attempts = 1
    seconds: float

    def handle(self) -> None:
        raise ValueError("no")

    def failed(self, error: BaseException) -> None:
        time.sleep(self.seconds)
        THREADS.append(("failed", threading.current_thread().name))


class Watch:
    """A backend wrapper that records calls and can make heartbeats fail."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        #: (limit asked, handlers running at that moment) per claim.
        self.claims: list[tuple[int, int]] = []
        self.completes: list[int] = []
        #: "claim <rows>" and "complete <leases>", in call order.
        self.calls: list[str] = []
        self.fail_heartbeats = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def claim(self, queues: Any, worker_id: str, limit: int) -> Any:
        self.claims.append((limit, Gauge.now))
        rows = self._backend.claim(queues, worker_id, limit)
        self.calls.append(f"claim {len(rows)}")
        return rows

    def complete(self, leases: Any) -> Any:
        self.completes.append(len(leases))
        self.calls.append(f"complete {len(leases)}")
        return self._backend.complete(leases)

    def heartbeat(self, leases: Any) -> Any:
        if self.fail_heartbeats:
            from ferroq_core import BackendUnavailable

            raise BackendUnavailable("test: database unreachable")
        return self._backend.heartbeat(leases)

    def beat_worker(self, worker_id: str, leases: Any) -> Any:
        # The worker's heartbeat: its leases ride its registry row's transaction.
        if self.fail_heartbeats:
            from ferroq_core import BackendUnavailable

            raise BackendUnavailable("test: database unreachable")
        return self._backend.beat_worker(worker_id, leases)


@pytest.fixture
def watched(runtime: Runtime) -> tuple[Runtime, Watch]:
    watch = Watch(runtime.backend)
    return attrs.evolve(runtime, backend=watch), watch


def _run(runtime: Runtime, config: WorkerConfig) -> tuple[WorkerLoop, threading.Thread]:
    worker = WorkerLoop(runtime, config)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def test_sync_handlers_run_on_worker_threads_async_ones_on_the_worker_loop(
    watched: tuple[Runtime, Watch],
) -> None:
    runtime, _ = watched
    THREADS.clear()
    for i in range(3):
        WhereSync(tag=f"s{i}").dispatch()
        WhereAsync(tag=f"a{i}").dispatch()
    AsyncExit(tag="x").dispatch()
    code = WorkerLoop(runtime, WorkerConfig(stop_when_empty=True, sleep=0.05)).run()
    assert code == 0
    names = dict(THREADS)
    assert all(names[f"s{i}"].startswith("ferroq-job-") for i in range(3))
    assert {names[f"a{i}"] for i in range(3)} == {"ferroq-async"}
    failed = runtime.backend.list_jobs()
    assert [(r.job_type, (r.error or "")[:13]) for r in failed] == [
        ("test.async_exit", "SystemExit: 4")
    ]


def test_claims_only_free_slots_and_acknowledges_in_batches(
    watched: tuple[Runtime, Watch],
) -> None:
    runtime, watch = watched
    for i in range(40):
        Record(tag=f"r{i}").dispatch()
    for i in range(12):
        Busy(seconds=0.05 * (i % 4)).dispatch()
    Gauge.peak = 0
    config = WorkerConfig(concurrency=4, stop_when_empty=True, sleep=0.05)
    assert WorkerLoop(runtime, config).run() == 0
    assert runtime.backend.get_stats().total == 0
    # A claim asks only for the slots not busy running a handler: nothing claimed waits.
    assert all(limit + busy <= 4 for limit, busy in watch.claims), watch.claims
    assert Gauge.peak <= 4
    assert sum(watch.completes) == 52
    assert len(watch.completes) < 52, watch.completes
    assert max(watch.completes) > 1


@pytest.mark.parametrize("remote", [True, False])
def test_a_remote_backend_gets_the_next_claim_before_the_write_back(
    watched: tuple[Runtime, Watch], remote: bool
) -> None:
    # With writes that wait on a server (remote), the next job is claimed first so that it
    # runs during the acknowledgement's round trip; otherwise the write-back goes first.
    runtime, watch = watched
    # Declared in the backend's capabilities (a Watch would otherwise pass on its backend's).
    watch.capabilities = SimpleNamespace(remote=remote)  # type: ignore[attr-defined]
    for i in range(3):
        Record(tag=f"o{i}").dispatch()
    config = WorkerConfig(concurrency=1, stop_when_empty=True, sleep=0.05)
    assert WorkerLoop(runtime, config).run() == 0
    assert runtime.backend.get_stats().total == 0
    if remote:
        assert watch.calls[:5] == ["claim 1", "claim 1", "complete 1", "claim 1", "complete 1"]
    else:
        assert watch.calls[:5] == ["claim 1", "complete 1", "claim 1", "complete 1", "claim 1"]
    assert sum(watch.completes) == 3


def test_lifecycle_hooks_fire_once_per_state_change(watched: tuple[Runtime, Watch]) -> None:
    runtime, _ = watched
    events: list[tuple[str, int]] = []

    class Listener:
        @hookimpl
        def ferroq_job_started(self, row: Any, worker_id: str) -> None:
            assert worker_id.count(":") == 2
            events.append(("started", row.id))

        @hookimpl
        def ferroq_job_succeeded(self, row: Any, duration: float) -> None:
            events.append(("succeeded", row.id))

        @hookimpl
        def ferroq_job_retrying(self, row: Any, error: BaseException, delay: float) -> None:
            events.append(("retrying", row.id))

        @hookimpl
        def ferroq_job_failed(self, row: Any, error: BaseException) -> None:
            events.append(("failed", row.id))

    runtime.pm.register(Listener())
    ok = Record(tag="ok").dispatch()
    bad = Flaky(tag="bad").dispatch()
    assert WorkerLoop(runtime, WorkerConfig(stop_when_empty=True, sleep=0.05)).run() == 0
    assert [e for e in events if e[1] == ok] == [("started", ok), ("succeeded", ok)]
    assert [e for e in events if e[1] == bad] == [
        ("started", bad),
        ("retrying", bad),
        ("started", bad),
        ("retrying", bad),
        ("started", bad),
        ("failed", bad),
    ]


def test_stop_returns_claimed_but_unstarted_jobs_uncounted(
    watched: tuple[Runtime, Watch],
) -> None:
    runtime, _ = watched
    THREADS.clear()
    BlockLoop(seconds=1.0).dispatch()
    waiting = [WhereAsync(tag=f"w{i}").dispatch() for i in range(2)]
    worker, thread = _run(runtime, WorkerConfig(concurrency=3, sleep=0.05))
    wait_for(lambda: runtime.backend.get_stats().claimed == 3)
    wait_for(lambda: ("block", "ferroq-async") in THREADS)
    worker.request_stop("test")
    thread.join(10)
    assert not thread.is_alive()
    rows = [runtime.backend.get_job(i) for i in waiting]
    # Never started (the loop was blocked): back to pending with the attempt given back.
    assert [(r.status, r.attempts) for r in rows if r] == [("pending", 0), ("pending", 0)]
    assert runtime.backend.get_stats().total == 2


def test_failing_heartbeats_pause_claiming_until_they_succeed(
    watched: tuple[Runtime, Watch],
) -> None:
    runtime, watch = watched
    Sleep(tag="held", seconds=3.0).dispatch()
    config = WorkerConfig(
        concurrency=2,
        sleep=0.05,
        visibility_timeout=0.5,
        heartbeat_interval=0.1,
        reaper_interval=30.0,
    )
    worker, thread = _run(runtime, config)
    wait_for(lambda: runtime.backend.get_stats().claimed == 1)
    watch.fail_heartbeats = True
    time.sleep(0.8)  # past the visibility timeout without a heartbeat
    later = Record(tag="later").dispatch()
    time.sleep(0.5)
    assert runtime.backend.get_job(later) is not None, "claimed while heartbeats failed"
    watch.fail_heartbeats = False
    wait_for(lambda: runtime.backend.get_job(later) is None, timeout=10)
    worker.request_stop("test", force=True)
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.timing
def test_a_slow_failed_callback_does_not_hold_up_other_jobs(
    watched: tuple[Runtime, Watch],
) -> None:
    runtime, _ = watched
    THREADS.clear()
    SlowFailed(seconds=1.5).dispatch()
    worker, thread = _run(runtime, WorkerConfig(concurrency=2, sleep=0.05))
    wait_for(lambda: runtime.backend.get_stats().failed == 1)
    began = time.monotonic()
    later = WhereSync(tag="later").dispatch()
    wait_for(lambda: runtime.backend.get_job(later) is None)
    assert time.monotonic() - began < 1.0
    assert ("failed", "ferroq-callbacks") not in THREADS  # still sleeping
    worker.request_stop("test")
    thread.join(10)
    assert not thread.is_alive()
    # Stopping waited for the callback to finish.
    assert ("failed", "ferroq-callbacks") in THREADS


def test_start_returns_claims_of_a_dead_worker_that_had_our_pid(
    watched: tuple[Runtime, Watch],
) -> None:
    # A container restarted as pid 1 again: the dead worker's pid is ours, so a pid check
    # alone would think it alive and leave its job claimed until the visibility timeout.
    runtime, _ = watched
    job_id = Record(tag="orphan").dispatch()
    dead = f"{socket.gethostname()}:{os.getpid()}:deadbeef"
    assert [r.id for r in runtime.backend.claim(["default"], dead, 1)] == [job_id]
    assert WorkerLoop(runtime, WorkerConfig(stop_when_empty=True, sleep=0.05)).run() == 0
    assert runtime.backend.get_stats().total == 0


STAMPS: list[float] = []


@attrs.define
class Stamp(Job):
    job_name = "test.stamp"

    def handle(self) -> None:
        STAMPS.append(time.monotonic())


def test_an_idle_worker_starts_a_delayed_job_at_its_time(runtime: Runtime) -> None:
    # Not at its next poll, 30 s away here, nor (Postgres) at the dispatch's notification.
    STAMPS.clear()
    Stamp().delay(0.7).dispatch()
    dispatched = time.monotonic()
    worker = WorkerLoop(runtime, WorkerConfig(sleep=30, max_jobs=1), handle_signals=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        worker.request_stop("test over", force=True)
        thread.join(10)
    assert len(STAMPS) == 1, "the delayed job did not run within 10 s"
    assert 0.6 <= STAMPS[0] - dispatched < 3
