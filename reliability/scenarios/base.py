"""What every scenario gets: the backend, quick or full sizes, a work directory and where
Postgres databases come from."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from reliability.checker import Report, percentile
from reliability.harness import Bench, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from reliability.harness import WorkerProc

__all__ = ["Context", "drain_alive", "report_figures", "resume_time", "rounded"]


@attrs.frozen
class Context:
    """One scenario run's settings."""

    #: ``sqlite`` or ``postgres``.
    backend: str
    #: The small CI form.
    quick: bool
    #: Scratch directory (databases, ledgers, worker logs).
    workdir: Path
    #: Postgres server on which each run creates (and drops) its own database.
    pg_server_url: str | None = None

    @contextmanager
    def bench(self, name: str, server_url: str | None = None) -> Iterator[Bench]:
        with Bench.open(
            self.backend, self.workdir / name, server_url or self.pg_server_url
        ) as bench:
            yield bench


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def report_figures(report: Report) -> dict[str, Any]:
    """The checker's headline figures, rounded for the results table."""
    return {
        "jobs": report.dispatched,
        "succeeded": report.succeeded,
        "failed": report.failed,
        "lost": len(report.lost),
        "dup_explained": report.duplicates_explained,
        "dup_unexplained": len(report.duplicates_unexplained),
        "dup_completions": len(report.duplicate_completions),
        "zombie_rejected": report.zombie_writes_rejected,
        "unacked_killed": report.unacknowledged,
        "recovery_p50": rounded(percentile(report.recovery, 50)),
        "recovery_p95": rounded(percentile(report.recovery, 95)),
        "recovery_max": rounded(max(report.recovery, default=None)),
        "rerun_p50": rounded(percentile(report.rerun, 50)),
        "rerun_max": rounded(max(report.rerun, default=None)),
    }


class Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.start, 1)


def resume_time(bench: Bench, workers: list[WorkerProc], back: float, timeout: float) -> float:
    """Seconds from ``back`` (the database came back) until every worker of ``workers`` started
    a job; raises TimeoutError after ``timeout`` seconds."""

    def first_starts() -> dict[int, float]:
        first: dict[int, float] = {}
        for e in bench.effects():
            if e.kind == "start" and e.ts >= back and e.pid not in first:
                first[e.pid] = e.ts - back
        return first

    wait_for(
        lambda: all(w.pid in first_starts() for w in workers),
        timeout,
        "every worker to start jobs again",
    )
    starts = first_starts()
    return max(starts[w.pid] for w in workers)


def drain_alive(bench: Bench, workers: list[WorkerProc], timeout: float = 120) -> list[str]:
    """Wait for the queue to drain; the problems: it did not, or a worker died."""
    problems = []
    try:
        bench.wait_drained(timeout)
    except TimeoutError as exc:
        problems.append(str(exc))
    dead = [w.name for w in workers if not w.alive()]
    if dead:
        problems.append(f"workers died: {dead}")
    return problems
