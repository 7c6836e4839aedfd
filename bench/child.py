"""One measurement in its own process: ``python -m bench.child SYSTEM BACKEND URL WORKLOAD
'{json options}'``. Prints one ``BENCH-RESULT {json}`` line (see :mod:`bench.common`)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from typing import TYPE_CHECKING, Any

from bench.common import NotInstalled, emit, percentile, rss_mb, stop, wait_until
from bench.systems import load
from bench.systems.base import LATENCY_FILE_ENV

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    from bench.systems.base import System

LOCK_MARKERS = ("database is locked", "database table is locked", "BackendBusy", "SQLITE_BUSY")


def _lock_errors(tails: list[str]) -> int:
    return sum(tail.count(m) for tail in tails for m in LOCK_MARKERS)


def _timed(fn: Callable[[int], None], n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    fn(n)
    dt = time.perf_counter() - t0
    return {"jobs_per_s": n / dt, "seconds": dt, "n": n}


def enqueue_bulk(s: System, o: dict[str, Any]) -> dict[str, Any]:
    return _timed(s.enqueue_bulk, o["n"])


def enqueue_single(s: System, o: dict[str, Any]) -> dict[str, Any]:
    return _timed(s.enqueue_single, o["n_single"])


def _start(s: System, procs: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    return [s.start_worker(env) for _ in range(procs)]


def drain(s: System, o: dict[str, Any]) -> dict[str, Any]:
    n, procs = o["n"], o["procs"]
    s.prefill(n)
    workers = _start(s, procs, {})
    try:
        t0 = wait_until(s.started, timeout=120, interval=0.005)
        if t0 is None:
            raise RuntimeError("no worker took a job within 120 s")
        t1 = wait_until(s.finished, timeout=o.get("timeout", 900), interval=0.02)
        if t1 is None:
            raise RuntimeError("the queue did not drain in time")
    finally:
        tails = stop(workers)
    dt = t1 - t0
    return {
        "jobs_per_s": n / dt,
        "seconds": dt,
        "n": n,
        "procs": procs,
        "lock_errors": _lock_errors(tails),
    }


def latency(s: System, o: dict[str, Any]) -> dict[str, Any]:
    """Idle: one probe at a time into an idle worker. Load: probes at a fixed rate."""
    fd, path = tempfile.mkstemp(prefix="bench-lat-", suffix=".txt")
    os.close(fd)
    workers = _start(s, 1, {LATENCY_FILE_ENV: path})
    try:
        # Warm-up probe: proves the worker is up before anything is timed.
        s.enqueue_probe()
        if wait_until(s.finished, timeout=120, interval=0.01) is None:
            raise RuntimeError("the worker never took the warm-up job")
        open(path, "w").close()
        if o["rate"] is None:
            for _ in range(o["probes"]):
                s.enqueue_probe()
                wait_until(s.finished, timeout=30, interval=0.002)
                time.sleep(0.02)  # let the worker go idle again
            expected = o["probes"]
        else:
            period = 1.0 / o["rate"]
            count = int(o["rate"] * o["seconds"])
            nxt = time.perf_counter()
            for _ in range(count):
                s.enqueue_probe()
                nxt += period
                time.sleep(max(0.0, nxt - time.perf_counter()))
            wait_until(s.finished, timeout=60, interval=0.01)
            expected = count
        wait_until(lambda: _lines(path) >= expected, timeout=10, interval=0.01)
    finally:
        tails = stop(workers)
    with open(path, encoding="utf-8") as fh:
        lags = [float(x) * 1000 for x in fh.read().split()]
    os.unlink(path)
    if not lags:
        raise RuntimeError("no latency recorded: " + tails[0][-500:])
    return {
        "p50_ms": percentile(lags, 50),
        "p99_ms": percentile(lags, 99),
        "samples": len(lags),
        "rate": o["rate"],
    }


def _lines(path: str) -> int:
    with open(path) as fh:
        return sum(1 for _ in fh)


def sustained(s: System, o: dict[str, Any]) -> dict[str, Any]:
    """Drain a large backlog for ``seconds``, counting jobs done per ``window`` seconds."""
    s.prefill(o["n"])
    flushed = _checkpoint(s)  # the prefill's WAL, as for the backlog pair below
    workers = _start(s, 1, {})
    windows: list[float] = []
    rss: list[float] = []
    try:
        if wait_until(s.started, timeout=120, interval=0.005) is None:
            raise RuntimeError("no worker took a job within 120 s")
        left = s.left()  # type: ignore[attr-defined]
        end = time.monotonic() + o["seconds"]
        while time.monotonic() < end:
            time.sleep(o["window"])
            now_left = s.left()  # type: ignore[attr-defined]
            windows.append((left - now_left) / o["window"])
            left = now_left
            mem = rss_mb(workers[0].pid)
            if mem is not None:
                rss.append(mem)
            if left == 0:
                break
    finally:
        stop(workers)
    # A window cut short by the queue running dry is partial: it does not count.
    full = windows[:-1] if left == 0 else windows
    ratio = full[-1] / full[0] if full and full[0] else float("nan")
    growth = (rss[-1] / rss[1] - 1.0) if len(rss) > 2 else float("nan")
    return {
        "windows": windows,
        "last_over_first": ratio,
        "rss_mb": rss,
        "rss_growth": growth,
        "drained_early": left == 0,
        "checkpointed": flushed,
    }


def backlog(s: System, o: dict[str, Any]) -> dict[str, Any]:
    """Time to finish the first ``n`` jobs with ``backlog`` jobs pending in the table."""
    total = o["backlog"]
    s.prefill(total)
    first = s._first  # type: ignore[attr-defined]
    flushed = _checkpoint(s)
    workers = _start(s, 1, {})
    try:
        t0 = wait_until(s.started, timeout=120, interval=0.005)
        if t0 is None:
            raise RuntimeError("no worker took a job within 120 s")
        last = first + o["n"] - 1
        t1 = wait_until(lambda: s.done_through(last), timeout=900, interval=0.02)  # type: ignore[attr-defined]
        if t1 is None:
            raise RuntimeError("backlog drain timed out")
    finally:
        stop(workers)
    dt = t1 - t0
    return {
        "jobs_per_s": o["n"] / dt,
        "seconds": dt,
        "backlog": total,
        "first_id": first,
        "checkpointed": flushed,
    }


def _checkpoint(s: System) -> bool:
    """On Postgres, flush the prefill's WAL before timing: a million inserted rows exceed
    ``max_wal_size``, and the checkpoint the server then starts overlapped the timed drain in
    every run (``checkpoints_req`` +1 per run), making the 1,000,000-row rate swing between
    runs (20,000-27,000 jobs/s here) for a reason that is not the table's size. Needs the
    ``pg_checkpoint`` role or a superuser; without it the run goes on (False is recorded)."""
    if s.backend != "postgres":
        return False
    import psycopg

    from bench.systems.raw_sys import connect

    try:
        with connect("postgres", s.url) as conn:  # autocommit, the URL's driver prefix dropped
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        return False
    return True


WORKLOADS = {
    "enqueue_bulk": enqueue_bulk,
    "enqueue_single": enqueue_single,
    "drain": drain,
    "latency": latency,
    "sustained": sustained,
    "backlog": backlog,
}


def main(argv: list[str]) -> None:
    system, backend, url, workload, raw = argv
    options: dict[str, Any] = json.loads(raw)
    base = {"system": system, "backend": backend, "workload": workload}
    try:
        s = load(system, backend, url, f"bench-{uuid.uuid4().hex[:8]}", batch=options["batch"])
    except NotInstalled as exc:
        emit({**base, "status": "not installed", "error": str(exc)})
        return
    try:
        s.setup()
        s.reset()
        result = WORKLOADS[workload](s, options)
        emit({**base, "status": "ok", **result})
    except Exception as exc:
        traceback.print_exc()
        emit({**base, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:500]})
    finally:
        try:
            s.reset()
        finally:
            s.close()


if __name__ == "__main__":
    threading.current_thread().name = "bench-child"
    main(sys.argv[1:])
