"""What the acknowledgement itself costs with a stored result, against the plain one: CPU
time per job of ``complete_with_results`` (a small value) and of ``complete``, each on
batches of 100 claimed jobs, through the backend in this process (the claims and the
dispatch are not counted).

    python -m bench.results_ack [-n 20000] [--reps 3] [--backends sqlite,postgres]

Run it from another tree (``PYTHONPATH=<tree>/ferroq_core/src:...``) to compare versions of
the acknowledgement. On PostgreSQL the CPU counted is this process's (building and sending
the statement), not the server's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.common import add_backend_options, on_backends
from bench.systems.ferroq_sys import runtime_for
from ferroq_core.records import EnqueueRequest
from ferroq_core.storage.results import ResultWrite

#: A worker's claim and acknowledgement batch (its concurrency in the benchmark's drain).
BATCH = 100
VALUE = '{"i":12345,"ok":1}'


def measure(url: str, n: int, reps: int) -> dict[str, float]:
    """Median CPU microseconds per job of each acknowledgement, the order turning."""
    rt = runtime_for(url)
    backend = rt.backend
    backend.migrate()
    out: dict[str, list[float]] = {"complete": [], "results": []}
    try:
        for rep in range(reps):
            for kind in list(out) if rep % 2 == 0 else list(out)[::-1]:
                backend.enqueue([EnqueueRequest("ack", "bench.ack", '{"i":1}') for _ in range(n)])
                spent = 0.0
                while rows := backend.claim(["ack"], "bench-host:1:ack", BATCH):
                    started = time.process_time()
                    if kind == "complete":
                        backend.complete([r.lease for r in rows])
                    else:
                        backend.complete_with_results(
                            [ResultWrite(r.lease, VALUE, 86_400.0) for r in rows]
                        )
                    spent += time.process_time() - started
                out[kind].append(spent / n * 1e6)
    finally:
        rt.close()
    return {kind: statistics.median(values) for kind, values in out.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.results_ack")
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--reps", type=int, default=3)
    add_backend_options(p)
    args = p.parse_args(argv)
    os.environ.setdefault("FERROQ_LOAD_PLUGINS", "sqlite,postgres,tenancy")
    for backend, figures in on_backends(
        args, "ferroq-results-ack", lambda url: measure(url, args.n, args.reps)
    ):
        plain, stored = figures["complete"], figures["results"]
        print(
            f"{backend}: CPU per job complete {plain:.2f} us, complete_with_results "
            f"{stored:.2f} us (+{stored - plain:.2f} us)"
        )


if __name__ == "__main__":
    main()
