"""Imported by a worker subprocess (``--import tests.observability.traced``): the OpenTelemetry
SDK with the console exporter writing one span per line to ``FERROQ_TEST_SPANS``."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import tests.observability.jobs  # noqa: F401 - the job types

_out = open(os.environ["FERROQ_TEST_SPANS"], "a")  # noqa: SIM115 - for the process's life
_provider = TracerProvider()
_provider.add_span_processor(
    SimpleSpanProcessor(
        ConsoleSpanExporter(out=_out, formatter=lambda span: span.to_json(indent=None) + "\n")
    )
)
trace.set_tracer_provider(_provider)
