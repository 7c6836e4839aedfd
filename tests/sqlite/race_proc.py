"""The child side of the SQLite race test: one process, several threads, each with its own
backend (and so its own connections), draining one queue with batch claims.

Each process writes what it saw to ``<out_dir>/<index>.json``: every claimed id, the batch
sizes against their limits, and any error (there must be none).
"""

from __future__ import annotations

import json
import os
import random
import threading
import traceback
from pathlib import Path
from typing import Any

QUEUE = "race"


def drain_thread(url: str, index: int, limit_max: int, report: dict[str, Any]) -> None:
    from ferroq_sqlite.backend import SqliteBackend

    rng = random.Random(os.getpid() * 100 + index)
    backend = SqliteBackend.from_url(url)
    worker = f"race-host:{os.getpid()}:t{index}"
    claimed: list[int] = report.setdefault("claimed", [])
    try:
        while True:
            limit = rng.randint(1, limit_max)
            rows = backend.claim([QUEUE], worker, limit)
            if len(rows) > limit:
                report["over_limit"].append([limit, len(rows)])
            if not rows:
                if backend.get_stats().for_queue(QUEUE).pending == 0:
                    break
                continue
            claimed.extend(r.id for r in rows)
            ids = {r.id for r in rows}
            done = backend.complete([r.lease for r in rows])
            if done != ids:
                report["errors"].append(f"completion rejected for {sorted(done ^ ids)}")
    except BaseException:
        report["errors"].append(traceback.format_exc())
    finally:
        report["busy_retried"] += backend.busy_retried
        backend.close()


def run_process(
    url: str, out_dir: str, index: int, threads: int, limit_max: int, start: Any, private: bool
) -> None:
    """Entry point of one race process (``multiprocessing`` spawn target); ``start`` is a
    barrier shared with the other processes and the test."""
    import ferroq_sqlite.backend  # noqa: F401 - imported before the start, not during the race

    if private:
        # Every backend gets a lock of its own: all writers then meet only in SQLite's own
        # locking, the harshest case for busy handling.
        import ferroq_sqlite.transactions as transactions_module

        transactions_module.file_lock = lambda _db: threading.Lock()
    reports: list[dict[str, Any]] = [
        {"claimed": [], "over_limit": [], "errors": [], "busy_retried": 0} for _ in range(threads)
    ]
    start.wait(120)
    workers = [
        threading.Thread(target=drain_thread, args=(url, i, limit_max, reports[i]))
        for i in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    merged = {
        "pid": os.getpid(),
        "claimed": [i for r in reports for i in r["claimed"]],
        "over_limit": [x for r in reports for x in r["over_limit"]],
        "errors": [e for r in reports for e in r["errors"]],
        "busy_retried": sum(r["busy_retried"] for r in reports),
    }
    Path(out_dir, f"{index}.json").write_text(json.dumps(merged))
