"""The queue_stats query counts pending rows from the claim index, not by reading the table
(Prometheus scrapes run it; a scan reads every payload), and says what a plain scan says."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from ferroq_core.records import EnqueueRequest
from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    from ferroq_sqlite.backend import SqliteBackend

#: What queue_stats must equal: one scan of the table.
PLAIN = """
SELECT queue,
       sum(status = 'pending' AND available_at <= :now),
       sum(status = 'pending' AND available_at > :now),
       sum(status = 'claimed'),
       sum(status = 'failed'),
       min(CASE WHEN status = 'pending' AND available_at <= :now THEN available_at END)
FROM ferroq_jobs GROUP BY queue ORDER BY queue
"""


def test_queue_stats_equals_a_scan_without_reading_the_table(
    backend: SqliteBackend, db_path: str
) -> None:
    requests = [
        EnqueueRequest(queue, "t", f'{{"n":{n}}}', delay=3600.0 if n % 4 == 0 else 0.0)
        for n in range(300)
        for queue in ("a", "b", "c")
    ]
    backend.enqueue(requests)
    claimed = backend.claim(["a", "b"], "host:1:w", 40)
    for row in claimed[:15]:
        assert backend.fail(row.lease, error="boom")
    db = sqlite3.connect(db_path)
    try:
        params = {"now": int(time.time() * 1e6)}
        rows = db.execute(sql("queue_stats"), params).fetchall()
        assert rows == db.execute(PLAIN, params).fetchall()
        assert {r[0] for r in rows} == {"a", "b", "c"}
        assert sum(r[3] for r in rows) == 25
        assert sum(r[4] for r in rows) == 15
        plan = [
            detail for *_, detail in db.execute("EXPLAIN QUERY PLAN " + sql("queue_stats"), params)
        ]
    finally:
        db.close()
    scans = [p for p in plan if p.startswith("SCAN ferroq_jobs")]
    assert scans, plan
    assert all("USING INDEX" in p for p in scans), plan
    assert any("ferroq_jobs_claim" in p for p in scans), plan
