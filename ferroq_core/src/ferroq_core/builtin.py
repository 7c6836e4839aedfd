"""Core's default plugin: the JSON serializer and full-jitter backoff.

Registered through the same hooks as third-party plugins, so either can be replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.backoff import exponential_bound, full_jitter
from ferroq_core.markers import hookimpl
from ferroq_core.plugin_records import BackoffPolicy
from ferroq_core.serialization import JsonSerializer, Serializer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.job import Job


def _full_jitter(job: Job, attempt: int) -> float:
    return full_jitter(attempt, job.backoff_base, job.backoff_cap)


def _exponential(job: Job, attempt: int) -> float:
    return exponential_bound(attempt, job.backoff_base, job.backoff_cap)


@hookimpl
def ferroq_serializers() -> Sequence[Serializer]:
    return [JsonSerializer()]


@hookimpl
def ferroq_backoff_policies() -> Sequence[BackoffPolicy]:
    return [
        BackoffPolicy(name="full-jitter", delay=_full_jitter),
        BackoffPolicy(name="exponential", delay=_exponential),
    ]
