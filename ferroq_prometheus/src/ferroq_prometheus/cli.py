"""The ``--metrics-*`` options of ``ferroq worker`` and the ``ferroq metrics`` commands."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from ferroq_core import ConfigError
from ferroq_prometheus.queue_state import DEFAULT_TTL
from ferroq_prometheus.serve import serve_queue_state

__all__ = ["check_port", "metrics", "worker_options"]


def check_port(port: int | None, flag: str) -> None:
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{flag} must be a TCP port (1-65535), got {port}")


def _check_ttl(ttl: float, flag: str) -> None:
    if ttl < 0:
        raise ConfigError(f"{flag} must not be negative, got {ttl}")


def worker_options() -> list[click.Option]:
    """``--metrics-port``, ``--metrics-host`` and ``--metrics-cache`` of ``ferroq worker``."""
    return [
        click.Option(
            ["--metrics-port"],
            type=int,
            default=None,
            envvar="FERROQ_METRICS_PORT",
            show_envvar=True,
            help="Serve Prometheus metrics on this port (with --processes, the supervisor "
            "serves every child's). [default: none]",
        ),
        click.Option(
            ["--metrics-host"],
            default="0.0.0.0",
            show_default=True,
            help="Address the metrics port listens on.",
        ),
        click.Option(
            ["--metrics-cache"],
            type=float,
            default=DEFAULT_TTL,
            show_default=True,
            help="Seconds one read of the queue's state from the database serves scrapes.",
        ),
    ]


@click.group()
def metrics() -> None:
    """Prometheus metrics of the queue (ferroq-prometheus)."""


@metrics.command()
@click.option("--port", type=int, default=9808, show_default=True, help="Port to listen on.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--cache",
    type=float,
    default=DEFAULT_TTL,
    show_default=True,
    help="Seconds one read of the queue's state from the database serves scrapes.",
)
@click.pass_obj
def serve(obj: Any, port: int, host: str, cache: float) -> None:
    """Serve the queue's state (jobs per queue and state, oldest due job's age) until
    SIGTERM or SIGINT, for a host that runs no worker or to watch every worker's queues.

    \b
    Examples:
      ferroq metrics serve --port 9808
    """
    check_port(port, "--port")
    _check_ttl(cache, "--cache")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        with serve_queue_state(obj.runtime(), port, host, cache):
            click.echo(f"serving metrics on http://{host}:{port}/metrics", err=True)
            stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
