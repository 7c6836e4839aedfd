"""The job counters and histograms, made once per process in prometheus_client's registry.

They live in the default registry so an application that already serves it (its web
process's ``/metrics``) reports the jobs it enqueues without further set-up. Under
``PROMETHEUS_MULTIPROC_DIR`` (a supervised worker) prometheus_client writes their values to
files there, which the supervisor's server adds up.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core import JobRow

__all__ = ["BUCKETS", "JobMetrics", "job_metrics"]

#: Histogram buckets in seconds: jobs last from milliseconds to many minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

_LABELS = ("queue", "job_type")


class _Series(NamedTuple):
    """The labelled children of one (queue, job type)."""

    started: Any
    succeeded: Any
    retried: Any
    failed: Any
    duration: Any
    wait: Any


class JobMetrics:
    """The per-queue, per-job-type series, with each label pair's children cached (a
    ``labels()`` lookup takes a lock and builds a key; a batch of jobs pays a dict lookup)."""

    def __init__(self, registry: Any = None) -> None:
        reg = REGISTRY if registry is None else registry

        def counter(name: str, text: str) -> Any:
            return Counter(name, text, _LABELS, registry=reg)

        self.enqueued = counter("ferroq_jobs_enqueued", "Jobs written to the database.")
        self.started = counter("ferroq_jobs_started", "Attempts a worker started.")
        self.succeeded = counter("ferroq_jobs_succeeded", "Attempts that succeeded.")
        self.retried = counter("ferroq_jobs_retried", "Attempts that failed and will retry.")
        self.failed = counter("ferroq_jobs_failed", "Jobs parked as failed.")
        self.duration = Histogram(
            "ferroq_job_duration_seconds",
            "Seconds a successful attempt's handler ran.",
            _LABELS,
            buckets=BUCKETS,
            registry=reg,
        )
        self.wait = Histogram(
            "ferroq_job_wait_seconds",
            "Seconds from when a job was due (enqueued, or its delay or retry backoff over) "
            "until a worker claimed it.",
            _LABELS,
            buckets=BUCKETS,
            registry=reg,
        )
        self.workers = Gauge(
            "ferroq_workers",
            "Worker processes running (1 per process; summed over live processes).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[str, str], _Series] = {}

    def _of(self, queue: str, job_type: str) -> _Series:
        series = self._children.get((queue, job_type))
        if series is None:
            labels = (queue, job_type)
            series = _Series(
                self.started.labels(*labels),
                self.succeeded.labels(*labels),
                self.retried.labels(*labels),
                self.failed.labels(*labels),
                self.duration.labels(*labels),
                self.wait.labels(*labels),
            )
            self._children[(queue, job_type)] = series
        return series

    def enqueued_one(self, queue: str, job_type: str) -> None:
        self.enqueued.labels(queue, job_type).inc()

    def claimed(self, rows: Sequence[JobRow]) -> None:
        for (queue, job_type), count in Tally((r.queue, r.job_type) for r in rows).items():
            self._of(queue, job_type).started.inc(count)
        for row in rows:
            if row.claimed_at is not None:
                waited = (row.claimed_at - row.available_at).total_seconds()
                self._of(row.queue, row.job_type).wait.observe(max(0.0, waited))

    def succeeded_batch(self, rows: Sequence[JobRow], durations: Sequence[float]) -> None:
        for (queue, job_type), count in Tally((r.queue, r.job_type) for r in rows).items():
            self._of(queue, job_type).succeeded.inc(count)
        for row, duration in zip(rows, durations, strict=False):
            self._of(row.queue, row.job_type).duration.observe(duration)

    def retried_one(self, row: JobRow) -> None:
        self._of(row.queue, row.job_type).retried.inc()

    def failed_one(self, row: JobRow) -> None:
        self._of(row.queue, row.job_type).failed.inc()


_lock = threading.Lock()
_metrics: JobMetrics | None = None


def job_metrics() -> JobMetrics:
    """This process's metrics, made on first use (creating them registers them)."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = JobMetrics()
    return _metrics
