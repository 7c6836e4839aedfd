"""The control plane: ``pause``, ``resume``, ``pauses`` and ``cancel``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core import controlling
from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    fmt_age,
    iso,
    json_option,
    ready_backend,
    render_table,
    shown,
)
from ferroq_core.errors import FerroqError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.control_records import Pause


def register(cli: click.Group) -> None:
    for command in (pause, resume, pauses, cancel):
        cli.add_command(command)


def pause_to_dict(p: Pause) -> dict[str, Any]:
    return {
        "scope": p.scope.value,
        "name": p.name,
        "paused_at": iso(p.paused_at),
        "reason": p.reason,
    }


def _target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--tenant", help="A tenant id (ferroq-tenancy) instead of a queue.")(fn)
    fn = click.option("--type", "job_type", help="A job type instead of a queue.")(fn)
    return click.argument("queue", required=False)(fn)


@click.command(epilog=DB_EPILOG)
@_target_options
@click.option("--reason", help="Why, shown by `ferroq pauses` and `ferroq stats`.")
@json_option
@pass_context
def pause(
    obj: CliContext,
    queue: str | None,
    job_type: str | None,
    tenant: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Stop every worker, on every host, from claiming jobs of QUEUE (or of a job type, or a
    tenant); running jobs finish. Stored in the database: it holds across worker restarts
    until `ferroq resume`.

    \b
    Examples:
      ferroq pause emails --reason "provider outage"
      ferroq pause --type app.jobs:Report
      ferroq pause --tenant acme --json
    """
    scope, name = controlling.pause_target(queue, job_type, tenant)
    ready_backend(obj)
    done = controlling.pause(obj.runtime(), scope, name, reason=reason)
    if as_json:
        echo_json({"paused": done is not None, "scope": scope.value, "name": name})
    elif done is None:
        click.echo(f"{scope.value} {shown(name)!r} was already paused")
    else:
        click.echo(f"paused {scope.value} {shown(name)!r}")


@click.command(epilog=DB_EPILOG)
@_target_options
@json_option
@pass_context
def resume(
    obj: CliContext, queue: str | None, job_type: str | None, tenant: str | None, as_json: bool
) -> None:
    """Let workers claim the jobs of a paused QUEUE (or job type, or tenant) again; idle
    workers are woken. Exits 1 when it was not paused (a misspelt name, say).

    \b
    Examples:
      ferroq resume emails
      ferroq resume --type app.jobs:Report --json
    """
    scope, name = controlling.pause_target(queue, job_type, tenant)
    ready_backend(obj)
    done = controlling.resume(obj.runtime(), scope, name)
    if as_json:
        echo_json({"resumed": done is not None, "scope": scope.value, "name": name})
    else:
        click.echo(f"resumed {scope.value} {shown(name)!r}" if done else "nothing to resume")
    if done is None:
        raise FerroqError(f"{scope.value} {name!r} is not paused: list pauses with `ferroq pauses`")


@click.command(epilog=DB_EPILOG)
@json_option
@pass_context
def pauses(obj: CliContext, as_json: bool) -> None:
    """List the pauses in force.

    \b
    Examples:
      ferroq pauses
      ferroq pauses --json
    """
    backend = ready_backend(obj)
    found = controlling.pauses(obj.runtime())
    if as_json:
        echo_json({"pauses": [pause_to_dict(p) for p in found]})
        return
    if not found:
        click.echo("no pauses")
        return
    now = backend.now()
    rows: list[list[object]] = [
        [p.scope.value, p.name, fmt_age((now - p.paused_at).total_seconds()), p.reason or ""]
        for p in found
    ]
    render_table(["SCOPE", "NAME", "PAUSED FOR", "REASON"], rows)


@click.command(epilog=DB_EPILOG)
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--queue", "-q", help="Every pending or running job of this queue.")
@click.option("--type", "job_type", help="Every pending or running job of this job type.")
@json_option
@pass_context
def cancel(
    obj: CliContext,
    ids: tuple[int, ...],
    queue: str | None,
    job_type: str | None,
    as_json: bool,
) -> None:
    """Cancel jobs: a pending or delayed one is removed and never runs; a running one is
    asked to stop (its worker learns it at its next heartbeat: an async handler is cancelled,
    a sync one sees `should_stop()`, and under `--processes` one that ignores it is killed
    after the grace period). A cancelled job is not retried. Exits 1 when nothing matched.

    \b
    Examples:
      ferroq cancel 12 13
      ferroq cancel --queue imports --type app.jobs:Import --json
    """
    if ids and (queue or job_type):
        raise click.UsageError("give job ids or --queue/--type (not both)")
    if not ids and not (queue or job_type):
        raise click.UsageError("give job ids, or --queue and/or --type")
    ready_backend(obj)
    result = controlling.cancel(obj.runtime(), ids or None, queue=queue, job_type=job_type)
    removed = [r.id for r in result.removed]
    if as_json:
        echo_json({"removed": removed, "stopping": list(result.requested)})
    else:
        if removed:
            click.echo(f"removed {len(removed)} pending: {', '.join(map(str, removed))}")
        if result.requested:
            asked = ", ".join(map(str, result.requested))
            click.echo(f"asked {len(result.requested)} running to stop: {asked}")
    if not result.count:
        raise FerroqError(
            "no pending or running job matched (failed jobs are not cancelled: `ferroq forget`)"
        )
