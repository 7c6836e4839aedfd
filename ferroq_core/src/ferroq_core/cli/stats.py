"""``ferroq stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    fmt_age,
    json_option,
    ready_backend,
    render_table,
)
from ferroq_core.fleet import serving
from ferroq_core.records import QueueStats

if TYPE_CHECKING:
    from ferroq_core.records import SingleQueueStats


def register(cli: click.Group) -> None:
    cli.add_command(stats)


def queue_to_dict(q: SingleQueueStats, served: set[str] | None = None) -> dict[str, Any]:
    """A queue's counts; with ``served`` (the queues live workers serve) also whether one
    serves it."""
    found = {
        "queue": q.queue,
        "pending": q.pending,
        "delayed": q.delayed,
        "claimed": q.claimed,
        "failed": q.failed,
        "oldest_pending_age": q.oldest_pending_age,
    }
    if served is not None:
        found["served"] = q.queue in served
    return found


def oldest_age(s: QueueStats) -> float | None:
    ages = [q.oldest_pending_age for q in s.queues if q.oldest_pending_age is not None]
    return max(ages) if ages else None


def stats_to_dict(s: QueueStats, served: set[str] | None = None) -> dict[str, Any]:
    return {
        "queues": [queue_to_dict(q, served) for q in s.queues],
        "totals": {
            "pending": s.pending,
            "delayed": s.delayed,
            "claimed": s.claimed,
            "failed": s.failed,
            "total": s.total,
            "oldest_pending_age": oldest_age(s),
        },
    }


@click.command(epilog=DB_EPILOG)
@click.option("--queue", "-q", "queues", multiple=True, help="Only this queue (repeatable).")
@json_option
@pass_context
def stats(obj: CliContext, queues: tuple[str, ...], as_json: bool) -> None:
    """Jobs per queue: pending (eligible now), delayed, claimed (running), failed, how
    long the oldest pending job has waited, and whether a live worker serves the queue
    (NO WORKER: none in `ferroq workers` does).

    \b
    Examples:
      ferroq stats
      ferroq stats --queue emails --json
      FERROQ_DATABASE_URL=postgresql://app@db/app ferroq stats
    """
    backend = ready_backend(obj)
    result = backend.get_stats()
    served = serving(backend.list_workers())
    if queues:
        result = QueueStats(queues=tuple(result.for_queue(q) for q in dict.fromkeys(queues)))
    if as_json:
        echo_json(stats_to_dict(result, served))
        return
    if not result.queues:
        click.echo("no jobs")
        return
    rows: list[list[object]] = [
        [
            q.queue,
            q.pending,
            q.delayed,
            q.claimed,
            q.failed,
            fmt_age(q.oldest_pending_age),
            "yes" if q.queue in served else "NO WORKER",
        ]
        for q in result.queues
    ]
    total = ["TOTAL", result.pending, result.delayed, result.claimed, result.failed]
    rows.append([*total, fmt_age(oldest_age(result)), ""])
    headers = ["QUEUE", "PENDING", "DELAYED", "CLAIMED", "FAILED", "OLDEST PENDING", "SERVED"]
    render_table(headers, rows)
