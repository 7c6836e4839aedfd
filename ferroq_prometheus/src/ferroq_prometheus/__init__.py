"""Prometheus metrics for ferroq: job counters and histograms per queue and job type, and the
queue's state read from the database at scrape time.

Installed, the plugin counts in every process that loads ferroq's plugins (in prometheus_client's
default registry); ``ferroq worker --metrics-port N`` and ``ferroq metrics serve`` serve them.
"""

from __future__ import annotations

from ferroq_prometheus.metrics import BUCKETS, JobMetrics, job_metrics
from ferroq_prometheus.queue_state import DEFAULT_TTL, QueueStateCollector
from ferroq_prometheus.serve import MULTIPROC_ENV, multiprocess_dir, serve_queue_state

__all__ = [
    "BUCKETS",
    "DEFAULT_TTL",
    "MULTIPROC_ENV",
    "JobMetrics",
    "QueueStateCollector",
    "job_metrics",
    "multiprocess_dir",
    "serve_queue_state",
]
