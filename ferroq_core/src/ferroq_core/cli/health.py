"""Probes for alerting and orchestration: ``ferroq monitor`` and ``ferroq health``.

Exit codes (documented in docs/cli.md; 1 and 2 keep click's meaning: error, bad usage):

- ``monitor``: 0 every queue within limits, 3 a limit exceeded.
- ``health``: 0 healthy, 3 database unreachable, 4 schema missing or outdated, 5 a worker's
  heartbeat is older than the allowed age, 6 a queue has due jobs waiting longer than the
  allowed age and no live worker serves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.output import (
    DB_EPILOG,
    echo_json,
    fmt_age,
    iso,
    json_option,
    missing_sqlite_file,
    ready_backend,
    render_table,
    shown,
)
from ferroq_core.config import QueueConfig
from ferroq_core.errors import DatabaseError, SchemaMissing, SchemaOutdated
from ferroq_core.fleet import serving
from ferroq_core.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = [
    "EXIT_DATABASE",
    "EXIT_OVER_LIMIT",
    "EXIT_SCHEMA",
    "EXIT_STALE_WORKER",
    "EXIT_UNSERVED_QUEUE",
]

EXIT_OVER_LIMIT = 3
EXIT_DATABASE = 3
EXIT_SCHEMA = 4
EXIT_STALE_WORKER = 5
EXIT_UNSERVED_QUEUE = 6


def register(cli: click.Group) -> None:
    cli.add_command(monitor)
    cli.add_command(health)


@click.command(epilog=DB_EPILOG)
@click.option(
    "--max",
    "max_pending",
    type=click.IntRange(min=0),
    help="Highest acceptable number of pending (eligible) jobs per queue.",
)
@click.option(
    "--max-age",
    type=click.FloatRange(min=0),
    help="Highest acceptable wait, in seconds, of a queue's oldest pending job.",
)
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    help="Check this queue (repeatable; default: every queue that has jobs).",
)
@json_option
@pass_context
def monitor(
    obj: CliContext,
    max_pending: int | None,
    max_age: float | None,
    queues: tuple[str, ...],
    as_json: bool,
) -> None:
    """Exit 3 when a queue has more than --max pending jobs (or its oldest pending job has
    waited longer than --max-age seconds), for cron alerts and monitoring checks.

    \b
    Exit codes: 0 within limits, 3 over a limit, 1 error (database, schema), 2 bad usage.

    \b
    Examples:
      ferroq monitor --max 1000
      ferroq monitor --max 100 --queue emails --queue default || page-oncall
      ferroq monitor --max-age 300 --json
    """
    if max_pending is None and max_age is None:
        raise click.UsageError("give --max, --max-age or both")
    stats = ready_backend(obj).get_stats()
    names = list(dict.fromkeys(queues)) or [q.queue for q in stats.queues]
    report: list[dict[str, Any]] = []
    for name in names:
        q = stats.for_queue(name)
        over = (max_pending is not None and q.pending > max_pending) or (
            max_age is not None
            and q.oldest_pending_age is not None
            and q.oldest_pending_age > max_age
        )
        report.append(
            {
                "queue": name,
                "pending": q.pending,
                "oldest_pending_age": q.oldest_pending_age,
                "over": over,
            }
        )
    ok = not any(r["over"] for r in report)
    if as_json:
        echo_json({"ok": ok, "max": max_pending, "max_age": max_age, "queues": report})
    elif report:
        render_table(
            ["QUEUE", "PENDING", "OLDEST PENDING", "STATUS"],
            [
                [
                    r["queue"],
                    r["pending"],
                    fmt_age(r["oldest_pending_age"]),
                    "OVER" if r["over"] else "ok",
                ]
                for r in report
            ],
        )
    else:
        click.echo("no jobs")
    if not ok:
        listed = ", ".join(r["queue"] for r in report if r["over"])
        click.echo(f"over the limit: {shown(listed)}", err=True)
        raise SystemExit(EXIT_OVER_LIMIT)


def _check(ok: bool | None, detail: str, **extra: Any) -> dict[str, Any]:
    return {"ok": ok, "detail": detail, **extra}


@click.command(epilog=DB_EPILOG)
@click.option(
    "--max-heartbeat-age",
    type=click.FloatRange(min=0, min_open=True),
    envvar="QUEUE_VISIBILITY_TIMEOUT_SECS",
    show_envvar=True,
    default=QueueConfig().visibility_timeout,
    show_default=True,
    help="A worker holding jobs must have heartbeated within this many seconds "
    "(the visibility timeout).",
)
@click.option(
    "--max-unserved-age",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="A queue whose oldest due job has waited longer than this many seconds must be "
    "served by a live worker (see `ferroq workers`).",
)
@click.option("--skip-workers", is_flag=True, help="Check only the database and its schema.")
@json_option
@pass_context
def health(
    obj: CliContext,
    max_heartbeat_age: float,
    max_unserved_age: float,
    skip_workers: bool,
    as_json: bool,
) -> None:
    """Check that the database is reachable, its ferroq schema is current, every worker
    that holds jobs is heartbeating, and every queue with jobs waiting has a live worker.
    Made for Kubernetes probes and load balancers.

    \b
    Exit codes: 0 healthy, 3 database unreachable, 4 schema missing or outdated
    (run `ferroq migrate`), 5 a worker's heartbeat is too old, 6 a queue has due jobs
    older than --max-unserved-age and no live worker serves it, 1 other error, 2 bad usage.

    \b
    Examples:
      ferroq health
      ferroq health --skip-workers          readiness of a web pod
      ferroq health --max-heartbeat-age 120 --json

    \b
    In a pod spec (the worker check covers every worker, so run it from
    monitoring, not as a per-pod liveness probe):
      readinessProbe:
        exec: {command: ["ferroq", "health", "--skip-workers"]}
        periodSeconds: 30
    """
    checks: dict[str, dict[str, Any]] = {
        "database": _check(None, "not checked"),
        "schema": _check(None, "not checked", version=None, required=SCHEMA_VERSION),
        "workers": _check(None, "not checked", max_heartbeat_age=max_heartbeat_age, workers=[]),
        "queues": _check(None, "not checked", max_unserved_age=max_unserved_age, unserved=[]),
    }
    code = _run_checks(obj, checks, max_heartbeat_age, skip_workers)
    if code == 0 and not skip_workers:
        code = _check_queues(obj.runtime().backend, checks["queues"], max_unserved_age)
    if as_json:
        echo_json({"healthy": code == 0, "exit_code": code, "checks": checks})
    else:
        for name, check in checks.items():
            status = {True: "ok", False: "FAIL", None: "-"}[check["ok"]]
            click.echo(f"{name:<9} {status:<5} {shown(str(check['detail']))}")
        click.echo("healthy" if code == 0 else "unhealthy")
    if code:
        raise SystemExit(code)


def _run_checks(
    obj: CliContext, checks: dict[str, dict[str, Any]], max_age: float, skip_workers: bool
) -> int:
    try:
        backend = obj.runtime().backend  # first: a bad URL or a missing backend says so
        missing = missing_sqlite_file(obj.database_url)
        if missing:
            checks["database"].update(ok=False, detail=missing)
            return EXIT_DATABASE
        now = backend.now()
    except DatabaseError as exc:
        checks["database"].update(ok=False, detail=_one_line(str(exc)))
        return EXIT_DATABASE
    checks["database"].update(ok=True, detail=f"{backend.name}, clock {iso(now)}")
    try:
        version = backend.schema_version()
    except DatabaseError as exc:
        checks["schema"].update(ok=False, detail=_one_line(str(exc)))
        return EXIT_DATABASE
    checks["schema"]["version"] = version
    if version < SCHEMA_VERSION:
        try:
            # Its message says whether `ferroq migrate` creates the tables or adopts them.
            backend.check_schema()
        except (SchemaMissing, SchemaOutdated) as exc:
            detail = _one_line(str(exc))
        except DatabaseError as exc:
            checks["schema"].update(ok=False, detail=_one_line(str(exc)))
            return EXIT_DATABASE
        else:
            # Migrated since the version was read: report what was read.
            detail = (
                f"at version {version}, this ferroq needs {SCHEMA_VERSION}: run `ferroq migrate`"
            )
        checks["schema"].update(ok=False, detail=detail)
        return EXIT_SCHEMA
    checks["schema"].update(ok=True, detail=f"version {version}")
    if skip_workers:
        checks["workers"]["detail"] = checks["queues"]["detail"] = "skipped"
        return 0
    workers: list[dict[str, Any]] = []
    for worker_id, beat in sorted(backend.worker_heartbeats().items()):
        age = (now - beat).total_seconds() if beat is not None else None
        stale = age is None or age > max_age
        workers.append(
            {"worker_id": worker_id, "heartbeat_at": iso(beat), "age": age, "stale": stale}
        )
    checks["workers"]["workers"] = workers
    stale_ids = [w["worker_id"] for w in workers if w["stale"]]
    if stale_ids:
        checks["workers"].update(
            ok=False,
            detail=f"no heartbeat for over {fmt_age(max_age)} from: {', '.join(stale_ids)}",
        )
        return EXIT_STALE_WORKER
    ages = [w["age"] for w in workers]
    checks["workers"].update(
        ok=True,
        detail=f"{len(workers)} holding jobs, oldest heartbeat {fmt_age(max(ages))} ago"
        if workers
        else "none holding jobs",
    )
    return 0


def _check_queues(backend: Backend, check: dict[str, Any], max_age: float) -> int:
    """Fail (exit 6) when a queue's oldest due job waited longer than ``max_age`` seconds
    and no live worker in the registry serves that queue."""
    try:
        stats = backend.get_stats()
        served = serving(backend.list_workers())
    except DatabaseError as exc:
        check.update(ok=False, detail=_one_line(str(exc)))
        return EXIT_DATABASE
    waiting = [
        q
        for q in stats.queues
        if q.queue not in served
        and q.oldest_pending_age is not None
        and q.oldest_pending_age > max_age
    ]
    check["unserved"] = [
        {"queue": q.queue, "pending": q.pending, "oldest_pending_age": q.oldest_pending_age}
        for q in waiting
    ]
    if waiting:
        listed = ", ".join(
            f"{q.queue} ({q.pending} due, oldest {fmt_age(q.oldest_pending_age)})" for q in waiting
        )
        check.update(ok=False, detail=f"no live worker serves: {listed}")
        return EXIT_UNSERVED_QUEUE
    check.update(
        ok=True,
        detail=f"live workers serve: {', '.join(sorted(served))}"
        if served
        else f"no live worker, and no due job waiting longer than {fmt_age(max_age)}",
    )
    return 0


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
