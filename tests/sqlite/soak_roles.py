"""The processes of the SQLite soak (see :mod:`tests.sqlite.soak`)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ferroq_core.records import EnqueueRequest, JobRow
from ferroq_sqlite.backend import SqliteBackend

if TYPE_CHECKING:
    from pathlib import Path

QUEUES = ("high", "default")
CONCURRENCY = 4
DONE_MARKER = "dispatcher.done"


def _error(errors: list[str]) -> None:
    errors.append(traceback.format_exc(limit=4))


def worker(url: str, workdir: Path, index: int) -> None:
    """Claim up to the free slots, run no-op jobs on threads, ack in batches, heartbeat, reap."""
    backend = SqliteBackend.from_url(url)
    wid = f"soak-host:{os.getpid()}:w{index}"
    pool = ThreadPoolExecutor(CONCURRENCY)
    running: dict[Future[None], JobRow] = {}
    completed: list[int] = []
    errors: list[str] = []
    next_beat = next_reap = time.monotonic()
    hard_stop: float | None = None
    while True:
        try:
            finished = [f for f in running if f.done()]
            if finished:
                rows = [running.pop(f) for f in finished]
                done = backend.complete([r.lease for r in rows])
                if done != {r.id for r in rows}:
                    errors.append(f"completion rejected: {sorted({r.id for r in rows} - done)}")
                completed.extend(sorted(done))
            now = time.monotonic()
            if now >= next_beat:
                leases = [r.lease for r in running.values()]
                held = backend.heartbeat(leases)
                if held != {lease.id for lease in leases}:
                    errors.append("heartbeat lost a lease")
                next_beat = now + 0.5
            if now >= next_reap:
                reaped = backend.reap(30.0)
                if reaped.requeued or reaped.failed:
                    errors.append(f"reaper took live jobs: {reaped}")
                next_reap = now + 1.0
            free = CONCURRENCY - len(running)
            rows = backend.claim(QUEUES, wid, free) if free else []
            if len(rows) > free:
                errors.append(f"claimed {len(rows)} with {free} free slots")
            for row in rows:
                running[pool.submit(time.sleep, random.uniform(0, 0.002))] = row
            if running:
                wait(list(running), timeout=0.05, return_when=FIRST_COMPLETED)
            elif not rows:
                if (workdir / DONE_MARKER).exists():
                    hard_stop = hard_stop or time.monotonic() + 60
                    if backend.get_stats().total == 0 or time.monotonic() > hard_stop:
                        break
                backend.wait_for_jobs(QUEUES, 0.5)
        except Exception:
            _error(errors)
            time.sleep(0.05)
    pool.shutdown()
    report = {"completed": completed, "errors": errors, "busy_retried": backend.busy_retried}
    backend.close()
    (workdir / f"worker-{index}.json").write_text(json.dumps(report))


def _req(queue: str = "default", **fields: Any) -> EnqueueRequest:
    return EnqueueRequest(queue=queue, job_type="soak:Noop", payload='{"x": 1}', **fields)


def dispatcher(url: str, workdir: Path, seconds: float) -> None:
    """Enqueue from several threads for ``seconds``, like a busy web process."""
    backend = SqliteBackend.from_url(url)
    stop = threading.Event()
    lock = threading.Lock()
    out: dict[str, Any] = {"enqueued": [], "errors": [], "duplicates": 0, "rolled_back": 0}

    def record(results: list[Any]) -> None:
        with lock:
            for r in results:
                if r.duplicate:
                    out["duplicates"] += 1
                else:
                    out["enqueued"].append(r.id)

    def loop(step: Any, pause: float) -> None:
        rng = random.Random()
        while not stop.is_set():
            try:
                step(rng)
            except Exception:
                with lock:
                    _error(out["errors"])
            time.sleep(pause)

    def single(rng: random.Random) -> None:
        record(backend.enqueue([_req(rng.choice(QUEUES), priority=rng.randint(0, 3))]))

    def bulk(rng: random.Random) -> None:
        delay = rng.choice([0.0, 0.0, 0.05, 0.3])
        record(backend.enqueue([_req(delay=delay) for _ in range(20)]))

    def keyed(rng: random.Random) -> None:
        record(backend.enqueue([_req(idempotency_key=f"k{rng.randint(0, 50)}")]))

    def transactional(rng: random.Random) -> None:
        with backend.engine.connect() as conn:
            trans = conn.begin()
            results = backend.enqueue([_req() for _ in range(5)], connection=conn)
            if rng.random() < 0.2:
                trans.rollback()
                with lock:
                    out["rolled_back"] += len(results)
            else:
                trans.commit()
                record(results)

    def dashboard(_rng: random.Random) -> None:
        backend.get_stats()
        backend.list_jobs(limit=20)

    steps = [(single, 0.0005), (bulk, 0.005), (keyed, 0.005), (transactional, 0.01)]
    steps.append((dashboard, 0.05))
    threads = [threading.Thread(target=loop, args=s) for s in steps]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    out["busy_retried"] = backend.busy_retried
    backend.close()
    (workdir / "dispatcher-0.json").write_text(json.dumps(out))
    (workdir / DONE_MARKER).write_text("done")
