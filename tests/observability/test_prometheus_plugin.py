"""ferroq-prometheus in one process: the queue-state gauges and their cache, the counters a
dispatch and a drain leave, ``ferroq metrics serve`` and the errors of its options."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import attrs
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from ferroq_core import Job, QueueConfig, QueueStats, Runtime, dispatch, make_plugin_manager
from ferroq_core.testing import drain
from ferroq_prometheus import BUCKETS, QueueStateCollector
from ferroq_prometheus.metrics import Tally
from tests.observability.conftest import free_port, installed_env, scrape, with_plugin
from tests.worker.conftest import BOOT, ROOT, wait_for

if TYPE_CHECKING:
    from pathlib import Path


@attrs.define
class Tick(Job):
    job_name = "test.obs.tick"
    max_attempts = 1

    fail: bool = False

    def handle(self) -> None:
        if self.fail:
            raise RuntimeError("tick failed")


def _values(collector: QueueStateCollector) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            key = sample.name + "".join(f"/{v}" for v in sample.labels.values())
            out[key] = sample.value
    return out


def test_the_queue_state_gauges_read_the_database(runtime: Runtime) -> None:
    Tick().on_queue("a").dispatch()
    Tick().on_queue("a").delay(3600).dispatch()
    Tick(fail=True).on_queue("b").dispatch()
    drain(runtime=runtime, queues="b")
    values = _values(QueueStateCollector(runtime.backend.get_stats, ttl=0.0))
    assert values["ferroq_queue_jobs/a/pending"] == 1
    assert values["ferroq_queue_jobs/a/delayed"] == 1
    assert values["ferroq_queue_jobs/a/claimed"] == 0
    assert values["ferroq_queue_jobs/b/failed"] == 1
    assert values["ferroq_queue_jobs/b/pending"] == 0
    assert 0.0 <= values["ferroq_queue_oldest_due_age_seconds/a"] < 60.0
    assert values["ferroq_queue_oldest_due_age_seconds/b"] == 0.0
    assert values["ferroq_queue_state_up"] == 1.0


def test_scrapes_within_the_cache_time_read_the_database_once(runtime: Runtime) -> None:
    now = [0.0]
    collector = QueueStateCollector(runtime.backend.get_stats, ttl=1.0, clock=lambda: now[0])
    for _ in range(100):
        _values(collector)
        now[0] += 0.009  # 100 scrapes in 0.9 s
    assert collector.reads == 1
    Tick().dispatch()
    assert "ferroq_queue_jobs/default/pending" not in _values(collector)  # still cached
    now[0] = 1.0
    assert _values(collector)["ferroq_queue_jobs/default/pending"] == 1
    assert collector.reads == 2


def test_a_slow_read_is_reused_for_a_hundred_times_as_long(runtime: Runtime) -> None:
    now = [0.0]

    def slow() -> QueueStats:
        now[0] += 0.5  # the read takes half a second
        return runtime.backend.get_stats()

    collector = QueueStateCollector(slow, ttl=1.0, clock=lambda: now[0])
    _values(collector)
    now[0] += 49.0
    _values(collector)
    assert collector.reads == 1
    now[0] += 1.0  # 50 s after the read ended
    _values(collector)
    assert collector.reads == 2


def test_a_failed_read_reports_down_and_is_cached_too() -> None:
    calls = []

    def broken() -> object:
        calls.append(1)
        raise OSError("database gone")

    now = [0.0]
    collector = QueueStateCollector(broken, ttl=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert _values(collector) == {"ferroq_queue_state_up": 0.0}
    assert _values(collector) == {"ferroq_queue_state_up": 0.0}
    assert len(calls) == 1


def _sample(name: str, job_type: str = "test.obs.tick") -> float:
    value = REGISTRY.get_sample_value(name, {"queue": "default", "job_type": job_type})
    return value or 0.0


def test_dispatch_and_drain_count_with_the_plugin_registered(runtime: Runtime, db_url: str) -> None:
    del runtime  # only for the empty table
    pm = with_plugin(make_plugin_manager(), "ferroq_prometheus")

    names = ("enqueued", "started", "succeeded", "retried", "failed")
    before = {n: _sample(f"ferroq_jobs_{n}_total") for n in names}
    observed = Runtime.build(db_url, QueueConfig(connection="db", database_url=db_url), pm)
    try:
        dispatch(Tick(), runtime=observed)
        dispatch(Tick(), runtime=observed)
        dispatch(Tick(fail=True), runtime=observed)
        drain(runtime=observed)
    finally:
        observed.close()
    # The worker's tallies reach the metrics within a second (a scrape adds them at once).
    wait_for(lambda: _sample("ferroq_jobs_started_total") - before["started"] == 3, timeout=10)
    after = {n: _sample(f"ferroq_jobs_{n}_total") - before[n] for n in names}
    assert after == {"enqueued": 3, "started": 3, "succeeded": 2, "retried": 0, "failed": 1}


def _serve(db_url: str, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = installed_env(tmp_path / "site", "ferroq_prometheus")
    cmd = [sys.executable, "-c", BOOT, "--database-url", db_url, "metrics", "serve", *args]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_metrics_serve_reports_the_queue_state_until_stopped(
    runtime: Runtime, db_url: str, tmp_path: Path
) -> None:
    Tick().on_queue("mail").dispatch()
    port = free_port()
    proc = _serve(db_url, tmp_path, "--port", str(port), "--host", "127.0.0.1")
    try:

        def scraped() -> dict[str, float] | None:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                return scrape(port)
            except OSError:
                return None

        seen = wait_for(scraped, timeout=20)
        assert seen['ferroq_queue_jobs{queue="mail",state="pending"}'] == 1
        assert seen["ferroq_queue_state_up"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, out
    assert f"serving metrics on http://127.0.0.1:{port}/metrics" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port must be a TCP port (1-65535), got 70000"),
        (["--cache", "-1"], "--cache must not be negative, got -1.0"),
    ],
)
def test_metrics_serve_refuses_bad_options(
    sqlite_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = _serve(sqlite_url, tmp_path, *args)
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 1
    assert out.strip().splitlines() == [f"Error: {message}"]


def test_a_metrics_port_in_use_is_a_one_line_error(
    runtime: Runtime, db_url: str, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = installed_env(tmp_path / "site", "ferroq_prometheus")
        cmd = [sys.executable, "-c", BOOT, "--database-url", db_url, "worker"]
        cmd += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1", "--stop-when-empty"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: cannot serve metrics on 127.0.0.1:{port}: ")
    )


def test_a_batch_tally_adds_what_observing_each_value_would() -> None:
    values = [0.0, 0.005, 0.0051, 0.3, 1.0, 7.5, 899.0, 900.0, 901.0, 5000.0]
    observed = CollectorRegistry()
    tallied = CollectorRegistry()
    one = Histogram("h", "h", ["q"], buckets=BUCKETS, registry=observed).labels("a")
    for v in values:
        one.observe(v)
    tally = Tally()
    for v in values:
        tally.add(v)
    tally.into(Histogram("h", "h", ["q"], buckets=BUCKETS, registry=tallied).labels("a"))

    def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name, s.labels, s.value)
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        ]

    assert samples(tallied) == samples(observed)
    assert tally.count == len(values)
