"""What ``ferroq jobs`` and ``ferroq show`` print about history: succeeded jobs' records
(``--state succeeded``), running jobs' progress, and every failed attempt's error.

The ``--json`` shapes built here are documented in docs/cli.md (add keys, never rename or
remove them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.output import (
    echo_json,
    first_line,
    fmt_age,
    fmt_time,
    iso,
    render_table,
    shown,
)

if TYPE_CHECKING:
    from datetime import datetime

    from ferroq_core.history_records import AttemptError, HistoryRecord, Progress
    from ferroq_core.storage.protocol import Backend

__all__ = [
    "SUCCEEDED",
    "echo_history_listing",
    "echo_history_record",
    "errors_to_list",
    "fmt_progress",
    "history_to_dict",
    "progress_to_dict",
]

#: The ``--state`` of ``ferroq jobs`` that reads the history.
SUCCEEDED = "succeeded"


def fmt_progress(progress: Progress | None) -> str:
    """``40% pages 40/100``, ``40%``, ``pages 40/100`` or ``-``."""
    if progress is None:
        return "-"
    parts = []
    if progress.fraction is not None:
        parts.append(f"{progress.fraction * 100:.0f}%")
    if progress.message:
        parts.append(progress.message)
    return " ".join(parts) or "-"


def progress_to_dict(progress: Progress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "fraction": progress.fraction,
        "message": progress.message,
        "updated_at": iso(progress.updated_at),
    }


def errors_to_list(errors: list[AttemptError]) -> list[dict[str, Any]]:
    return [
        {
            "attempt": e.attempt,
            "failed_at": iso(e.failed_at),
            "worker": e.worker,
            "error_summary": first_line(e.error) or None,
            "error": e.error,
        }
        for e in errors
    ]


def history_to_dict(record: HistoryRecord) -> dict[str, Any]:
    """The documented JSON form of a succeeded job's record."""
    return {
        "id": record.job_id,
        "state": SUCCEEDED,
        "queue": record.queue,
        "job_type": record.job_type,
        "priority": record.priority,
        "attempts": record.attempts,
        "max_attempts": record.max_attempts,
        "tenant_id": record.tenant_id,
        "created_at": iso(record.created_at),
        "claimed_at": iso(record.claimed_at),
        "finished_at": iso(record.finished_at),
        "duration": record.duration,
        "worker": record.worker,
    }


def echo_history_listing(
    backend: Backend,
    *,
    queue: str | None,
    job_type: str | None,
    tenant: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """``ferroq jobs --state succeeded``: history records, newest first, one page."""
    records = backend.list_history(
        queue=queue, job_type=job_type, tenant_id=tenant, limit=limit, offset=offset
    )
    if as_json:
        jobs = [history_to_dict(r) for r in records]
        echo_json({"jobs": jobs, "limit": limit, "offset": offset})
        return
    if not records:
        what = "no succeeded jobs in the history" if offset == 0 else "no more succeeded jobs"
        click.echo(f"{what} (kept only for job types with keep_history; see docs)")
        return
    now = backend.now()
    render_table(
        ["ID", "QUEUE", "TYPE", "ATTEMPTS", "TENANT", "FINISHED", "TOOK", "WORKER"],
        [
            [
                r.job_id,
                r.queue,
                r.job_type,
                f"{r.attempts}/{r.max_attempts}",
                r.tenant_id,
                f"{fmt_age((now - r.finished_at).total_seconds())} ago",
                f"{r.duration:.3f}s",
                r.worker,
            ]
            for r in records
        ],
    )
    if len(records) == limit:
        click.echo(
            f"(succeeded jobs {offset + 1}-{offset + len(records)}; next page: --offset "
            f"{offset + limit})",
            err=True,
        )


def echo_history_record(
    record: HistoryRecord, errors: list[AttemptError], now: datetime, *, as_json: bool
) -> None:
    """``ferroq show ID`` for a succeeded job kept in the history."""
    if as_json:
        data = history_to_dict(record)
        data["attempt_errors"] = errors_to_list(errors)
        echo_json(data)
        return
    ago = (now - record.finished_at).total_seconds()
    fields = [
        ("id", str(record.job_id)),
        ("state", f"{SUCCEEDED} (history)"),
        ("queue", record.queue),
        ("type", record.job_type),
        ("priority", str(record.priority)),
        ("attempts", f"{record.attempts} of {record.max_attempts}"),
        ("tenant", record.tenant_id or "-"),
        ("created", fmt_time(record.created_at)),
        ("claimed", fmt_time(record.claimed_at)),
        ("finished", f"{fmt_time(record.finished_at)} ({fmt_age(ago)} ago)"),
        ("took", f"{record.duration:.3f}s"),
        ("worker", record.worker or "-"),
    ]
    width = max(len(k) for k, _ in fields) + 1
    for key, value in fields:
        click.echo(f"{key + ':':<{width}} {shown(value)}")
    echo_attempt_errors(errors)


def echo_attempt_errors(errors: list[AttemptError]) -> None:
    """The failed attempts, one line each (their first line), oldest first."""
    if not errors:
        return
    click.echo("failed attempts:")
    for e in errors:
        by = f" by {e.worker}" if e.worker else ""
        click.echo(f"  #{e.attempt} {fmt_time(e.failed_at)}{by}: {shown(first_line(e.error))}")
