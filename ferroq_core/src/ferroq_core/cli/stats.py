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
from ferroq_core.cli.schedules import schedule_headers, schedule_rows, schedule_to_dict
from ferroq_core.control_records import PauseScope
from ferroq_core.fleet import serving
from ferroq_core.records import QueueStats
from ferroq_core.schedules import list_schedules

if TYPE_CHECKING:
    from ferroq_core.control_records import Pause
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


def stats_to_dict(
    s: QueueStats, pauses: list[Pause] | None = None, served: set[str] | None = None
) -> dict[str, Any]:
    paused = _paused_queues(pauses or [])
    return {
        "queues": [{**queue_to_dict(q, served), "paused": q.queue in paused} for q in s.queues],
        "totals": {
            "pending": s.pending,
            "delayed": s.delayed,
            "claimed": s.claimed,
            "failed": s.failed,
            "total": s.total,
            "oldest_pending_age": oldest_age(s),
        },
        # Every pause in force (ferroq pauses), queues without jobs and types and tenants too.
        "pauses": [
            {"scope": p.scope.value, "name": p.name, "reason": p.reason} for p in pauses or []
        ],
    }


def _paused_queues(pauses: list[Pause]) -> set[str]:
    return {p.name for p in pauses if p.scope is PauseScope.QUEUE}


@click.command(epilog=DB_EPILOG)
@click.option("--queue", "-q", "queues", multiple=True, help="Only this queue (repeatable).")
@json_option
@pass_context
def stats(obj: CliContext, queues: tuple[str, ...], as_json: bool) -> None:
    """Jobs per queue: pending (eligible now), delayed, claimed (running), failed, and how
    long the oldest pending job has waited; paused queues, job types and tenants (`ferroq
    pause`) are marked, and whether a live worker serves the queue (NO WORKER: none in
    `ferroq workers` does); then, when limits are declared, each limit per key: running,
    started in the rate window, waiting (see `ferroq limits`); then the schedules with their
    next and last run.

    \b
    Examples:
      ferroq stats
      ferroq stats --queue emails --json
      FERROQ_DATABASE_URL=postgresql://app@db/app ferroq stats
    """
    backend = ready_backend(obj)
    result = backend.get_stats()
    pauses = backend.pauses()
    served = serving(backend.list_workers())
    usage = backend.limit_usage()
    if queues:
        result = QueueStats(queues=tuple(result.for_queue(q) for q in dict.fromkeys(queues)))
    runtime = obj.runtime()
    found = list_schedules(runtime=runtime)
    if as_json:
        schedules = [schedule_to_dict(s, runtime) for s in found]
        limits = [usage_to_dict(u) for u in usage]
        echo_json(
            {**stats_to_dict(result, pauses, served), "limits": limits, "schedules": schedules}
        )
        return
    if found:  # periodic jobs (cli/schedules.py)
        render_table(schedule_headers(found), schedule_rows(found, runtime))
        click.echo()
    paused = _paused_queues(pauses)
    if pauses:
        listed = ", ".join(f"{p.scope.value} {p.name}" for p in pauses)
        click.echo(f"paused: {listed}")
    if not result.queues:
        click.echo("no jobs")
        return
    rows: list[list[object]] = [
        [
            f"{q.queue} (paused)" if q.queue in paused else q.queue,
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
