"""ferroq with an observability plugin installed, for the plugins' cost on the drain.

``ferroq+prometheus``: the worker has ferroq_prometheus registered and serves its metrics (as
``ferroq worker --metrics-port`` does); the benchmark's driver scrapes it every second.
``ferroq+otel``: the worker has ferroq_otel registered and no OpenTelemetry SDK configured.
The dispatching process has the plugin registered too (the enqueue workloads). Everything
else is ``ferroq``'s (the same jobs, worker and options).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import urllib.request
from importlib import import_module
from typing import TYPE_CHECKING, Any

from bench.common import spawn
from bench.systems.ferroq_sys import FerroqSystem, runtime_for
from ferroq_core import WorkerConfig, WorkerLoop

if TYPE_CHECKING:
    import subprocess

    from ferroq_core import Runtime

#: system name -> the plugin module the worker registers
PLUGINS = {"ferroq+prometheus": "ferroq_prometheus.plugin", "ferroq+otel": "ferroq_otel.plugin"}

#: Seconds between scrapes.
SCRAPE_EVERY = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape_forever(port: int, stop: threading.Event) -> None:
    while not stop.wait(SCRAPE_EVERY):
        url = f"http://127.0.0.1:{port}/metrics"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
            r.read()


class ObservedSystem(FerroqSystem):
    def __init__(self, name: str, backend: str, url: str, queue: str, **options: Any) -> None:
        super().__init__(backend, url, queue, **options)
        self.name = name
        self._stop = threading.Event()

    @property
    def rt(self) -> Runtime:
        """The dispatching runtime, with the plugin registered too (the enqueue workloads)."""
        if self._rt is None:
            self._rt = runtime_for(self.url)
            self._rt.pm.register(import_module(PLUGINS[self.name]), name=self.name)
        return self._rt

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[str]:
        port = _free_port() if self.name == "ferroq+prometheus" else 0
        proc = spawn(
            "bench.systems.ferroq_observed",
            self.name,
            self.url,
            self.queue,
            str(self.batch),
            str(port),
            env=env,
        )
        if port:
            threading.Thread(target=_scrape_forever, args=(port, self._stop), daemon=True).start()
        return proc

    def close(self) -> None:
        self._stop.set()
        super().close()


def make_prometheus(backend: str, url: str, queue: str, **options: Any) -> ObservedSystem:
    return ObservedSystem("ferroq+prometheus", backend, url, queue, **options)


def make_otel(backend: str, url: str, queue: str, **options: Any) -> ObservedSystem:
    return ObservedSystem("ferroq+otel", backend, url, queue, **options)


# -- the worker process ----------------------------------------------------------------------
def main(argv: list[str]) -> None:
    name, url, queue, batch, port = argv
    rt = runtime_for(url)
    rt.pm.register(import_module(PLUGINS[name]), name=name)
    options = {"metrics_port": int(port) or None, "metrics_host": "127.0.0.1", "metrics_cache": 1.0}
    try:
        with contextlib.ExitStack() as scopes:
            # What `ferroq worker` does: every plugin's worker scope around the loop.
            for scope in rt.pm.hook.ferroq_worker_scope(runtime=rt, options=options, role="worker"):
                if scope is not None:
                    scopes.enter_context(scope)
            WorkerLoop(rt, WorkerConfig(queues=(queue,), concurrency=int(batch))).run()
    finally:
        rt.close()


if __name__ == "__main__":
    main(sys.argv[1:])
