"""One process of the claim race (tests/postgres/test_race.py): THREADS threads claim with
random limits and complete until the queue is dry, then write every batch to OUT as JSON.

Usage: python race_child.py URL THREADS OUT READY_FILE GO_FILE
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

from ferroq_core.records import Lease
from ferroq_postgres import PostgresBackend

MAX_LIMIT = 16


def main(url: str, threads: int, out: Path, ready: Path, go: Path) -> None:
    backend = PostgresBackend.from_url(url, pool_size=threads, max_overflow=0, listen=False)
    backend.now()  # connect before the start line, so the race starts together
    batches: list[tuple[str, int, list[tuple[int, int]]]] = []
    lock = threading.Lock()

    def drain(me: str, rng: random.Random) -> None:
        while True:
            limit = rng.randint(1, MAX_LIMIT)
            rows = backend.claim(["race"], me, limit)
            with lock:
                batches.append((me, limit, [(r.id, r.attempts) for r in rows]))
            if not rows:
                return
            backend.complete([Lease(r.id, me, r.attempts) for r in rows])

    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    workers = [
        threading.Thread(
            target=drain, args=(f"race:{os.getpid()}:{uuid.uuid4().hex[:8]}", random.Random(i))
        )
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    backend.close()
    out.write_text(json.dumps(batches))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
