"""The ``prometheus`` plugin: job counters from the lifecycle hooks, the metrics endpoint of
``ferroq worker --metrics-port`` and the ``ferroq metrics serve`` command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core import hookimpl
from ferroq_prometheus.cli import check_port, metrics, worker_options
from ferroq_prometheus.metrics import job_metrics
from ferroq_prometheus.serve import worker_metrics

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager

    import click

    from ferroq_core import EnqueueRequest, EnqueueResult, JobRow, Runtime


@hookimpl
def ferroq_jobs_enqueued(
    requests: Sequence[EnqueueRequest], results: Sequence[EnqueueResult]
) -> None:
    job_metrics().enqueued_batch(requests, results)


@hookimpl
def ferroq_jobs_claimed(rows: Sequence[JobRow], worker_id: str) -> None:
    job_metrics().claimed(rows)


@hookimpl
def ferroq_jobs_succeeded(rows: Sequence[JobRow], durations: Sequence[float]) -> None:
    job_metrics().succeeded_batch(rows, durations)


@hookimpl
def ferroq_job_retrying(row: JobRow, error: BaseException, delay: float) -> None:
    job_metrics().retried_one(row)


@hookimpl
def ferroq_job_failed(row: JobRow, error: BaseException) -> None:
    job_metrics().failed_one(row)


@hookimpl
def ferroq_worker_options() -> list[click.Option]:
    return worker_options()


@hookimpl
def ferroq_worker_scope(
    runtime: Runtime, options: Mapping[str, Any], role: str
) -> AbstractContextManager[Any]:
    port = options.get("metrics_port")
    check_port(port, "--metrics-port")
    cache = float(options.get("metrics_cache") or 0.0)
    return worker_metrics(runtime, role, port, str(options.get("metrics_host") or "0.0.0.0"), cache)


@hookimpl
def ferroq_register_commands(cli: click.Group) -> None:
    cli.add_command(metrics)
