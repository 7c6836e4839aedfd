"""The worker registry's cost per heartbeat: ``beat_worker`` (the leases, the worker's row
and the restart signal in one transaction) against the lease heartbeat alone
(``heartbeat``), interleaved in one process, per backend.

    python -m bench.registry_beat [--beats 300] [--leases 0,10] [--backends sqlite,postgres]

A worker beats once per heartbeat interval (a third of the visibility timeout by default), not
per job: multiply by the beats per second of a worker to get its cost. With no lease the
lease heartbeat sends nothing, so that row is the whole cost an idle worker now pays.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median
from ferroq_core import QueueConfig, Runtime, make_plugin_manager
from ferroq_core.records import EnqueueRequest
from ferroq_core.worker.presence import registration


def _runtime(backend: str, folder: str) -> Runtime:
    if backend == "sqlite":
        url = f"sqlite:///{folder}/beat.db"
    else:
        url = os.environ.get("FERROQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres")
    rt = Runtime.build(url, QueueConfig(connection="db"), make_plugin_manager())
    rt.backend.migrate()
    return rt


def measure(backend: str, beats: int, leases: int) -> tuple[float, float]:
    """Median milliseconds per ``heartbeat`` and per ``beat_worker`` with ``leases`` held."""
    with tempfile.TemporaryDirectory() as folder:
        rt = _runtime(backend, folder)
        try:
            store = rt.backend
            worker = f"bench-host:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            queue = f"beat-{uuid.uuid4().hex[:8]}"
            store.register_worker(registration(worker, "worker", (queue,), leases, 300.0))
            store.enqueue(
                [EnqueueRequest(queue=queue, job_type="bench:beat", payload="{}")] * leases
            )
            held = [row.lease for row in store.claim([queue], worker, leases)]
            plain: list[float] = []
            registry: list[float] = []
            for _ in range(beats):
                for times, call in (
                    (plain, lambda: store.heartbeat(held)),
                    (registry, lambda: store.beat_worker(worker, held)),
                ):
                    began = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - began) * 1000)
            store.requeue(held)
            store.delete_jobs([lease.id for lease in held])
            store.deregister_worker(worker)
            return median(plain), median(registry)
        finally:
            rt.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.registry_beat")
    p.add_argument("--beats", type=int, default=300)
    p.add_argument("--leases", default="0,10")
    p.add_argument("--backends", default="sqlite,postgres")
    args = p.parse_args(argv)
    print("| backend | leases | heartbeat ms | beat_worker ms | difference ms |")
    print("|---|---|---|---|---|")
    for backend in args.backends.split(","):
        for n in (int(x) for x in args.leases.split(",")):
            plain, registry = measure(backend, args.beats, n)
            print(f"| {backend} | {n} | {plain:.3f} | {registry:.3f} | {registry - plain:+.3f} |")


if __name__ == "__main__":
    main()
