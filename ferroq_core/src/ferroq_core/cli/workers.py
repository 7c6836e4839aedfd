"""``ferroq workers`` (the live workers and what each runs) and ``ferroq restart`` (every
worker finishes its jobs and exits 0, for its process manager to start it on new code)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    fmt_age,
    fmt_time,
    iso,
    json_option,
    ready_backend,
    render_table,
)
from ferroq_core.runtime import fire

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.fleet import WorkerInfo

__all__ = ["register", "worker_to_dict"]


def register(cli: click.Group) -> None:
    cli.add_command(workers)
    cli.add_command(restart)


def worker_to_dict(worker: WorkerInfo, now: datetime) -> dict[str, Any]:
    """A live worker as ``ferroq workers --json`` shows it (docs/cli.md)."""
    return {
        "id": worker.id,
        "role": worker.role,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "visibility_timeout": worker.visibility_timeout,
        "version": worker.version,
        "supervisor": worker.supervisor,
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "heartbeat_age": (now - worker.heartbeat_at).total_seconds(),
        "jobs": [
            {"id": j.id, "job_type": j.job_type, "queue": j.queue, "claimed_at": iso(j.claimed_at)}
            for j in worker.jobs
        ],
    }


def _running(worker: WorkerInfo) -> str:
    if worker.role == "supervisor":
        return "-"
    return ", ".join(f"{j.id} {j.job_type}" for j in worker.jobs) or "idle"


@click.command(epilog=DB_EPILOG)
@click.option("--queue", "-q", "queues", multiple=True, help="Only workers serving this queue.")
@json_option
@pass_context
def workers(obj: CliContext, queues: tuple[str, ...], as_json: bool) -> None:
    """Live workers: every `ferroq worker`, supervised child and supervisor whose heartbeat is
    within its visibility timeout, with the jobs each is running (id and type).

    A worker killed without a clean exit drops out once its heartbeat is older than its
    visibility timeout (sooner when another worker on its host sees its process gone).

    \b
    Examples:
      ferroq workers
      ferroq workers --queue emails --json
    """
    backend = ready_backend(obj)
    found = backend.list_workers()
    if queues:
        found = [w for w in found if set(queues) & set(w.queues)]
    now = backend.now()
    if as_json:
        echo_json({"workers": [worker_to_dict(w, now) for w in found]})
        return
    if not found:
        click.echo("no live workers")
        return
    render_table(
        ["ID", "ROLE", "QUEUES", "CONC", "STARTED", "BEAT", "RUNNING"],
        [
            [
                w.id,
                w.role,
                ",".join(w.queues),
                w.concurrency,
                fmt_time(w.started_at),
                f"{fmt_age((now - w.heartbeat_at).total_seconds())} ago",
                _running(w),
            ]
            for w in found
        ],
    )


@click.command(epilog=DB_EPILOG)
@json_option
@pass_context
def restart(obj: CliContext, as_json: bool) -> None:
    """Ask every running worker to finish its current jobs and exit 0, so that its process
    manager (systemd, Kubernetes, supervisord) starts it on the code just deployed.

    Stored in the database, so workers on every host see it, each at its next heartbeat
    (--heartbeat-interval: a third of the visibility timeout by default). A worker stops
    claiming, lets its running jobs finish (up to its --shutdown-timeout, as for SIGTERM) and
    exits 0. `ferroq worker --processes N` keeps running and restarts its children one at a
    time. Workers started after the request are not affected.

    \b
    Examples:
      ferroq restart
      ferroq restart --json
    """
    backend = ready_backend(obj)
    live = [w for w in backend.list_workers() if w.role != "child"]
    requested_at = backend.request_restart()
    fire(obj.pm, "ferroq_restart_requested", requested_at=requested_at)
    if as_json:
        echo_json(
            {"requested_at": iso(requested_at), "workers": [w.id for w in live]},
        )
        return
    click.echo(
        f"restart requested at {fmt_time(requested_at)}: {len(live)} worker(s) and "
        "supervisor(s) will finish their current jobs and restart at their next heartbeat"
    )
