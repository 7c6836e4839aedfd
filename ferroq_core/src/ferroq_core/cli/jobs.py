"""``ferroq jobs`` and ``ferroq show``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ferroq_core.bounds import check_limit_key
from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.history import (
    SUCCEEDED,
    echo_attempt_errors,
    echo_history_listing,
    echo_history_record,
    errors_to_list,
    fmt_progress,
    progress_to_dict,
)
from ferroq_core.cli.output import (
    DB_EPILOG,
    checked,
    echo_json,
    filter_options,
    fmt_age,
    fmt_time,
    iso,
    job_to_dict,
    json_option,
    paging_options,
    ready_backend,
    render_table,
    shown,
)
from ferroq_core.cli.results import show_stored_result
from ferroq_core.errors import JobNotFound
from ferroq_core.records import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from ferroq_core.records import JobRow
    from ferroq_core.unique import UniqueKey


def register(cli: click.Group) -> None:
    cli.add_command(jobs)
    cli.add_command(show)


def echo_listing(
    obj: CliContext,
    *,
    state: JobState | None,
    queue: str | None,
    job_type: str | None,
    tenant: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    what: str,
    headers: Sequence[str],
    row: Callable[[JobRow, datetime], list[object]],
    with_progress: bool = False,
    limit_key: str | None = None,
) -> None:
    """Fetch one page of jobs and print it as JSON or as a table of ``row(job, now)``, with a
    footer (on stderr, so pipes see only rows) naming the next page's --offset. Running
    jobs' progress is read in one more query (in the JSON, and a last column
    ``with_progress``)."""
    backend = ready_backend(obj)
    rows = backend.list_jobs(
        state=state,
        queue=queue,
        job_type=job_type,
        tenant_id=tenant,
        limit=limit,
        offset=offset,
        limit_key=limit_key,
    )
    now = backend.now()
    progress = backend.get_progress([r.id for r in rows if r.status == "claimed"])
    if as_json:
        jobs = [
            dict(job_to_dict(r, now), progress=progress_to_dict(progress.get(r.id))) for r in rows
        ]
        echo_json({"jobs": jobs, "limit": limit, "offset": offset})
        return
    if not rows:
        click.echo(f"no {what}" if offset == 0 else f"no more {what} (past --offset {offset})")
        return
    if with_progress:
        headers = [*headers, "PROGRESS"]
        cells = [[*row(r, now), fmt_progress(progress.get(r.id))] for r in rows]
    else:
        cells = [row(r, now) for r in rows]
    render_table(headers, cells)
    if len(rows) == limit:
        click.echo(
            f"({what} {offset + 1}-{offset + len(rows)}; next page: --offset {offset + limit})",
            err=True,
        )


@click.command(epilog=DB_EPILOG)
@click.option(
    "--state",
    "-s",
    type=click.Choice([*(s.value for s in JobState), SUCCEEDED]),
    help="Only jobs in this state (delayed: pending, not yet eligible; succeeded: from the "
    "history, newest first).",
)
@filter_options
@click.option(
    "--key",
    "limit_key",
    callback=checked(check_limit_key),
    help="Only jobs of this limit key (the key their limits count them under; docs/limits.md).",
)
@paging_options
@json_option
@pass_context
def jobs(
    obj: CliContext,
    state: str | None,
    queue: str | None,
    job_type: str | None,
    tenant: str | None,
    limit_key: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List jobs in the order workers take them (priority, then the time they become
    eligible; failed jobs newest first), filtered and paged.

    \b
    Examples:
      ferroq jobs --state pending --queue emails
      ferroq jobs --type app.jobs:SendEmail --tenant 42 --json
      ferroq jobs --key acct-42 --state claimed  one limit key's running jobs
      ferroq jobs --limit 100 --offset 100      second page of 100
      ferroq jobs --state succeeded             the history (types with keep_history)
    """
    if state == SUCCEEDED:
        if limit_key is not None:
            raise click.UsageError("--key does not apply to --state succeeded (the history)")
        echo_history_listing(
            ready_backend(obj),
            queue=queue,
            job_type=job_type,
            tenant=tenant,
            limit=limit,
            offset=offset,
            as_json=as_json,
        )
        return
    echo_listing(
        obj,
        state=None if state is None else JobState(state),
        queue=queue,
        job_type=job_type,
        tenant=tenant,
        limit=limit,
        offset=offset,
        as_json=as_json,
        what="jobs",
        headers=["ID", "STATE", "QUEUE", "TYPE", "ATTEMPTS", "PRIO", "TENANT", "AGE", "RUNS"],
        with_progress=True,
        limit_key=limit_key,
        row=lambda r, now: [
            r.id,
            r.state_at(now).value,
            r.queue,
            r.job_type,
            f"{r.attempts}/{r.max_attempts}",
            r.priority,
            r.tenant_id,
            fmt_age((now - r.created_at).total_seconds()),
            _runs(r, now),
        ],
    )


def _runs(row: JobRow, now: datetime) -> str:
    """When a job runs (or ran): ``in 5m``, ``now``, ``by <worker>``, ``failed 2h ago``."""
    state = row.state_at(now)
    if state is JobState.DELAYED:
        return f"in {fmt_age((row.available_at - now).total_seconds())}"
    if state is JobState.CLAIMED:
        return f"by {row.claimed_by}"
    if state is JobState.FAILED and row.failed_at is not None:
        return f"failed {fmt_age((now - row.failed_at).total_seconds())} ago"
    return "now"


def _pretty_payload(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload


@click.command(epilog=DB_EPILOG)
@click.argument("job_id", metavar="ID", type=int)
@json_option
@pass_context
def show(obj: CliContext, job_id: int, as_json: bool) -> None:
    """Show one job in full: every field, its progress while it runs, the payload
    pretty-printed, every failed attempt and the last error with its traceback. A succeeded
    job is shown from the history (job types with keep_history).

    \b
    Examples:
      ferroq show 42
      ferroq show 42 --json | jq -r .payload
    """
    backend = ready_backend(obj)
    row = backend.get_job(job_id)
    now = backend.now()
    if row is None:
        record = backend.get_history(job_id)
        if record is not None:
            echo_history_record(record, backend.attempt_errors(job_id), now, as_json=as_json)
            return
        # A succeeded job has no row: its stored result, when it has one (cli/results.py).
        if show_stored_result(backend, job_id, as_json=as_json):
            return
        raise JobNotFound(
            f"no job with id {job_id}: list jobs with `ferroq jobs` (a succeeded job is "
            "deleted, and kept in the history only when its type has keep_history)"
        )
    errors = backend.attempt_errors(job_id)
    keys = backend.unique_keys(row.id)
    progress = backend.get_progress([job_id]).get(job_id)
    if as_json:
        data = job_to_dict(row, now)
        data["unique_keys"] = [_key_dict(k) for k in keys]
        data["progress"] = progress_to_dict(progress)
        data["attempt_errors"] = errors_to_list(errors)
        data["result_ttl"] = row.result_ttl
        echo_json(data)
        return
    claimed = fmt_time(row.claimed_at)
    if row.claimed_by:
        claimed += f" by {row.claimed_by}"
    fields = [
        ("id", str(row.id)),
        ("state", row.state_at(now).value),
        ("queue", row.queue),
        ("type", row.job_type),
        ("priority", str(row.priority)),
        ("attempts", f"{row.attempts} of {row.max_attempts}"),
        ("tenant", row.tenant_id or "-"),
        ("limit key", row.limit_key or "-"),
        ("idempotency key", row.idempotency_key or "-"),
        *[("unique key", _key_line(k, now)) for k in keys],
        ("created", _when(row.created_at, now)),
        ("available", _when(row.available_at, now)),
        ("claimed", claimed),
        ("heartbeat", _when(row.heartbeat_at, now)),
        ("failed", _when(row.failed_at, now)),
    ]
    if row.result_ttl is not None:
        fields.append(("result", f"stored for {row.result_ttl:g}s (this dispatch)"))
    if progress is not None:
        updated = _when(progress.updated_at, now)
        fields.append(("progress", f"{fmt_progress(progress)} (at {updated})"))
    width = max(len(k) for k, _ in fields) + 1
    for key, value in fields:
        click.echo(f"{key + ':':<{width}} {shown(value)}")
    click.echo("payload:")
    click.echo(_indent(shown(_pretty_payload(row.payload), lines=True)))
    echo_attempt_errors(errors)
    if row.error:
        click.echo("error:")
        click.echo(_indent(shown(row.error.rstrip(), lines=True)))


def _key_line(key: UniqueKey, now: datetime) -> str:
    if key.held == "period":
        return f"{key.key} (for a period, until {_when(key.expires_at, now)})"
    return f"{key.key} (while pending: while_queued or until_started)"


def _key_dict(key: UniqueKey) -> dict[str, Any]:
    return {"key": key.key, "held": key.held, "expires_at": iso(key.expires_at)}


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    delta = (now - value).total_seconds()
    rel = f"in {fmt_age(-delta)}" if delta < 0 else f"{fmt_age(delta)} ago"
    return f"{fmt_time(value)} ({rel})"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
