"""ferroq-otel: the trace context in the payload, a dispatch span and a job span in one trace
(in one process, and across a real worker subprocess), errors on the span, and nothing at all
without an SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import attrs
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ferroq_core import EnqueueRequest, Job, QueueConfig, Runtime, dispatch, make_plugin_manager
from ferroq_core.testing import drain
from ferroq_otel import KEY, carried, trace_jobs
from ferroq_otel.carrier import with_carrier
from tests.observability.conftest import installed_env, with_plugin
from tests.observability.jobs import LEDGER_ENV, Flaky
from tests.worker.conftest import BOOT, ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from opentelemetry.sdk.trace import ReadableSpan


def test_the_carrier_goes_first_in_the_payload_and_comes_back() -> None:
    headers = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    request = EnqueueRequest("q", "t", '{"to":"ada"}')
    stamped = with_carrier(request, headers).payload
    assert stamped == '{"' + KEY + '":' + headers + ',"to":"ada"}'
    assert json.loads(stamped)["to"] == "ada"
    assert carried(stamped) == json.loads(headers)
    assert with_carrier(EnqueueRequest("q", "t", "{}"), headers).payload == (
        '{"' + KEY + '":' + headers + "}"
    )
    # Stamped once only; payloads that are no JSON object carry nothing.
    assert with_carrier(with_carrier(request, headers), headers).payload == stamped
    assert with_carrier(EnqueueRequest("q", "t", "\x00msgpack"), headers).payload == "\x00msgpack"
    assert carried('{"to":"ada"}') is None
    assert carried('{"' + KEY + '":{"traceparent":') is None  # malformed: no parent


def test_without_an_sdk_nothing_is_stamped_or_registered(tmp_path: Path) -> None:
    # A process of its own: a tracer provider, once set, stays set for the process.
    code = textwrap.dedent(
        f"""
        import ferroq_otel.plugin
        from ferroq_core import make_plugin_manager
        from ferroq_core.testing import sqlite_queue
        from ferroq_otel import trace_jobs
        from tests.observability.jobs import LEDGER_ENV, Flaky

        pm = make_plugin_manager()
        if pm.get_plugin("otel") is None:  # not installed: registered by hand
            pm.register(ferroq_otel.plugin, name="otel")
        with sqlite_queue({str(tmp_path)!r}, pm=pm) as runtime:
            Flaky(1).dispatch()
            (row,) = runtime.backend.list_jobs()
            print(row.payload)
            print(trace_jobs(pm), pm.get_plugin("ferroq_otel.jobs"))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ['{"n":1,"kind":"ok"}', "False None"]


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """The SDK with an in-memory exporter, for this process from here on."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def _traced_runtime(db_url: str) -> Runtime:
    pm = with_plugin(make_plugin_manager(), "ferroq_otel")
    assert trace_jobs(pm)
    return Runtime.build(db_url, QueueConfig(connection="db", database_url=db_url), pm)


@attrs.define
class Boom(Job):
    job_name = "test.obs.boom"
    max_attempts = 1

    def handle(self) -> None:
        raise ValueError("boom")


def _by_name(spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans.get_finished_spans()}


def test_the_job_span_is_a_child_of_the_dispatch_span(
    runtime: Runtime,
    db_url: str,
    spans: InMemorySpanExporter,
    ledger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LEDGER_ENV, str(ledger))
    traced = _traced_runtime(db_url)
    try:
        with trace.get_tracer("test").start_as_current_span("request"):
            job_id = dispatch(Flaky(7).for_tenant("acme"), runtime=traced)
        drain(runtime=traced)
    finally:
        traced.close()
    got = _by_name(spans)
    request, sent, ran = got["request"], got["dispatch test.obs.flaky"], got["run test.obs.flaky"]
    assert sent.context is not None
    assert ran.context is not None
    assert request.context is not None
    assert sent.context.trace_id == ran.context.trace_id == request.context.trace_id
    assert sent.parent is not None
    assert sent.parent.span_id == request.context.span_id
    assert ran.parent is not None
    assert ran.parent.span_id == sent.context.span_id
    assert sent.kind == trace.SpanKind.PRODUCER
    assert ran.kind == trace.SpanKind.CONSUMER
    assert dict(ran.attributes or {}) == {
        "messaging.system": "ferroq",
        "messaging.destination.name": "default",
        "ferroq.job.id": int(job_id),
        "ferroq.job.type": "test.obs.flaky",
        "ferroq.queue": "default",
        "ferroq.job.attempt": 1,
        "ferroq.job.max_attempts": 2,
        "ferroq.tenant_id": "acme",
    }
    assert (sent.attributes or {})["ferroq.job.count"] == 1
    assert ran.status.status_code == trace.StatusCode.UNSET


def test_a_failed_run_sets_the_error_status_and_records_the_exception(
    runtime: Runtime, db_url: str, spans: InMemorySpanExporter
) -> None:
    traced = _traced_runtime(db_url)
    try:
        dispatch(Boom(), runtime=traced)
        assert drain(runtime=traced).failed == 1
    finally:
        traced.close()
    ran = _by_name(spans)["run test.obs.boom"]
    assert ran.status.status_code == trace.StatusCode.ERROR
    (event,) = ran.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "ValueError"
    assert (event.attributes or {})["exception.message"] == "boom"


def test_one_trace_from_the_dispatch_into_a_worker_subprocess(
    runtime: Runtime, db_url: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    traced = _traced_runtime(db_url)
    try:
        with trace.get_tracer("test").start_as_current_span("request"):
            ok = dispatch(Flaky(1), runtime=traced)
            bad = dispatch(Flaky(10, "fail"), runtime=traced)
    finally:
        traced.close()
    sent = [s for s in spans.get_finished_spans() if s.name.startswith("dispatch")]
    assert len(sent) == 2
    env = installed_env(tmp_path / "site", "ferroq_otel")
    env["FERROQ_TEST_SPANS"] = str(tmp_path / "spans.jsonl")
    env[LEDGER_ENV] = str(tmp_path / "ledger.log")
    cmd = [sys.executable, "-c", BOOT, "--database-url", db_url, "worker"]
    cmd += ["--import", "tests.observability.traced", "--stop-when-empty"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    by_job: dict[int, list[dict[str, object]]] = {}
    for span in runs:
        by_job.setdefault(span["attributes"]["ferroq.job.id"], []).append(span)
    assert sorted(by_job) == sorted([int(ok), int(bad)])
    parents = {f"0x{s.context.span_id:016x}": s for s in sent if s.context is not None}
    for job_id, job_spans in by_job.items():
        for span in job_spans:
            dispatched = parents[span["parent_id"]]  # a child of its dispatch span
            assert dispatched.context is not None
            assert span["context"]["trace_id"] == f"0x{dispatched.context.trace_id:032x}"
            assert span["kind"] == "SpanKind.CONSUMER"
        statuses = [s["status"]["status_code"] for s in job_spans]
        if job_id == int(ok):
            assert statuses == ["UNSET"]
        else:  # two attempts, both failed, each a child of the same dispatch
            assert statuses == ["ERROR", "ERROR"]
            assert [s["attributes"]["ferroq.job.attempt"] for s in job_spans] == [1, 2]
            assert all(s["events"][0]["name"] == "exception" for s in job_spans)
