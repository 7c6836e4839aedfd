"""The metrics endpoint of each kind of process, and the multiprocess directory's lifecycle.

- ``worker`` (no ``--processes``): serves this process's job metrics and the queue state.
- ``supervisor`` (``--processes N``): makes a directory for prometheus_client's multiprocess
  mode, points its children at it (``PROMETHEUS_MULTIPROC_DIR`` in their environment) and
  serves the sum of their files with the queue state; the directory is removed at exit.
- ``child``: serves nothing; its metrics go to the supervisor's directory.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ferroq_core import ConfigError
from ferroq_prometheus.metrics import flush_pending, job_metrics
from ferroq_prometheus.queue_state import DEFAULT_TTL, QueueStateCollector

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_core import Runtime

__all__ = ["MULTIPROC_ENV", "listen", "multiprocess_dir", "serve_queue_state", "worker_metrics"]

log = logging.getLogger("ferroq.prometheus")

#: prometheus_client's multiprocess directory variable.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


@contextlib.contextmanager
def listen(port: int, host: str, registry: Any) -> Iterator[None]:
    """Serve ``registry`` over HTTP on ``host:port`` (any path answers) while entered."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[str]:
    """The multiprocess directory, set in ``PROMETHEUS_MULTIPROC_DIR`` while entered.

    A directory the operator set is used as it is and kept; otherwise a new temporary one is
    made and removed at exit, so no stale file of an earlier run is ever summed.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    path = tempfile.mkdtemp(prefix="ferroq-prometheus-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LiveChildren:
    """prometheus_client's multiprocess collector, after forgetting the live gauges of
    processes that have exited (a restarted child must not count as two workers)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.inner = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        for name in glob.glob(os.path.join(self.path, "gauge_live*.db")):
            match = _LIVE_FILE.search(os.path.basename(name))
            if match and not _alive(int(match.group(1))):
                mark_process_dead(int(match.group(1)), self.path)  # type: ignore[no-untyped-call]
        return self.inner.collect()  # type: ignore[no-untyped-call]


class _Flushed:
    """A registry's metrics after the worker's tallies are added to them."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Any:
        flush_pending()
        return self.registry.collect()


@contextlib.contextmanager
def serve_queue_state(runtime: Runtime, port: int, host: str, ttl: float) -> Iterator[None]:
    """Serve the queue state (and this process's default registry) on ``host:port``."""
    collector = QueueStateCollector(runtime.backend.get_stats, ttl)
    REGISTRY.register(collector)
    try:
        with listen(port, host, _Flushed(REGISTRY)):
            yield
    finally:
        REGISTRY.unregister(collector)


@contextlib.contextmanager
def worker_metrics(
    runtime: Runtime, role: str, port: int | None, host: str, ttl: float = DEFAULT_TTL
) -> Iterator[None]:
    """What a ``ferroq worker`` process of ``role`` does for metrics while it runs."""
    if role == "supervisor":
        if port is None:
            yield
            return
        with multiprocess_dir() as path:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_LiveChildren(path))
            registry.register(QueueStateCollector(runtime.backend.get_stats, ttl))
            with listen(port, host, registry):
                yield
        return
    workers = job_metrics().workers
    workers.set(1)
    try:
        if role == "worker" and port is not None:
            with serve_queue_state(runtime, port, host, ttl):
                yield
        else:
            yield
    finally:
        flush_pending()  # a child's last tallies reach its files before it exits
        workers.set(0)
