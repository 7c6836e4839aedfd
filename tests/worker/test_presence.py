"""A worker in this process: its registry row, the lifecycle hooks of the registry and
``Queue.restart_workers()``."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from ferroq_core import Queue, WorkerConfig, WorkerLoop, hookimpl
from ferroq_core.worker.presence import registration
from tests.worker.conftest import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from ferroq_core import Runtime
    from ferroq_core.fleet import WorkerRegistration

FAST = WorkerConfig(
    queues=("a", "b"),
    concurrency=3,
    sleep=0.05,
    visibility_timeout=2.0,
    heartbeat_interval=0.1,
    reaper_interval=0.2,
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def ferroq_worker_registered(self, worker: WorkerRegistration) -> None:
        self.calls.append(("registered", worker))

    @hookimpl
    def ferroq_worker_deregistered(self, worker_id: str, reason: str) -> None:
        self.calls.append(("deregistered", (worker_id, reason)))

    @hookimpl
    def ferroq_restart_requested(self, requested_at: datetime) -> None:
        self.calls.append(("restart", requested_at))

    def named(self, name: str) -> list[Any]:
        return [value for kind, value in self.calls if kind == name]


@pytest.fixture
def recorder(runtime: Runtime) -> Iterator[Recorder]:
    recorder = Recorder()
    runtime.pm.register(recorder)
    try:
        yield recorder
    finally:
        runtime.pm.unregister(recorder)


def _start(
    runtime: Runtime, config: WorkerConfig
) -> tuple[WorkerLoop, threading.Thread, list[int]]:
    worker = WorkerLoop(runtime, config, handle_signals=False)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()), daemon=True)
    thread.start()
    return worker, thread, codes


def test_restart_workers_stops_a_worker_started_before_it(
    runtime: Runtime, recorder: Recorder
) -> None:
    worker, thread, codes = _start(runtime, FAST)
    wait_for(lambda: [w.id for w in Queue.workers()] == [worker.worker_id])
    (info,) = Queue.workers()
    assert (info.role, info.queues, info.concurrency) == ("worker", ("a", "b"), 3)
    (registered,) = recorder.named("registered")
    assert registered.id == worker.worker_id
    assert registered.started_at == info.started_at
    requested_at = Queue.restart_workers()
    assert requested_at > info.started_at
    assert recorder.named("restart") == [requested_at]
    thread.join(10)
    assert not thread.is_alive()
    assert codes == [0]
    assert recorder.named("deregistered") == [(worker.worker_id, "restart")]
    assert Queue.workers() == []

    # A worker started after the restart keeps running.
    later, thread, codes = _start(runtime, FAST)
    wait_for(lambda: [w.id for w in Queue.workers()] == [later.worker_id])
    time.sleep(0.5)  # several heartbeats, each reading the restart signal
    assert thread.is_alive()
    later.request_stop("test")
    thread.join(10)
    assert codes == [0]
    assert recorder.named("deregistered")[-1] == (later.worker_id, "stopped")


def test_a_worker_removed_as_dead_registers_again(runtime: Runtime) -> None:
    # Cut off past its visibility timeout, its row was reaped; its next beat writes it again
    # with its first start time (so an earlier restart still applies to it).
    worker, thread, _codes = _start(runtime, FAST)
    wait_for(lambda: [w.id for w in Queue.workers()] == [worker.worker_id])
    (before,) = Queue.workers()
    runtime.backend.deregister_worker(worker.worker_id)
    wait_for(lambda: [w.id for w in Queue.workers()] == [worker.worker_id])
    (after,) = Queue.workers()
    assert after.started_at == before.started_at
    worker.request_stop("test")
    thread.join(10)
    assert Queue.workers() == []


def test_a_reaper_pass_removes_a_dead_worker_on_this_host(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # A row under a pid that does not exist, as a kill -9 leaves it.
    mine = registration("unused", "worker", ("a",), 1, 60.0)
    ghost = attrs.evolve(mine, id=f"{mine.host}:999999:deadbeef", pid=999999)
    runtime.backend.register_worker(ghost)
    worker, thread, _codes = _start(runtime, FAST)
    wait_for(lambda: [w.id for w in Queue.workers()] == [worker.worker_id], timeout=10)
    worker.request_stop("test")
    thread.join(10)
    assert "removed from the registry: its process is gone" in caplog.text
