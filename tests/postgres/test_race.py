"""The claim under real contention: processes and threads race for the same rows."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ferroq_core.records import Lease
from tests.postgres.conftest import request, wait_until, worker_id

if TYPE_CHECKING:
    from ferroq_postgres import PostgresBackend

pytestmark = pytest.mark.postgres

CHILD = Path(__file__).with_name("race_child.py")
PROCESSES = 4
THREADS = 8
JOBS = 10_000


@pytest.mark.slow
def test_processes_drain_every_job_exactly_once(
    pg_url: str, pg_backend: PostgresBackend, tmp_path: Path
) -> None:
    sent = {r.id for r in pg_backend.enqueue([request("race") for _ in range(JOBS)])}
    assert len(sent) == JOBS
    go = tmp_path / "go"
    children = []
    for n in range(PROCESSES):
        out, ready = tmp_path / f"out{n}.json", tmp_path / f"ready{n}"
        cmd = [sys.executable, str(CHILD), pg_url, str(THREADS), str(out), str(ready), str(go)]
        children.append((subprocess.Popen(cmd), out, ready))
    try:
        wait_until(
            lambda: all(ready.exists() for _, _, ready in children), timeout=60, what="children"
        )
        started = time.monotonic()
        go.touch()
        for proc, _, _ in children:
            assert proc.wait(timeout=120) == 0
        elapsed = time.monotonic() - started
    finally:
        for proc, _, _ in children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    batches = [b for _, out, _ in children for b in json.loads(out.read_text())]
    claimed = collections.Counter(job_id for _, _, rows in batches for job_id, _ in rows)
    oversized = [(w, limit, len(rows)) for w, limit, rows in batches if len(rows) > limit]
    assert not oversized, f"claim batches over their limit: {oversized[:5]}"
    assert set(claimed) == sent, f"{len(sent - set(claimed))} jobs never claimed"
    twice = {job_id: n for job_id, n in claimed.items() if n > 1}
    assert not twice, f"jobs claimed more than once: {list(twice.items())[:5]}"
    assert all(attempts == 1 for _, _, rows in batches for _, attempts in rows)
    workers = {w for w, _, rows in batches if rows}
    assert len({w.split(":")[1] for w in workers}) == PROCESSES, "not every process claimed"
    assert pg_backend.get_stats() is not None
    assert pg_backend.list_jobs(queue="race") == []
    print(f"\n{JOBS} jobs, {PROCESSES}x{THREADS} workers, {len(batches)} claims: {elapsed:.2f}s")


def test_claim_never_returns_more_than_its_limit_under_contention(
    pg_backend: PostgresBackend,
) -> None:
    """Threads claim with limits 1-3 while a producer keeps inserting: the CTE locks exactly
    `limit` rows even when other transactions are skipping and inserting around it."""
    seen: list[tuple[int, list[int]]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consume(limit: int) -> None:
        me = worker_id()
        while not stop.is_set():
            rows = pg_backend.claim(["hot", "cold"], me, limit)
            with lock:
                seen.append((limit, [r.id for r in rows]))
            if rows:
                pg_backend.complete([Lease(r.id, me, r.attempts) for r in rows])

    consumers = [threading.Thread(target=consume, args=(1 + i % 3,)) for i in range(6)]
    for t in consumers:
        t.start()
    sent: set[int] = set()
    try:
        for _ in range(30):
            sent |= {r.id for r in pg_backend.enqueue([request("hot") for _ in range(15)])}
            sent |= {r.id for r in pg_backend.enqueue([request("cold") for _ in range(5)])}
        wait_until(
            lambda: sent <= {i for _, ids in list(seen) for i in ids}, timeout=30, what="drain"
        )
    finally:
        stop.set()
        for t in consumers:
            t.join(10)
    assert all(len(ids) <= limit for limit, ids in seen)
    counts = collections.Counter(i for _, ids in seen for i in ids)
    assert set(counts) == sent
    assert max(counts.values()) == 1
    assert any(len(ids) == limit > 1 for limit, ids in seen), "no batch ever filled its limit"
