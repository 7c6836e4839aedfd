"""The dispatch span and the job span, and whether an SDK is there to record them."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace

from ferroq_otel.carrier import carried, with_carrier

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ferroq_core import EnqueueRequest, JobRow

__all__ = ["TRACER_NAME", "dispatch_span", "job_span", "sdk_configured", "stamped"]

#: The instrumentation scope's name.
TRACER_NAME = "ferroq"

_NOT_CONFIGURED = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def sdk_configured() -> bool:
    """Whether an SDK tracer provider is set: without one no span would be recorded, so
    nothing is made at all (the API's proxy and no-op providers record nothing)."""
    return not isinstance(trace.get_tracer_provider(), _NOT_CONFIGURED)


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def _common(values: set[str]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


@contextlib.contextmanager
def dispatch_span(requests: Sequence[EnqueueRequest]) -> Iterator[trace.Span]:
    """One span around writing one dispatch call's rows (the current span while inside)."""
    queue = _common({r.queue for r in requests})
    job_type = _common({r.job_type for r in requests})
    attributes: dict[str, Any] = {"messaging.system": "ferroq", "ferroq.job.count": len(requests)}
    if queue is not None:
        attributes["ferroq.queue"] = attributes["messaging.destination.name"] = queue
    if job_type is not None:
        attributes["ferroq.job.type"] = job_type
    tenant = _common({r.tenant_id or "" for r in requests})
    if tenant:
        attributes["ferroq.tenant_id"] = tenant
    name = f"dispatch {job_type}" if job_type is not None else "dispatch"
    with _tracer().start_as_current_span(
        name, kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


def stamped(requests: Sequence[EnqueueRequest]) -> list[EnqueueRequest] | None:
    """``requests`` carrying the current trace context, or None when there is none."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    if not headers:
        return None
    text = json.dumps(headers, separators=(",", ":"))
    return [with_carrier(r, text) for r in requests]


@contextlib.contextmanager
def job_span(row: JobRow) -> Iterator[trace.Span]:
    """The span of one attempt, a child of its dispatch span when the row carries one; an
    error leaving it sets its status and records the exception."""
    headers = carried(row.payload)
    parent = propagate.extract(headers) if headers is not None else None
    attributes: dict[str, Any] = {
        "messaging.system": "ferroq",
        "messaging.destination.name": row.queue,
        "ferroq.job.id": row.id,
        "ferroq.job.type": row.job_type,
        "ferroq.queue": row.queue,
        "ferroq.job.attempt": row.attempts,
        "ferroq.job.max_attempts": row.max_attempts,
    }
    if row.tenant_id is not None:
        attributes["ferroq.tenant_id"] = row.tenant_id
    with _tracer().start_as_current_span(
        f"run {row.job_type}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield span
