"""``ferroq stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.limits import rate_text, usage_to_dict
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    fmt_age,
    json_option,
    ready_backend,
    render_table,
)
from ferroq_core.records import QueueStats

if TYPE_CHECKING:
    from ferroq_core.records import SingleQueueStats


def register(cli: click.Group) -> None:
    cli.add_command(stats)


def queue_to_dict(q: SingleQueueStats) -> dict[str, Any]:
    return {
        "queue": q.queue,
        "pending": q.pending,
        "delayed": q.delayed,
        "claimed": q.claimed,
        "failed": q.failed,
        "oldest_pending_age": q.oldest_pending_age,
    }


def oldest_age(s: QueueStats) -> float | None:
    ages = [q.oldest_pending_age for q in s.queues if q.oldest_pending_age is not None]
    return max(ages) if ages else None


def stats_to_dict(s: QueueStats) -> dict[str, Any]:
    return {
        "queues": [queue_to_dict(q) for q in s.queues],
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
    """Jobs per queue: pending (eligible now), delayed, claimed (running), failed, and how
    long the oldest pending job has waited; then, when limits are declared, each limit per
    key: running, started in the rate window, waiting (see `ferroq limits`).

    \b
    Examples:
      ferroq stats
      ferroq stats --queue emails --json
      FERROQ_DATABASE_URL=postgresql://app@db/app ferroq stats
    """
    backend = ready_backend(obj)
    result = backend.get_stats()
    usage = backend.limit_usage()
    if queues:
        result = QueueStats(queues=tuple(result.for_queue(q) for q in dict.fromkeys(queues)))
    if as_json:
        echo_json({**stats_to_dict(result), "limits": [usage_to_dict(u) for u in usage]})
        return
    if not result.queues:
        click.echo("no jobs")
        return
    rows: list[list[object]] = [
        [q.queue, q.pending, q.delayed, q.claimed, q.failed, fmt_age(q.oldest_pending_age)]
        for q in result.queues
    ]
    total = ["TOTAL", result.pending, result.delayed, result.claimed, result.failed]
    rows.append([*total, fmt_age(oldest_age(result))])
    render_table(["QUEUE", "PENDING", "DELAYED", "CLAIMED", "FAILED", "OLDEST PENDING"], rows)
    if usage:  # flow control (`ferroq limits` has the details)
        click.echo("")
        limited: list[list[object]] = [
            [f"{u.rule.scope} {u.rule.name}", u.key or "-", u.rule.concurrency or "-"]
            for u in usage
        ]
        for row, u in zip(limited, usage, strict=True):
            row += [u.running, rate_text(u.rule), u.started, u.waiting]
        headers = ["LIMIT", "KEY", "MAX", "RUNNING", "RATE", "STARTED", "WAITING"]
        render_table(headers, limited)
