"""Stored results: ``ferroq result`` and ``ferroq prune``, and the part of ``ferroq show``
that shows a succeeded job's result (docs/results.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    fmt_time,
    iso,
    json_option,
    ready_backend,
    shown,
)
from ferroq_core.errors import JobFailed, ResultMissing

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend
    from ferroq_core.storage.results import ResultState, StoredResult

__all__ = ["register", "show_stored_result"]


def register(cli: click.Group) -> None:
    cli.add_command(result)
    cli.add_command(prune)


def _state(state: ResultState) -> str:
    if state.result is not None:
        return "succeeded"
    return state.status or "missing"


def result_to_dict(stored: StoredResult) -> dict[str, Any]:
    return {
        "id": stored.job_id,
        "state": "succeeded",
        "type": stored.job_type,
        "result": _decoded(stored.value),
        "succeeded_at": iso(stored.created_at),
        "expires_at": iso(stored.expires_at),
    }


def _decoded(value: str) -> Any:
    """A stored value as JSON data when it is JSON text (the JSON serializer's), else as the
    stored text."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@click.command(epilog=DB_EPILOG)
@click.argument("job_id", metavar="ID", type=int)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for the job to finish (0: only look).",
)
@json_option
@pass_context
def result(obj: CliContext, job_id: int, wait: float, as_json: bool) -> None:
    """Print the stored result of a job (its handler's return value, as stored), waiting up to
    --wait seconds for it. Exits 1 when the job failed, is not finished or has no result.

    \b
    Examples:
      ferroq result 42
      ferroq result 42 --wait 30 --json | jq .result
    """
    backend = ready_backend(obj)
    state = backend.wait_result(job_id, wait) if wait > 0 else backend.read_result(job_id)
    if as_json and state.result is None:
        echo_json({"id": job_id, "state": _state(state), "result": None, "error": state.error})
        raise SystemExit(1)
    if state.result is not None:
        if as_json:
            echo_json(result_to_dict(state.result))
        else:
            click.echo(shown(state.result.value, lines=True))
        return
    if state.status == "failed":
        raise JobFailed(job_id, state.error)
    if state.status is None:
        raise ResultMissing(
            f"no stored result and no job with id {job_id}: it succeeded without store_result, "
            "its result expired, it was cancelled or deleted, or it never existed"
        )
    raise click.ClickException(f"job {job_id} is {state.status}: no result yet (try --wait)")


@click.command(epilog=DB_EPILOG)
@json_option
@pass_context
def prune(obj: CliContext, as_json: bool) -> None:
    """Delete expired results now (no confirmation: meant for cron). Workers also prune them,
    a bounded number per reaper pass; this clears a backlog at once.

    \b
    Examples:
      ferroq prune
      ferroq prune --json
    """
    deleted = ready_backend(obj).prune_results()
    if as_json:
        echo_json({"results": deleted})
    else:
        click.echo(f"deleted {deleted} expired result{'' if deleted == 1 else 's'}")


def show_stored_result(backend: Backend, job_id: int, *, as_json: bool) -> bool:
    """``ferroq show`` of a job that has no row: its stored result, if any. True when shown."""
    state = backend.read_result(job_id)
    if state.result is None:
        return False
    stored = state.result
    if as_json:
        echo_json(result_to_dict(stored))
        return True
    fields = [
        ("id", str(stored.job_id)),
        ("state", "succeeded"),
        ("type", stored.job_type),
        ("succeeded", fmt_time(stored.created_at)),
        ("expires", fmt_time(stored.expires_at)),
    ]
    width = max(len(k) for k, _ in fields) + 1
    for key, value in fields:
        click.echo(f"{key + ':':<{width}} {shown(value)}")
    click.echo("result:")
    click.echo("  " + shown(stored.value, lines=True).replace("\n", "\n  "))
    return True
