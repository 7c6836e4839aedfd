"""The job counters and histograms, made once per process in prometheus_client's registry.

They live in the default registry so an application that already serves it (its web
process's ``/metrics``) reports the jobs it enqueues without further set-up. Under
``PROMETHEUS_MULTIPROC_DIR`` (a supervised worker) prometheus_client writes their values to
files there, which the supervisor's server adds up.

The worker's hooks come once per batch of jobs. A batch is tallied in plain Python (a bucket
index and two additions per job) and the tallies are added to the metrics when scraped, or
every second: prometheus_client's ``Histogram.observe`` takes two locks and scans the buckets
per value, which cost a no-op job's drain a quarter of its speed when called per job, and
adding per batch still cost a Postgres drain (small claims) a tenth of its CPU time.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core import EnqueueRequest, EnqueueResult, JobRow

__all__ = ["BUCKETS", "FLUSH_EVERY", "JobMetrics", "Tally", "flush_pending", "job_metrics"]

log = logging.getLogger("ferroq.prometheus")

#: Seconds between additions of the worker's tallies to the metrics (scrapes of ferroq's
#: endpoints add them first).
FLUSH_EVERY = 1.0

#: Histogram buckets in seconds: jobs last from milliseconds to many minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

_LABELS = ("queue", "job_type")


class Tally:
    """Observations of one batch for one series: a count per bucket (the last one is +Inf)
    and their sum."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        # bisect_left: the first bound >= value, Prometheus's "le" bucket.
        self.buckets[bisect_left(BUCKETS, value)] += 1

    def into(self, histogram: Any) -> None:
        """Add these observations to a labelled ``Histogram`` child, as ``observe()`` on each
        would (its per-bucket values, not cumulative, and its sum)."""
        values = histogram._buckets
        for i, n in enumerate(self.buckets):
            if n:
                values[i].inc(n)
        histogram._sum.inc(self.total)


#: Stands for "no tally yet" in the batch loops (never added to).
_NO_TALLY = Tally()


class _Series(NamedTuple):
    """The labelled children of one (queue, job type)."""

    started: Any
    succeeded: Any
    retried: Any
    failed: Any
    duration: Any
    wait: Any


class JobMetrics:
    """The per-queue, per-job-type series, with each label pair's children cached."""

    def __init__(self, registry: Any = None) -> None:
        reg = REGISTRY if registry is None else registry

        def counter(name: str, text: str) -> Any:
            return Counter(name, text, _LABELS, registry=reg)

        def histogram(name: str, text: str) -> Any:
            return Histogram(name, text, _LABELS, buckets=BUCKETS, registry=reg)

        self.enqueued = counter("ferroq_jobs_enqueued", "Jobs written to the database.")
        self.started = counter("ferroq_jobs_started", "Attempts a worker started.")
        self.succeeded = counter("ferroq_jobs_succeeded", "Attempts that succeeded.")
        self.retried = counter("ferroq_jobs_retried", "Attempts that failed and will retry.")
        self.failed = counter("ferroq_jobs_failed", "Jobs parked as failed.")
        self.duration = histogram(
            "ferroq_job_duration_seconds", "Seconds a successful attempt's handler ran."
        )
        self.wait = histogram(
            "ferroq_job_wait_seconds",
            "Seconds from when a job was due (enqueued, or its delay or retry backoff over) "
            "until a worker claimed it.",
        )
        self.workers = Gauge(
            "ferroq_workers",
            "Worker processes running (1 per process; summed over live processes).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[str, str], _Series] = {}
        # Claims are tallied on the worker's main thread, successes on its write-back thread:
        # a lock each, so neither waits for the other.
        self._waits: dict[tuple[str, str], Tally] = {}
        self._waits_lock = threading.Lock()
        self._runs: dict[tuple[str, str], Tally] = {}
        self._runs_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()

    def _of(self, key: tuple[str, str]) -> _Series:
        series = self._children.get(key)
        if series is None:
            series = _Series(
                self.started.labels(*key),
                self.succeeded.labels(*key),
                self.retried.labels(*key),
                self.failed.labels(*key),
                self.duration.labels(*key),
                self.wait.labels(*key),
            )
            self._children[key] = series
        return series

    def enqueued_batch(
        self, requests: Sequence[EnqueueRequest], results: Sequence[EnqueueResult]
    ) -> None:
        """Count the new rows of one dispatch call (not its idempotent duplicates)."""
        counts: dict[tuple[str, str], int] = {}
        for request, result in zip(requests, results, strict=False):
            if not result.duplicate:
                key = (request.queue, request.job_type)
                counts[key] = counts.get(key, 0) + 1
        for (queue, job_type), n in counts.items():
            self.enqueued.labels(queue, job_type).inc(n)

    # The worker's two batch hooks only tally, under a lock each, into the observations not
    # yet added to the metrics; flush() adds them (per queue and job type: a few locked additions,
    # however many jobs). They inline Tally.add and look a tally up only when the key changes
    # (a batch is usually one queue and job type).
    def claimed(self, rows: Sequence[JobRow]) -> None:
        with self._waits_lock:
            pending = self._waits
            last: tuple[str, str] | None = None
            tally = _NO_TALLY
            # Jobs dispatched together share their due time, and a claim's their claim time:
            # the wait and its bucket are worked out once per distinct pair.
            last_due = last_at = None
            waited, bucket = 0.0, 0
            for row in rows:
                at = row.claimed_at
                if at is None:
                    continue
                key = (row.queue, row.job_type)
                if key != last:
                    tally = pending.get(key) or pending.setdefault(key, Tally())
                    last = key
                due = row.available_at
                if due != last_due or at != last_at:
                    waited = (at - due).total_seconds()
                    if waited < 0.0:
                        waited = 0.0
                    bucket = bisect_left(BUCKETS, waited)
                    last_due, last_at = due, at
                tally.count += 1
                tally.total += waited
                tally.buckets[bucket] += 1
        if self._flusher is None:
            self._start_flusher()

    def succeeded_batch(self, rows: Sequence[JobRow], durations: Sequence[float]) -> None:
        with self._runs_lock:
            pending = self._runs
            last: tuple[str, str] | None = None
            tally = _NO_TALLY
            for row, duration in zip(rows, durations, strict=False):
                key = (row.queue, row.job_type)
                if key != last:
                    tally = pending.get(key) or pending.setdefault(key, Tally())
                    last = key
                tally.count += 1
                tally.total += duration
                tally.buckets[bisect_left(BUCKETS, duration)] += 1
        if self._flusher is None:
            self._start_flusher()

    def flush(self) -> None:
        """Add the observations tallied since the last flush to the metrics."""
        with self._waits_lock:
            waits, self._waits = self._waits, {}
        with self._runs_lock:
            runs, self._runs = self._runs, {}
        for key, tally in waits.items():
            series = self._of(key)
            series.started.inc(tally.count)
            tally.into(series.wait)
        for key, tally in runs.items():
            series = self._of(key)
            series.succeeded.inc(tally.count)
            tally.into(series.duration)

    def _start_flusher(self) -> None:
        # Scrapes of ferroq's endpoints flush first; the thread covers the rest (a supervised
        # child's files, an application serving the registry itself) within FLUSH_EVERY.
        with self._flusher_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_forever, name="ferroq-prometheus-flush", daemon=True
            )
        self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            try:
                self.flush()
            except Exception:  # a metrics error must never end the flushing
                log.exception("adding job metrics failed")

    def retried_one(self, row: JobRow) -> None:
        self._of((row.queue, row.job_type)).retried.inc()

    def failed_one(self, row: JobRow) -> None:
        self._of((row.queue, row.job_type)).failed.inc()


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


def flush_pending() -> None:
    """Add what this process's worker hooks tallied to the metrics (before a scrape)."""
    if _metrics is not None:
        _metrics.flush()
