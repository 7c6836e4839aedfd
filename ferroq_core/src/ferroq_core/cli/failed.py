"""Failed jobs and bulk clean-up: ``failed``, ``retry``, ``forget``, ``flush``,
``prune-failed`` and ``clear``."""

from __future__ import annotations

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.jobs import echo_listing
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    filter_options,
    first_line,
    fmt_age,
    json_option,
    paging_options,
    ready_backend,
    require_jobs,
    yes_option,
)
from ferroq_core.errors import FerroqError
from ferroq_core.records import JobState


def register(cli: click.Group) -> None:
    for command in (failed, retry, forget, flush, prune_failed, clear):
        cli.add_command(command)


def _plural(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


@click.command(epilog=DB_EPILOG)
@filter_options
@paging_options
@json_option
@pass_context
def failed(
    obj: CliContext,
    queue: str | None,
    job_type: str | None,
    tenant: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List failed jobs, newest first, with the first line of their error.

    \b
    Examples:
      ferroq failed
      ferroq failed --queue emails --limit 20 --offset 20
      ferroq failed --json | jq '.jobs[].id'
    """
    echo_listing(
        obj,
        state=JobState.FAILED,
        queue=queue,
        job_type=job_type,
        tenant=tenant,
        limit=limit,
        offset=offset,
        as_json=as_json,
        what="failed jobs",
        headers=["ID", "QUEUE", "TYPE", "ATTEMPTS", "FAILED", "ERROR"],
        row=lambda r, now: [
            r.id,
            r.queue,
            r.job_type,
            r.attempts,
            fmt_age(None if r.failed_at is None else (now - r.failed_at).total_seconds()),
            first_line(r.error),
        ],
    )


@click.command(epilog=DB_EPILOG)
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Retry every failed job (see --queue, --type).")
@click.option("--queue", "-q", help="With --all: only failed jobs of this queue.")
@click.option("--type", "job_type", help="With --all: only failed jobs of this job type.")
@json_option
@pass_context
def retry(
    obj: CliContext,
    ids: tuple[int, ...],
    all_: bool,
    queue: str | None,
    job_type: str | None,
    as_json: bool,
) -> None:
    """Put failed jobs back to pending, attempts reset; payload and tenant are kept.

    A job whose idempotency key is now held by another pending or running job stays failed
    (retrying it would run the same work twice); the command then exits 1.

    \b
    Examples:
      ferroq retry 12 13
      ferroq retry --all --queue emails
      ferroq retry --all --type app.jobs:SendEmail
    """
    if bool(ids) == all_:
        raise click.UsageError("give job ids or --all (not both)")
    if ids and (queue or job_type):
        raise click.UsageError("--queue and --type only filter --all")
    backend = ready_backend(obj)
    left: list[int] = []
    if all_:
        moved = backend.retry_failed(None, queue=queue, job_type=job_type)
    else:
        unique = list(dict.fromkeys(ids))
        for row in require_jobs(backend, unique):
            if row.status != "failed":
                raise FerroqError(
                    f"job {row.id} is {row.state_at(backend.now()).value}, not failed: "
                    "only failed jobs can be retried"
                )
        moved = backend.retry_failed(unique)
        left = [r.id for r in require_jobs(backend, unique) if r.status == "failed"]
    if as_json:
        echo_json({"retried": moved, "left_failed": left})
    else:
        click.echo(f"retried {_plural(moved)}")
    if left:
        raise FerroqError(
            f"left failed: {', '.join(map(str, left))} (another pending or running job holds "
            "the same idempotency key; retry once it has finished)"
        )


@click.command(epilog=DB_EPILOG)
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.option("--any-state", is_flag=True, help="Also delete pending, delayed or claimed jobs.")
@json_option
@pass_context
def forget(obj: CliContext, ids: tuple[int, ...], any_state: bool, as_json: bool) -> None:
    """Delete failed jobs by id. Nothing is deleted when an id is unknown or (without
    --any-state) a job is not failed.

    \b
    Examples:
      ferroq forget 12
      ferroq forget 12 13 14 --json
      ferroq forget 15 --any-state       delete a pending job too
    """
    backend = ready_backend(obj)
    unique = list(dict.fromkeys(ids))
    rows = require_jobs(backend, unique)
    if not any_state:
        for row in rows:
            if row.status != "failed":
                raise FerroqError(
                    f"job {row.id} is {row.state_at(backend.now()).value}, not failed: "
                    "pass --any-state to delete it anyway"
                )
    deleted = backend.delete_jobs(unique, state=None if any_state else JobState.FAILED)
    if as_json:
        echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {_plural(deleted)}")


@click.command(epilog=DB_EPILOG)
@yes_option
@json_option
@pass_context
def flush(obj: CliContext, yes: bool, as_json: bool) -> None:
    """Delete every failed job (asks first unless --yes).

    \b
    Examples:
      ferroq flush
      ferroq flush --yes
    """
    backend = ready_backend(obj)
    count = backend.get_stats().failed
    if count and not yes:
        click.confirm(f"Delete all {_plural(count)} that failed?", abort=True, err=True)
    deleted = backend.flush_failed() if count else 0
    if as_json:
        echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {_plural(deleted)}")


@click.command("prune-failed", epilog=DB_EPILOG)
@click.option(
    "--hours",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Delete failed jobs that failed more than this many hours ago.",
)
@json_option
@pass_context
def prune_failed(obj: CliContext, hours: float, as_json: bool) -> None:
    """Delete failed jobs older than --hours (no confirmation: meant for cron).

    \b
    Examples:
      ferroq prune-failed                 older than a day
      ferroq prune-failed --hours 168     older than a week
    """
    deleted = ready_backend(obj).flush_failed(older_than=hours * 3600.0)
    if as_json:
        echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {_plural(deleted)}")


@click.command(epilog=DB_EPILOG)
@click.argument("queue")
@yes_option
@json_option
@pass_context
def clear(obj: CliContext, queue: str, yes: bool, as_json: bool) -> None:
    """Delete the pending and delayed jobs of QUEUE (asks first unless --yes). Running and
    failed jobs are left alone.

    \b
    Examples:
      ferroq clear emails
      ferroq clear emails --yes
    """
    backend = ready_backend(obj)
    q = backend.get_stats().for_queue(queue)
    count = q.pending + q.delayed
    if count and not yes:
        click.confirm(f"Delete {_plural(count)} waiting on queue {queue!r}?", abort=True, err=True)
    deleted = backend.clear_queue(queue) if count else 0
    if as_json:
        echo_json({"deleted": deleted, "queue": queue})
    else:
        click.echo(f"deleted {_plural(deleted)} from queue {queue!r}")
