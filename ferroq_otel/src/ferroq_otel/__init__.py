"""OpenTelemetry traces for ferroq: a span per dispatch call and per job run, the job's span
a child of the dispatch's across processes (the trace context travels in the job's payload).

Built on ``opentelemetry-api`` only: configure an SDK (``opentelemetry-sdk``) in the
dispatching process and in the worker (``--import`` a module that sets the tracer provider)
to record spans; without one nothing is made.
"""

from __future__ import annotations

from ferroq_otel.carrier import KEY, carried
from ferroq_otel.plugin import trace_jobs
from ferroq_otel.spans import TRACER_NAME, sdk_configured

__all__ = ["KEY", "TRACER_NAME", "carried", "sdk_configured", "trace_jobs"]
