"""The raw-SQL lower bound: the fewest round trips a queue of ferroq's shape can make.

Same ``ferroq_jobs`` table and indexes (created by ferroq's migration), the driver used
directly (psycopg 3 / sqlite3), autocommit statements so a transaction costs no extra round
trip: one multi-row INSERT per chunk (Postgres: arrays through ``unnest``; SQLite: the payloads
as one JSON array through ``json_each``, since 2026-11-29: ``executemany`` before, 0.57x as
fast), one claim statement per batch (``FOR UPDATE SKIP LOCKED`` CTE / ``BEGIN IMMEDIATE`` +
``UPDATE ... RETURNING``), one fenced DELETE per batch.
Wake-ups: LISTEN/NOTIFY on Postgres, ``PRAGMA data_version`` polled every millisecond on
SQLite.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, Any

from bench.common import spawn
from bench.systems.base import System, dumps, probe, record_latency

if TYPE_CHECKING:
    import subprocess

CHUNK = 10_000
CHANNEL = "bench_raw"

PG_INSERT = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, available_at, created_at)"
    " SELECT %s, 'noop', p, 'pending', 0, 0, 3, now(), now() FROM unnest(%s::text[]) AS p"
)
PG_INSERT_ONE = (
    "WITH j AS (INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, available_at, created_at)"
    " VALUES (%s, 'noop', %s, 'pending', 0, 0, 3, now(), now()) RETURNING queue)"
    " SELECT pg_notify(%s, queue) FROM j"
)
PG_CLAIM = (
    "WITH picked AS (SELECT id FROM ferroq_jobs WHERE status = 'pending' AND queue = %s"
    " AND available_at <= now() ORDER BY priority, available_at, id LIMIT %s"
    " FOR UPDATE SKIP LOCKED)"
    " UPDATE ferroq_jobs j SET status = 'claimed', claimed_by = %s, claimed_at = now(),"
    " heartbeat_at = now(), attempts = j.attempts + 1 FROM picked WHERE j.id = picked.id"
    " RETURNING j.id, j.payload, j.attempts"
)
PG_DELETE = "DELETE FROM ferroq_jobs WHERE status = 'claimed' AND claimed_by = %s AND id = ANY(%s)"
SQ_INSERT = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, available_at, created_at) VALUES (?, 'noop', ?, 'pending', 0, 0, 3, ?, ?)"
)
# Rows that differ only in their payload, as one JSON array (ferroq_sqlite.bulk does the same:
# 1.8 against 4 us per row for executemany on the 2026-11-29 machine).
SQ_INSERT_JSON = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, available_at, created_at)"
    " SELECT ?, 'noop', value, 'pending', 0, 0, 3, ?, ? FROM json_each(?) ORDER BY key"
)
SQ_CLAIM = (
    "UPDATE ferroq_jobs SET status = 'claimed', claimed_by = ?, claimed_at = ?,"
    " heartbeat_at = ?, attempts = attempts + 1 WHERE id IN (SELECT id FROM ferroq_jobs"
    " WHERE status = 'pending' AND queue = ? AND available_at <= ?"
    " ORDER BY priority, available_at, id LIMIT ?) RETURNING id, payload, attempts"
)
SQ_LEFT = "SELECT EXISTS (SELECT 1 FROM ferroq_jobs WHERE queue = ? AND status <> 'failed')"


def _micros() -> int:
    return time.time_ns() // 1000


class RawSystem(System):
    name = "raw"

    def __init__(self, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self._conn: Any = None
        self._first = 0

    def _db(self) -> Any:
        if self._conn is None:
            self._conn = connect(self.backend, self.url)
        return self._conn

    def setup(self) -> None:
        from bench.systems.ferroq_sys import migrate

        migrate(self.url)

    def reset(self) -> None:
        if self.backend == "postgres":
            self._db().execute("TRUNCATE ferroq_jobs")
        else:
            self._db().execute("DELETE FROM ferroq_jobs")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _payloads(self, n: int) -> list[str]:
        return [dumps({"i": i}) for i in range(n)]

    def enqueue_bulk(self, n: int) -> None:
        db = self._db()
        payloads = self._payloads(n)
        if self.backend == "postgres":
            with db.transaction():
                for start in range(0, n, CHUNK):
                    db.execute(PG_INSERT, (self.queue, payloads[start : start + CHUNK]))
        else:
            now = _micros()
            db.execute("BEGIN IMMEDIATE")
            for start in range(0, n, CHUNK):
                array = json.dumps(payloads[start : start + CHUNK], ensure_ascii=False)
                db.execute(SQ_INSERT_JSON, (self.queue, now, now, array))
            db.execute("COMMIT")
        self._first = self._min_id()

    def enqueue_single(self, n: int) -> None:
        for payload in self._payloads(n):
            self._insert_one(payload)

    def enqueue_probe(self) -> None:
        self._insert_one(dumps(probe()))

    def _insert_one(self, payload: str) -> None:
        db = self._db()
        if self.backend == "postgres":
            db.execute(PG_INSERT_ONE, (self.queue, payload, CHANNEL))
        else:
            now = _micros()
            db.execute(SQ_INSERT, (self.queue, payload, now, now))

    def _min_id(self) -> int:
        row = self._db().execute("SELECT min(id) FROM ferroq_jobs").fetchone()
        return int(row[0] or 0)

    def started(self) -> bool:
        q = "SELECT status FROM ferroq_jobs WHERE id = " + (
            "%s" if self.backend == "postgres" else "?"
        )
        row = self._db().execute(q, (self._first,)).fetchone()
        return row is None or row[0] != "pending"

    def finished(self) -> bool:
        q = SQ_LEFT.replace("?", "%s") if self.backend == "postgres" else SQ_LEFT
        return not self._db().execute(q, (self.queue,)).fetchone()[0]

    def done_count(self) -> int:
        raise NotImplementedError("raw runs no sustained workload")

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return spawn(
            "bench.systems.raw_sys",
            "worker",
            self.backend,
            self.url,
            self.queue,
            str(self.batch),
            env=env,
        )


def connect(backend: str, url: str) -> Any:
    if backend == "postgres":
        import psycopg

        return psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )
    path = url.split(":///", 1)[1]
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def make(backend: str, url: str, queue: str, **options: Any) -> RawSystem:
    return RawSystem(backend, url, queue, **options)


# -- the worker process ----------------------------------------------------------------------
def _run_pg(url: str, queue: str, batch: int, me: str, stop: list[bool]) -> None:
    db = connect("postgres", url)
    listener = connect("postgres", url)
    listener.execute(f"LISTEN {CHANNEL}")  # constant channel name, not input
    while not stop[0]:
        rows = db.execute(PG_CLAIM, (queue, batch, me)).fetchall()
        if not rows:
            for _ in listener.notifies(timeout=1.0, stop_after=1):
                pass
            continue
        for _id, payload, _attempts in rows:
            record_latency(json.loads(payload))
        db.execute(PG_DELETE, (me, [r[0] for r in rows]))


def _run_sqlite(url: str, queue: str, batch: int, me: str, stop: list[bool]) -> None:
    db = connect("sqlite", url)
    seen = db.execute("PRAGMA data_version").fetchone()[0]
    while not stop[0]:
        now = _micros()
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(SQ_CLAIM, (me, now, now, queue, now, batch)).fetchall()
        db.execute("COMMIT")
        if not rows:
            # data_version changes when another connection commits: a cheap idle check.
            while not stop[0]:
                version = db.execute("PRAGMA data_version").fetchone()[0]
                if version != seen:
                    seen = version
                    break
                time.sleep(0.001)
            continue
        for _id, payload, _attempts in rows:
            record_latency(json.loads(payload))
        marks = ",".join("?" * len(rows))
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            f"DELETE FROM ferroq_jobs WHERE status = 'claimed' AND claimed_by = ?"
            f" AND id IN ({marks})",
            (me, *[r[0] for r in rows]),
        )
        db.execute("COMMIT")
        seen = db.execute("PRAGMA data_version").fetchone()[0]


def main(argv: list[str]) -> None:
    _cmd, backend, url, queue, batch = argv
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    me = f"raw:{os.getpid()}"
    run = _run_pg if backend == "postgres" else _run_sqlite
    run(url, queue, int(batch), me, stop)


if __name__ == "__main__":
    main(sys.argv[1:])
