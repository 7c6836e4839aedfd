"""What every adapter offers the workloads in :mod:`bench.child`."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

#: Env var naming the file a worker appends enqueue->start latencies to (one float a line).
LATENCY_FILE_ENV = "BENCH_LATENCY_FILE"


def record_latency(payload: dict[str, Any]) -> None:
    """Called by every system's no-op handler: a payload with ``t`` is a latency probe."""
    sent = payload.get("t")
    if sent is None:
        return
    lag = time.time() - float(sent)
    path = os.environ.get(LATENCY_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{lag:.6f}\n")


def probe() -> dict[str, Any]:
    return {"t": time.time()}


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


class System:
    """An adapter. ``batch`` is the claim batch size every system is configured with."""

    name = "abstract"

    def __init__(self, backend: str, url: str, queue: str, *, batch: int = 100) -> None:
        self.backend = backend
        self.url = url
        self.queue = queue
        self.batch = batch

    # -- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the schema (idempotent)."""

    def reset(self) -> None:
        """Empty the tables so the next measurement starts clean."""

    def close(self) -> None:
        """Release connections."""

    # -- enqueue -----------------------------------------------------------------------------
    def enqueue_bulk(self, n: int) -> None:
        raise NotImplementedError

    def enqueue_single(self, n: int) -> None:
        raise NotImplementedError

    def enqueue_probe(self) -> None:
        """One job whose payload carries the send time (for latency)."""
        raise NotImplementedError

    def prefill(self, n: int) -> None:
        self.enqueue_bulk(n)

    # -- progress (cheap queries; the driver polls them) ---------------------------------------
    def started(self) -> bool:
        """Has any worker taken a job since the last prefill?"""
        raise NotImplementedError

    def finished(self) -> bool:
        """Are all enqueued jobs done?"""
        raise NotImplementedError

    def done_count(self) -> int:
        """Jobs finished since the last prefill (may cost a count; used per 5 s window)."""
        raise NotImplementedError

    # -- workers -----------------------------------------------------------------------------
    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        raise NotImplementedError
